"""Kata `process_pipes`: a two-stage pipeline over `multiprocessing.Pipe`, ended by end-of-file.

The pipeline: a producer process sends items into pipe 1; a squarer process receives them
from pipe 1 and sends their squares into pipe 2; the parent receives the squares from pipe 2.
Nobody sends an "end" message: each stage learns that the data is over when `recv()` raises
`EOFError`, which happens only once *every* copy of the pipe's write end is closed. Under
`fork` each child inherits a copy of every end the parent holds when the child starts, and
under `spawn` each child gets a copy of every end it is handed.

Contract (the tests check each point):

- `produce(items, write_end, delay=0.0)` runs in the producer's process.
  §1 `produce` sends every item of `items` to `write_end`, in order, sleeping `delay` seconds
  before each send (not after it).
  §2 `produce` closes `write_end` once every item is sent: that close is what tells the
  reader "that was all".
- `square_stage(input_pipe, output)` runs in the squarer's process; `input_pipe` is pipe 1's
  `(read_end, write_end)`.
  §3 `square_stage` closes its copy of pipe 1's write end (`input_pipe[1]`) before its first
  `recv()`, or it waits for end-of-file from itself forever.
  §4 `square_stage` receives items from pipe 1's read end until `EOFError`, sending each
  item's square to `output`, in order.
  §5 `square_stage` closes `output` when `EOFError` comes, passing the end of the data on to
  the next stage.
- `receive_all(read_end, timeout)`:
  §6 `receive_all` returns every message received on `read_end` until `EOFError`, in order.
  §7 `receive_all` waits at most `timeout` seconds for *each* message (`poll(timeout)` before
  every `recv()`): the limit is per message, not for the whole call, so a slow but steady
  writer is read to its end.
  §8 `receive_all` raises `TimeoutError` when `timeout` seconds pass with neither data nor
  end-of-file: a silent pipe is not an ended one, so it never returns a partial list.
- `run_two_stage_pipeline(items, *, delay=0.0, start_method="fork", timeout=5.0)`:
  §9 `run_two_stage_pipeline` starts the producer, `produce(items, pipe 1's write end, delay)`,
  and the squarer, `square_stage((pipe 1's read end, pipe 1's write end), pipe 2's write end)`,
  as processes of the `start_method` context, linked by two one-way pipes
  (`Pipe(duplex=False)` returns `(read_end, write_end)`).
  §10 `run_two_stage_pipeline` closes the parent's own copies of both write ends right after
  starting the children.
  §11 `run_two_stage_pipeline` returns `receive_all(pipe 2's read end, timeout)`, read while the
  children run, and joins the children only after that: a child that has written more than a
  pipe holds waits until somebody reads, so joining it first waits forever.
  §12 `run_two_stage_pipeline` raises `TimeoutError` when `receive_all` does.
  §13 `run_two_stage_pipeline` leaves no child running when it returns or raises, whatever
  ended it (a timeout, or an interruption such as `KeyboardInterrupt`): kill and join the
  children that are still alive in a `finally`.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterable
from multiprocessing.connection import Connection
from typing import Any, Literal

# The start methods a caller may choose (`fork` and `forkserver` exist on POSIX only).
StartMethod = Literal["spawn", "fork", "forkserver"]


def produce(items: Iterable[Any], write_end: Connection, delay: float = 0.0) -> None:
    """Runs in the producer: send every item (after `delay` s each), then close the end."""
    for item in items:
        time.sleep(delay)
        write_end.send(item)
    # Closing is how the producer says "that was all": the reader then gets EOFError.
    write_end.close()


def square_stage(input_pipe: tuple[Connection, Connection], output: Connection) -> None:
    """Runs in the squarer: square everything from pipe 1 into `output` until end-of-file."""
    read_end, write_end = input_pipe
    # Our own copy of pipe 1's write end would keep EOF from ever reaching us.
    write_end.close()
    while True:
        try:
            item = read_end.recv()
        except EOFError:
            break
        output.send(item * item)
    # Passing end-of-file on to the next stage.
    output.close()


def receive_all(read_end: Connection, timeout: float) -> list[Any]:
    """Every message until end-of-file; TimeoutError if the pipe is silent for `timeout` s."""
    received: list[Any] = []
    while True:
        # poll() returns True for data *and* for end-of-file; False means silence.
        if not read_end.poll(timeout):
            raise TimeoutError(
                f"nothing arrived for {timeout} s and the pipe was not closed: a copy of its "
                f"write end is still open somewhere"
            )
        try:
            received.append(read_end.recv())
        except EOFError:
            return received


def run_two_stage_pipeline(
    items: Iterable[Any],
    *,
    delay: float = 0.0,
    start_method: StartMethod = "fork",
    timeout: float = 5.0,
) -> list[Any]:
    """Squares of `items`, computed by a producer and a squarer process linked by pipes."""
    context = multiprocessing.get_context(start_method)
    first_read, first_write = context.Pipe(duplex=False)
    second_read, second_write = context.Pipe(duplex=False)
    # (typeshed's BaseContext lacks `Process`, which every real context has: hence the ignores)
    producer = context.Process(target=produce, args=(items, first_write, delay))  # type: ignore[attr-defined]
    squarer = context.Process(  # type: ignore[attr-defined]
        target=square_stage, args=((first_read, first_write), second_write)
    )
    children = [producer, squarer]
    try:
        for child in children:
            child.start()
        # The children hold their own copies now; ours would keep EOF from both readers.
        first_write.close()
        second_write.close()
        squares = receive_all(second_read, timeout)
        for child in children:
            child.join(timeout)
        return squares
    finally:
        # Whatever happened, no child outlives this call.
        for child in children:
            if child.is_alive():
                child.kill()
                child.join()
        first_read.close()
        second_read.close()
