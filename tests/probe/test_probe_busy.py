"""A worker that spins where nothing can change fails its schedule as a busy loop, at its line,
and no spinning thread survives to slow down or break what runs next."""

from __future__ import annotations

import threading
import time

import pytest

from plugins.probe import ProbeFailure, explore
from tests.probe.samples import busy, counter_locked


def _spin(method: str) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as caught:
        explore(
            busy.Spinner,
            {"spinner": lambda s: getattr(s, method)(), "setter": lambda s: s.set()},
            None,
            modules=[busy],
            budget=20,
        )
    return caught.value


@pytest.mark.parametrize(
    ("method", "line"), [("wait_forever", "while True:"), ("wait_on_a_copy", "while not ready:")]
)
def test_a_loop_without_switch_points_is_reported_as_a_busy_loop_at_its_line(
    method: str, line: str
) -> None:
    started = time.monotonic()
    failure = _spin(method)
    elapsed = time.monotonic() - started
    text = str(failure)
    assert failure.kind == "livelock", text
    assert "busy loop: spinner kept going round the loop at busy.py:" in text, text
    assert f"`{line}`" in text, text
    # 0.5 s per failing run, and the shrinker re-runs it once or twice; the watchdog's 2 s
    # "blocked outside the harness's control" was the report before.
    assert elapsed < 4.0, f"the busy loop took {elapsed:.1f} s to report"


def test_no_spinning_thread_outlives_the_exploration_and_the_next_one_is_unaffected() -> None:
    _spin("wait_forever")
    time.sleep(0.1)
    spinning = [t for t in threading.enumerate() if "wait_forever" in str(_frame_of(t))]
    assert not spinning, f"still spinning after the report: {spinning}"
    started = time.monotonic()
    stats = explore(
        counter_locked.Counter,
        [lambda c: c.increment(), lambda c: c.increment()],
        lambda c, _r: None,
        modules=[counter_locked],
        budget=50,
    )
    assert stats.schedules == 50
    assert time.monotonic() - started < 2.0, "the next exploration ran slowly: a spinner lived"


def _frame_of(thread: threading.Thread) -> object:
    import sys

    frame = sys._current_frames().get(thread.ident or 0)
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names
