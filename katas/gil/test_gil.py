"""Kata `gil`: threads speed up waiting, not pure-Python computing."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from gil import count_down, in_threads, serially, speedup, timed, wait_for_io

# How long threads may take to reach a meeting point: starting a thread takes well under a
# millisecond, so this only runs out when the threads do not run at the same time (and then
# it always does).
MEETING_SECONDS = 1.0
# Four waits of a tenth of a second: one after another they take at least 0.4 s, which no
# machine can shorten. Overlapped in threads they take a little over 0.1 s; 0.3 s leaves
# 0.2 s for starting four threads and for the scheduler to wake them on a busy machine.
WAITS, WAIT_SECONDS, OVERLAPPED_BOUND = 4, 0.1, 0.3
# The speedup of blocking calls: the serial run takes at least 4 x 0.05 s and the threaded
# one little more than 0.05 s, about 4x; 2x leaves room for noise. The best of TRIES counts.
SHORT_WAIT, IO_SPEEDUP, TRIES = 0.05, 2.0, 3
# Pure-Python counting (about 10-30 ms per task here). With the GIL only one thread computes
# at a time, so threads take about as long as the serial run, often longer. A machine shared
# with other work makes single measurements noisy in both directions, so the least speedup
# of CPU_TRIES counts, and the bound is loose: threads must take at least 70% of the serial
# time (a speedup of at most 1/0.7); real parallelism on 2 cores would give about 2.
COUNT, CPU_TRIES, CPU_RATIO = 100_000, 5, 0.7
# How long the last task of the ordering test works before it finishes: long enough that an
# in_threads that does not join returns well before the threads have finished.
LAST_TASK_SECONDS = 0.05


def _speedup(tasks: list[Callable[[], Any]]) -> float:
    """speedup(tasks), with the classic mistake of handing timed a result explained."""
    __tracebackhide__ = True
    try:
        return speedup(tasks)
    except TypeError as error:
        if "not callable" not in str(error):
            raise
        problem = str(error)
    pytest.fail(
        f"speedup raised TypeError: {problem}. timed takes a function to call, and "
        f"timed(serially(tasks)) hands it the *result* of serially(tasks) instead (after "
        f"running the tasks untimed). Wrap the call: timed(lambda: serially(tasks))."
    )


@pytest.mark.clause(2)
def test_serially_calls_the_tasks_in_order_in_the_calling_thread() -> None:
    calls: list[tuple[int, int]] = []

    def task(number: int) -> Callable[[], int]:
        def body() -> int:
            calls.append((number, threading.get_ident()))
            return number * 10

        return body

    results = serially([task(1), task(2), task(3)])
    ran = len(calls)  # at the moment serially returned
    assert isinstance(results, list), (
        f"serially returned {results!r}, not a list, and {ran} of the 3 tasks had run when it "
        f"returned: a map() or a generator is lazy, it runs nothing until someone iterates "
        f"it, so timing serially() would time nothing. Return a list: [task() for task in "
        f"tasks]."
    )
    assert results == [10, 20, 30], f"serially returned {results}; result i must be tasks[i]()"
    me = threading.get_ident()
    assert calls == [(1, me), (2, me), (3, me)], (
        "serially must call the tasks one after another, in order, in the calling thread"
    )


@pytest.mark.clause(5)
def test_in_threads_puts_each_result_at_its_tasks_position() -> None:
    count = 4
    finished = [threading.Event() for _ in range(count)]

    def finish_after_next(index: int) -> Callable[[], int]:
        def body() -> int:
            # Task i waits for task i+1, so the threads finish last-first.
            if index + 1 < count:
                finished[index + 1].wait(MEETING_SECONDS)
            else:
                time.sleep(LAST_TASK_SECONDS)
            finished[index].set()
            return index

        return body

    returned = in_threads([finish_after_next(i) for i in range(count)])
    results = list(returned)  # as it stood the moment in_threads returned
    all_done = all(event.is_set() for event in finished)
    for event in finished:  # let any thread still running finish before the next test
        event.set()
    assert all_done, (
        f"in_threads returned {results} while some of its threads were still working: join "
        f"every thread before returning, or the results are read before they exist"
    )
    assert results == list(range(count)), (
        f"got {results}: the threads finished last-first, so results collected as they "
        f"finish come out reversed. Store each result at its task's index "
        f"(results = [None] * len(tasks); results[i] = task())."
    )


@pytest.mark.clause(3)
def test_in_threads_runs_every_task_in_a_new_thread() -> None:
    # Thread objects, not identities: the system may reuse the identity of a finished thread.
    ran_in: list[threading.Thread] = []
    in_threads([lambda: ran_in.append(threading.current_thread()) for _ in range(3)])
    caller = threading.current_thread()
    distinct = len({id(thread) for thread in ran_in})
    assert distinct == 3 and caller not in ran_in, (
        f"the 3 tasks ran in {distinct} distinct thread(s), "
        f"{'including' if caller in ran_in else 'not counting'} the caller's: each task must "
        f"run in a thread of its own. target=task() calls the task right away, in your "
        f"thread (the bug of B1 ch.1's multithreading_test.py): pass the function itself."
    )


@pytest.mark.clause(4)
def test_in_threads_runs_all_tasks_at_the_same_time() -> None:
    parties = 3
    barrier = threading.Barrier(parties, timeout=MEETING_SECONDS)

    def meet() -> str:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return "alone"
        return "met"

    results = list(in_threads([meet] * parties))
    assert None not in results, (
        f"in_threads returned {results} before all its threads had finished: join every "
        f"thread before returning"
    )
    assert results == ["met"] * parties, (
        f"the {parties} tasks never ran at the same time (results: {results}): start every "
        f"thread before joining any; a join() inside the start loop makes each thread wait "
        f"for the previous one, and target=task() runs each task in your own thread."
    )


@pytest.mark.clause(1)
def test_timed_calls_the_function_exactly_once() -> None:
    calls: list[str] = []
    timed(lambda: calls.append("called"))
    assert len(calls) == 1, (
        f"timed(function) called the function {len(calls)} times: it must call it exactly "
        f"once. Repeating a measurement is the caller's business (the tests do it); inside "
        f"speedup, a timed that repeats would run every task several times."
    )


@pytest.mark.clause(1)
def test_timed_counts_the_time_a_call_spends_waiting() -> None:
    seconds = timed(lambda: wait_for_io(SHORT_WAIT))
    assert isinstance(seconds, float), (
        f"timed returned {seconds!r} ({type(seconds).__name__}): it must return seconds as a "
        f"float. time.perf_counter_ns() counts whole nanoseconds; use time.perf_counter()."
    )
    # A lower bound no correct clock can miss; the upper one only catches nonsense.
    assert SHORT_WAIT <= seconds < 1.0, (
        f"a call that sleeps {SHORT_WAIT} s was timed at {seconds:.4f} s: measure wall-clock "
        f"time with time.perf_counter(); time.process_time() counts only CPU time, and a "
        f"thread that waits uses none."
    )


@pytest.mark.timing
@pytest.mark.clause(1, 4)
def test_four_blocking_waits_overlap_in_threads() -> None:
    tasks = [lambda: wait_for_io(WAIT_SECONDS)] * WAITS
    threaded = timed(lambda: in_threads(tasks))
    serial = timed(lambda: serially(tasks))
    assert isinstance(threaded, float), (
        f"timed returned {threaded!r} ({type(threaded).__name__}), not seconds as a float: "
        f"see test_timed_counts_the_time_a_call_spends_waiting"
    )
    assert serial >= WAITS * WAIT_SECONDS, (
        f"{WAITS} waits of {WAIT_SECONDS} s one after another were timed at {serial:.3f} s: "
        f"they cannot take less than {WAITS * WAIT_SECONDS:.1f} s; check timed and serially"
    )
    assert threaded < OVERLAPPED_BOUND, (
        f"{WAITS} waits of {WAIT_SECONDS} s in threads took {threaded:.3f} s (serially: "
        f"{serial:.3f} s): they did not overlap. A thread that waits releases the GIL, so "
        f"the other threads wait at the same time, if they were all started before any join()."
    )


@pytest.mark.timing
@pytest.mark.clause(6)
def test_threads_speed_up_blocking_calls() -> None:
    tasks = [lambda: wait_for_io(SHORT_WAIT)] * WAITS
    best = max(_speedup(tasks) for _ in range(TRIES))
    assert best >= IO_SPEEDUP, (
        f"speedup() of {WAITS} blocking waits was at best {best:.2f} in {TRIES} tries; they "
        f"overlap in threads, so it should be close to {WAITS}. speedup is the serial time "
        f"divided by the threaded time (above 1 when threads help)."
    )


def _free_threaded() -> bool:
    check: Callable[[], bool] | None = getattr(sys, "_is_gil_enabled", None)
    return check is not None and not check()


@pytest.mark.timing
@pytest.mark.clause(6)
def test_threads_do_not_speed_up_pure_python_counting() -> None:
    if _free_threaded():
        pytest.skip(
            "this Python runs without a GIL (free-threaded build): threads do compute "
            "in parallel here, which is what this test denies"
        )
    tasks: list[Callable[[], Any]] = [lambda: count_down(COUNT)] * WAITS
    least = min(_speedup(tasks) for _ in range(CPU_TRIES))
    assert least <= 1 / CPU_RATIO, (
        f"counting in {WAITS} threads was at least {least:.2f}x faster than serially, in "
        f"every one of {CPU_TRIES} tries. With the GIL only one thread runs Python code at a "
        f"time, so threads cannot speed this up; was the threaded run really doing the work?"
    )
