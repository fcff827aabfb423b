"""Kata `process_queues`: a pipeline of consumer processes fed through a `multiprocessing.Queue`.

Contract (the tests check each point):

- §1 `run_pipeline(function, source, *, consumers=2, start_method="fork", timeout=10.0)`
  returns `[function(item) for item in source]`, computed by `consumers` child processes
  (exactly that many, all working at the same time) that share one task queue and are
  started with `start_method`.
  §2 `run_pipeline` returns the results in the order of `source`, whatever order the
  consumers finish them in.
  §3 `run_pipeline` starts the consumers *first*, then feeds the items of `source` into the
  task queue one by one as `(index, item)` pairs. `source` may be slow (a generator that takes
  its time): the consumers must already be working while it still produces.
  §4 After the last item `run_pipeline` puts one `STOP` per consumer: each consumer stops at
  the first `STOP` it takes, so one `STOP` stops exactly one consumer.
  §5 `run_pipeline` reads every result *before* joining the consumers: a child cannot finish
  while data it put on a queue still waits to be read.
  §6 When a result, or a consumer's exit, does not come within `timeout` seconds of the call
  (one deadline for the whole call, not one per result), `run_pipeline` kills every consumer
  and raises `TimeoutError`.
  §7 `run_pipeline` joins every consumer before it returns or raises: it never leaves a child
  running, nor an ended one unjoined.
- §8 `consume(function, tasks, results)` is what each consumer process runs: it takes
  `(index, item)` pairs from `tasks` until it takes a `STOP`, and puts
  `(index, function(item))` on `results` for each.
  §9 `consume` takes an empty task queue for "nothing yet", never for the end of the work (the
  source may be slow): only `STOP` ends it.

The functions at the bottom of the file (`square`, `signal_and_square`, `meet`,
`read_marker`, `sleep_then_return`, `big_block`) are given: the tests send them to your
consumers.
"""

from __future__ import annotations

import multiprocessing  # noqa: F401  (imported for you: your code will need it)
import queue  # noqa: F401  (imported for you: your code will need it)
import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from typing import Any, Literal

# The start methods a caller may choose (`fork` and `forkserver` exist on POSIX only).
StartMethod = Literal["spawn", "fork", "forkserver"]
# The end-of-work marker: one per consumer. None survives pickling as itself, so `is` works.
STOP = None
# A task is an input's index and the input; a result is the index and function(input).
Task = tuple[int, Any]
Result = tuple[int, Any]


def consume(
    function: Callable[[Any], Any], tasks: Queue[Task | None], results: Queue[Result]
) -> None:
    """Runs in each consumer: process tasks until a STOP arrives."""
    # TODO(kata): loop: take a task with tasks.get(); return at STOP (compare with `is`);
    # otherwise put (index, function(item)) on results. Do not trust tasks.empty().
    raise NotImplementedError


def run_pipeline(
    function: Callable[[Any], Any],
    source: Iterable[Any],
    *,
    consumers: int = 2,
    start_method: StartMethod = "fork",
    timeout: float = 10.0,
) -> list[Any]:
    """`[function(item) for item in source]`, computed by `consumers` processes in parallel."""
    # TODO(kata): make a context and two Queues; start the consumers (target=consume); put each
    # (index, item) of source, then one STOP per consumer; get() every result with a timeout
    # BEFORE joining; join each consumer with a timeout (TimeoutError if still alive); in a
    # `finally`, kill and join any consumer still alive and close the task queue.
    raise NotImplementedError


# -- given: the functions the tests send to your consumers -----------------------------------

# How long `meet` waits for the other consumers at the barrier (forked consumers meet within
# milliseconds).
MEET_SECONDS = 2.0


def square(number: int) -> int:
    """The square of `number`."""
    return number * number


def signal_and_square(done: Event, number: int) -> int:
    """Set `done`, then return the square of `number`."""
    done.set()
    return number * number


def meet(barrier: Barrier, _: object) -> str:
    """Wait for the barrier's other parties: "met" if they all came in time, else "alone"."""
    try:
        barrier.wait(MEET_SECONDS)
    except threading.BrokenBarrierError:
        return "alone"
    return "met"


# Set when this module is imported; the tests change it in the parent afterwards.
MARKER = "as imported"


def read_marker(_: object) -> str:
    """The value of MARKER as this process sees it."""
    return MARKER


def sleep_then_return(pair: tuple[Any, float]) -> Any:
    """Sleep `pair[1]` seconds, then return `pair[0]`."""
    value, seconds = pair
    time.sleep(seconds)
    return value


def big_block(number: int) -> bytes:
    """A 256 KiB block of bytes, all equal to `number % 256`: more than a pipe holds."""
    return bytes([number % 256]) * (256 * 1024)
