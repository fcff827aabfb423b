"""Kata `threads`: starting, joining, naming and subclassing threads.

The tests marked `probe` run your functions under a controlled scheduler: the threads you start
run one at a time, switching between bytecode instructions of `threads.py` and at every
synchronization operation, across hundreds of interleavings chosen from a fixed seed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from threads import Countdown, run_all, run_named, start_daemon

from plugins.probe import Prober

# A generous bound for real threads to finish a trivial job: starting a thread takes well
# under a millisecond, so it only runs out when something is wrong.
MEETING_SECONDS = 2.0
# How long start_daemon's function keeps running unless the test lets it go earlier: long
# enough for the test to look at the thread, short enough that a wrong join costs little.
HOLD_SECONDS = 0.5


@contextmanager
def errors_in_threads() -> Iterator[list[BaseException]]:
    """Collect what threads started inside the block raise (still reported as before)."""
    caught: list[BaseException] = []
    previous = threading.excepthook

    def remember(arguments: threading.ExceptHookArgs) -> None:
        if arguments.exc_value is not None:
            caught.append(arguments.exc_value)
        previous(arguments)

    threading.excepthook = remember
    try:
        yield caught
    finally:
        threading.excepthook = previous


def _explain_results(returned: object, expected: list[Any]) -> str:
    """Why `run_all` returned `returned` instead of `expected`, in the kata's words."""
    if not isinstance(returned, list):
        return f"run_all returned {returned!r}, not a list of results"
    if len(returned) != len(expected):
        return (
            f"run_all returned {len(returned)} results {returned} for {len(expected)} entries: "
            f"one result per entry of argument_lists, each stored at that entry's index"
        )
    if sorted(map(repr, returned)) == sorted(map(repr, expected)):
        return (
            f"run_all returned {returned} instead of {expected}: the threads finished in another "
            f"order, and the results were collected in finishing order (append). Store each "
            f"result at its entry's index: results[index] = ..."
        )
    empty = [i for i, value in enumerate(returned) if value is None]
    if empty:
        return (
            f"run_all returned {returned} instead of {expected}: the slots {empty} were still "
            f"None. Either run_all returned before those threads had stored their results "
            f"(join every thread before returning), or the threads all wrote to one slot (a "
            f"lambda that reads the loop variable when it runs, not when it was made: pass the "
            f"index through args=)"
        )
    return f"run_all returned {returned} instead of {expected}: result i must be function(*argument_lists[i])"


# -- run_all ---------------------------------------------------------------------------------


@pytest.mark.clause(1, 4)
def test_run_all_calls_the_function_once_per_entry_with_the_entry_unpacked() -> None:
    calls: list[tuple[int, int]] = []
    guard = threading.Lock()

    def multiply(a: int, b: int) -> int:
        with guard:
            calls.append((a, b))
        return a * b

    entries = [(1, 2), (3, 4), (5, 6), (7, 8)]
    with errors_in_threads() as raised:
        results = run_all(multiply, entries)
    if raised:
        error = raised[0]
        pytest.fail(
            f"a call raised {type(error).__name__}: {error} in its thread. The function takes "
            f"the entry's items as separate arguments: call function(*arguments), not "
            f"function(arguments)"
        )
    assert sorted(calls) == entries, (
        f"the function was called with {sorted(calls)}, not once with each of {entries}"
        + (
            ": every thread used the same entry. A lambda (or inner function) that reads the "
            "loop variables when the thread runs sees their last values; pass them to the "
            "thread through args= instead"
            if len(calls) > 1 and len(set(calls)) == 1
            else ""
        )
    )
    assert results == [2, 12, 30, 56], _explain_results(results, [2, 12, 30, 56])


@pytest.mark.clause(1, 4)
def test_run_all_of_no_entries_calls_nothing_and_returns_an_empty_list() -> None:
    def never(*_arguments: object) -> None:
        raise AssertionError("called with no entry")

    with errors_in_threads() as raised:
        results = run_all(never, [])
    assert not raised and results == [], (
        f"run_all(function, []) returned {results!r} (calls raised: {raised}): no entry means "
        f"no call and the empty list"
    )


@pytest.mark.clause(2)
def test_run_all_makes_every_call_in_a_new_thread_not_in_the_callers() -> None:
    caller = threading.get_ident()
    idents = run_all(threading.get_ident, [(), (), ()])
    in_caller = [i for i, ident in enumerate(idents) if ident == caller]
    assert not in_caller, (
        f"the calls {in_caller} ran in the caller's own thread: Thread(target=f(x)) calls f at "
        f"once, right there, and hands Thread its return value. Pass the function itself: "
        f"Thread(target=f, args=(x,))"
    )


