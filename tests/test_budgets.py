"""Time budgets: a deadlocked test fails with every thread's stack, and the run goes on."""

from __future__ import annotations

import time

from tests.kata_repo import KataRepo

DEADLOCK = """
import threading

import pytest
from adder import add


@pytest.mark.budget(1)
def test_deadlocks():
    first, second = threading.Lock(), threading.Lock()
    first.acquire()
    second.acquire()

    def stuck_worker():
        with first:
            pass

    worker = threading.Thread(target=stuck_worker, name="stuck-worker")
    worker.start()
    worker.join()


def test_runs_after_the_deadlock():
    assert add(1, 2) == 3
"""


def test_a_deadlocked_test_fails_with_a_headline_and_every_threads_stack(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/test_adder.py", DEADLOCK)
    started = time.monotonic()
    result = kata_repo.run("katas/adder", "--kata-impl=reference", timeout=60)
    elapsed = time.monotonic() - started
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the test ran past its budget of 1 s. probable deadlock or livelock*",
            "*--- thread stuck-worker ---*",
            "*with first:*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*threads and processes left running*",
            "*non-daemon thread 'stuck-worker' was still running*",
        ]
    )
    assert elapsed < 30, (
        f"the run took {elapsed:.1f} s: the stuck thread must not keep pytest from exiting"
    )


def test_the_budget_scale_option_stretches_every_budget(kata_repo: KataRepo) -> None:
    kata_repo.write("katas/adder/test_adder.py", DEADLOCK)
    result = kata_repo.run(
        "katas/adder", "--kata-impl=reference", "--kata-budget-scale=2", timeout=60
    )
    result.stdout.fnmatch_lines(["*ran past its budget of 2 s*"])


def test_a_negative_budget_scale_is_a_usage_error(kata_repo: KataRepo) -> None:
    result = kata_repo.run("katas", "--kata-budget-scale=-1")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*--kata-budget-scale=-1: expected 0 (budgets off) or a positive factor*"]
    )


LEAKS_A_PROCESS = """
import multiprocessing
import time

from adder import add


def test_leaves_a_child_running():
    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,), name="sleeper")
    child.start()
    assert add(1, 2) == 3
"""


def test_a_child_process_left_running_is_reported_and_stopped(kata_repo: KataRepo) -> None:
    kata_repo.write("katas/adder/test_adder.py", LEAKS_A_PROCESS)
    started = time.monotonic()
    result = kata_repo.run("katas/adder", "--kata-impl=reference", timeout=60)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*child process 'sleeper' (pid *) was still running; stopped it*"])
    assert time.monotonic() - started < 30, "the leaked child must be stopped, not waited for"


HANGS_IN_A_FINALIZER = """
import time

import pytest
from adder import add


class Stuck:
    def __del__(self):
        time.sleep(30)  # a finalizer that never ends, as a Pool's can


@pytest.mark.budget(1)
def test_hangs_in_a_finalizer():
    stuck = Stuck()
    del stuck  # the finalizer runs here; the budget's alarm lands inside it
    assert add(1, 2) == 3


def test_runs_after_it():
    assert add(2, 2) == 4
"""


def test_a_budget_expiry_swallowed_by_a_finalizer_fails_that_test_and_the_run_goes_on(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/test_adder.py", HANGS_IN_A_FINALIZER)
    result = kata_repo.run("katas/adder", "--kata-impl=reference", "-p", "no:randomly", timeout=60)
    result.assert_outcomes(passed=1, failed=1)
    assert "INTERNALERROR" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*the test ran past its budget of 1 s while Python was running a finalizer*"]
    )


ASKS_FROM_A_FOREIGN_THREAD = """
import _thread
import threading
import time

from adder import add


def test_a_thread_threading_did_not_start_asks_who_it_is():
    names = []
    _thread.start_new_thread(lambda: (names.append(threading.current_thread().name), time.sleep(2)), ())
    deadline = time.monotonic() + 5
    while not names and time.monotonic() < deadline:
        time.sleep(0.01)
    assert names and add(1, 2) == 3


def test_runs_after_it():
    assert add(2, 2) == 4
"""


def test_a_dummy_thread_left_behind_is_no_stray_to_join(kata_repo: KataRepo) -> None:
    # threading registers a thread it did not start as a dummy when that thread calls
    # current_thread(); joining one asserts, and crashed the run (INTERNALERROR).
    kata_repo.write("katas/adder/test_adder.py", ASKS_FROM_A_FOREIGN_THREAD)
    result = kata_repo.run("katas/adder", "--kata-impl=reference", "-p", "no:randomly", timeout=60)
    assert "INTERNALERROR" not in result.stdout.str(), result.stdout.str()[-2000:]
    result.assert_outcomes(passed=2)
