"""Kata `processes`: child processes, their names, and results that come back through a queue."""

from __future__ import annotations

import multiprocessing
import multiprocessing.process
import os
import queue
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing.queues import Queue
from typing import TypeVar

import pytest
from processes import (
    meet,
    read_marker,
    run_in_processes,
    run_named,
    sleep_then_return,
    square,
    whose_pid,
)

from plugins import proctree

T = TypeVar("T")
# Most tests use `fork` (fast to start on Linux); the tests about spawn say so in their names.
FAST = "fork"
# Generous: a forked child answers in milliseconds and a spawned one in well under a second,
# so 8 s only runs out when something is really stuck, even on a busy machine.
TIMEOUT = 8.0


@pytest.fixture(autouse=True)
def children_before() -> Iterator[set[int]]:
    """The children that existed before the test; whatever the test leaves behind is killed."""
    yield set(proctree.own_children())
    for child in multiprocessing.active_children():
        child.kill()
        child.join(2.0)


def assert_no_children_left(before: set[int], call: str) -> None:
    """Right after `call` returned or raised: every child it started has ended and was joined."""
    __tracebackhide__ = True
    left = {pid: state for pid, state in proctree.own_children().items() if pid not in before}
    running = sorted(pid for pid, state in left.items() if state != "Z")
    unjoined = sorted(pid for pid, state in left.items() if state == "Z")
    assert not left, (
        f"{call} left {len(left)} child process(es) behind: {len(running)} still running "
        f"(pids {running}), {len(unjoined)} ended but never joined (pids {unjoined}: zombies "
        f"until someone waits for them). Join every child you start; in a `finally`, kill() "
        f"each child still alive and then join() it: kill() only sends the signal, join() "
        f"waits until the child is gone"
    )


def attempt(call: Callable[[], T], what: str) -> tuple[T | None, Exception | None]:
    """What `call()` returned, or the exception it raised, with the classic slips explained."""
    __tracebackhide__ = True
    try:
        return call(), None
    except NotImplementedError:
        raise
    except queue.Empty:
        pytest.fail(
            f"{what} raised queue.Empty: that is what Queue.get(timeout=...) raises when its "
            f"time is up. The contract says TimeoutError: catch queue.Empty and raise "
            f"TimeoutError (`raise TimeoutError(...) from None`)"
        )
    except RuntimeError as error:
        if "context" not in str(error):
            raise
        pytest.fail(
            f"{what} raised RuntimeError: {error}. The Queue and the Processes came from "
            f"different start methods: create both from the same "
            f"`multiprocessing.get_context(start_method)`"
        )
    except Exception as error:
        return None, error


@pytest.mark.clause(1, 4)
def test_every_input_is_computed_in_a_child_and_comes_back(children_before: set[int]) -> None:
    results = run_in_processes(square, [1, 2, 3, 4], start_method=FAST, timeout=TIMEOUT)
    assert results == [1, 4, 9, 16], (
        f"run_in_processes(square, [1, 2, 3, 4]) returned {results}. If you see None: a child "
        f"works on a copy of everything the parent gave it, so filling a list the parent passed "
        f"in changes only the child's copy; send each result back through a Queue"
    )
    assert_no_children_left(children_before, "run_in_processes")


@pytest.mark.clause(1)
def test_each_call_runs_in_a_child_process_of_its_own(children_before: set[int]) -> None:
    pids = run_in_processes(whose_pid, [None, None, None], start_method=FAST, timeout=TIMEOUT)
    assert os.getpid() not in pids, (
        f"the calls ran in processes {pids}, and {os.getpid()} is this very process: the work "
        f"ran in the parent, not in a child. Pass the function itself as target= and its "
        f"arguments as args=(...): target=f(x) calls f right here and hands Process its "
        f"return value"
    )
    assert len(set(pids)) == 3, f"3 calls ran in the processes {pids}: each needs its own"
    assert_no_children_left(children_before, "run_in_processes")


@pytest.mark.clause(3)
def test_results_keep_the_order_of_the_inputs_even_when_the_first_child_finishes_last(
    children_before: set[int],
) -> None:
    # The first child sleeps 0.3 s, the others not at all: they report first on any machine
    # that is not frozen for 0.3 s.
    inputs = [("first", 0.3), ("second", 0.0), ("third", 0.0)]
    results = run_in_processes(sleep_then_return, inputs, start_method=FAST, timeout=TIMEOUT)
    assert results == ["first", "second", "third"], (
        f"got {results}: the children reported last-first, so results taken in arrival order "
        f"come out shuffled. Send the input's index with each result and place it by index."
    )
    assert_no_children_left(children_before, "run_in_processes")


