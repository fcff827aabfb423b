"""Kata `process_queues`: a pipeline of consumer processes fed through a multiprocessing.Queue."""

from __future__ import annotations

import functools
import multiprocessing
import time
from collections.abc import Iterator
from typing import Any

import pytest
from process_queues import (
    big_block,
    run_pipeline,
    signal_and_square,
    sleep_then_return,
    square,
)

# Generous: the pipelines below finish in a fraction of a second (spawned ones in one or two);
# 5 s only runs out when something is really stuck, even on a busy machine.
TIMEOUT = 5.0
# Short, for the tests in which a wrong program waits for something that never comes: the
# right program finishes in milliseconds there, a wrong one fails after this.
SHORT_TIMEOUT = 3.0


@pytest.fixture(autouse=True)
def reap_children() -> Iterator[None]:
    """Whatever a test leaves behind is killed, so no process outlives it."""
    yield
    for child in multiprocessing.active_children():
        child.kill()
        child.join(2.0)


def assert_no_children_left() -> None:
    __tracebackhide__ = True
    left = multiprocessing.active_children()
    assert not left, (
        f"{len(left)} consumer process(es) still ran after run_pipeline returned ({left}): "
        f"join every consumer, and kill the ones still alive, in a `finally`"
    )


def pipeline(*args: Any, **kwargs: Any) -> list[Any]:
    """run_pipeline, with a TimeoutError turned into a list of the usual causes."""
    __tracebackhide__ = True
    try:
        return run_pipeline(*args, **kwargs)
    except TimeoutError as error:
        problem = str(error)  # reported below, outside the `except`, without the traceback
    pytest.fail(
        f"run_pipeline raised TimeoutError ({problem}), although this pipeline needs well under "
        f"a second. The usual causes: a consumer quit while the queue was still empty (only "
        f"STOP means the work is over); a consumer never got a STOP (one per consumer); or "
        f"you joined the consumers before reading all their results."
    )


def test_spawned_consumers_process_every_item_and_results_keep_the_source_order() -> None:
    results = pipeline(square, range(12), consumers=3, start_method="spawn", timeout=TIMEOUT)
    assert results == [n * n for n in range(12)], (
        f"run_pipeline(square, range(12)) returned {results}: every item must be processed "
        f"once, and its result placed at the item's index (results arrive in any order)"
    )
    assert_no_children_left()


def test_consumers_are_working_while_the_source_is_still_producing() -> None:
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
    assert_no_children_left()


def test_consumers_of_a_slow_source_wait_for_items_instead_of_quitting() -> None:
    def slow_source() -> Iterator[int]:
        time.sleep(0.5)  # the consumers start well within this half second
        yield from range(4)

    try:
        results = run_pipeline(
            square, slow_source(), consumers=2, start_method="fork", timeout=SHORT_TIMEOUT
        )
    except TimeoutError:
        results = None  # reported below, outside the `except`, without the traceback
    if results is None:
        pytest.fail(
            "the results never came: the consumers quit while the queue was still empty, before "
            "the slow source put its first item. An empty queue only means 'nothing yet' (and "
            "multiprocessing's empty() is unreliable anyway): block in get() and stop only at STOP."
        )
    assert results == [0, 1, 4, 9], f"got {results}, expected [0, 1, 4, 9]"
    assert_no_children_left()


def test_every_consumer_receives_its_own_stop_and_ends() -> None:
    try:
        results = run_pipeline(
            square, range(6), consumers=3, start_method="fork", timeout=SHORT_TIMEOUT
        )
    except TimeoutError as error:
        results, problem = None, str(error)  # reported below, without the traceback
    if results is None:
        pytest.fail(
            f"run_pipeline raised TimeoutError ({problem}) although 6 small items take "
            f"milliseconds: a consumer never stopped. Each consumer leaves at the first STOP it "
            f"takes, so 3 consumers need 3 STOPs, put after the last item."
        )
    assert results == [n * n for n in range(6)], f"got {results}"
    assert_no_children_left()


def test_results_larger_than_a_pipe_do_not_deadlock_the_pipeline() -> None:
    started = time.monotonic()
    try:
        results = run_pipeline(
            big_block, range(6), consumers=2, start_method="fork", timeout=SHORT_TIMEOUT
        )
    except TimeoutError:
        results = None  # reported below, outside the `except`, without the traceback
    if results is None:
        pytest.fail(
            f"run_pipeline gave up after {time.monotonic() - started:.1f} s on six 256 KiB "
            f"results: it waited for the consumers to end before reading their results. A "
            f"process cannot end while data it put on a queue is still unread (a pipe holds only "
            f"64 KiB), so it waited for you while you waited for it. Read every result, then join."
        )
    assert [block[:1] for block in results] == [bytes([n]) for n in range(6)], (
        "the 256 KiB results came back wrong or out of order"
    )
    assert_no_children_left()


def test_results_keep_the_source_order_even_when_the_first_item_finishes_last() -> None:
    # The first item takes 0.6 s, the others no time: another consumer reports them first on
    # any machine that is not frozen for more than half a second.
    source = [("first", 0.6), ("second", 0.0), ("third", 0.0)]
    results = pipeline(sleep_then_return, source, consumers=3, start_method="fork", timeout=TIMEOUT)
    assert results == ["first", "second", "third"], (
        f"got {results}: the first item's result arrived last, so results kept in arrival order "
        f"come out shuffled. Each result carries its item's index: place it there."
    )
    assert_no_children_left()


def test_a_stuck_consumer_makes_run_pipeline_raise_timeout_error_and_leave_no_child() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        run_pipeline(
            sleep_then_return, [("late", 60.0)], consumers=1, start_method="fork", timeout=0.5
        )
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT, f"run_pipeline took {elapsed:.1f} s to give up after 0.5 s"
    assert_no_children_left()
