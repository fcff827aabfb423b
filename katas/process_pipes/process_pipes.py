"""Kata `process_pipes`: a two-stage pipeline over `multiprocessing.Pipe`, ended by end-of-file.

The pipeline: a producer process sends items into pipe 1; a squarer process receives them
from pipe 1 and sends their squares into pipe 2; the parent receives the squares from pipe 2.
Nobody sends an "end" message: each stage learns that the data is over when `recv()` raises
`EOFError`, which happens only once *every* copy of the pipe's write end is closed. Under
`fork` each child inherits a copy of every end the parent holds when the child starts, and
under `spawn` each child gets a copy of every end it is handed.

Contract (the tests check each point):

- `produce(items, write_end, delay=0.0)` (the producer's process) sends each item, sleeping
  `delay` seconds before each send, then closes `write_end`.
- `square_stage(input_pipe, output)` (the squarer's process): `input_pipe` is pipe 1's
  `(read_end, write_end)`. It closes its copy of `write_end` first (else it would wait for
  itself forever), then receives items until `EOFError`, sending each item's square to
  `output`, and finally closes `output`.
- `receive_all(read_end, timeout)` returns every message received on `read_end` until
  `EOFError`, in order. Before each `recv()` it waits at most `timeout` seconds for data
  (`poll(timeout)`); when none comes and the pipe is not closed either, it raises
  `TimeoutError`: a silent pipe is not an ended one, so it never returns a partial list.
- `run_two_stage_pipeline(items, *, delay=0.0, start_method="fork", timeout=5.0)` builds the
  two one-way pipes (`Pipe(duplex=False)` returns `(read_end, write_end)`), starts the producer
  and the squarer, closes the parent's own copies of both write ends, and returns
  `receive_all(pipe 2's read end, timeout)` once both children are joined. On a timeout it
  kills both children and raises `TimeoutError`; it never leaves a child running.
"""

from __future__ import annotations

import multiprocessing  # noqa: F401  (imported for you: your code will need it)
import time  # noqa: F401  (imported for you: your code will need it)
from collections.abc import Iterable
from multiprocessing.connection import Connection
from typing import Any, Literal

# The start methods a caller may choose (`fork` and `forkserver` exist on POSIX only).
StartMethod = Literal["spawn", "fork", "forkserver"]


def produce(items: Iterable[Any], write_end: Connection, delay: float = 0.0) -> None:
    """Runs in the producer: send every item (after `delay` s each), then close the end."""
    # TODO(kata): for each item: sleep `delay`, then write_end.send(item); finally close it.
    raise NotImplementedError


def square_stage(input_pipe: tuple[Connection, Connection], output: Connection) -> None:
    """Runs in the squarer: square everything from pipe 1 into `output` until end-of-file."""
    # TODO(kata): close your copy of pipe 1's write end; recv() until EOFError, sending each
    # item's square to output; then close output.
    raise NotImplementedError


def receive_all(read_end: Connection, timeout: float) -> list[Any]:
    """Every message until end-of-file; TimeoutError if the pipe is silent for `timeout` s."""
    # TODO(kata): loop: if not read_end.poll(timeout), raise TimeoutError; else recv() and
    # keep the message, returning the list when recv() raises EOFError.
    raise NotImplementedError


def run_two_stage_pipeline(
    items: Iterable[Any],
    *,
    delay: float = 0.0,
    start_method: StartMethod = "fork",
    timeout: float = 5.0,
) -> list[Any]:
    """Squares of `items`, computed by a producer and a squarer process linked by pipes."""
    # TODO(kata): two Pipe(duplex=False) from the context; start the producer and the squarer;
    # close your own copies of both write ends; receive_all from pipe 2; join; in a `finally`,
    # kill and join any child still alive and close the read ends.
    raise NotImplementedError
