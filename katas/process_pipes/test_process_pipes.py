"""Kata `process_pipes`: a two-stage pipeline over multiprocessing.Pipe, ended by end-of-file."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing import context as contexts
from multiprocessing.connection import Connection
from typing import Any

import process_pipes as kata
import pytest
from process_pipes import produce, receive_all, run_two_stage_pipeline, square_stage

# Generous: the pipelines below finish in a fraction of a second (a spawned one in one or two);
# 3 s of silence on a pipe only happens when an end-of-file never comes.
TIMEOUT = 3.0
# How long a test waits for a call that should return at once before it calls it stuck.
STUCK_AFTER = 1.5
SQUARES = [n * n for n in range(10)]
# Numbers whose squares take about 4 KB each as pickles: 40 of them overflow a pipe (64 KiB on
# Linux), so a child that writes them waits until somebody reads.
BIG = 10**5000
STUCK = (
    "no end-of-file reached the reader, so it waited until its timeout: a copy of a write end "
    "stayed open. Under fork each child inherits every pipe end the parent holds when the child "
    "starts (under spawn, every end it is handed), and the parent keeps its own. Close the "
    "parent's copies of both write ends right after starting the children (and, in "
    "square_stage, the squarer's copy of pipe 1's write end)."
)


class Interrupted(BaseException):
    """What a Ctrl-C (KeyboardInterrupt) looks like to the code it interrupts."""


@pytest.fixture(autouse=True)
def reap_children() -> Iterator[None]:
    """Whatever a test leaves behind is killed, so no process outlives it."""
    yield
    for child in multiprocessing.active_children():
        child.kill()
        child.join(2.0)


@pytest.fixture
def start_methods(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The start method of every process started during the test, in order.

    Every way of starting a process (a context's Process, multiprocessing.Process) ends in the
    `_Popen` of the fork, spawn or forkserver process class: each is wrapped to note its name."""
    used: list[str] = []
    for kind in (contexts.ForkProcess, contexts.SpawnProcess, contexts.ForkServerProcess):
        original = kind._Popen

        def noted(process: Any, original: Any = original, name: str = kind._start_method) -> Any:
            used.append(name)
            return original(process)

        monkeypatch.setattr(kind, "_Popen", staticmethod(noted))
    return used


def assert_no_children_left(after: str = "run_two_stage_pipeline returned") -> None:
    __tracebackhide__ = True
    left = multiprocessing.active_children()
    assert not left, (
        f"{len(left)} child process(es) still ran after {after} ({left}): join both children, "
        f"and kill the ones still alive, in a `finally`"
    )


