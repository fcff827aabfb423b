"""A broken `check` or worker reads the same under threads and asyncio: one readable report."""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from plugins.probe import ProbeFailure, explore, explore_async
from tests.probe.samples import counter_unlocked
from tests.probe.samples.counter_unlocked import Counter

Check = Callable[[Counter, list[object]], None]
MODES = ["threads", "asyncio"]
KEYERROR_HEADLINE = "check raised KeyError: 'totl' at test_probe_check_errors.py:"
ORIGIN = re.compile(
    r"found by: seed=0, strategy=\S+, schedule #0 of 5; "
    r"shrunk from \d+ to \d+ choices in \d+ re-runs"
)


def check_with_a_typo(counter: Counter, results: list[object]) -> None:
    totals = {"total": counter.v}
    assert totals["totl"] >= 1  # the typo raises KeyError before the comparison runs


def check_that_expects_three_workers(counter: Counter, results: list[object]) -> None:
    workers = len(results)
    assert workers == 3, f"{workers} workers returned, expected 3"


def _increment(counter: Counter) -> None:
    counter.increment()


async def _increment_async(counter: Counter) -> None:
    counter.increment()


def _explore_in(
    mode: str,
    threads: dict[str, Callable[[Counter], object]],
    in_asyncio: dict[str, Callable[[Counter], Coroutine[Any, Any, object]]],
    check: Check | None = None,
) -> None:
    """Explore ``Counter`` under ``mode``, with that mode's workers, at seed 0."""
    if mode == "threads":
        explore(Counter, threads, check, modules=[counter_unlocked], budget=5, seed=0)
    else:
        explore_async(Counter, in_asyncio, check, modules=[counter_unlocked], budget=5, seed=0)


def _failure(mode: str, check: Check) -> ProbeFailure:
    """The ProbeFailure that exploring two incrementing workers under ``mode`` raises."""
    __tracebackhide__ = True
    threads = {"worker-1": _increment, "worker-2": _increment}
    in_asyncio = {"worker-1": _increment_async, "worker-2": _increment_async}
    with pytest.raises(ProbeFailure) as caught:
        _explore_in(mode, threads, in_asyncio, check)
    return caught.value


def _headline(failure: ProbeFailure) -> str:
    """What broke: the report up to its first blank line."""
    return str(failure).split("\n\n", 1)[0]


def test_a_check_that_raises_keyerror_is_reported_as_a_broken_invariant_under_threads() -> None:
    failure = _failure("threads", check_with_a_typo)
    assert failure.kind == "invariant", f"a raising check is a broken invariant, got {failure.kind}"
    assert _headline(failure).startswith(KEYERROR_HEADLINE), (
        f"the report should name the exception and the check's line:\n{failure}"
    )
    assert '`assert totals["totl"] >= 1' in _headline(failure), (
        f"the report should quote the check's failing line:\n{failure}"
    )


def test_a_check_that_raises_keyerror_is_reported_as_a_broken_invariant_under_asyncio() -> None:
    failure = _failure("asyncio", check_with_a_typo)
    assert failure.kind == "invariant", f"a raising check is a broken invariant, got {failure.kind}"
    assert _headline(failure).startswith(KEYERROR_HEADLINE), (
        f"the report should name the exception and the check's line, not a raw KeyError:\n{failure}"
    )


@pytest.mark.parametrize("check", [check_with_a_typo, check_that_expects_three_workers])
def test_the_same_broken_check_gives_the_same_report_lines_in_both_modes(check: Check) -> None:
    threads = _failure("threads", check)
    in_asyncio = _failure("asyncio", check)
    assert (threads.kind, _headline(threads)) == (in_asyncio.kind, _headline(in_asyncio)), (
        "the same check must read the same under threads and asyncio:\n"
        f"--- threads ---\n{threads}\n--- asyncio ---\n{in_asyncio}"
    )
    for mode, failure in (("threads", threads), ("asyncio", in_asyncio)):
        text = str(failure)
        assert "\nreplay: " in text, f"the {mode} report should say how to replay it:\n{text}"
        assert ORIGIN.search(text), f"the {mode} report should say how it was found:\n{text}"


@pytest.mark.parametrize("mode", MODES)
def test_an_assertion_in_check_reports_its_message_as_the_broken_invariant(mode: str) -> None:
    failure = _failure(mode, check_that_expects_three_workers)
    assert failure.kind == "invariant", f"{mode}: a failing check is a broken invariant"
    assert _headline(failure).startswith("invariant broken: 2 workers returned, expected 3"), (
        f"{mode}: the report should lead with the check's own message:\n{failure}"
    )


@pytest.mark.parametrize("mode", MODES)
def test_a_worker_that_raises_is_reported_with_its_name_exception_and_line(mode: str) -> None:
    def out_of_stock(counter: Counter) -> None:
        raise ValueError("no stock for 'apples'")

    async def out_of_stock_async(counter: Counter) -> None:
        raise ValueError("no stock for 'apples'")

    with pytest.raises(ProbeFailure) as caught:
        _explore_in(mode, {"shop": out_of_stock}, {"shop": out_of_stock_async})
    failure = caught.value
    assert failure.kind == "exception", f"{mode}: a raising worker is an exception failure"
    assert re.match(
        r"shop raised ValueError: no stock for 'apples' at test_probe_check_errors\.py:\d+ "
        r"`raise ValueError\(\"no stock for 'apples'\"\)`$",
        _headline(failure),
    ), f"{mode}: the report should name the worker, its exception and its line:\n{failure}"
    assert isinstance(failure.__cause__, ValueError), (
        f"{mode}: the worker's own exception should stay chained as the cause"
    )
