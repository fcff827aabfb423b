"""Classic concurrency errors come with what they usually mean; thread errors come in one line."""

from __future__ import annotations

import pickle
import threading

import pytest

from plugins import known_errors
from tests.kata_repo import KataRepo


def test_joining_a_thread_never_started_is_explained() -> None:
    with pytest.raises(RuntimeError) as caught:
        threading.Thread(target=print).join()
    assert "never started" in known_errors.explanation(caught.value)


def test_calling_the_function_instead_of_passing_it_is_explained() -> None:
    not_a_function: object = 3
    with pytest.raises(TypeError) as caught:
        not_a_function()  # type: ignore[operator]
    assert "passes its *result*" in known_errors.explanation(caught.value)


def test_a_pickling_error_points_at_top_level_functions() -> None:
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)) as caught:
        pickle.dumps(lambda: None)
    assert "top level of the module" in known_errors.explanation(caught.value)


def test_an_exception_group_lists_each_member_with_its_line() -> None:
    def fail(error: Exception) -> Exception:
        try:
            raise error
        except Exception as raised:
            return raised

    group = ExceptionGroup("two", [fail(ValueError("bad")), fail(KeyError("k"))])
    text = known_errors.explanation(group)
    assert "- ValueError: bad (at test_known_errors.py:" in text, text
    assert "- KeyError: 'k' (at test_known_errors.py:" in text, text


def test_an_error_found_only_as_a_cause_is_explained() -> None:
    def worker_failed() -> None:
        try:
            threading.Lock().release()
        except RuntimeError as inner:
            raise AssertionError("the worker failed") from inner

    with pytest.raises(AssertionError) as caught:
        worker_failed()
    assert "released more often than it was acquired" in known_errors.explanation(caught.value)


def test_an_ordinary_failure_gets_no_explanation() -> None:
    assert known_errors.explanation(AssertionError("2 != 3")) == ""


THREAD_RAISES = """
import threading

import pytest
from adder import add


@pytest.mark.clause(1)
def test_a_thread_raises_and_the_test_fails():
    worker = threading.Thread(target=lambda: add(1, None), name="adding")
    worker.start()
    worker.join()
    assert False, "the sum never came"


@pytest.mark.clause(1)
def test_a_thread_raises_and_the_test_passes():
    worker = threading.Thread(target=lambda: add(1, None), name="quiet")
    worker.start()
    worker.join()
"""


def test_a_thread_error_in_a_failing_test_is_one_line_and_in_a_passing_one_a_warning(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/test_adder.py", THREAD_RAISES)
    result = kata_repo.run("katas/adder", "--kata-impl=reference", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*exceptions that ended other threads*",
            "thread adding raised TypeError: unsupported operand*(at adder.py:*`return a + b`)",
        ]
    )
    assert "Exception in thread adding" not in result.stdout.str(), "no second, long report"
    result.stdout.fnmatch_lines(["*PytestUnhandledThreadExceptionWarning*quiet*"])
