"""The cooperative world: patching, primitive semantics, virtual time, oracles, watchdog."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest

from plugins.probe import (
    ProbeFailure,
    conditions,
    explore,
    locks,
    run_schedule,
    semaphores,
    signals,
)
from tests.probe.blocked_registry import blocked_on_the_registry_lock
from tests.probe.samples import backoff, cache, spin

REAL_LOCK = threading.Lock


class Box:
    """Shared state for the semantics tests (this test module plays the learner's module)."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)
        self.log: list[object] = []


def _run(setup: Any, workers: list[Any], budget: int = 20) -> None:
    import sys

    explore(setup, workers, modules=[sys.modules[__name__]], budget=budget)


def test_everything_is_restored_after_a_failing_exploration() -> None:
    before = (threading.Lock, threading.Condition, time.sleep, time.monotonic, cache.Lock)

    def once(c: cache.RacyCache, results: list[object]) -> None:
        assert c.computations == 1

    with pytest.raises(ProbeFailure):
        explore(cache.RacyCache, [lambda c: c.get("k")] * 3, once, modules=[cache], budget=50)
    after = (threading.Lock, threading.Condition, time.sleep, time.monotonic, cache.Lock)
    assert after == before
    assert cache.Lock is REAL_LOCK


def test_from_imports_in_the_learner_module_are_rebound_during_a_run() -> None:
    seen: list[object] = []
    explore(
        lambda: seen.append(cache.Lock) or cache.SafeCache(),
        [lambda c: c.get("k")],
        modules=[cache],
        budget=1,
    )
    assert seen == [locks.Lock]


def test_queue_queue_is_built_from_cooperative_primitives_during_a_run() -> None:
    made: list[queue.Queue[int]] = []
    explore(
        lambda: made.append(queue.Queue()) or made[-1],
        [lambda q: q.put(1)],
        modules=[cache],
        budget=1,
    )
    assert type(made[0].mutex) is locks.Lock
    assert type(made[0].not_empty) is conditions.Condition


def test_primitives_made_outside_a_run_behave_like_the_real_ones() -> None:
    lock = locks.Lock()
    assert lock.acquire() is True
    assert lock.acquire(timeout=0.01) is False
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
    sem = semaphores.BoundedSemaphore(1)
    with pytest.raises(ValueError):
        sem.release()
    assert signals.Event().wait(0.01) is False


def test_lock_timeouts_resolve_on_virtual_time() -> None:
    def holder(b: Box) -> None:
        with b.lock:
            time.sleep(30)

    def waiter(b: Box) -> None:
        time.sleep(0.001)
        t0 = time.monotonic()
        b.log.append(b.lock.acquire(timeout=0.5))
        b.log.append(round(time.monotonic() - t0, 3))

    box: list[Box] = []

    def setup() -> Box:
        box.append(Box(lock=threading.Lock()))
        return box[-1]

    start = time.perf_counter()
    _run(setup, [holder, waiter], budget=5)
    assert time.perf_counter() - start < 2.0
    assert all(b.log == [False, 0.5] for b in box)


def test_condition_wait_timeout_wait_for_and_notify_n_match_the_real_class() -> None:
    def waiter(b: Box) -> None:
        with b.cond:
            b.log.append(("timeout", b.cond.wait(1)))
            b.log.append(("wait_for", b.cond.wait_for(lambda: b.ready, timeout=100)))

    def notifier(b: Box) -> None:
        time.sleep(5)
        with b.cond:
            b.ready = True
            b.cond.notify(2)

    boxes: list[Box] = []

    def setup() -> Box:
        boxes.append(Box(cond=threading.Condition(), ready=False))
        return boxes[-1]

    _run(setup, [waiter, notifier])
    for b in boxes:
        assert b.log == [("timeout", False), ("wait_for", True)]


def test_misuse_wait_without_the_lock_is_reported_in_plain_words() -> None:
    with pytest.raises(ProbeFailure) as caught:
        _run(lambda: Box(cond=threading.Condition()), [lambda b: b.cond.wait(1)])
    assert caught.value.kind == "misuse"
    assert "called wait() on Condition 'state.cond'" in str(caught.value)
    assert "without holding its lock" in str(caught.value)


def test_misuse_releasing_a_lock_nobody_holds() -> None:
    with pytest.raises(ProbeFailure) as caught:
        _run(lambda: Box(lock=threading.Lock()), [lambda b: b.lock.release()])
    assert "released Lock 'state.lock'" in str(caught.value)
    assert "which nobody holds" in str(caught.value)


def test_misuse_a_lock_still_held_when_a_worker_ends() -> None:
    with pytest.raises(ProbeFailure) as caught:
        _run(lambda: Box(lock=threading.Lock()), [lambda b: b.lock.acquire()])
    assert "finished while still holding Lock 'state.lock'" in str(caught.value)


def test_rlock_semaphore_event_and_barrier_semantics() -> None:
    def worker(b: Box) -> None:
        with b.rlock, b.rlock:
            b.log.append("reentrant")
        b.log.append(b.sem.acquire(timeout=1))
        b.log.append(b.sem.acquire(blocking=False))
        b.sem.release()
        b.log.append(b.event.wait(2))
        b.log.append(b.barrier.wait())

    def other(b: Box) -> None:
        b.log.append(("n_waiting", b.barrier.n_waiting, b.barrier.parties, b.barrier.broken))
        b.event.set()
        b.log.append(("other", b.barrier.wait()))

    boxes: list[Box] = []

    def setup() -> Box:
        boxes.append(
            Box(
                rlock=threading.RLock(),
                sem=threading.Semaphore(1),
                event=threading.Event(),
                barrier=threading.Barrier(2, action=lambda: boxes[-1].log.append("action")),
            )
        )
        return boxes[-1]

    _run(setup, [worker, other])
    for b in boxes:
        assert b.log.count("action") == 1
        assert "reentrant" in b.log
        assert {x for x in b.log if isinstance(x, int) and not isinstance(x, bool)} | {
            x[1] for x in b.log if isinstance(x, tuple) and x[0] == "other"
        } == {0, 1}


def test_barrier_timeout_breaks_it_for_everyone() -> None:
    def lone(b: Box) -> None:
        try:
            b.barrier.wait(timeout=3)
        except threading.BrokenBarrierError:
            b.log.append(("broken", b.barrier.broken))

    boxes: list[Box] = []

    def setup() -> Box:
        boxes.append(Box(barrier=threading.Barrier(2)))
        return boxes[-1]

    _run(setup, [lone], budget=2)
    assert all(b.log == [("broken", True)] for b in boxes)


def test_thread_api_works_for_learner_threads_inside_a_run() -> None:
    def worker(b: Box) -> None:
        t = threading.Thread(target=lambda: b.log.append("ran"), name="helper")
        with pytest.raises(RuntimeError):
            t.join()
        t.start()
        with pytest.raises(RuntimeError):
            t.start()
        b.log.append(threading.current_thread().name)
        t.join(timeout=10)
        b.log.append((t.name, t.is_alive(), t.daemon))

    boxes: list[Box] = []

    def setup() -> Box:
        boxes.append(Box())
        return boxes[-1]

    _run(setup, {"main-worker": worker})  # type: ignore[arg-type]
    assert all(b.log[-1] == ("helper", False, False) and "ran" in b.log for b in boxes)
    assert all("main-worker" in b.log for b in boxes)


def test_back_off_that_waits_five_virtual_seconds_costs_no_real_time() -> None:
    results: list[object] = []

    def check(r: backoff.Resource, res: list[object]) -> None:
        results.append(res[1])

    t0 = time.perf_counter()
    explore(
        backoff.Resource,
        [lambda r: r.hold(5.0), lambda r: r.use_with_backoff()],
        check,
        modules=[backoff],
        budget=30,
    )
    assert time.perf_counter() - t0 < 3.0
    assert max(float(x) for x in results) >= 4.9  # type: ignore[arg-type]


def test_a_busy_wait_hits_the_step_bound_and_reads_as_livelock() -> None:
    with pytest.raises(ProbeFailure) as caught:
        explore(spin.Gate, [lambda g: g.wait_open()], modules=[spin], budget=1, max_steps=500)
    assert caught.value.kind == "livelock"
    assert str(caught.value).startswith("livelock or starvation: no worker finished within 500")


def test_a_real_lock_blocking_a_worker_is_reported_not_hung() -> None:
    failure, elapsed = blocked_on_the_registry_lock(lambda exploration: exploration())
    assert elapsed < 5
    assert failure.kind == "uncontrolled"
    assert "blocked outside the harness's control at outside.py:13" in str(failure)


def test_run_schedule_returns_the_workers_results_in_order() -> None:
    got = run_schedule(
        cache.SafeCache,
        {"a": lambda c: c.get("ab"), "b": lambda c: c.get("x")},
        modules=[cache],
        schedule=[1, 0, 1],
    )
    assert got == [2, 1]
