"""Kata `process_lifecycle`: Process subclasses, watchdogs, exit codes and daemon processes."""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.queues
import os
import queue
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from process_lifecycle import (
    SumWorker,
    exit_with,
    exit_with_module_code,
    ignore_sigterm_then_sleep,
    run_with_deadline,
    sleep_for,
    start_heartbeat,
    sum_in_subprocess,
)

from plugins import proctree

T = TypeVar("T")
# Generous: every call below returns within a second on a busy machine when it is right; 5 s
# only runs out when a call waits for something that never comes.
LIMIT = 5.0
# The children the tests hand to a watchdog that must stop them sleep this long: far longer
# than the deadlines (0.3 to 0.5 s), short enough that a watchdog that waits for them to end
# by themselves returns, with an exit code of 0 that shows it, instead of hanging the test.
OVERRUN = 2.0


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
        f"until someone waits for them). Join the child on every path (in a `finally`), and "
        f"kill() it first if it is still alive"
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
    except Exception as error:
        return None, error


class SlowNumbers:
    """Numbers that take OVERRUN seconds to hand out their first one: a worker that sums them
    overruns any short timeout."""

    def __iter__(self) -> Iterator[int]:
        time.sleep(OVERRUN)
        yield 1


class FewBeats(multiprocessing.queues.Queue):  # type: ignore[type-arg]
    """A queue for a forked heartbeat that ends the heartbeat's process after `limit` beats,
    so that a start_heartbeat that waits for its heartbeat returns (late) instead of hanging."""

    def __init__(self, limit: int) -> None:
        super().__init__(ctx=multiprocessing.get_context("fork"))
        self.limit = limit
        self.count = 0

    def put(self, obj: object, block: bool = True, timeout: float | None = None) -> None:
        self.count += 1  # counts in the heartbeat's own copy of the queue
        if self.count > self.limit:
            sys.exit(0)
        super().put(obj, block, timeout)


@pytest.mark.clause(1, 2)
def test_a_sum_worker_is_set_up_as_a_real_process() -> None:
    worker = SumWorker([1, 2], multiprocessing.Queue())
    try:
        state = (worker.name, worker.is_alive())
    except AttributeError as error:
        state = None
        problem = str(error)
    assert state is not None, (
        f"SumWorker could not even tell its name ({problem}): its __init__ replaced "
        f"Process.__init__ without calling it. Call super().__init__() first, then set your "
        f"own attributes."
    )
    assert (worker.numbers, worker.total) == ([1, 2], None), (
        f"SumWorker([1, 2], queue) holds numbers={worker.numbers!r}, total={worker.total!r}; "
        f"expected [1, 2] and None"
    )


@pytest.mark.clause(3)
def test_attributes_reach_the_child_but_what_run_stores_stays_in_the_child(
    children_before: set[int],
) -> None:
    results: multiprocessing.queues.Queue[int] = multiprocessing.Queue()
    worker = SumWorker([1, 2, 3, 4], results)
    worker.start()
    try:
        total = results.get(timeout=LIMIT)
    finally:
        worker.join(LIMIT)
    assert total == 10, f"the worker sent {total}; sum([1, 2, 3, 4]) is 10"
    assert worker.total is None, (
        f"the parent's worker.total is {worker.total!r}: run() must not run in the parent. "
        f"start() runs it in the child, on the child's copy of the worker."
    )
    assert_no_children_left(children_before, "the test's own worker")


@pytest.mark.clause(4, 5)
def test_sum_in_subprocess_returns_the_total_the_child_sent_back(
    children_before: set[int],
) -> None:
    total = sum_in_subprocess([5, 6, 7], timeout=LIMIT)
    assert total == 18, (
        f"sum_in_subprocess([5, 6, 7]) returned {total!r}. If you see None: the child stored the "
        f"total in its own copy of the worker, and the parent's copy never changes. Take the "
        f"total from the queue."
    )
    assert_no_children_left(children_before, "sum_in_subprocess")


