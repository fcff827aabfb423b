"""A guarded test that crashes the interpreter fails alone, with its explanation; the run goes on."""

from __future__ import annotations

import time

from tests.kata_repo import KataRepo

CRASHES = """
import ctypes
import os
import time

import pytest
from adder import add


@pytest.mark.crash_guard("a view of a closed block was read")
def test_crashes():
    ctypes.string_at(0)


@pytest.mark.crash_guard()
def test_fails_in_the_child(tmp_path):
    assert tmp_path.is_dir()
    assert add(1, 1) == 3, "one and one make two, not three"


@pytest.mark.crash_guard()
def test_passes_in_the_child():
    assert os.getpid() != PARENT


@pytest.mark.crash_guard()
@pytest.mark.budget(1)
def test_hangs_in_the_child():
    time.sleep(30)


def test_after_them():
    assert add(1, 2) == 3


PARENT = os.getpid()
"""


def test_a_crash_a_failure_and_a_hang_in_guarded_tests_each_fail_alone(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/test_adder.py", CRASHES)
    started = time.monotonic()
    result = kata_repo.run("katas/adder", "--kata-impl=reference", "-p", "no:randomly", timeout=60)
    result.assert_outcomes(passed=2, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*crashed the Python process with SIGSEGV (signal 11) instead of raising an "
            "exception: a view of a closed block was read*",
            "Where it crashed (innermost first):",
            '*File "*test_adder.py", line * in test_crashes',
        ]
    )
    result.stdout.fnmatch_lines(["*one and one make two, not three*"])
    result.stdout.fnmatch_lines(["*the test ran past its budget of 1 s*"])
    assert time.monotonic() - started < 30, "the hanging child must be killed at its budget"
