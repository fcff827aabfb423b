"""Process cleanup: whatever a test starts, grandchildren included, is stopped and reported."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator

from tests.kata_repo import KataRepo

# Each test's processes sleep for their own odd number of seconds, so `pgrep -f` finds them
# and nothing else (nor another test's, when the tests run side by side).
GRANDCHILD = "sleep 3598"
STILL_RUNNING_CHILD = "sleep 3597"
NEW_SESSION = "sleep 3596"
IGNORES_SIGTERM = "sleep 3595"


def processes_running(command: str) -> list[str]:
    """`pid command` of every process whose command line contains `command`."""
    found = subprocess.run(
        ["pgrep", "-af", command], capture_output=True, text=True, timeout=10, check=False
    )
    return found.stdout.splitlines()


@contextlib.contextmanager
def killed_afterwards(*commands: str) -> Iterator[None]:
    """Whatever process runs one of `commands` when the block ends is killed (by pid), so these
    tests never leave a process behind, even when they fail."""
    try:
        yield
    finally:
        for command in commands:
            for line in processes_running(command):
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(line.split()[0]), signal.SIGKILL)


def assert_none_running(command: str) -> None:
    __tracebackhide__ = True
    left = processes_running(command)
    assert not left, (
        f"{left} outlived the pytest run that started it: cleanup must end every process a "
        "test starts, grandchildren included"
    )


ORPHANED_GRANDCHILD = f"""
import multiprocessing
import subprocess

from adder import add


def start_a_sleeper():
    subprocess.Popen({GRANDCHILD.split()!r})  # never waited for; its parent exits at once


def test_leaves_a_grandchild_running():
    child = multiprocessing.get_context("fork").Process(target=start_a_sleeper)
    child.start()
    child.join(10)
    assert add(1, 2) == 3
"""


def test_a_grandchild_orphaned_by_a_multiprocessing_child_is_stopped_and_reported(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/test_adder.py", ORPHANED_GRANDCHILD)
    with killed_afterwards(GRANDCHILD):
        result = kata_repo.run("katas/adder", "--kata-impl=reference", timeout=60)
        assert_none_running(GRANDCHILD)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*threads and processes left running*",
            f"*test_leaves_a_grandchild_running: process * ({GRANDCHILD}) was still running; stopped it*",
        ]
    )


GRANDCHILD_OF_A_LIVE_CHILD = f"""
import multiprocessing
import subprocess
import time

from adder import add


def start_a_sleeper_and_wait():
    subprocess.Popen({STILL_RUNNING_CHILD.split()!r})
    time.sleep(60)


def test_leaves_a_child_and_its_child_running():
    child = multiprocessing.get_context("fork").Process(target=start_a_sleeper_and_wait, name="parent")
    child.start()
    assert add(1, 2) == 3
"""


def test_a_running_multiprocessing_child_and_its_child_are_both_stopped_and_reported(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/test_adder.py", GRANDCHILD_OF_A_LIVE_CHILD)
    with killed_afterwards(STILL_RUNNING_CHILD):
        result = kata_repo.run("katas/adder", "--kata-impl=reference", timeout=60)
        assert_none_running(STILL_RUNNING_CHILD)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"*process * ({STILL_RUNNING_CHILD}) was still running; stopped it*"]
    )
    result.stdout.fnmatch_lines(["*child process 'parent' (pid *) was still running; stopped it*"])


LEAVES_A_SERVER_RUNNING = f"""
import subprocess

from adder import add


def test_starts_a_server_and_forgets_it():
    # Like a server: its own session and process group, so a signal to pytest's group misses it.
    subprocess.Popen({NEW_SESSION.split()!r}, start_new_session=True)
    assert add(1, 2) == 3


def test_starts_one_that_ignores_sigterm():
    subprocess.Popen(["sh", "-c", "trap '' TERM; {IGNORES_SIGTERM}; true"], start_new_session=True)
    assert add(2, 2) == 4
"""


def test_a_process_in_its_own_session_is_stopped_and_one_that_ignores_sigterm_is_killed(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/test_adder.py", LEAVES_A_SERVER_RUNNING)
    with killed_afterwards(NEW_SESSION, IGNORES_SIGTERM):
        result = kata_repo.run("katas/adder", "--kata-impl=reference", timeout=60)
        assert_none_running(NEW_SESSION)
        assert_none_running(IGNORES_SIGTERM)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*threads and processes left running*",
            f"*test_starts_a_server_and_forgets_it: process * ({NEW_SESSION}) was still running; stopped it*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            f"*test_starts_one_that_ignores_sigterm: process * ({IGNORES_SIGTERM}) was still "
            "running; killed it: it ignored SIGTERM*"
        ]
    )


WAITS_FOR_ITS_PROCESSES = """
import subprocess

from adder import add


def test_waits_for_what_it_starts():
    subprocess.run(["sh", "-c", "sleep 0.1 & wait"], check=True, timeout=10)
    assert add(1, 2) == 3
"""


def test_a_test_that_waits_for_its_processes_reports_nothing(kata_repo: KataRepo) -> None:
    kata_repo.write("katas/adder/test_adder.py", WAITS_FOR_ITS_PROCESSES)
    result = kata_repo.run("katas/adder", "--kata-impl=reference", timeout=60)
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*threads and processes left running*")


LEAVES_A_POOL_OPEN = """
import gc
import multiprocessing

import pytest
from adder import add


@pytest.fixture
def kill_children():
    yield
    for child in multiprocessing.active_children():  # as a kata's teardown does
        child.kill()
        child.join(2)


@pytest.mark.budget(3)
def test_leaves_a_pool_open(kill_children):
    pool = multiprocessing.get_context("fork").Pool(2)
    assert pool.map(abs, [-1, -2]) == [1, 2]
    test_leaves_a_pool_open.pool = pool  # kept alive until the next test drops it


@pytest.mark.budget(3)
def test_after_it():
    test_leaves_a_pool_open.pool = None
    gc.collect()  # finalizes the pool, if nobody ended it
    assert add(1, 2) == 3
"""


def test_a_pool_left_open_with_killed_workers_is_ended_and_the_next_test_still_runs(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/test_adder.py", LEAVES_A_POOL_OPEN)
    started = time.monotonic()
    result = kata_repo.run("katas/adder", "--kata-impl=reference", "-p", "no:randomly", timeout=60)
    result.assert_outcomes(passed=2)
    assert "INTERNALERROR" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*test_leaves_a_pool_open: a multiprocessing Pool of 2 workers was left open*terminated it"
        ]
    )
    assert time.monotonic() - started < 30, "the pool's finalizer must not hang the run"