@pytest.mark.probe
@pytest.mark.clause(3)
def test_run_all_runs_all_its_threads_at_the_same_time(probe: Prober) -> None:
    parties = 3

    def call_all_at_a_barrier(barrier: threading.Barrier) -> list[Any]:
        # Each call waits until all three calls have reached the barrier.
        return list(run_all(lambda index: barrier.wait() >= 0, [(i,) for i in range(parties)]))

    def all_met(barrier: threading.Barrier, results: list[Any]) -> None:
        assert results[0] == [True] * parties, _explain_results(results[0], [True] * parties)

    probe.explore(
        lambda: threading.Barrier(parties),
        [call_all_at_a_barrier],
        all_met,
        explain={
            "deadlock": (
                f"the {parties} calls of run_all never all ran at the same time: each call waits "
                f"at a barrier of {parties} (the test's barrier, and its party count is right) "
                f"until all {parties} are there, and only one ever got there. Each call must run "
                f"in its own thread, and every thread must be started before any is joined: a "
                f"join() inside the start loop waits for each thread before starting the next, "
                f"and target=f(x) calls f in your own thread."
            )
        },
    )


@pytest.mark.probe
@pytest.mark.clause(4)
def test_results_keep_the_order_of_the_arguments_whatever_order_threads_finish_in(
    probe: Prober,
) -> None:
    def tens(_state: None) -> list[Any]:
        # A copy taken the moment run_all returns: what the caller sees then is what counts.
        return list(run_all(lambda index: index * 10, [(i,) for i in range(3)]))

    def in_argument_order(_state: None, results: list[Any]) -> None:
        assert results[0] == [0, 10, 20], _explain_results(results[0], [0, 10, 20])

    probe.explore(lambda: None, [tens], in_argument_order)


@pytest.mark.probe
@pytest.mark.clause(5)
def test_run_all_returns_only_after_every_call_has_finished(probe: Prober) -> None:
    def setup() -> dict[str, Any]:
        return {"finished": 0, "lock": threading.Lock()}

    def run_three(state: dict[str, Any]) -> tuple[int, list[Any]]:
        def square(x: int) -> int:
            with state["lock"]:
                state["finished"] += 1
            return x * x

        results = run_all(square, [(1,), (2,), (3,)])
        # Both read the moment run_all returns, while any thread it left behind still runs.
        return int(state["finished"]), list(results)

    def all_finished(state: dict[str, Any], results: list[Any]) -> None:
        finished, returned = results[0]
        assert finished == 3 and returned == [1, 4, 9], (
            f"run_all returned {returned} when only {finished} of its 3 calls had finished: "
            f"join every thread before returning the results"
        )

    probe.explore(setup, [run_three], all_finished)


# -- run_named -------------------------------------------------------------------------------


@pytest.mark.clause(6)
def test_run_named_runs_the_function_in_one_new_thread_per_name_carrying_that_name() -> None:
    seen: list[tuple[str, int]] = []
    guard = threading.Lock()

    def record() -> None:
        with guard:
            seen.append((threading.current_thread().name, threading.get_ident()))

    names = ["reader", "writer", "logger"]
    run_named(names, record)
    caller = threading.get_ident()
    in_caller = [name for name, ident in seen if ident == caller]
    assert not in_caller, (
        "function() ran in the caller's thread, not in new threads: Thread(target=function()) "
        "calls it at once; pass the function itself, target=function"
    )
    assert sorted(name for name, _ in seen) == sorted(names), (
        f"the threads ran under the names {[n for n, _ in seen]}, not once under each of "
        f"{names}: pass name= to Thread"
    )


@pytest.mark.probe
@pytest.mark.clause(7)
def test_run_named_runs_all_its_threads_at_the_same_time(probe: Prober) -> None:
    names = ["reader", "writer", "logger"]

    def meet(barrier: threading.Barrier) -> None:
        def wait_for_the_others() -> None:
            barrier.wait()

        run_named(names, wait_for_the_others)

    probe.explore(
        lambda: threading.Barrier(len(names)),
        [meet],
        explain={
            "deadlock": (
                f"the {len(names)} threads of run_named never all ran at the same time: each "
                f"waits at a barrier of {len(names)} (the test's barrier, and its party count is "
                f"right) until all are there, and only one ever got there. Start every thread "
                f"first, then join them all: a join() inside the start loop waits for each "
                f"thread before starting the next."
            )
        },
    )