@pytest.mark.clause(6)
def test_sum_in_subprocess_gives_up_on_a_worker_that_overruns_its_timeout(
    children_before: set[int],
) -> None:
    started = time.monotonic()
    total, error = attempt(
        lambda: sum_in_subprocess(SlowNumbers(), timeout=0.3),  # type: ignore[arg-type]
        "sum_in_subprocess(timeout=0.3)",
    )
    elapsed = time.monotonic() - started
    assert isinstance(error, TimeoutError), (
        f"a worker that needs {OVERRUN:g} s for its sum, with timeout=0.3, made "
        f"sum_in_subprocess {f'raise {error!r}' if error else f'return {total!r}'} after "
        f"{elapsed:.1f} s, not raise TimeoutError after 0.3 s: get the sum with "
        f"results.get(timeout=timeout), and turn queue.Empty into TimeoutError"
    )
    assert_no_children_left(children_before, "sum_in_subprocess, giving up,")


@pytest.mark.clause(7, 10)
def test_a_child_that_ends_in_time_is_reported_at_once_with_exit_code_zero(
    children_before: set[int],
) -> None:
    started = time.monotonic()
    code = run_with_deadline(sleep_for, (0.1,), seconds=2.0)
    elapsed = time.monotonic() - started
    assert code == 0, f"a child that slept 0.1 s and returned has exit code {code!r}, not 0"
    # The child ends after 0.1 s; a watchdog that sleeps out its deadline needs 2 s.
    assert elapsed < 1.5, (
        f"the watchdog returned after {elapsed:.1f} s for a child that ended after 0.1 s: wait "
        f"with join(seconds), which returns as soon as the child ends, not with a sleep"
    )
    assert_no_children_left(children_before, "run_with_deadline")


@pytest.mark.clause(10)
def test_a_child_that_calls_sys_exit_reports_that_exit_code(children_before: set[int]) -> None:
    code = run_with_deadline(exit_with, (3,), seconds=LIMIT)
    assert code == 3, f"a child that called sys.exit(3) has exit code {code!r}, not 3"
    assert_no_children_left(children_before, "run_with_deadline")


@pytest.mark.clause(10)
def test_a_child_that_raises_reports_exit_code_one(children_before: set[int]) -> None:
    # int("not a number") raises ValueError in the child (its traceback shows in the output).
    code = run_with_deadline(int, ("not a number",), seconds=LIMIT)
    assert code == 1, f"a child that raised ValueError has exit code {code!r}, not 1"
    assert_no_children_left(children_before, "run_with_deadline")


@pytest.mark.clause(7)
def test_the_watchdog_starts_its_child_with_the_start_method_it_is_given(
    monkeypatch: pytest.MonkeyPatch, children_before: set[int]
) -> None:
    monkeypatch.setattr("process_lifecycle.MODULE_CODE", 5)
    code = run_with_deadline(exit_with_module_code, (), seconds=LIMIT, start_method="spawn")
    assert code == 4, (
        f"a child that exits with MODULE_CODE, which the parent changed from 4 to 5, exited "
        f"with {code!r}: "
        + (
            "it was forked and saw the parent's change. With start_method='spawn' it must be "
            "a fresh interpreter that imports the module afresh: create the Process from "
            "multiprocessing.get_context(start_method)"
            if code == 5
            else "expected 4, the value a freshly spawned child imports"
        )
    )
    assert_no_children_left(children_before, "run_with_deadline")


@pytest.mark.clause(8, 10)
def test_an_overrunning_child_is_stopped_politely_with_sigterm(
    children_before: set[int],
) -> None:
    code = run_with_deadline(sleep_for, (OVERRUN,), seconds=0.3, grace=LIMIT)
    why = {
        0: (
            f"the child slept its whole {OVERRUN:g} s and ended by itself: the watchdog waited "
            f"for it without a deadline. join(seconds) returns after `seconds` even when the "
            f"child still runs; then terminate() it"
        ),
        -signal.SIGKILL: (
            "the child was killed at once. Ask politely first with terminate() (SIGTERM, "
            "which a child may catch to clean up); kill() (SIGKILL) is for a child that "
            "ignores it"
        ),
        None: "the exit code is unknown: join() the child after terminate()",
    }
    assert code == -signal.SIGTERM, (
        f"a child stopped at its 0.3 s deadline has exit code {code!r}, expected -SIGTERM "
        f"({-signal.SIGTERM}): {why.get(code, 'it was not stopped with terminate()')}"
    )
    assert_no_children_left(children_before, "run_with_deadline")


