"""Contract clauses: numbered in the stub, claimed by every test, quoted when a test fails."""

from __future__ import annotations

from pathlib import Path

from plugins import contract
from tests.kata_repo import KataRepo

CONTRACT = '''"""Kata `k`: a contract.

- `Given()` is already written for you.
- §1 `first()` returns 1.
  §2 `first()` raises `ValueError` for a negative `n`, and
  keeps going on the next line.

§3 `third()` ends at a blank line.
Not part of it.
"""
'''


def test_a_clause_runs_from_its_number_to_the_next_number_bullet_or_blank_line(
    tmp_path: Path,
) -> None:
    stub = tmp_path / "k.py"
    stub.write_text(CONTRACT)
    assert contract.clauses(contract.module_docstring(stub)) == {
        1: "`first()` returns 1.",
        2: "`first()` raises `ValueError` for a negative `n`, and keeps going on the next line.",
        3: "`third()` ends at a blank line. Not part of it.",
    }


def _write_kata(tmp_path: Path, tests: str, reference_doc: str = CONTRACT) -> list[str]:
    stub, reference, test_file = tmp_path / "k.py", tmp_path / "ref.py", tmp_path / "test_k.py"
    stub.write_text(CONTRACT)
    reference.write_text(reference_doc)
    test_file.write_text(tests)
    return contract.problems(stub, reference, [test_file])


CLAIMS_ALL = """
import pytest

pytestmark = pytest.mark.clause(3)

@pytest.mark.clause(1, 2)
def test_one(): ...

def test_two(): ...
"""


def test_a_kata_whose_tests_claim_every_clause_has_no_problem(tmp_path: Path) -> None:
    assert _write_kata(tmp_path, CLAIMS_ALL) == []


def test_unclaimed_unknown_and_missing_claims_are_each_named(tmp_path: Path) -> None:
    tests = """
import pytest

@pytest.mark.clause(1, 7)
def test_one(): ...

def test_two(): ...
"""
    problems = _write_kata(tmp_path, tests)
    assert "test_k.py::test_one claims §7, not in the contract" in problems
    assert "test_k.py::test_two claims no clause (@pytest.mark.clause(N))" in problems
    assert "no test claims §2, §3: each clause needs a test that checks it" in problems


def test_a_reference_that_rewords_a_clause_is_refused(tmp_path: Path) -> None:
    problems = _write_kata(tmp_path, CLAIMS_ALL, CONTRACT.replace("returns 1", "returns one"))
    assert problems == ["the reference's docstring does not state the stub's clauses word for word"]


def test_gaps_repeats_and_an_unnumbered_contract_are_refused(tmp_path: Path) -> None:
    stub, test_file = tmp_path / "k.py", tmp_path / "test_k.py"
    test_file.write_text(CLAIMS_ALL)
    stub.write_text('"""§1 a. §1 b. §3 c."""\n')
    problems = contract.problems(stub, stub, [test_file])
    assert "the contract numbers §1 more than once" in problems
    assert "the contract's clauses skip §2" in problems
    stub.write_text('"""No numbers."""\n')
    assert contract.problems(stub, stub, [test_file]) == [
        "the stub's docstring numbers no contract clause (write §1, §2, ... before each)"
    ]


def test_a_failing_test_quotes_the_clauses_it_checks(kata_repo: KataRepo) -> None:
    result = kata_repo.run("katas/adder", "-p", "no:randomly")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*the contract this test checks (docstring of katas/adder/adder.py)*",
            "§1 add(a, b) returns the sum of any two integers, negative ones too.",
        ]
    )


def test_the_self_check_refuses_a_test_that_claims_no_clause(kata_repo: KataRepo) -> None:
    tests = kata_repo.root / "katas/greeter/test_greeter.py"
    tests.write_text(tests.read_text().replace("@pytest.mark.clause(1)\n", ""))
    result = kata_repo.run("--kata-verify")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*test_greets_by_name claims no clause*"])
