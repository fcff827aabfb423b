"""Kata `threads`: starting, joining, naming and subclassing threads."""

from __future__ import annotations

import threading
import time

from threads import Countdown, run_all, run_named, start_daemon

# How long a thread may take to reach a meeting point. Starting a thread takes well under a
# millisecond, so two seconds only ever runs out when the threads do not run at the same time,
# and then it always runs out: the check cannot flake either way.
MEETING_SECONDS = 2.0
# How long each worker in the join test stays busy; any implementation that returns before its
# workers finish returns long before this.
BUSY_SECONDS = 0.2


def test_every_call_runs_once_and_results_keep_the_order_of_the_arguments() -> None:
    results = run_all(lambda a, b: a * b, [(1, 2), (3, 4), (5, 6), (7, 8)])
    assert results == [2, 12, 30, 56], (
        f"run_all returned {results}; result i must be function(*argument_lists[i])"
    )


def test_all_threads_run_at_the_same_time() -> None:
    parties = 3
    barrier = threading.Barrier(parties, timeout=MEETING_SECONDS)

    def meet(index: int) -> str:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return "alone"
        return "met"

    results = run_all(meet, [(i,) for i in range(parties)])
    assert results == ["met"] * parties, (
        f"the {parties} calls never ran at the same time (results: {results}): each must run in "
        f"its own thread, and all threads must be started before any is joined. Passing "
        f"target=f(x) calls f in your own thread, and a join() inside the start loop makes "
        f"each thread wait for the previous one."
    )


def test_results_are_placed_by_position_not_by_finishing_order() -> None:
    count = 4
    finished = [threading.Event() for _ in range(count)]

    def finish_after_next(index: int) -> int:
        # Thread i waits for thread i+1, so the threads finish in reverse order.
        if index + 1 < count:
            finished[index + 1].wait(MEETING_SECONDS)
        finished[index].set()
        return index

    results = run_all(finish_after_next, [(i,) for i in range(count)])
    assert results == list(range(count)), (
        f"got {results}: the threads finished last-first, so results collected in finishing "
        f"order come out reversed. Store each result at its argument's index."
    )


def test_run_named_gives_each_thread_its_name_and_runs_outside_the_caller() -> None:
    seen: list[tuple[str, int]] = []

    def record() -> None:
        seen.append((threading.current_thread().name, threading.get_ident()))

    names = ["reader", "writer", "logger"]
    run_named(names, record)
    assert sorted(name for name, _ in seen) == sorted(names), (
        f"the threads ran under the names {[n for n, _ in seen]}, not {names}: pass name= to Thread"
    )
    caller = threading.get_ident()
    assert all(ident != caller for _, ident in seen), "function() ran in the caller's thread, not in new threads"


def test_run_named_returns_only_after_every_thread_has_finished() -> None:
    workers: list[threading.Thread] = []

    def busy() -> None:
        workers.append(threading.current_thread())
        threading.Event().wait(BUSY_SECONDS)

    run_named(["a", "b", "c"], busy)
    still_running = [w.name for w in workers if w.is_alive()]
    assert len(workers) == 3 and not still_running, (
        f"run_named returned while threads {still_running or '(not yet started)'} were still "
        f"working: join every thread before returning"
    )


def test_countdown_counts_down_inside_its_own_thread() -> None:
    countdown = Countdown(3)
    assert countdown.counted == [], "Countdown must not count before start() is called"
    countdown.start()
    countdown.join(MEETING_SECONDS)
    assert countdown.counted == [3, 2, 1], f"counted {countdown.counted}, expected [3, 2, 1]"
    assert countdown.ran_in not in (None, threading.get_ident()), (
        "the counting ran in the caller's thread: override run(), which start() calls in the "
        "new thread, and record threading.get_ident() there"
    )


def test_start_daemon_returns_a_running_daemon_thread_without_waiting() -> None:
    release = threading.Event()
    started = time.monotonic()
    thread = start_daemon(lambda: release.wait(MEETING_SECONDS))
    try:
        assert isinstance(thread, threading.Thread), "start_daemon must return the Thread it started"
        assert thread.daemon, "the thread is not a daemon: a daemon thread never keeps the program from exiting"
        assert thread.is_alive(), "start_daemon must start the thread and return while it still runs"
        assert time.monotonic() - started < MEETING_SECONDS, "start_daemon waited for the thread to finish"
    finally:
        release.set()
        if isinstance(thread, threading.Thread) and thread.ident is not None:
            thread.join(MEETING_SECONDS)
