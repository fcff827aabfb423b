"""What a test's check or the learner's code raised, turned into a Failure the same way in
every mode, so the same mistake reads the same under threads and asyncio."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from . import report
from .finding import Failure
from .sites import short, source, traceback_site

S = TypeVar("S")
# check(state, results) runs after every schedule; an AssertionError is a broken invariant.
Check = Callable[[S, list[object]], None] | None


def exception_text(exc: BaseException) -> str:
    """``KeyError: 'x'``, or just ``KeyError`` when the exception carries no message."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def raised(
    who: str, exc: BaseException, files: frozenset[str], *, signature_prefix: str = ""
) -> Failure:
    """``who`` (a worker, a task, a callback) raised ``exc``: name it and the learner's line."""
    site = traceback_site(exc.__traceback__, files)
    return Failure(
        "exception",
        f"{who} raised {exception_text(exc)} at {short(site)} `{source(site)}`",
        signature=f"{signature_prefix}{type(exc).__name__}@{short(site)}",
        error=exc,
    )


def checked(
    check: Check[S], state: S, results: list[object], files: frozenset[str]
) -> Failure | None:
    """Run the test's check; its AssertionError, or any other exception it raises, is a broken
    invariant (a raising check must not escape as a bare KeyError with no schedule)."""
    if check is None:
        return None
    try:
        check(state, results)
    except AssertionError as exc:
        text = report.clean(str(exc).strip()) or "check() failed"
        return Failure("invariant", "invariant broken: " + text, signature="invariant")
    except Exception as exc:
        site = traceback_site(exc.__traceback__, files)
        return Failure(
            "invariant",
            f"check raised {exception_text(exc)} at {short(site)} `{source(site)}`",
            signature=f"check-{type(exc).__name__}",
        )
    return None