@pytest.mark.clause(9, 10)
def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(
    children_before: set[int],
) -> None:
    # The child ignores SIGTERM within milliseconds of starting; its deadline is 0.3 s later.
    code = run_with_deadline(ignore_sigterm_then_sleep, (OVERRUN,), seconds=0.3, grace=0.2)
    why = {
        0: (
            f"the child slept its whole {OVERRUN:g} s and ended by itself: after terminate() "
            f"the watchdog waited for it without a limit. Wait only `grace` seconds "
            f"(join(grace)), then kill() the child if it still runs"
        ),
        None: (
            "after terminate() and `grace` seconds it was still running, and the watchdog "
            "returned without stopping it: kill() it (SIGKILL cannot be ignored), then join() "
            "so that its exit code is known"
        ),
    }
    assert code == -signal.SIGKILL, (
        f"a child that ignored SIGTERM ended with exit code {code!r}, expected -SIGKILL "
        f"({-signal.SIGKILL}): {why.get(code, 'it was not stopped with kill()')}"
    )
    assert_no_children_left(children_before, "run_with_deadline")


@pytest.mark.clause(12)
def test_start_heartbeat_returns_at_once_while_the_heartbeat_runs() -> None:
    started = time.monotonic()
    heart = start_heartbeat(FewBeats(limit=10), 0.05)
    elapsed = time.monotonic() - started
    try:
        assert heart.exitcode is None and heart.is_alive(), (
            f"start_heartbeat returned after {elapsed:.2f} s a heartbeat that was "
            f"{'never started' if heart.pid is None else 'already over'} (the test's "
            f"heartbeat ends by itself after 10 beats, 0.5 s): start() the process and return "
            f"it at once, without join()"
        )
    finally:
        if heart.pid is not None:
            heart.kill()
            heart.join(LIMIT)


@pytest.mark.clause(11)
def test_the_heartbeat_is_a_daemon_that_beats_while_the_caller_goes_on() -> None:
    beats = FewBeats(limit=40)
    heart = start_heartbeat(beats, 0.05)
    try:
        assert heart.daemon, (
            "the heartbeat process is not a daemon: the program that started it would wait for "
            "it forever at exit. Pass daemon=True to Process."
        )
        first, second = beats.get(timeout=LIMIT), beats.get(timeout=LIMIT)
        assert second > first, f"the heartbeat sent {first} and then {second}"
        assert heart.is_alive(), "the heartbeat ended on its own; it beats until stopped"
    finally:
        heart.terminate()
        heart.join(LIMIT)
    assert heart.exitcode == -signal.SIGTERM, (
        f"the terminated heartbeat's exit code is {heart.exitcode}"
    )


@pytest.mark.clause(11)
def test_a_daemon_heartbeat_is_stopped_when_the_program_that_started_it_exits(
    tmp_path: Path,
) -> None:
    # First in this process, where a missing start_heartbeat shows up plainly.
    heart = start_heartbeat(FewBeats(limit=3), 0.05)
    heart.kill()
    heart.join(LIMIT)
    pid_file = tmp_path / "heartbeat.pid"
    script = textwrap.dedent(
        """
        import multiprocessing, sys
        from process_lifecycle import start_heartbeat

        if __name__ == "__main__":
            heart = start_heartbeat(multiprocessing.Queue(), 0.05)
            with open(sys.argv[1], "w") as file:
                file.write(str(heart.pid))
        """
    )
    # The program starts its heartbeat and exits within a second; 5 s means it never exits.
    program = subprocess.Popen(
        [sys.executable, "-c", script, str(pid_file)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    heartbeat_pid = None
    try:
        try:
            program.wait(timeout=LIMIT)
            exited = True
        except subprocess.TimeoutExpired:
            exited = False
        if pid_file.exists() and pid_file.read_text():
            heartbeat_pid = int(pid_file.read_text())
        assert exited, (
            "the program never exited: at exit Python waits for every non-daemon child, and "
            "the heartbeat beats forever. Start it with daemon=True."
        )
        assert heartbeat_pid is not None, "the program exited without starting a heartbeat"
        try:
            os.kill(heartbeat_pid, 0)  # signal 0 only asks whether the process exists
            still_running = True
        except ProcessLookupError:
            still_running = False
        assert not still_running, "the heartbeat still ran after the program that started it exited"
    finally:
        program.kill()
        program.wait()
        if heartbeat_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(heartbeat_pid, signal.SIGKILL)
