"""Kata `queues`: a producer, worker threads and a collector connected by `queue.Queue`.

Contract (the tests check each point, several of them under a controlled scheduler that tries
many interleavings of your threads, on a virtual clock):

- `STOP` is the sentinel ("poison pill"): an object that is never a real item (given).
- §1 `produce(items, tasks, workers)` puts every item of `items` (any iterable, a generator
  too) on `tasks`, in the order given.
  §2 `produce` then puts one `STOP` per worker, after every item, so that every worker gets a
  `STOP` of its own.
- `work_loop(tasks, results, work)` is a worker's body.
  §3 `work_loop` takes items from `tasks` with a blocking `get()` and no timeout: a worker
  that starts before a slow producer waits for the items, never gives up.
  §4 `work_loop` puts `work(item)` on `results` for each item it takes, in the order it takes
  them, and never hands a `STOP` to `work`.
  §5 `work_loop` returns as soon as it takes a `STOP`, leaving anything behind the `STOP` in
  the queue.
  §6 `work_loop` calls `tasks.task_done()` exactly once for every entry it took, the `STOP`
  included.
  §7 `work_loop` calls `task_done()` for an item only after the item's result is on `results`:
  when `tasks.join()` returns, every result is already in `results`.
- §8 `collect(results)` waits in a blocking `get()` for values until it takes a `STOP`, and
  returns the values taken before it, in the order they arrived.
- §9 `run_pipeline(items, work, workers=3)` returns the collected results, one per item of
  `items` (any iterable), in any order, and `[]` for no items.
  §10 `run_pipeline` starts `workers` threads running `work_loop` (3 by default) and one
  collector thread running `collect`, all before it produces the items, so that the work
  runs in `workers` threads at once while the items are still being produced.
  §11 `run_pipeline` puts the collector's `STOP` on `results` only after `tasks.join()` has
  returned, and joins every thread before it returns the collected list.
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
