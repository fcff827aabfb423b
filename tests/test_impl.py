"""The implementation swap: stub, reference, a graded folder, and broken learner modules."""

from __future__ import annotations

from tests.kata_repo import ADDER_REFERENCE, KataRepo


def test_by_default_the_tests_import_the_learners_stub(kata_repo: KataRepo) -> None:
    result = kata_repo.run("katas/adder")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*katas/adder/adder.py:*: `add` is not implemented yet*"])


def test_the_reference_option_imports_the_reference_solution(kata_repo: KataRepo) -> None:
    result = kata_repo.run("katas", "--kata-impl=reference")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["kata implementation: reference"])


def test_a_folder_laid_out_like_reference_is_graded(kata_repo: KataRepo) -> None:
    kata_repo.write("student/adder/adder.py", ADDER_REFERENCE.replace("a + b", "a - b"))
    kata_repo.write("student/greeter/greeter.py", "def greet(name):\n    return f'hello {name}'\n")
    result = kata_repo.run("katas", "--kata-impl=student")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["kata implementation: folder */student"])


def test_a_graded_folder_missing_a_kata_says_which_file_is_missing(kata_repo: KataRepo) -> None:
    kata_repo.write("student/greeter/greeter.py", "def greet(name):\n    return f'hello {name}'\n")
    result = kata_repo.run("katas", "--kata-impl=student")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*student/adder/adder.py does not exist*"])


def test_an_impl_that_is_neither_a_keyword_nor_a_folder_is_a_usage_error(
    kata_repo: KataRepo,
) -> None:
    result = kata_repo.run("katas", "--kata-impl=nowhere")
    assert result.ret == 4, "a bad --kata-impl must stop the run as a usage error"
    result.stderr.fnmatch_lines(["*expected 'stub', 'reference' or an existing folder*"])


def test_a_syntax_error_names_the_file_and_line_and_other_katas_still_run(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/adder.py", "def add(a, b)\n    return a + b\n")
    kata_repo.write("katas/greeter/greeter.py", "def greet(name):\n    return f'hello {name}'\n")
    result = kata_repo.run("katas")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*katas/adder/adder.py has a syntax error at line 1*",
            "*adder*: broken: its module cannot be imported*",
        ]
    )
    assert "Traceback" not in result.stdout.str(), (
        "the learner should read one sentence, not a traceback"
    )


def test_a_missing_name_is_reported_by_name(kata_repo: KataRepo) -> None:
    kata_repo.write("katas/adder/adder.py", "def plus(a, b):\n    return a + b\n")
    result = kata_repo.run("katas/adder")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*katas/adder/adder.py does not define `add`, which test_adder.py imports*"]
    )


def test_an_exception_at_import_time_is_reported_with_its_line(kata_repo: KataRepo) -> None:
    kata_repo.write("katas/adder/adder.py", "import nonexistent_module_xyz\n")
    result = kata_repo.run("katas/adder")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*adder.py raised ModuleNotFoundError while being imported (line 1)*"]
    )
