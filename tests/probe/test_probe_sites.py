"""Where a primitive was made: the walk up the stack for the learner's frame stops at the
frame that called the test's setup (above it is pytest, never the learner's code)."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from types import FrameType

from plugins.probe import api, instrument, patching, strategies
from plugins.probe.sites import find_site, line_of
from tests.probe.samples import counter_unlocked

HERE = __file__


def _inner() -> FrameType:
    return sys._getframe()


def test_the_walk_for_a_learners_frame_stops_at_the_given_frame() -> None:
    outer = sys._getframe()
    inner = _inner()
    files = frozenset({HERE})
    assert find_site(inner, files) == (HERE, inner.f_lineno), "no stop: the inner frame is it"
    # No learner frame below the stop: the innermost frame that is not the harness's.
    other = frozenset({"elsewhere.py"})
    assert find_site(inner, other, stop=outer)[0] == HERE, "the fallback is the innermost frame"
    above = frozenset({sys._getframe(1).f_code.co_filename})  # pytest's, above this test
    assert find_site(inner, above)[0] != HERE, "without a stop the walk reaches pytest's frame"
    assert find_site(inner, above, stop=outer)[0] == HERE, (
        "the walk went past its stop frame looking for the learner's code"
    )


def test_a_lock_made_in_the_setup_is_labelled_with_the_setups_line() -> None:
    made: list[int] = []

    def setup() -> counter_unlocked.Counter:
        made.append(sys._getframe().f_lineno + 1)
        lock = threading.Lock()
        counter = counter_unlocked.Counter()
        counter.lock = lock  # type: ignore[attr-defined]
        return counter

    labels: list[str] = []

    def look(counter: counter_unlocked.Counter) -> None:
        from plugins.probe.scheduler import active_run

        run = active_run()
        assert run is not None
        labels.append(run.label(counter.lock))  # type: ignore[attr-defined]

    execute = api._executor(setup, [look], None, [counter_unlocked], 1000, 2.0)
    out = execute(strategies.Replay([]))
    assert out.failure is None, out.failure
    assert labels and f"test_probe_sites.py:{made[0]}" in labels[0], labels


def _three_lines() -> Iterator[tuple[int, int]]:
    frame = sys._getframe()
    yield line_of(frame), frame.f_lineno
    yield line_of(frame), frame.f_lineno
    yield line_of(frame), frame.f_lineno


def test_a_frames_line_is_read_from_where_it_is_now_each_time() -> None:
    # The lines read are kept per code object and instruction: one frame, three places.
    for _ in range(2):  # the second time from what the first one kept
        seen = list(_three_lines())
        assert [kept for kept, _ in seen] == [now for _, now in seen], seen
        assert len({now for _, now in seen}) == 3, seen


def _set_up_an_exploration() -> None:
    """What ``explore`` does before its first schedule, and no schedule."""
    api._executor(
        lambda: counter_unlocked.Counter(),
        [counter_unlocked.Counter.increment],
        None,
        [counter_unlocked],
        100,
        2.0,
    )


def test_the_sources_that_label_primitives_are_read_before_the_first_schedule() -> None:
    # A label reads the line a primitive was made on, in the learner's module or the test's:
    # read when the exploration is set up, not inside a (one-schedule test's only) schedule.
    import linecache

    for path in (counter_unlocked.__file__, HERE):
        linecache.cache.pop(path, None)
    _set_up_an_exploration()
    assert counter_unlocked.__file__ in linecache.cache, "the learner's module was not read"
    assert HERE in linecache.cache, "the test's file (its setup's) was not read"


def test_what_the_runs_swap_is_worked_out_before_the_first_schedule() -> None:
    # The learner's functions' rewritten code and the module names Patch swaps are the same
    # in every run: read when the exploration is set up, not inside its first schedule.
    patching._LAST_SCAN.clear()
    instrument._PLAN.clear()
    _set_up_an_exploration()
    assert patching._LAST_SCAN and patching._LAST_SCAN[0].still([counter_unlocked]), (
        "the learner's module was not scanned for what Patch swaps"
    )
    if instrument.AVAILABLE and os.environ.get("PROBE_TRACER") != "settrace":
        assert instrument._PLAN, "the rewritten code each run swaps in was not planned"
