"""Run settings: validated once as usage errors, shown in the header, forwarded to child runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.kata_repo import MANIFEST, KataRepo

COUNTER_ENTRY = """
[[kata]]
name = "counter"
track = "basics"
title = "Count from two threads"
hints = ["Hold a lock around the read and the write.", "with self._lock: self.value += 1"]
"""

COUNTER_STUB = '''
"""Kata `counter`: a counter for many threads.

§1 `increment()` adds one, and no increment is lost between threads.
"""

import threading


class Counter:
    """A counter that many threads increment."""

    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def increment(self) -> None:
        """Add one, atomically."""
        # TODO(kata): add one while holding the lock.
        raise NotImplementedError
'''

COUNTER_REFERENCE = COUNTER_STUB.replace(
    """        # TODO(kata): add one while holding the lock.
        raise NotImplementedError
""",
    """        with self._lock:
            self.value += 1
""",
)

COUNTER_TESTS = """
import pytest
from counter import Counter


@pytest.mark.clause(1)
def test_no_increment_is_lost_between_two_threads(probe):
    def check(shared, _results):
        lost = 2 - shared.value
        assert lost == 0, f"{lost} of 2 increments were lost"

    probe.explore(Counter, [lambda c: c.increment(), lambda c: c.increment()], check)
"""

COUNTER_MUTANTS = """
[[mutant]]
name = "unlocked"
bug = "increments without the lock"
find = '''
        with self._lock:
            self.value += 1
'''
replace = '''
        self.value += 1
'''

[[mutant]]
name = "double"
bug = "adds two"
find = "self.value += 1"
replace = "self.value += 2"

[[mutant]]
name = "nothing"
bug = "adds nothing"
find = "self.value += 1"
replace = "self.value += 0"
"""


@pytest.fixture
def probe_repo(kata_repo: KataRepo) -> KataRepo:
    """The scratch repository plus `counter`, a kata whose test uses the probe fixture."""
    kata_repo.write("katas/curriculum.toml", MANIFEST + COUNTER_ENTRY)
    kata_repo.write("katas/counter/README.md", "# counter\n\nCount from two threads.\n")
    kata_repo.write("katas/counter/counter.py", COUNTER_STUB)
    kata_repo.write("katas/counter/test_counter.py", COUNTER_TESTS)
    kata_repo.write("reference/counter/counter.py", COUNTER_REFERENCE)
    kata_repo.write("reference/counter/mutants.toml", COUNTER_MUTANTS)
    return kata_repo


@pytest.mark.parametrize(
    ("option", "shown"),
    [
        ("--kata-probe-budget=0", "--kata-probe-budget=0: expected a whole number of schedules"),
        ("--kata-probe-seed=x", "--kata-probe-seed=x: expected a whole number >= 0"),
        ("--kata-budget-scale=-1", "--kata-budget-scale=-1: expected 0 (budgets off)"),
        ("--kata-hints=-1", "--kata-hints=-1: expected a hint level >= 0"),
        ("--kata-probe-stats=/no/such/folder/f.jsonl", "--kata-probe-stats=*does not exist*"),
    ],
)
def test_a_bad_option_value_is_a_usage_error_naming_the_option(
    kata_repo: KataRepo, option: str, shown: str
) -> None:
    result = kata_repo.run("katas", option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, (
        f"{option} must stop the run before any test, as a usage error"
    )
    result.stderr.fnmatch_lines([f"*{shown}*"])


def test_a_bad_ini_value_is_a_usage_error_naming_the_ini_key(kata_repo: KataRepo) -> None:
    ini = (kata_repo.root / "pytest.ini").read_text(encoding="utf-8")
    kata_repo.write("pytest.ini", ini + "kata_probe_budget = 0\n")
    result = kata_repo.run("katas")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*kata_probe_budget (ini)=0: expected a whole number*"])


def test_the_option_wins_over_the_ini_and_the_header_shows_the_settings(
    kata_repo: KataRepo,
) -> None:
    ini = (kata_repo.root / "pytest.ini").read_text(encoding="utf-8")
    kata_repo.write("pytest.ini", ini + "kata_probe_seed = 3\nkata_probe_budget = 40\n")
    result = kata_repo.run("katas", "--kata-impl=reference", "--kata-probe-seed=9")
    result.stdout.fnmatch_lines(
        [
            "kata settings: probe seed 9, probe budget 40, budget scale 1, required backends none",
            "kata implementation: reference",
        ],
        consecutive=False,
    )


def test_tests_using_the_probe_fixture_carry_the_probe_marker(probe_repo: KataRepo) -> None:
    selected = probe_repo.run("katas", "--kata-impl=reference", "-m", "probe")
    selected.assert_outcomes(passed=1, deselected=3)
    others = probe_repo.run("katas", "--kata-impl=reference", "-m", "not probe")
    others.assert_outcomes(passed=3, deselected=1)


def test_verify_forwards_the_probe_settings_to_every_child_run(
    probe_repo: KataRepo, tmp_path: Path
) -> None:
    stats = tmp_path / "probe-stats.jsonl"
    result = probe_repo.run(
        "--kata-verify",
        "katas/counter",
        "--kata-probe-seed=7",
        "--kata-probe-budget=5",
        f"--kata-probe-stats={stats}",
    )
    assert result.ret == 0, result.stdout.str()
    assert stats.is_file(), "the child runs must write the statistics file named by the parent"
    entries = [json.loads(line) for line in stats.read_text(encoding="utf-8").splitlines()]
    # stub (fails at once), reference, and the three mutants: one exploration each.
    assert len(entries) == 5, f"expected one probe per child run, got {entries}"
    seeds = {entry["seed"] for entry in entries}
    assert seeds == {7}, f"every child run must explore with the parent's seed 7, saw {seeds}"
    passing = [entry for entry in entries if not entry["failed"]]
    assert [entry["schedules"] for entry in passing] == [5], (
        f"the reference must explore exactly the parent's budget of 5 schedules: {passing}"
    )
