"""Kata `threads`: starting, joining, naming and subclassing threads."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from threads import Countdown, run_all, run_named, start_daemon

from plugins.probe import Prober

# A generous bound for real threads to finish a trivial job: starting a thread takes well
# under a millisecond, so it only runs out when something is wrong.
MEETING_SECONDS = 2.0


def test_every_call_runs_once_and_results_keep_the_order_of_the_arguments() -> None:
    results = run_all(lambda a, b: a * b, [(1, 2), (3, 4), (5, 6), (7, 8)])
    assert results == [2, 12, 30, 56], (
        f"run_all returned {results}; result i must be function(*argument_lists[i])"
    )


@pytest.mark.probe
def test_all_threads_run_at_the_same_time(probe: Prober) -> None:
    parties = 3

    def call_all_at_a_barrier(barrier: threading.Barrier) -> list[Any]:
        # Each call waits until all three calls have reached the barrier.
        return run_all(lambda index: barrier.wait() >= 0, [(i,) for i in range(parties)])

    def all_met(barrier: threading.Barrier, results: list[Any]) -> None:
        assert results[0] == [True] * parties, f"run_all returned {results[0]}"

    probe.explore(
        lambda: threading.Barrier(parties),
        [call_all_at_a_barrier],
        all_met,
        explain={
            "deadlock": (
                f"the {parties} calls never all ran at the same time: each must run in its own "
                f"thread, and every thread must be started before any is joined (target=f(x) calls "
                f"f in your own thread; a join() inside the start loop waits for each thread before "
                f"starting the next)."
            )
        },
    )


@pytest.mark.probe
def test_results_keep_the_order_of_the_arguments_whatever_order_threads_finish_in(
    probe: Prober,
) -> None:
    def tens(_state: None) -> list[Any]:
        return run_all(lambda index: index * 10, [(i,) for i in range(3)])

    def in_argument_order(_state: None, results: list[Any]) -> None:
        assert results[0] == [0, 10, 20], (
            f"got {results[0]} instead of [0, 10, 20]: the threads finished in another order, "
            f"and results were collected in finishing order. Store each result at its "
            f"argument's index."
        )

    probe.explore(lambda: None, [tens], in_argument_order)


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
    assert all(ident != caller for _, ident in seen), (
        "function() ran in the caller's thread, not in new threads"
    )


@pytest.mark.probe
def test_run_named_returns_only_after_every_thread_has_finished(probe: Prober) -> None:
    def setup() -> dict[str, Any]:
        return {"finished": 0, "lock": threading.Lock()}

    def run_two(state: dict[str, Any]) -> int:
        def finish() -> None:
            with state["lock"]:
                state["finished"] += 1

        run_named(["a", "b"], finish)
        return int(state["finished"])

    def both_finished(state: dict[str, Any], results: list[Any]) -> None:
        assert results[0] == 2, (
            f"run_named returned when only {results[0]} of its 2 threads had finished: join "
            f"every thread before returning"
        )

    probe.explore(setup, [run_two], both_finished)


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
        assert isinstance(thread, threading.Thread), (
            "start_daemon must return the Thread it started"
        )
        assert thread.daemon, (
            "the thread is not a daemon: a daemon thread never keeps the program from exiting"
        )
        assert thread.is_alive(), (
            "start_daemon must start the thread and return while it still runs"
        )
        assert time.monotonic() - started < MEETING_SECONDS, (
            "start_daemon waited for the thread to finish"
        )
    finally:
        release.set()
        if isinstance(thread, threading.Thread) and thread.ident is not None:
            thread.join(MEETING_SECONDS)
