"""Kata `process_lifecycle`: Process subclasses, watchdogs, exit codes and daemon processes."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from process_lifecycle import (
    SumWorker,
    exit_with,
    ignore_sigterm_then_sleep,
    run_with_deadline,
    sleep_for,
    start_heartbeat,
    sum_in_subprocess,
)

T = TypeVar("T")
# Generous: every call below returns within a second on a busy machine when it is right; 5 s
# only runs out when a call waits for something that never comes.
LIMIT = 5.0
WATCHDOG_STUCK = (
    "run_with_deadline never returned: wait with join(seconds), never without a timeout"
)


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
        f"join the child on every path, and kill it when it overruns"
    )


def within_limit(call: Callable[[], T], stuck: str) -> T:
    """Run `call()` in a helper thread; fail with `stuck` (and free it) if it is still busy
    after LIMIT s."""
    __tracebackhide__ = True
    outcome: list[tuple[bool, Any]] = []

    def runner() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as error:  # re-raised below, in the test's own thread
            outcome.append((False, error))

    helper = threading.Thread(target=runner, daemon=True)
    helper.start()
    helper.join(LIMIT)
    if helper.is_alive():
        for child in multiprocessing.active_children():  # frees a join() that waits forever
            if child.pid is not None:
                os.kill(child.pid, signal.SIGKILL)
        helper.join(LIMIT)
        pytest.fail(f"still waiting after {LIMIT} s: {stuck}")
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    return value  # type: ignore[no-any-return]


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


def test_attributes_reach_the_child_but_what_run_stores_stays_in_the_child() -> None:
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
    assert_no_children_left()


def test_sum_in_subprocess_returns_the_total_the_child_sent_back() -> None:
    total = within_limit(
        lambda: sum_in_subprocess([5, 6, 7], timeout=LIMIT), "sum_in_subprocess never returned"
    )
    assert total == 18, (
        f"sum_in_subprocess([5, 6, 7]) returned {total!r}. If you see None: the child stored the "
        f"total in its own copy of the worker, and the parent's copy never changes. Take the "
        f"total from the queue."
    )
    assert_no_children_left()


def test_a_child_that_ends_in_time_is_reported_at_once_with_exit_code_zero() -> None:
    started = time.monotonic()
    code = within_limit(lambda: run_with_deadline(sleep_for, (0.1,), seconds=4.0), WATCHDOG_STUCK)
    elapsed = time.monotonic() - started
    assert code == 0, f"a child that slept 0.1 s and returned has exit code {code!r}, not 0"
    # The child ends after 0.1 s; a watchdog that sleeps out its deadline needs 4 s.
    assert elapsed < 3.0, (
        f"the watchdog returned after {elapsed:.1f} s for a child that ended after 0.1 s: wait "
        f"with join(seconds), which returns as soon as the child ends, not with a sleep"
    )
    assert_no_children_left()


def test_a_spawned_child_that_calls_sys_exit_reports_that_exit_code() -> None:
    code = within_limit(
        lambda: run_with_deadline(exit_with, (3,), seconds=LIMIT, start_method="spawn"),
        WATCHDOG_STUCK,
    )
    assert code == 3, f"a child that called sys.exit(3) has exit code {code!r}, not 3"
    assert_no_children_left()


def test_an_overrunning_child_is_stopped_politely_with_sigterm() -> None:
    code = within_limit(
        lambda: run_with_deadline(sleep_for, (60.0,), seconds=0.3, grace=LIMIT),
        "run_with_deadline(seconds=0.3) never stopped its overrunning child. join(seconds) "
        "returns after `seconds` even when the child still runs; then terminate() it.",
    )
    assert code == -signal.SIGTERM, (
        f"a child stopped at its deadline has exit code {code!r}, expected -SIGTERM "
        f"({-signal.SIGTERM}). Ask politely first with terminate() (SIGTERM, which a child may "
        f"catch to clean up); kill() (SIGKILL, {-signal.SIGKILL}) is for a child that ignores it."
    )
    assert_no_children_left()


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    # The child ignores SIGTERM within milliseconds of starting; its deadline is 0.5 s later.
    code = within_limit(
        lambda: run_with_deadline(ignore_sigterm_then_sleep, (60.0,), seconds=0.5, grace=0.3),
        WATCHDOG_STUCK,
    )
    assert code == -signal.SIGKILL, (
        f"a child that ignored SIGTERM ended with exit code {code!r}, expected -SIGKILL "
        f"({-signal.SIGKILL}): after terminate() and `grace` seconds it was still running. "
        f"kill() it (SIGKILL cannot be ignored), then join() so that its exit code is known."
    )
    assert_no_children_left()


def test_the_heartbeat_is_a_daemon_that_beats_while_the_caller_goes_on() -> None:
    beats: multiprocessing.queues.Queue[float] = multiprocessing.Queue()
    heart = within_limit(
        lambda: start_heartbeat(beats, 0.05),
        "start_heartbeat must return at once, without waiting for the heartbeat",
    )
    try:
        assert heart.daemon, (
            "the heartbeat process is not a daemon: the program that started it would wait for "
            "it forever at exit. Pass daemon=True to Process."
        )
        first, second = beats.get(timeout=LIMIT), beats.get(timeout=LIMIT)
        assert second > first, f"the heartbeat sent {first} and then {second}"
    finally:
        heart.terminate()
        heart.join(LIMIT)
    assert heart.exitcode == -signal.SIGTERM, (
        f"the terminated heartbeat's exit code is {heart.exitcode}"
    )


def test_a_daemon_heartbeat_is_stopped_when_the_program_that_started_it_exits(
    tmp_path: Path,
) -> None:
    # First in this process, where a missing start_heartbeat shows up plainly.
    heart = within_limit(
        lambda: start_heartbeat(multiprocessing.Queue(), 1.0),
        "start_heartbeat must return at once, without waiting for the heartbeat",
    )
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
