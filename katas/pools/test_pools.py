"""Kata `pools`: map, imap_unordered, starmap and apply_async on a pool of worker processes."""

from __future__ import annotations

import multiprocessing
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
def service() -> Iterator[Service]:
    started = Service(processes=2)
    try:
        yield started
    finally:
        started.pool.terminate()
        started.pool.join()


def _must_raise(error_type: type[BaseException], call: Callable[[], Any], explanation: str) -> None:
    __tracebackhide__ = True
    try:
        returned = call()
    except error_type:
        return
    pytest.fail(f"returned {returned!r} instead of raising {error_type.__name__}: {explanation}")


def test_parallel_map_returns_the_results_in_the_order_of_the_items() -> None:
    results = parallel_map(square, range(10))
    assert results == [n * n for n in range(10)], (
        f"parallel_map(square, range(10)) returned {results}; result i must be square(i)"
    )


def test_parallel_map_runs_the_items_in_worker_processes_at_the_same_time(tmp_path: Path) -> None:
    results = parallel_map(meet, [(0, True, str(tmp_path)), (1, True, str(tmp_path))], processes=2)
    pids = [pid for pid, _ in results]
    assert os.getpid() not in pids, (
        "the function ran in the calling process: it must run in the pool's worker processes "
        "(pool.map, not the built-in map or a list comprehension)"
    )
    assert all(met for _, met in results) and len(set(pids)) == 2, (
        f"two items that wait for each other did not meet within {MEETING_SECONDS} s "
        f"(results {results}): they never ran at the same time in two worker processes; "
        f"pass `processes` to Pool"
    )


def test_chunksize_hands_each_worker_a_run_of_consecutive_items(tmp_path: Path) -> None:
    # Items 0 and 4 wait for each other. With chunks of 4, one worker takes items 0-3 and the
    # other 4-7. Handed out one at a time, the worker stuck on item 0 leaves items 1-4 to the
    # other one, so items 0 and 1 are computed by different processes.
    tasks = [(i, i in (0, 4), str(tmp_path)) for i in range(8)]
    results = parallel_map(meet, tasks, processes=2, chunksize=4)
    pids = [pid for pid, _ in results]
    first, second = set(pids[:4]), set(pids[4:])
    assert len(first) == 1 and len(second) == 1 and first != second, (
        f"with chunksize=4, items 0-3 should be computed by one worker and items 4-7 by the "
        f"other, but the worker pids per item were {pids}: the items were not handed out in "
        f"runs of 4; pass chunksize= to pool.map"
    )


def test_in_completion_order_returns_quick_results_before_a_slow_one() -> None:
    items = [("slow", SLOW_SECONDS), ("quick-1", 0.0), ("quick-2", 0.0), ("quick-3", 0.0)]
    results = in_completion_order(echo_after, items, processes=2)
    assert sorted(results) == ["quick-1", "quick-2", "quick-3", "slow"], (
        f"in_completion_order returned {results}: every item must give exactly one result"
    )
    assert results[0] != "slow", (
        f"the slow item (first in the input, {SLOW_SECONDS} s) came back first: results were "
        f"returned in input order, so the quick ones waited for it; use imap_unordered, not "
        f"map or imap"
    )


def test_starmap_all_unpacks_each_tuple_into_arguments() -> None:
    try:
        results = starmap_all(power, [(2, 3), (3, 2), (10, 0)])
    except TypeError as error:
        pytest.fail(
            f"power received each tuple as one argument ({error}): starmap unpacks "
            f"(2, 3) into power(2, 3), map would call power((2, 3))"
        )
    assert results == [8, 9, 1], f"starmap_all(power, ...) returned {results}, expected [8, 9, 1]"


def test_collect_async_hands_results_to_callback_and_exceptions_to_error_callback() -> None:
    tasks = [(6, 3, TASK_SECONDS), (1, 0, TASK_SECONDS), (8, 2, TASK_SECONDS)]
    results, errors = collect_async(divide, tasks, processes=2)
    assert sorted(results) == [2.0, 4.0], (
        f"collected results {results}, expected 2.0 and 4.0 (in any order): if some are "
        f"missing, the pool was stopped before its tasks ended; call close() and join() "
        f"before leaving the with-block, which terminates the workers"
    )
    assert len(errors) == 1 and isinstance(errors[0], ZeroDivisionError), (
        f"collected errors {errors!r}, expected the one ZeroDivisionError of 1 / 0: a task that "
        f"raises never calls callback=; pass error_callback= or its exception is lost"
    )


def test_checked_map_raises_the_workers_exception_in_the_caller() -> None:
    _must_raise(
        ZeroDivisionError,
        lambda: checked_map(reciprocal, [1, 2, 0, 4]),
        "reciprocal(0) raised ZeroDivisionError in a worker, and the caller never heard of it; "
        "AsyncResult.get() re-raises a worker's exception, a callback never sees it",
    )


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


def test_closing_the_service_lets_submitted_work_finish_and_ends_every_worker(
    service: Service,
) -> None:
    pending = service.submit(divide, 9, 3, TASK_SECONDS)
    service.close()
    assert pending.ready(), (
        "close() returned while a submitted task was still unfinished (or it was killed): "
        "close() lets queued work run to its end, terminate() throws it away, and join() "
        "waits for it"
    )
    assert pending.get(0) == 3.0, "the submitted divide(9, 3) must still give 3.0 after close()"
    alive = multiprocessing.active_children()
    assert not alive, f"{len(alive)} worker(s) still alive after close(): join() the pool"


def test_a_closed_service_refuses_new_work_with_value_error(service: Service) -> None:
    service.close()
    _must_raise(
        ValueError,
        lambda: service.submit(square, 3),
        "a closed pool must refuse new work; close() the pool rather than just marking it",
    )
