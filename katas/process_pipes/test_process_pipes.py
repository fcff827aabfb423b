"""Kata `process_pipes`: a two-stage pipeline over multiprocessing.Pipe, ended by end-of-file."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from process_pipes import receive_all, run_two_stage_pipeline, square_stage

# Generous: the pipelines below finish in a fraction of a second (a spawned one in one or two);
# 3 s of silence on a pipe only happens when an end-of-file never comes.
TIMEOUT = 3.0
SQUARES = [n * n for n in range(10)]
STUCK = (
    "no end-of-file reached the reader, so it waited until its timeout: a copy of a write end "
    "stayed open. Under fork each child inherits every pipe end the parent holds when the child "
    "starts (under spawn, every end it is handed), and the parent keeps its own. Close the "
    "parent's copies of both write ends right after starting the children (and, in "
    "square_stage, the squarer's copy of pipe 1's write end)."
)


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
        f"{len(left)} child process(es) still ran after run_two_stage_pipeline returned "
        f"({left}): join both children, and kill the ones still alive, in a `finally`"
    )


def test_receive_all_returns_every_message_once_the_write_end_is_closed() -> None:
    read_end, write_end = multiprocessing.Pipe(duplex=False)
    for message in ("a", 1, [2, 3]):
        write_end.send(message)
    write_end.close()
    try:
        received = receive_all(read_end, timeout=TIMEOUT)
    finally:
        read_end.close()
    assert received == ["a", 1, [2, 3]], (
        f"receive_all returned {received}: keep every message, in order, until recv() raises "
        f"EOFError"
    )


def test_receive_all_gives_up_with_timeout_error_while_a_write_end_stays_open() -> None:
    read_end, write_end = multiprocessing.Pipe(duplex=False)
    write_end.send("only message")
    outcome: list[Any] = []

    def call() -> None:
        try:
            outcome.append(receive_all(read_end, timeout=0.3))
        except BaseException as error:  # judged below, in the test's own thread
            outcome.append(error)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(2.0)  # the right program gives up after 0.3 s
    blocked = caller.is_alive()
    write_end.close()  # ends a recv() that is still blocked, with EOFError
    caller.join(2.0)
    read_end.close()
    assert not blocked, (
        "receive_all was still blocked 2 s after a call with timeout=0.3: recv() waits forever "
        "while a write end is open. Call read_end.poll(timeout) before each recv()."
    )
    result = outcome[0] if outcome else None
    if isinstance(result, NotImplementedError):
        raise result
    assert isinstance(result, TimeoutError), (
        f"receive_all returned {result!r} instead of raising TimeoutError: the write end was "
        f"still open, so more data could still come. A silent pipe is not an ended one; only "
        f"EOFError says the data is over."
    )


def test_the_squarer_closes_its_copy_of_the_input_write_end_and_ends_at_end_of_file() -> None:
    first_read, first_write = multiprocessing.Pipe(duplex=False)
    second_read, second_write = multiprocessing.Pipe(duplex=False)
    for number in (1, 2, 3):
        first_write.send(number)
    squarer = multiprocessing.get_context("fork").Process(
        target=square_stage, args=((first_read, first_write), second_write)
    )
    squarer.start()
    # The squarer holds its own copies now; the test closes all of its copies of the write ends.
    first_write.close()
    second_write.close()
    received = None
    try:
        received = receive_all(second_read, timeout=TIMEOUT)
    except TimeoutError:
        pass  # reported below, outside the `except`, without the traceback
    finally:
        if received is None:
            squarer.kill()  # a squarer stuck waiting for itself never ends on its own
        squarer.join(TIMEOUT)
        first_read.close()
        second_read.close()
    assert received is not None, (
        "the squarer never passed end-of-file on: it was still waiting on pipe 1 after every "
        "other copy of pipe 1's write end was closed. Its own copy (the second item of "
        "input_pipe) keeps it waiting for itself: close it before the first recv(), then close "
        "output when EOFError comes."
    )
    assert received == [1, 4, 9], f"the squarer sent {received} for 1, 2, 3"
    assert not squarer.is_alive(), "the squarer was still running after end-of-file"


def test_the_pipeline_squares_every_item_in_order() -> None:
    try:
        squares = run_two_stage_pipeline(range(10), start_method="fork", timeout=TIMEOUT)
    except TimeoutError:
        squares = None  # reported below, outside the `except`, without the traceback
    assert squares is not None, STUCK
    assert squares == SQUARES, f"the pipeline returned {squares}, expected {SQUARES}"
    assert_no_children_left()


def test_the_pipeline_works_with_spawned_stages() -> None:
    try:
        squares = run_two_stage_pipeline(range(10), start_method="spawn", timeout=TIMEOUT)
    except TimeoutError:
        squares = None  # reported below, outside the `except`, without the traceback
    assert squares is not None, STUCK
    assert squares == SQUARES, f"the pipeline returned {squares}, expected {SQUARES}"
    assert_no_children_left()


def test_a_stalled_producer_makes_the_pipeline_raise_timeout_error_and_leave_no_child() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        # The producer waits 30 s before each item; the reader gives up after 0.3 s of silence.
        run_two_stage_pipeline(range(3), delay=30.0, start_method="fork", timeout=0.3)
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT, f"run_two_stage_pipeline took {elapsed:.1f} s to give up after 0.3 s"
    assert_no_children_left()