@pytest.mark.clause(2)
def test_all_children_run_at_the_same_time(children_before: set[int]) -> None:
    parties = 3
    barrier = multiprocessing.get_context(FAST).Barrier(parties)
    results = run_in_processes(meet, [barrier] * parties, start_method=FAST, timeout=TIMEOUT)
    assert results == ["met"] * parties, (
        f"the children never waited at the barrier together (results: {results}): start every "
        f"child first and only then wait for results and join; a join() inside the start loop "
        f"makes each child finish before the next one begins"
    )
    assert_no_children_left(children_before, "run_in_processes")


@pytest.mark.clause(6)
def test_a_lambda_or_nested_function_is_refused_with_type_error_before_any_process_starts(
    monkeypatch: pytest.MonkeyPatch, children_before: set[int]
) -> None:
    started: list[str] = []
    real_start = multiprocessing.process.BaseProcess.start

    def counted_start(self: multiprocessing.process.BaseProcess) -> None:
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", counted_start)

    def nested(number: int) -> int:
        return number + 1

    for function, kind in ((lambda number: number, "a lambda"), (nested, "a nested function")):
        _, error = attempt(
            lambda function=function: run_in_processes(  # type: ignore[misc]
                function, [1], start_method=FAST, timeout=TIMEOUT
            ),
            f"run_in_processes with {kind}",
        )
        assert error is not None, (
            f"{kind} was accepted. It only works under fork, where the child inherits the "
            f"parent's memory; under spawn or forkserver (macOS, Windows, Linux from Python "
            f"3.14) the child must import the function by module and name and cannot. Raise "
            f"TypeError when pickle.dumps(function) fails."
        )
        assert isinstance(error, TypeError), (
            f"{kind} was refused with {type(error).__name__}: {error}, not with TypeError. "
            f"pickle.dumps fails with PicklingError or AttributeError, depending on where the "
            f"function was defined and on the Python version: catch them all and raise "
            f"TypeError from the error"
        )
        assert not started, (
            f"{kind} was refused, but only after {len(started)} child process(es) had been "
            f"started: check the function first, before creating or starting any process"
        )
        assert_no_children_left(children_before, "run_in_processes")


@pytest.mark.clause(5)
def test_a_spawned_child_imports_the_module_afresh_and_misses_the_parents_later_changes(
    monkeypatch: pytest.MonkeyPatch, children_before: set[int]
) -> None:
    monkeypatch.setattr("processes.MARKER", "changed in the parent")
    marker, error = attempt(
        lambda: run_in_processes(read_marker, [None], start_method="spawn", timeout=TIMEOUT),
        "run_in_processes(start_method='spawn')",
    )
    assert error is None, f"run_in_processes(start_method='spawn') raised {error!r}"
    assert marker == ["as imported"], (
        f"the child read MARKER = {marker}, the parent's changed value: it was forked, not "
        f"spawned. Use multiprocessing.get_context(start_method) and create the Queue and "
        f"Processes from that context, so start_method='spawn' really starts a fresh interpreter"
    )
    assert_no_children_left(children_before, "run_in_processes")


@pytest.mark.clause(5)
def test_children_are_spawned_when_no_start_method_is_given(
    monkeypatch: pytest.MonkeyPatch, children_before: set[int]
) -> None:
    monkeypatch.setattr("processes.MARKER", "changed in the parent")
    marker = run_in_processes(read_marker, [None], timeout=TIMEOUT)
    assert marker == ["as imported"], (
        f"with no start_method given, the child read MARKER = {marker}, the parent's changed "
        f"value: it was forked. The default is start_method='spawn'"
    )
    assert_no_children_left(children_before, "run_in_processes")


@pytest.mark.clause(7, 8)
def test_a_child_that_overruns_the_timeout_is_stopped_and_timeout_error_is_raised(
    children_before: set[int],
) -> None:
    started = time.monotonic()
    _, error = attempt(
        lambda: run_in_processes(
            sleep_then_return, [("late", 2.0)], start_method=FAST, timeout=0.3
        ),
        "run_in_processes(timeout=0.3)",
    )
    elapsed = time.monotonic() - started
    assert isinstance(error, TimeoutError), (
        f"a child that needs 2 s, with timeout=0.3, made run_in_processes "
        f"{'raise ' + repr(error) if error else 'return'} after {elapsed:.1f} s, not raise "
        f"TimeoutError after 0.3 s: get() each result with a timeout (what is left of one "
        f"deadline), and raise TimeoutError when it runs out"
    )
    assert_no_children_left(children_before, "run_in_processes, giving up,")


