"""Kata `process_queues`: a pipeline of consumer processes fed through a multiprocessing.Queue."""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.process
import queue
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from process_queues import (
    big_block,
    meet,
    read_marker,
    run_pipeline,
    signal_and_square,
    sleep_then_return,
    square,
)

from plugins import proctree

T = TypeVar("T")
# Generous: the pipelines below finish in a fraction of a second (spawned ones in one or two);
# 5 s only runs out when something is really stuck, even on a busy machine.
TIMEOUT = 5.0
# Short, for the tests in which a wrong program waits for something that never comes: the
# right program finishes in milliseconds there, a wrong one fails after this.
SHORT_TIMEOUT = 3.0
# How long the item of a stuck consumer takes: far past the tests' short timeouts, short
# enough that a pipeline without a timeout returns (late) instead of hanging the test.
STUCK = 2.0


@pytest.fixture(autouse=True)
def children_before() -> Iterator[set[int]]:
    """The children that existed before the test; whatever the test leaves behind is killed."""
    yield set(proctree.own_children())
    for child in multiprocessing.active_children():
        child.kill()
        child.join(2.0)


def assert_no_children_left(before: set[int], call: str = "run_pipeline") -> None:
    """Right after `call` returned or raised: every consumer has ended and was joined."""
    __tracebackhide__ = True
    left = {pid: state for pid, state in proctree.own_children().items() if pid not in before}
    running = sorted(pid for pid, state in left.items() if state != "Z")
    unjoined = sorted(pid for pid, state in left.items() if state == "Z")
    assert not left, (
        f"{call} left {len(left)} consumer process(es) behind: {len(running)} still running "
        f"(pids {running}), {len(unjoined)} ended but never joined (pids {unjoined}: zombies "
        f"until someone waits for them). Join every consumer; in a `finally`, kill() each one "
        f"still alive and then join() it: kill() only sends the signal"
    )


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the processes started during the test, in order."""
    names: list[str] = []
    real_start = multiprocessing.process.BaseProcess.start

    def counted_start(self: multiprocessing.process.BaseProcess) -> None:
        names.append(self.name)
        real_start(self)

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", counted_start)
    return names


def attempt(call: Callable[[], T], what: str) -> tuple[T | None, Exception | None]:
    """What `call()` returned, or the exception it raised, with the classic slips explained."""
    __tracebackhide__ = True
    try:
        return call(), None
    except NotImplementedError:
        raise
    except queue.Empty:
        pytest.fail(
            f"{what} raised queue.Empty: that is what Queue.get(timeout=...) raises when its "
            f"time is up. The contract says TimeoutError: catch queue.Empty and raise "
            f"TimeoutError (`raise TimeoutError(...) from None`)"
        )
    except Exception as error:
        return None, error


def pipeline(*args: Any, **kwargs: Any) -> list[Any]:
    """run_pipeline, with a TimeoutError turned into a list of the usual causes."""
    __tracebackhide__ = True
    results, error = attempt(lambda: run_pipeline(*args, **kwargs), "run_pipeline")
    if isinstance(error, TimeoutError):
        pytest.fail(
            f"run_pipeline raised TimeoutError ({error}), although this pipeline needs well "
            f"under a second. The usual causes: a consumer quit while the queue was still "
            f"empty (only STOP means the work is over); a consumer never got a STOP (one per "
            f"consumer); or you joined the consumers before reading all their results."
        )
    if error is not None:
        raise error
    assert results is not None
    return results


@pytest.mark.clause(1, 2, 8)
def test_every_item_is_processed_and_results_keep_the_source_order(
    children_before: set[int],
) -> None:
    results = pipeline(square, range(12), consumers=3, start_method="fork", timeout=TIMEOUT)
    assert results == [n * n for n in range(12)], (
        f"run_pipeline(square, range(12)) returned {results}: every item must be processed "
        f"once, and its result placed at the item's index (results arrive in any order)"
    )
    assert_no_children_left(children_before)


@pytest.mark.clause(1)
def test_spawned_consumers_import_the_module_afresh(
    monkeypatch: pytest.MonkeyPatch, children_before: set[int]
) -> None:
    monkeypatch.setattr("process_queues.MARKER", "changed in the parent")
    results = pipeline(read_marker, range(6), consumers=3, start_method="spawn", timeout=TIMEOUT)
    assert results == ["as imported"] * 6, f"spawned consumers read MARKER as {results}: " + (
        "they were forked and saw the parent's change. Create the queues and the "
        "consumers from multiprocessing.get_context(start_method)"
        if "changed in the parent" in results
        else "every one of the 6 items must be processed once"
    )
    assert_no_children_left(children_before)


@pytest.mark.clause(1)
def test_exactly_as_many_consumers_as_asked_for_work_at_the_same_time(
    started: list[str], children_before: set[int]
) -> None:
    barrier = multiprocessing.get_context("fork").Barrier(3)
    results = pipeline(
        functools.partial(meet, barrier),
        range(3),
        consumers=3,
        start_method="fork",
        timeout=SHORT_TIMEOUT,
    )
    assert len(started) == 3, (
        f"run_pipeline(..., consumers=3) started {len(started)} processes ({started}): start "
        f"exactly `consumers` of them"
    )
    assert results == ["met"] * 3, (
        f"three items that each wait for the other two at a barrier gave {results}: the 3 "
        f"consumers did not work at the same time"
    )
    assert_no_children_left(children_before)


@pytest.mark.clause(1)
def test_two_consumers_work_when_no_number_is_given(
    started: list[str], children_before: set[int]
) -> None:
    barrier = multiprocessing.get_context("fork").Barrier(2)
    results = pipeline(
        functools.partial(meet, barrier), range(2), start_method="fork", timeout=SHORT_TIMEOUT
    )
    assert len(started) == 2, (
        f"run_pipeline with no `consumers` started {len(started)} processes ({started}): the "
        f"default is consumers=2"
    )
    assert results == ["met"] * 2, f"two items that wait for each other gave {results}"
    assert_no_children_left(children_before)


@pytest.mark.clause(3)
def test_consumers_are_working_while_the_source_is_still_producing(
    children_before: set[int],
) -> None:
    first_done = multiprocessing.get_context("fork").Event()
    waited_in_vain: list[bool] = []

    def source() -> Iterator[int]:
        yield 1
        # The right program has a consumer on item 1 within milliseconds; 3 s runs out only
        # when no consumer is running yet.
        waited_in_vain.append(not first_done.wait(SHORT_TIMEOUT))
        yield 2

    function = functools.partial(signal_and_square, first_done)
    results = pipeline(function, source(), consumers=2, start_method="fork", timeout=TIMEOUT)
    assert waited_in_vain == [False], (
        "the source waited in vain for item 1 to be processed: no consumer was running while "
        "the source still produced. Start the consumers first, then feed them item by item."
    )
    assert results == [1, 4], f"got {results}, expected [1, 4]"
    assert_no_children_left(children_before)


@pytest.mark.clause(9)
def test_consumers_of_a_slow_source_wait_for_items_instead_of_quitting(
    children_before: set[int],
) -> None:
    def slow_source() -> Iterator[int]:
        time.sleep(0.5)  # the consumers start well within this half second
        yield from range(4)

    results, error = attempt(
        lambda: run_pipeline(
            square, slow_source(), consumers=2, start_method="fork", timeout=SHORT_TIMEOUT
        ),
        "run_pipeline",
    )
    assert not isinstance(error, TimeoutError), (
        "the results never came: the consumers quit while the queue was still empty, before "
        "the slow source put its first item. An empty queue only means 'nothing yet' (and "
        "multiprocessing's empty() is unreliable anyway): block in get() and stop only at STOP."
    )
    assert error is None, f"run_pipeline raised {error!r}"
    assert results == [0, 1, 4, 9], f"got {results}, expected [0, 1, 4, 9]"
    assert_no_children_left(children_before)


@pytest.mark.clause(4)
def test_every_consumer_receives_its_own_stop_and_ends(children_before: set[int]) -> None:
    results, error = attempt(
        lambda: run_pipeline(
            square, range(6), consumers=3, start_method="fork", timeout=SHORT_TIMEOUT
        ),
        "run_pipeline",
    )
    assert not isinstance(error, TimeoutError), (
        f"run_pipeline raised TimeoutError ({error}) although 6 small items take "
        f"milliseconds: a consumer never stopped. Each consumer leaves at the first STOP it "
        f"takes, so 3 consumers need 3 STOPs, put after the last item."
    )
    assert error is None, f"run_pipeline raised {error!r}"
    assert results == [n * n for n in range(6)], f"got {results}"
    assert_no_children_left(children_before)


@pytest.mark.clause(5)
def test_results_larger_than_a_pipe_do_not_deadlock_the_pipeline(
    children_before: set[int],
) -> None:
    started = time.monotonic()
    results, error = attempt(
        lambda: run_pipeline(
            big_block, range(6), consumers=2, start_method="fork", timeout=SHORT_TIMEOUT
        ),
        "run_pipeline",
    )
    assert not isinstance(error, TimeoutError), (
        f"run_pipeline gave up after {time.monotonic() - started:.1f} s on six 256 KiB "
        f"results: it waited for the consumers to end before reading their results. A "
        f"process cannot end while data it put on a queue is still unread (a pipe holds only "
        f"64 KiB), so it waited for you while you waited for it. Read every result, then join."
    )
    assert error is None and results is not None, f"run_pipeline raised {error!r}"
    assert [block[:1] for block in results] == [bytes([n]) for n in range(6)], (
        "the 256 KiB results came back wrong or out of order"
    )
    assert_no_children_left(children_before)


@pytest.mark.clause(2)
def test_results_keep_the_source_order_even_when_the_first_item_finishes_last(
    children_before: set[int],
) -> None:
    # The first item takes 0.3 s, the others no time: another consumer reports them first on
    # any machine that is not frozen for 0.3 s.
    source = [("first", 0.3), ("second", 0.0), ("third", 0.0)]
    results = pipeline(sleep_then_return, source, consumers=3, start_method="fork", timeout=TIMEOUT)
    assert results == ["first", "second", "third"], (
        f"got {results}: the first item's result arrived last, so results kept in arrival order "
        f"come out shuffled. Each result carries its item's index: place it there."
    )
    assert_no_children_left(children_before)


@pytest.mark.clause(6, 7)
def test_a_stuck_consumer_makes_run_pipeline_raise_timeout_error_and_leave_no_child(
    children_before: set[int],
) -> None:
    started = time.monotonic()
    results, error = attempt(
        lambda: run_pipeline(
            sleep_then_return, [("late", STUCK)], consumers=1, start_method="fork", timeout=0.3
        ),
        "run_pipeline(timeout=0.3)",
    )
    elapsed = time.monotonic() - started
    assert isinstance(error, TimeoutError), (
        f"an item that takes {STUCK:g} s, with timeout=0.3, made run_pipeline "
        f"{f'raise {error!r}' if error else f'return {results}'} after {elapsed:.1f} s, not "
        f"raise TimeoutError after 0.3 s: get() every result with what is left of the "
        f"timeout, and raise TimeoutError when it runs out"
    )
    # The right program gives up after 0.3 s; one that waits for the result without a timeout
    # only when the item is done, after STUCK seconds.
    assert elapsed < STUCK * 0.75, (
        f"run_pipeline(timeout=0.3) raised TimeoutError only after {elapsed:.1f} s, once the "
        f"stuck item had finished anyway: it waited for the result without a timeout. get() "
        f"every result with what is left of the timeout"
    )
    assert_no_children_left(children_before, "run_pipeline, giving up,")


@pytest.mark.clause(6)
def test_the_timeout_is_one_deadline_for_the_whole_call_not_one_per_result(
    children_before: set[int],
) -> None:
    # The results come 0.1 s apart; the last one after 0.3 s, past the 0.25 s timeout. Had
    # each result a timeout of its own, 0.25 s would be plenty for every one of them.
    source = [("first", 0.1), ("second", 0.2), ("third", 0.3)]
    started = time.monotonic()
    results, error = attempt(
        lambda: run_pipeline(
            sleep_then_return, source, consumers=3, start_method="fork", timeout=0.25
        ),
        "run_pipeline(timeout=0.25)",
    )
    elapsed = time.monotonic() - started
    assert isinstance(error, TimeoutError), (
        f"three items whose results come after 0.1, 0.2 and 0.3 s, with timeout=0.25, made "
        f"run_pipeline {f'raise {error!r}' if error else f'return {results}'} after "
        f"{elapsed:.2f} s: the timeout was counted afresh for each result, so the deadline "
        f"kept moving. Compute `deadline = time.monotonic() + timeout` once, at the start of "
        f"the call, and give every get() and join() what is left of it"
    )
    assert_no_children_left(children_before, "run_pipeline, giving up,")
