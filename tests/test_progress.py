"""The kata status printed at the end of a run."""

from __future__ import annotations

from tests.kata_repo import KataRepo


def test_a_kata_whose_every_test_meets_not_implemented_is_not_started(kata_repo: KataRepo) -> None:
    result = kata_repo.run("katas/adder")
    result.stdout.fnmatch_lines(
        [
            "*kata status (stub)*",
            "adder (Add two numbers): not started: 0 of 2 tests pass*",
            "*Read katas/adder/README.md, then fill in each TODO(kata) in katas/adder/adder.py*",
            "*pytest katas/adder --kata-hints=1 shows hint 1 of 2*",
        ]
    )


def test_a_partly_solved_kata_is_in_progress_with_its_count(kata_repo: KataRepo) -> None:
    kata_repo.write(
        "katas/adder/adder.py", "def add(a, b):\n    return abs(a + b) if a > 0 else 0\n"
    )
    result = kata_repo.run("katas/adder")
    result.stdout.fnmatch_lines(["adder (Add two numbers): in progress: 1 of 2 tests pass."])


def test_a_solved_kata_is_done_and_points_to_the_reference_and_the_next_kata(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/adder.py", "def add(a, b):\n    return a + b\n")
    result = kata_repo.run("katas/adder")
    result.stdout.fnmatch_lines(
        [
            "adder (Add two numbers): done: all 2 tests pass. Compare with the reference: "
            "reference/adder/adder.py. Next kata: greeter (pytest katas/greeter)."
        ]
    )


def test_hints_are_shown_up_to_the_level_asked_for(kata_repo: KataRepo) -> None:
    result = kata_repo.run("katas/adder", "--kata-hints=1")
    result.stdout.fnmatch_lines(
        ["  hint 1: Use the plus operator.", "*--kata-hints=2 shows hint 2 of 2*"]
    )
    assert "return a + b" not in result.stdout.str(), "hint 2 must stay hidden at level 1"


def test_the_status_is_the_same_when_xdist_runs_the_tests(kata_repo: KataRepo) -> None:
    kata_repo.write("katas/adder/adder.py", "def add(a, b):\n    return a + b\n")
    result = kata_repo.run("katas", "-n", "2")
    result.stdout.fnmatch_lines(
        [
            "adder (Add two numbers): done: all 2 tests pass*",
            "greeter (Greet someone): not started: 0 of 1 tests pass*",
        ]
    )