@pytest.mark.clause(7)
def test_the_timeout_is_one_deadline_for_all_the_results_not_one_per_result(
    children_before: set[int],
) -> None:
    # The children report 0.1 s apart; the last one after 0.3 s, past the 0.25 s timeout. Had
    # each result a timeout of its own, 0.25 s would be plenty for every one of them.
    inputs = [("first", 0.1), ("second", 0.2), ("third", 0.3)]
    started = time.monotonic()
    _, error = attempt(
        lambda: run_in_processes(sleep_then_return, inputs, start_method=FAST, timeout=0.25),
        "run_in_processes(timeout=0.25)",
    )
    elapsed = time.monotonic() - started
    assert isinstance(error, TimeoutError), (
        f"three children that report after 0.1, 0.2 and 0.3 s, with timeout=0.25, made "
        f"run_in_processes {'raise ' + repr(error) if error else 'return'} after "
        f"{elapsed:.2f} s: the timeout was counted afresh for each result (or each join), so "
        f"the deadline kept moving. Compute `deadline = time.monotonic() + timeout` once, and "
        f"give every get() and join() what is left of it"
    )
    assert_no_children_left(children_before, "run_in_processes, giving up,")


@pytest.mark.clause(9, 10)
def test_each_named_process_sees_its_own_name(children_before: set[int]) -> None:
    names = ["reader", "writer", "logger"]
    identities = run_named(names, start_method=FAST, timeout=TIMEOUT)
    assert "MainProcess" not in identities, (
        "a report came from the parent itself (MainProcess), not from a child: send it from inside "
        "the function you pass as target=, which the child runs (target=f(q) calls f right here "
        "and gives Process its return value)"
    )
    assert sorted(identities) == sorted(names), (
        f"the children called themselves {sorted(identities)}, not {sorted(names)}: pass name= "
        f"to Process, and report multiprocessing.current_process().name from inside the child"
    )
    assert_no_children_left(children_before, "run_named")


@pytest.mark.clause(9, 10)
def test_spawned_named_children_each_run_in_a_process_of_their_own(
    children_before: set[int],
) -> None:
    identities = run_named(["left", "right"], start_method="spawn", timeout=TIMEOUT)
    pids = list(identities.values())
    assert os.getpid() not in pids, (
        f"a report came from this very process ({os.getpid()}), not from a child: send it from "
        f"inside the function you pass as target=, which the child runs (target=f(q) calls f "
        f"right here and gives Process its return value)"
    )
    assert len(set(pids)) == 2, f"two children reported the process ids {pids}: each needs its own"
    assert_no_children_left(children_before, "run_named")


def report_late(reports: Queue[tuple[str, int]]) -> None:
    """Stands in for `_send_identity` in a forked child: reports only after 2 s."""
    time.sleep(2.0)
    reports.put((multiprocessing.current_process().name, os.getpid()))


@pytest.mark.clause(11)
def test_run_named_gives_up_on_children_that_do_not_report_in_time(
    monkeypatch: pytest.MonkeyPatch, children_before: set[int]
) -> None:
    # A forked child runs the parent's current `_send_identity`: here one that takes 2 s.
    monkeypatch.setattr("processes._send_identity", report_late)
    started = time.monotonic()
    _, error = attempt(
        lambda: run_named(["slow", "slower"], start_method="fork", timeout=0.2),
        "run_named(timeout=0.2)",
    )
    elapsed = time.monotonic() - started
    assert isinstance(error, TimeoutError), (
        f"children that report only after 2 s, with timeout=0.2, made run_named "
        f"{'raise ' + repr(error) if error else 'return'} after {elapsed:.1f} s, not raise "
        f"TimeoutError after 0.2 s: get() each report with a timeout (what is left of one "
        f"deadline), and raise TimeoutError when it runs out"
    )
    assert_no_children_left(children_before, "run_named, giving up,")


@pytest.mark.clause(5)
def test_the_module_runs_as_a_script_thanks_to_its_main_guard() -> None:
    assert run_in_processes(square, [3], start_method=FAST, timeout=TIMEOUT) == [9], (
        "run_in_processes(square, [3]) must return [9] before the script can work"
    )
    # A fresh interpreter runs processes.py as __main__ and spawns children, which import the
    # same file again; 60 s is far above the second or two that takes.
    script = sys.modules[run_in_processes.__module__].__file__
    completed = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    printed = completed.stdout.strip().splitlines()
    last_lines = "\n".join(completed.stderr.strip().splitlines()[-6:])
    if "bootstrapping phase" in completed.stderr:
        last_lines = (
            "The spawned children failed with 'attempt to start a new process before the current "
            "process has finished its bootstrapping phase': they ran the process-starting code "
            "again while importing the file.\n" + last_lines
        )
    assert (completed.returncode, printed[-1:]) == (0, ["[4, 9]"]), (
        f"`python {script}` should print [4, 9] and exit 0; it exited "
        f"{completed.returncode} and printed {printed}. Keep process-starting code under "
        f"`if __name__ == '__main__':`: every spawned child imports the file again.\n{last_lines}"
    )