@pytest.mark.probe
@pytest.mark.clause(8)
def test_run_named_returns_none_only_after_every_thread_has_finished(probe: Prober) -> None:
    def setup() -> dict[str, Any]:
        return {"finished": 0, "lock": threading.Lock()}

    def run_two(state: dict[str, Any]) -> tuple[int, object]:
        def finish() -> None:
            with state["lock"]:
                state["finished"] += 1

        returned = run_named(["a", "b"], finish)
        return int(state["finished"]), returned

    def both_finished(state: dict[str, Any], results: list[Any]) -> None:
        finished, returned = results[0]
        assert finished == 2, (
            f"run_named returned when only {finished} of its 2 threads had finished: join "
            f"every thread before returning"
        )
        assert returned is None, f"run_named returned {returned!r}; it returns nothing (None)"

    probe.explore(setup, [run_two], both_finished)


# -- Countdown -------------------------------------------------------------------------------


def _started_and_joined(countdown: Countdown) -> None:
    __tracebackhide__ = True
    countdown.start()
    countdown.join(MEETING_SECONDS)
    assert not countdown.is_alive(), f"Countdown.run still ran after {MEETING_SECONDS} s"


@pytest.mark.clause(9)
def test_countdown_counts_from_its_start_down_to_one() -> None:
    countdown = Countdown(4)
    assert countdown.counted == [], "Countdown must not count before start() is called"
    _started_and_joined(countdown)
    counted = countdown.counted
    assert counted == [4, 3, 2, 1], f"Countdown(4) counted {counted}, not [4, 3, 2, 1]: " + (
        "it counted 0 too; stop at 1 (range(start, 0, -1))"
        if counted[-1:] == [0]
        else "it stopped before 1; range's end is excluded, so count with range(start, 0, -1)"
        if counted[:1] == [4]
        else "count from start_at down, one number at a time"
    )


@pytest.mark.clause(10)
def test_countdown_records_the_identity_of_the_new_thread_it_ran_in() -> None:
    countdown = Countdown(2)
    _started_and_joined(countdown)
    ran_in = countdown.ran_in
    assert not callable(ran_in), (
        "ran_in holds the function threading.get_ident itself: call it, threading.get_ident()"
    )
    assert ran_in != threading.get_ident(), (
        "ran_in is the caller's identity: record threading.get_ident() inside run(), which "
        "start() calls in the new thread, not in __init__ or from the main thread"
    )
    assert ran_in == countdown.ident, (
        f"ran_in is {ran_in!r}, not the identity of the Countdown's own thread "
        f"({countdown.ident}): record threading.get_ident() inside run()"
    )


# -- start_daemon ----------------------------------------------------------------------------


def _start_daemon(function: Callable[[], object]) -> threading.Thread:
    """start_daemon(function), with Python's complaint about a late daemon flag explained."""
    __tracebackhide__ = True
    refused: RuntimeError | None = None
    try:
        thread = start_daemon(function)
    except RuntimeError as error:
        if "daemon" not in str(error):
            raise
        refused = error
    if refused is not None:
        pytest.fail(
            f"start_daemon raised RuntimeError: {refused}. Python fixes a thread's daemon flag "
            f"when it starts: create it with Thread(..., daemon=True), then start() it"
        )
    assert isinstance(thread, threading.Thread), (
        f"start_daemon returned {thread!r}: it must return the Thread it started"
    )
    return thread


@pytest.mark.clause(11)
def test_start_daemon_runs_the_function_in_a_new_daemon_thread_and_returns_it() -> None:
    release = threading.Event()
    ran_in: list[int] = []

    def work() -> None:
        ran_in.append(threading.get_ident())
        release.wait(HOLD_SECONDS)

    try:
        thread = _start_daemon(work)
    finally:
        release.set()
    assert thread.ident is not None, (
        "start_daemon returned a thread that was never started: call its start()"
    )
    thread.join(MEETING_SECONDS)
    assert ran_in, "the thread never called function(): pass it as target=function"
    in_caller = ran_in[0] == threading.get_ident()
    assert not in_caller, (
        "function() ran in the caller's thread: Thread(target=function()) calls it at once; "
        "pass the function itself, target=function"
    )
    assert thread.daemon, (
        "the thread is not a daemon: create it with daemon=True, so it never keeps the program "
        "from exiting"
    )


@pytest.mark.clause(12)
def test_start_daemon_returns_while_the_function_still_runs() -> None:
    release, finished = threading.Event(), threading.Event()

    def work() -> None:
        release.wait(HOLD_SECONDS)
        finished.set()

    try:
        thread = _start_daemon(work)
        # Read the moment start_daemon returns, before the test lets the function finish.
        done_at_return = finished.is_set()
    finally:
        release.set()
    if thread.ident is not None:  # a thread never started is the other test's failure
        thread.join(MEETING_SECONDS)
    assert not done_at_return, (
        "start_daemon returned only after function() had finished: it must start the thread "
        "and return it at once. Never join() it (nobody waits for a daemon), and pass "
        "target=function, not target=function(), which runs it right there in the caller"
    )
