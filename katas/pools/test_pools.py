"""Kata `pools`: map, imap_unordered, starmap and apply_async on a pool of worker processes."""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pools import (
    MEETING_SECONDS,
    Service,
    checked_map,
    collect_async,
    divide,
    echo_after,
    in_completion_order,
    meet,
    parallel_map,
    power,
    reciprocal,
    square,
    starmap_all,
)

# The slow item of the completion-order test. A worker process hands back a zero-delay result
# within milliseconds, so a quick result comes back first unless results are held back in
# input order; 0.8 s leaves a wide margin on a loaded machine.
SLOW_SECONDS = 0.8
# How long each collect_async task and the service's task take: far longer than submitting
# them, so code that stops the pool right after submitting always loses them.
TASK_SECONDS = 0.3
# This machine may have 2 cores, and Pool() then starts 2 workers: the tests ask for 3, so
# that a `processes` that never reaches Pool shows.
WORKERS = 3


@pytest.fixture(autouse=True)
def no_worker_left_behind() -> Iterator[None]:
    """After each test, no child process may still be alive; any that is gets killed."""
    yield
    left = multiprocessing.active_children()
    for child in left:
        child.kill()
        child.join(5)
    assert not left, (
        f"{len(left)} worker process(es) were still alive after the call returned "
        f"({', '.join(c.name for c in left)}): a pool must be terminated (leaving its "
        f"with-block) or closed and joined before you return"
    )


