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


def test_a_run_of_some_tests_by_keyword_is_a_partial_run_never_done(kata_repo: KataRepo) -> None:
    kata_repo.write("katas/adder/adder.py", "def add(a, b):\n    return a + b if a > 0 else 0\n")
    result = kata_repo.run("katas/adder", "-k", "small")
    result.stdout.fnmatch_lines(
        [
            "adder (Add two numbers): partial run: 1 of 2 tests ran (1 passed). "
            "The kata's status needs all of them: pytest katas/adder"
        ]
    )
    assert ": done" not in result.stdout.str(), "a run of 1 of 2 tests must never say done"
    assert "Next kata" not in result.stdout.str(), "a partial run must not point on"


def test_a_run_of_one_test_by_node_id_counts_the_whole_suite(kata_repo: KataRepo) -> None:
    kata_repo.write("katas/adder/adder.py", "def add(a, b):\n    return a + b\n")
    result = kata_repo.run("katas/adder/test_adder.py::test_adds_small_numbers")
    result.stdout.fnmatch_lines(["adder (Add two numbers): partial run: 1 of 2 tests ran*"])
    assert "Compare with the reference" not in result.stdout.str()


def test_a_run_stopped_by_the_first_failure_is_partial(kata_repo: KataRepo) -> None:
    result = kata_repo.run("katas/adder", "-x")
    result.stdout.fnmatch_lines(
        ["adder (Add two numbers): partial run: 1 of 2 tests ran (1 failed)*", "  Stuck?*"]
    )


def test_tests_in_a_class_passed_over_by_a_node_id_are_counted(kata_repo: KataRepo) -> None:
    kata_repo.write("katas/adder/adder.py", "def add(a, b):\n    return a + b\n")
    tests = (kata_repo.root / "katas/adder/test_adder.py").read_text(encoding="utf-8")
    kata_repo.write(
        "katas/adder/test_adder.py",
        tests + "\n\nclass TestMore:\n    def test_a(self):\n        assert add(1, 1) == 2\n\n"
        "    def test_b(self):\n        assert add(0, 0) == 0\n",
    )
    result = kata_repo.run("katas/adder/test_adder.py::test_adds_small_numbers")
    result.stdout.fnmatch_lines(["adder (Add two numbers): partial run: 1 of 4 tests ran*"])


def test_a_partial_run_under_xdist_counts_the_whole_suite(kata_repo: KataRepo) -> None:
    kata_repo.write("katas/adder/adder.py", "def add(a, b):\n    return a + b\n")
    result = kata_repo.run("katas", "-n", "2", "-k", "small or greet")
    result.stdout.fnmatch_lines(
        [
            "adder (Add two numbers): partial run: 1 of 2 tests ran (1 passed)*",
            "greeter (Greet someone): not started: 0 of 1 tests pass*",
        ]
    )
