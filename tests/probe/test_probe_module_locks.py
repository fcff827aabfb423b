"""A lock made at import (in the module, or as a class attribute) is a real lock; the workers
share one OS thread, so the run swaps each free one for a cooperative lock while it lasts."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from plugins.probe import ProbeFailure, explore
from tests.probe.samples import module_locks
from tests.probe.samples.module_locks import Counter


def _both_counted(counter: Counter, results: list[object]) -> None:
    assert counter.v == 2, f"an increment was lost: {counter.v} after 2"


def _kept_apart(workers: list[Any]) -> None:
    """Two increments under a lock, over 60 random schedules: none lost, none stuck."""
    stats = explore(
        Counter,
        workers,
        _both_counted,
        modules=[module_locks],
        budget=60,
        strategies="random",
        watchdog_s=0.5,
    )
    assert stats.schedules == 60 or stats.proved


@pytest.mark.parametrize(
    "add", [Counter.add_under_the_module_lock, Counter.add_under_the_class_rlock]
)
def test_a_lock_made_at_import_still_keeps_workers_apart(add: object) -> None:
    real = (module_locks.COUNT_LOCK, Counter.lock)
    _kept_apart([add, add])
    assert (module_locks.COUNT_LOCK, Counter.lock) == real, "the real locks were not put back"


def test_a_deadlock_on_locks_made_at_import_names_them() -> None:
    with pytest.raises(ProbeFailure) as caught:
        explore(
            Counter,
            [Counter.first_then_second, Counter.second_then_first],
            modules=[module_locks],
            budget=60,
            watchdog_s=0.5,
        )
    text = str(caught.value)
    assert "module_locks.FIRST" in text and "module_locks.SECOND" in text, text


def test_a_lock_held_when_the_run_starts_stays_real_and_is_reported() -> None:
    module_locks.COUNT_LOCK.acquire()
    try:
        with pytest.raises(ProbeFailure) as caught:
            explore(
                Counter,
                [Counter.add_under_the_module_lock],
                modules=[module_locks],
                budget=1,
                watchdog_s=0.3,
            )
    finally:
        module_locks.COUNT_LOCK.release()
    assert caught.value.kind == "uncontrolled", str(caught.value)


def test_a_lock_bound_after_an_earlier_run_is_swapped_in_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a run swaps is read once and kept while the modules and classes hold the same
    # objects: a real lock bound in between, under a new name, is found in the next run.
    # (Not COUNT_LOCK: the run left stuck on it by the test above may still hold it a moment.)
    explore(Counter, [Counter.first_then_second], modules=[module_locks], budget=5)
    monkeypatch.setattr(module_locks, "LATE", threading.Lock(), raising=False)
    _kept_apart([module_locks.add_under_a_lock_bound_later] * 2)