@pytest.fixture
def pool_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of workers of every multiprocessing Pool made during the test, in order
    (multiprocessing.Pool and a context's Pool both create a multiprocessing.pool.Pool)."""
    sizes: list[int] = []
    original = multiprocessing.pool.Pool.__init__

    def noted(self: multiprocessing.pool.Pool, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        sizes.append(self._processes)  # type: ignore[attr-defined]

    monkeypatch.setattr(multiprocessing.pool.Pool, "__init__", noted)
    return sizes


@pytest.fixture
def service() -> Iterator[Service]:
    started = Service(processes=WORKERS)
    try:
        yield started
    finally:
        started.pool.terminate()
        started.pool.join()


def assert_one_pool_of(sizes: list[int], processes: int, call: str) -> None:
    __tracebackhide__ = True
    assert sizes == [processes], (
        f"{call} made pools of {sizes} workers, not one pool of {processes}: pass `processes` "
        f"on to multiprocessing.Pool(processes) (Pool() starts one worker per core)"
    )


def assert_no_worker_left(call: str) -> None:
    __tracebackhide__ = True
    left = multiprocessing.active_children()
    assert not left, (
        f"{len(left)} worker process(es) were still alive when {call} ended ({left}): leave "
        f"the pool's with-block (it terminates the workers) or close() and join() it first"
    )


def _must_raise(error_type: type[BaseException], call: Callable[[], Any], explanation: str) -> None:
    __tracebackhide__ = True
    try:
        returned = call()
    except error_type:
        return
    pytest.fail(f"returned {returned!r} instead of raising {error_type.__name__}: {explanation}")


# -- parallel_map -----------------------------------------------------------------------------


@pytest.mark.clause(1, 2)
def test_parallel_map_returns_the_results_in_the_order_of_the_items(pool_sizes: list[int]) -> None:
    results = parallel_map(square, range(10))
    assert results == [n * n for n in range(10)], (
        f"parallel_map(square, range(10)) returned {results}; result i must be square(i)"
    )
    assert_one_pool_of(pool_sizes, 2, "parallel_map(square, range(10)), with the default 2,")
    assert_no_worker_left("parallel_map returned")


@pytest.mark.clause(1, 3)
def test_parallel_map_runs_the_items_in_worker_processes_at_the_same_time(
    tmp_path: Path, pool_sizes: list[int]
) -> None:
    tasks = [(i, WORKERS, str(tmp_path)) for i in range(WORKERS)]  # all three wait for the rest
    results = parallel_map(meet, tasks, processes=WORKERS)
    pids = [pid for pid, _ in results]
    assert os.getpid() not in pids, (
        "the function ran in the calling process: it must run in the pool's worker processes "
        "(pool.map, not the built-in map or a list comprehension)"
    )
    assert_one_pool_of(pool_sizes, WORKERS, f"parallel_map(..., processes={WORKERS})")
    assert all(met for _, met in results) and len(set(pids)) == WORKERS, (
        f"{WORKERS} items that wait for each other did not meet within {MEETING_SECONDS} s "
        f"(results {results}): they never ran at the same time in {WORKERS} worker processes"
    )


@pytest.mark.clause(4)
def test_chunksize_hands_each_worker_a_run_of_consecutive_items(
    tmp_path: Path, pool_sizes: list[int]
) -> None:
    # Items 0, 4 and 8 wait for each other. With chunks of 4, each worker takes one run of four
    # items (0-3, 4-7, 8-11). Handed out one at a time, the worker stuck on item 0 leaves
    # items 1, 2, 3 to the others, so the first four are computed by different processes.
    tasks = [(i, WORKERS if i % 4 == 0 else 0, str(tmp_path)) for i in range(12)]
    results = parallel_map(meet, tasks, processes=WORKERS, chunksize=4)
    pids = [pid for pid, _ in results]
    assert_one_pool_of(pool_sizes, WORKERS, f"parallel_map(..., processes={WORKERS})")
    assert os.getpid() not in pids, (
        "the function ran in the calling process: it must run in the pool's worker processes"
    )
    runs = [set(pids[start : start + 4]) for start in (0, 4, 8)]
    one_worker_per_run = all(len(run) == 1 for run in runs) and len(set().union(*runs)) == 3
    assert one_worker_per_run, (
        f"with chunksize=4, items 0-3, 4-7 and 8-11 should each be computed by one worker, "
        f"but the worker pids per item were {pids}: the items were not handed out in runs of "
        f"4; pass chunksize= to pool.map"
    )


# -- in_completion_order, starmap_all ---------------------------------------------------------


@pytest.mark.clause(1, 5)
def test_in_completion_order_returns_quick_results_before_a_slow_one(
    pool_sizes: list[int],
) -> None:
    items = [("slow", SLOW_SECONDS), ("quick-1", 0.0), ("quick-2", 0.0), ("quick-3", 0.0)]
    results = in_completion_order(echo_after, items, processes=WORKERS)
    assert sorted(results) == ["quick-1", "quick-2", "quick-3", "slow"], (
        f"in_completion_order returned {results}: every item must give exactly one result"
    )
    assert results[0] != "slow", (
        f"the slow item (first in the input, {SLOW_SECONDS} s) came back first: results were "
        f"returned in input order, so the quick ones waited for it; use imap_unordered, not "
        f"map or imap"
    )
    assert_one_pool_of(pool_sizes, WORKERS, f"in_completion_order(..., processes={WORKERS})")
    assert_no_worker_left("in_completion_order returned")


@pytest.mark.clause(1, 6)
def test_starmap_all_unpacks_each_tuple_into_arguments(pool_sizes: list[int]) -> None:
    try:
        results = starmap_all(power, [(2, 3), (3, 2), (10, 0)], processes=WORKERS)
    except TypeError as error:
        pytest.fail(
            f"power received each tuple as one argument ({error}): starmap unpacks "
            f"(2, 3) into power(2, 3), map would call power((2, 3))"
        )
    assert results == [8, 9, 1], f"starmap_all(power, ...) returned {results}, expected [8, 9, 1]"
    assert_one_pool_of(pool_sizes, WORKERS, f"starmap_all(..., processes={WORKERS})")


# -- collect_async ----------------------------------------------------------------------------


@pytest.mark.clause(1, 7, 8)
def test_collect_async_hands_results_to_callback_and_exceptions_to_error_callback(
    pool_sizes: list[int],
) -> None:
    tasks = [(6, 3, TASK_SECONDS), (1, 0, TASK_SECONDS), (8, 2, TASK_SECONDS)]
    results, errors = collect_async(divide, tasks, processes=WORKERS)
    # Copies taken the moment it returned: callbacks that run later do not count.
    results, errors = list(results), list(errors)
    if not results and len(errors) == 1:
        pytest.fail(
            f"collect_async collected no result and the one error {errors[0]!r}: 6 / 3 and 8 / 2 "
            f"failed together with 1 / 0, so the tuples went out as one task (starmap_async or "
            f"map_async). Submit one task per tuple: pool.apply_async(function, arguments, ...)."
        )
    assert sorted(results) == [2.0, 4.0], (
        f"when collect_async returned it had collected the results {results}, expected 2.0 and "
        f"4.0 (in any order): it returned before its tasks ended, or stopped the pool first. "
        f"Call close() and join() before leaving the with-block, which terminates the workers."
    )
    assert len(errors) == 1 and isinstance(errors[0], ZeroDivisionError), (
        f"collected errors {errors!r}, expected the one ZeroDivisionError of 1 / 0: a task that "
        f"raises never calls callback=; pass error_callback= or its exception is lost"
    )
    assert_one_pool_of(pool_sizes, WORKERS, f"collect_async(..., processes={WORKERS})")
    assert_no_worker_left("collect_async returned")


# -- checked_map ------------------------------------------------------------------------------


@pytest.mark.clause(1, 9)
def test_checked_map_raises_the_workers_exception_in_the_caller(pool_sizes: list[int]) -> None:
    _must_raise(
        ZeroDivisionError,
        lambda: checked_map(reciprocal, [1, 2, 0, 4]),
        "reciprocal(0) raised ZeroDivisionError in a worker, and the caller never heard of it; "
        "AsyncResult.get() re-raises a worker's exception, a callback never sees it",
    )
    assert_one_pool_of(pool_sizes, 2, "checked_map(reciprocal, [1, 2, 0, 4]), with the default 2,")
    assert_no_worker_left("checked_map raised")


@pytest.mark.clause(1, 10)
def test_checked_map_gives_up_after_its_timeout() -> None:
    started = time.monotonic()
    _must_raise(
        multiprocessing.TimeoutError,
        lambda: checked_map(echo_after, [("late", 2.0)], timeout=0.3),
        "the only item takes 2 s and the timeout is 0.3 s; pass the timeout to get()",
    )
    waited = time.monotonic() - started
    assert waited < 1.9, (
        f"checked_map raised only after {waited:.1f} s: it waited for the 2 s item instead "
        f"of giving up after 0.3 s"
    )
    assert_no_worker_left("checked_map raised TimeoutError")


@pytest.mark.clause(10)
def test_checked_map_s_timeout_bounds_the_whole_call_not_each_item() -> None:
    # Six items of 0.25 s on three workers: all in after about 0.5 s, though no single result
    # is ever more than 0.25 s behind the one before. The timeout, 0.4 s, is for the whole call.
    items = [(f"item-{i}", 0.25) for i in range(6)]
    started = time.monotonic()
    try:
        returned = checked_map(echo_after, items, processes=WORKERS, timeout=0.4)
    except multiprocessing.TimeoutError:
        return
    waited = time.monotonic() - started
    pytest.fail(
        f"checked_map(..., timeout=0.4) returned {returned} after {waited:.2f} s instead of "
        f"raising multiprocessing.TimeoutError: the timeout was applied to each item (e.g. "
        f"imap's next(timeout)). It bounds the whole call: map_async(...).get(timeout)."
    )


# -- Service ----------------------------------------------------------------------------------


def _close(service: Service) -> None:
    __tracebackhide__ = True
    try:
        service.close()
    except ValueError as error:
        pytest.fail(
            f"close() raised ValueError ({error}): Pool.join() refuses to wait for workers "
            f"that were never told to stop. Call self.pool.close() first, then self.pool.join()."
        )


@pytest.mark.clause(11, 12)
def test_closing_the_service_lets_submitted_work_finish_and_ends_every_worker(
    service: Service,
) -> None:
    pending = service.submit(divide, 9, 3, TASK_SECONDS)
    _close(service)
    finished = pending.ready()
    alive = multiprocessing.active_children()
    assert finished, (
        "close() returned while a submitted task was still unfinished (or it was killed): "
        "close() lets queued work run to its end, terminate() throws it away, and join() "
        "waits for it"
    )
    assert pending.get(0) == 3.0, "the submitted divide(9, 3) must still give 3.0 after close()"
    assert not alive, f"{len(alive)} worker(s) still alive after close(): join() the pool"


@pytest.mark.clause(13)
def test_a_closed_service_refuses_new_work_with_value_error(service: Service) -> None:
    _close(service)
    _must_raise(
        ValueError,
        lambda: service.submit(square, 3),
        "a closed pool must refuse new work; close() the pool rather than just marking it",
    )