class Call:
    """`function(*args)` in a daemon thread, so that the test can wait for it with a bound."""

    def __init__(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.outcome: list[Any] = []
        self.ended_after: float | None = None
        self._started = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, args=(function, args, kwargs), daemon=True
        )
        self._thread.start()

    def _run(
        self, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        try:
            self.outcome.append(function(*args, **kwargs))
        except BaseException as error:  # judged by the test, in its own thread
            self.outcome.append(error)
        self.ended_after = time.monotonic() - self._started

    def finished_within(self, seconds: float) -> bool:
        self._thread.join(seconds)
        return not self._thread.is_alive()

    def result(self) -> Any:
        """What the call returned, or the exception it raised; NotImplementedError re-raised."""
        __tracebackhide__ = True
        result = self.outcome[0] if self.outcome else None
        if isinstance(result, NotImplementedError):
            raise result
        return result


def read_everything(read_end: Connection) -> list[Any] | None:
    """Every message on `read_end` until end-of-file; None when the pipe stays silent for
    TIMEOUT seconds without ending (the test's own reader, so that it blames nobody else)."""
    received = []
    while read_end.poll(TIMEOUT):
        try:
            received.append(read_end.recv())
        except EOFError:
            return received
    return None


def pipeline(items: Any, *, timeout: float = TIMEOUT, **options: Any) -> list[Any] | None:
    """run_two_stage_pipeline's squares, or None when it raised TimeoutError after waiting
    its timeout (the caller reports that); a TimeoutError long before it fails here."""
    __tracebackhide__ = True
    started = time.monotonic()
    try:
        return run_two_stage_pipeline(items, timeout=timeout, **options)
    except TimeoutError:
        elapsed = time.monotonic() - started
    if elapsed < timeout / 2:
        pytest.fail(too_soon(elapsed, timeout))
    return None


def too_soon(elapsed: float, timeout: float) -> str:
    return (
        f"run_two_stage_pipeline(..., timeout={timeout}) raised TimeoutError after "
        f"{elapsed:.2f} s: receive_all did not wait for the squares. poll() without an "
        f"argument returns at once; poll(timeout) waits up to timeout seconds."
    )


# -- produce ----------------------------------------------------------------------------------


@pytest.mark.clause(1, 2)
def test_produce_sends_every_item_in_order_then_closes_its_end() -> None:
    read_end, write_end = multiprocessing.Pipe(duplex=False)
    try:
        produce(["a", 1, [2, 3]], write_end)
        closed = write_end.closed
        write_end.close()  # so the test's own reader ends, whatever produce did
        received = read_everything(read_end)
    finally:
        read_end.close()
    assert received == ["a", 1, [2, 3]], (
        f"produce(['a', 1, [2, 3]], write_end) sent {received}: send every item, in order"
    )
    assert closed, (
        "produce returned with write_end still open: the reader gets EOFError only once every "
        "copy of the write end is closed, so a producer that keeps its end open never says "
        "'that was all'. Close it after the last send."
    )


@pytest.mark.clause(1)
def test_produce_sleeps_before_each_send_not_after() -> None:
    delay = 0.15
    read_end, write_end = multiprocessing.Pipe(duplex=False)
    arrivals: list[float] = []
    started = time.monotonic()

    def note_arrivals() -> None:
        while read_end.poll(TIMEOUT):
            try:
                read_end.recv()
            except EOFError:
                return
            arrivals.append(time.monotonic() - started)

    reader = threading.Thread(target=note_arrivals, daemon=True)
    reader.start()
    try:
        produce(["first", "second"], write_end, delay)
    finally:
        write_end.close()
        reader.join(TIMEOUT)
        read_end.close()
    assert len(arrivals) == 2, f"produce sent {len(arrivals)} of its 2 items"
    assert arrivals[0] >= delay, (
        f"the first item arrived {arrivals[0]:.3f} s after produce(..., delay={delay}) began: "
        f"produce sent it first and slept afterwards. Sleep `delay` seconds *before* each send, "
        f"so that a stalled producer (a long delay) sends nothing at all."
    )


# -- square_stage -----------------------------------------------------------------------------


@pytest.mark.clause(3, 4)
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
        received = read_everything(second_read)
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
    assert squarer.exitcode == 0, (
        f"the squarer process failed (exit code {squarer.exitcode}) after sending {received}: "
        f"its traceback is printed above, under 'Captured stderr'"
    )
    assert received == [1, 4, 9], f"the squarer sent {received} for 1, 2, 3"


@pytest.mark.clause(3, 5)
def test_square_stage_closes_output_when_its_input_ends() -> None:
    # Here square_stage runs in a thread of the test's process: the write ends it is handed
    # are the only copies, so whatever it leaves open stays open.
    first_read, first_write = multiprocessing.Pipe(duplex=False)
    second_read, second_write = multiprocessing.Pipe(duplex=False)
    for number in (2, 3):
        first_write.send(number)
    call = Call(square_stage, (first_read, first_write), second_write)
    ended = call.finished_within(STUCK_AFTER)
    first_write.close()  # frees a square_stage still waiting for end-of-file from itself
    call.finished_within(TIMEOUT)
    call.result()
    output_closed = second_write.closed
    second_write.close()
    try:
        squares = read_everything(second_read)
    finally:
        first_read.close()
        second_read.close()
    assert ended, (
        f"square_stage was still waiting on pipe 1 {STUCK_AFTER} s after reading its two "
        f"items: the only open copy of pipe 1's write end was its own (input_pipe[1]). Close it "
        f"before the first recv()."
    )
    assert squares == [4, 9], f"square_stage sent {squares} for 2, 3"
    assert output_closed, (
        "square_stage returned with `output` still open: the next stage then never gets "
        "EOFError (in a process, exiting closes it for you, but only at exit). Close output "
        "when EOFError comes."
    )


# -- receive_all ------------------------------------------------------------------------------


@pytest.mark.clause(6)
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


@pytest.mark.clause(7)
def test_receive_all_waits_up_to_its_timeout_for_each_message_not_for_the_whole_call() -> None:
    # Four messages 0.2 s apart: 0.8 s in all, but never more than 0.2 s of silence.
    gap, timeout = 0.2, 0.6
    read_end, write_end = multiprocessing.Pipe(duplex=False)

    def write_slowly() -> None:
        for number in range(4):
            time.sleep(gap)
            write_end.send(number)
        write_end.close()

    writer = threading.Thread(target=write_slowly, daemon=True)
    started = time.monotonic()
    writer.start()
    try:
        received: list[Any] | None = receive_all(read_end, timeout=timeout)
    except TimeoutError:
        received = None  # reported below, outside the `except`, without the traceback
    elapsed = time.monotonic() - started
    writer.join(TIMEOUT)
    read_end.close()
    if received is None and elapsed < gap:
        pytest.fail(
            f"receive_all raised TimeoutError after {elapsed:.2f} s, before the first message "
            f"(due after {gap} s) could come: it did not wait. poll() without an argument "
            f"returns at once; poll(timeout) waits up to timeout seconds."
        )
    assert received is not None, (
        f"receive_all(read_end, timeout={timeout}) raised TimeoutError after {elapsed:.2f} s "
        f"although a message came every {gap} s: the timeout counted the whole call. It bounds "
        f"each wait: call poll(timeout) afresh before every recv()."
    )
    assert received == [0, 1, 2, 3], f"receive_all returned {received} for 0, 1, 2, 3"


@pytest.mark.clause(7, 8)
def test_receive_all_gives_up_with_timeout_error_while_a_write_end_stays_open() -> None:
    read_end, write_end = multiprocessing.Pipe(duplex=False)
    write_end.send("only message")
    call = Call(receive_all, read_end, 0.3)
    blocked = not call.finished_within(2.0)  # the right program gives up after 0.3 s
    write_end.close()  # ends a recv() that is still blocked, with EOFError
    call.finished_within(2.0)
    read_end.close()
    assert not blocked, (
        "receive_all was still blocked 2 s after a call with timeout=0.3: recv() waits forever "
        "while a write end is open. Call read_end.poll(timeout) before each recv()."
    )
    result = call.result()
    assert isinstance(result, TimeoutError), (
        f"receive_all returned {result!r} instead of raising TimeoutError: the write end was "
        f"still open, so more data could still come. A silent pipe is not an ended one; only "
        f"EOFError says the data is over."
    )
    took = call.ended_after or 0.0
    assert took >= 0.25, (
        f"receive_all(read_end, timeout=0.3) raised TimeoutError after {took:.2f} s, "
        f"without waiting its 0.3 s for the next message: poll() without an argument returns "
        f"at once; pass the timeout, poll(timeout)."
    )


# -- run_two_stage_pipeline -------------------------------------------------------------------


@pytest.mark.clause(9, 10, 11)
def test_the_pipeline_squares_every_item_in_order() -> None:
    squares = pipeline(range(10), start_method="fork")
    assert squares is not None, STUCK
    assert squares == SQUARES, f"the pipeline returned {squares}, expected {SQUARES}"
    assert_no_children_left()


@pytest.mark.clause(9, 10)
def test_the_pipeline_starts_its_stages_with_the_chosen_start_method(
    start_methods: list[str],
) -> None:
    squares = pipeline(range(10), start_method="spawn")
    assert squares is not None, STUCK
    assert squares == SQUARES, f"the pipeline returned {squares}, expected {SQUARES}"
    assert start_methods == ["spawn", "spawn"], (
        f"run_two_stage_pipeline(..., start_method='spawn') started processes by "
        f"{start_methods}, not two by spawn: make both children from "
        f"multiprocessing.get_context(start_method), not from multiprocessing.Process (which "
        f"uses the platform's default)"
    )
    assert_no_children_left()


# Python 3.12+ warns when a process with threads forks. The only other thread here is the
# test's own (it bounds the call): nothing the learner could change, so no warning.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.clause(11)
def test_the_pipeline_reads_while_the_children_run_so_a_full_pipe_cannot_block_them() -> None:
    items = [BIG + n for n in range(40)]  # their squares overflow pipe 2 several times over
    # The right program needs a few hundredths of a second. One that joins a child blocked on
    # a full pipe waits out that join's timeout (1 s each) or, without one, forever.
    call = Call(run_two_stage_pipeline, items, start_method="fork", timeout=1.0)
    finished = call.finished_within(3.0)
    if not finished:
        for child in multiprocessing.active_children():
            child.kill()  # frees a join() that waits for a child blocked on a full pipe
        call.finished_within(TIMEOUT)
    result = call.result()
    joined_first = (
        "the children were joined before their output was read: a child blocks on send() "
        "while the pipe is full (64 KB here, the squares of 40 big numbers are about 160 KB), "
        "so join() waits for it until its timeout, or forever. Read with receive_all first, "
        "then join."
    )
    assert finished, f"run_two_stage_pipeline was still running after 3 s: {joined_first}"
    took = call.ended_after or 0.0
    timed_out = isinstance(result, TimeoutError)
    assert not timed_out, too_soon(took, 1.0) if took < 0.5 else STUCK
    assert not isinstance(result, BaseException), f"run_two_stage_pipeline raised {result!r}"
    assert took < 1.0, f"run_two_stage_pipeline took {took:.1f} s: {joined_first}"
    assert result == [n * n for n in items], "the squares of the 40 big numbers came back wrong"
    assert_no_children_left()


@pytest.mark.clause(12, 13)
def test_a_stalled_producer_makes_the_pipeline_raise_timeout_error_and_leave_no_child() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        # The producer waits 30 s before each item; the reader gives up after 0.3 s of silence.
        run_two_stage_pipeline(range(3), delay=30.0, start_method="fork", timeout=0.3)
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT, f"run_two_stage_pipeline took {elapsed:.1f} s to give up after 0.3 s"
    assert_no_children_left("run_two_stage_pipeline raised TimeoutError")


@pytest.mark.clause(13)
def test_an_interrupted_pipeline_leaves_no_child_running(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(read_end: Connection, timeout: float) -> list[Any]:
        time.sleep(0.05)  # both children have started and wait: the producer for 30 s
        raise Interrupted("Ctrl-C while the pipeline was reading")

    monkeypatch.setattr(kata, "receive_all", interrupted)
    try:
        run_two_stage_pipeline(range(3), delay=30.0, start_method="fork", timeout=0.3)
    except Interrupted:
        pass  # what should happen; the children are judged below
    except TimeoutError:
        pytest.fail(
            "the test replaced receive_all with one that is interrupted (as by Ctrl-C), but "
            "run_two_stage_pipeline never called it: read pipe 2 with receive_all(read_end, "
            "timeout)"
        )
    else:
        pytest.fail("run_two_stage_pipeline returned although reading pipe 2 was interrupted")
    assert_no_children_left(
        "an interruption (a KeyboardInterrupt-like exception from receive_all) ended "
        "run_two_stage_pipeline; killing them only on TimeoutError is not enough"
    )
