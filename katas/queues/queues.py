"""Kata `queues`: a producer, worker threads and a collector connected by `queue.Queue`.

Contract (the tests check each point, several of them under a controlled scheduler that tries
many interleavings of your threads):

- `STOP` is the sentinel ("poison pill"): an object that is never a real item.
- `produce(items, tasks, workers)` puts every item on `tasks` in order, then one `STOP` per
  worker, so that every worker gets a `STOP` of its own.
- `work_loop(tasks, results, work)` is a worker's body. It takes items from `tasks` with a
  blocking `get()` (a worker that starts before the producer must wait, not give up) and
  puts `work(item)` on `results` for each one, until it takes a `STOP`; then it returns,
  leaving anything behind the `STOP` in the queue. It calls `tasks.task_done()` exactly once
  for every item it took, the `STOP` included, and only after the item's result is on
  `results`: when `tasks.join()` returns, every result is already in `results`.
- `collect(results)` takes values from `results` until it takes a `STOP`, and returns the
  values taken before it, in the order they arrived.
- `run_pipeline(items, work, workers=3)` wires the stages: two queues, `workers` threads
  running `work_loop` and one collector thread running `collect`, all started before the
  caller produces the items. Once `tasks.join()` says that all the work is done, it stops the
  collector with a `STOP` on `results`, joins every thread and returns the collected results
  (one per item, in any order). The work must run in several workers at once.
- Use `queue.Queue` and `threading.Thread` (the tests swap in instrumented versions while
  they probe you). Never poll `empty()`: it is out of date as soon as it returns.
"""

from __future__ import annotations

import queue
import threading  # noqa: F401  # run_pipeline starts threads: you will need it
from collections.abc import Callable, Iterable
from typing import Any, Final

STOP: Final = object()
"""The sentinel: a worker that takes it stops; the collector that takes it returns."""


def produce(items: Iterable[Any], tasks: queue.Queue[Any], workers: int) -> None:
    """Put every item on `tasks`, then one STOP per worker."""
    # TODO(kata): put each item, then `workers` STOP markers (one for each worker to take).
    raise NotImplementedError


def work_loop(
    tasks: queue.Queue[Any], results: queue.Queue[Any], work: Callable[[Any], Any]
) -> None:
    """Process items from `tasks` into `results` until a STOP arrives; mark each one done."""
    # TODO(kata): loop on a blocking get(); return at STOP; call task_done() for every item
    # taken (STOP too), after its result has been put on `results`.
    raise NotImplementedError


def collect(results: queue.Queue[Any]) -> list[Any]:
    """Take results until a STOP arrives; return them in arrival order."""
    # TODO(kata): get() values into a list until you take STOP.
    raise NotImplementedError


def run_pipeline(items: Iterable[Any], work: Callable[[Any], Any], workers: int = 3) -> list[Any]:
    """Run `work` on every item in `workers` threads; return all the results (any order)."""
    # TODO(kata): start the workers and a collector thread, produce, wait with tasks.join(),
    # then stop the collector with STOP, join every thread and return what it collected.
    raise NotImplementedError
