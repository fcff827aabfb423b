"""Kata `processes`: child processes, their names, and results that come back through a queue."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from processes import (
    meet,
    read_marker,
    run_in_processes,
    run_named,
    sleep_then_return,
    square,
)

# Most tests use `fork` (fast to start on Linux); the tests about spawn say so in their names.
FAST = "fork"
# Generous: a forked child answers in milliseconds and a spawned one in well under a second,
# so 8 s only runs out when something is really stuck, even on a busy machine.
TIMEOUT = 8.0


@pytest.fixture(autouse=True)
def reap_children() -> Iterator[None]:
    """Whatever a test leaves behind is killed, so no process outlives it."""
    yield
    for child in multiprocessing.active_children():
        child.kill()
        child.join(2.0)


def assert_no_children_left() -> None:
    __tracebackhide__ = True
    left = multiprocessing.active_children()
    assert not left, (
        f"{len(left)} child process(es) still ran after your function returned ({left}): "
        f"join every child you start, and kill the ones that overran, in a `finally`"
    )


def test_every_input_is_computed_in_a_child_and_comes_back() -> None:
    results = run_in_processes(square, [1, 2, 3, 4], start_method=FAST, timeout=TIMEOUT)
    assert results == [1, 4, 9, 16], (
        f"run_in_processes(square, [1, 2, 3, 4]) returned {results}. If you see None: a child "
        f"works on a copy of everything the parent gave it, so filling a list the parent passed "
        f"in changes only the child's copy; send each result back through a Queue"
    )
    assert_no_children_left()


def test_results_keep_the_order_of_the_inputs_even_when_the_first_child_finishes_last() -> None:
    # The first child sleeps 0.6 s, the others not at all: they report first on any machine that
    # is not frozen for more than half a second.
    inputs = [("first", 0.6), ("second", 0.0), ("third", 0.0)]
    results = run_in_processes(sleep_then_return, inputs, start_method=FAST, timeout=TIMEOUT)
    assert results == ["first", "second", "third"], (
        f"got {results}: the children reported last-first, so results taken in arrival order "
        f"come out shuffled. Send the input's index with each result and place it by index."
    )
    assert_no_children_left()


def test_all_children_run_at_the_same_time() -> None:
    parties = 2
    barrier = multiprocessing.get_context(FAST).Barrier(parties)
    results = run_in_processes(meet, [barrier] * parties, start_method=FAST, timeout=TIMEOUT)
    assert results == ["met"] * parties, (
        f"the children never waited at the barrier together (results: {results}): start every "
        f"child first and only then wait for results and join; a join() inside the start loop "
        f"makes each child finish before the next one begins"
    )
    assert_no_children_left()


def test_a_lambda_or_nested_function_is_refused_with_type_error_before_any_process_starts() -> None:
    def nested(number: int) -> int:
        return number + 1

    for function, kind in ((lambda number: number, "a lambda"), (nested, "a nested function")):
        try:
            run_in_processes(function, [1], start_method=FAST, timeout=TIMEOUT)
        except TypeError:
            pass
        else:
            pytest.fail(
                f"{kind} was accepted. It only works under fork, where the child inherits the "
                f"parent's memory; under spawn or forkserver (macOS, Windows, Linux from Python "
                f"3.14) the child must import the function by module and name and cannot. Raise "
                f"TypeError when pickle.dumps(function) fails."
            )
        assert_no_children_left()


def test_a_spawned_child_imports_the_module_afresh_and_misses_the_parents_later_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("processes.MARKER", "changed in the parent")
    spawned = run_in_processes(read_marker, [None], start_method="spawn", timeout=TIMEOUT)
    assert spawned == ["as imported"], (
        f"the child read MARKER = {spawned}, the parent's changed value: it was forked, not "
        f"spawned. Use multiprocessing.get_context(start_method) and create the Queue and "
        f"Processes from that context, so start_method='spawn' really starts a fresh interpreter"
    )
    assert_no_children_left()


def test_a_child_that_overruns_the_timeout_is_stopped_and_timeout_error_is_raised() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        run_in_processes(sleep_then_return, [("late", 60.0)], start_method=FAST, timeout=0.5)
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT, f"run_in_processes took {elapsed:.1f} s to give up after 0.5 s"
    assert_no_children_left()


def test_each_named_process_sees_its_own_name() -> None:
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
    assert_no_children_left()


def test_spawned_named_children_each_run_in_a_process_of_their_own() -> None:
    identities = run_named(["left", "right"], start_method="spawn", timeout=TIMEOUT)
    pids = list(identities.values())
    assert os.getpid() not in pids, (
        f"a report came from this very process ({os.getpid()}), not from a child: send it from "
        f"inside the function you pass as target=, which the child runs (target=f(q) calls f "
        f"right here and gives Process its return value)"
    )
    assert len(set(pids)) == 2, f"two children reported the process ids {pids}: each needs its own"

    assert_no_children_left()


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
