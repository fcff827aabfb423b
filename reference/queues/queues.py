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
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

STOP: Final = object()
"""The sentinel: a worker that takes it stops; the collector that takes it returns."""


def produce(items: Iterable[Any], tasks: queue.Queue[Any], workers: int) -> None:
    """Put every item on `tasks`, then one STOP per worker."""
    for item in items:
        tasks.put(item)
    # Each worker leaves after taking one STOP, so every worker needs a STOP of its own.
    for _ in range(workers):
        tasks.put(STOP)


def work_loop(
    tasks: queue.Queue[Any], results: queue.Queue[Any], work: Callable[[Any], Any]
) -> None:
    """Process items from `tasks` into `results` until a STOP arrives; mark each one done."""
    while True:
        # A blocking get() waits for the producer; empty() would only say "nothing yet".
        item = tasks.get()
        try:
            if item is STOP:
                return
            results.put(work(item))
        finally:
            # Done only once the result is on `results` (STOP included): join() can trust it.
            tasks.task_done()


def collect(results: queue.Queue[Any]) -> list[Any]:
    """Take results until a STOP arrives; return them in arrival order."""
    collected: list[Any] = []
    # The STOP arrives only after every result, so everything before it belongs to the run.
    while (value := results.get()) is not STOP:
        collected.append(value)
    return collected


def run_pipeline(items: Iterable[Any], work: Callable[[Any], Any], workers: int = 3) -> list[Any]:
    """Run `work` on every item in `workers` threads; return all the results (any order)."""
    tasks: queue.Queue[Any] = queue.Queue()
    results: queue.Queue[Any] = queue.Queue()
    collected: list[Any] = []
    # Everyone is started before the first item is put: the workers overlap with the producer.
    threads = [
        threading.Thread(target=work_loop, args=(tasks, results, work)) for _ in range(workers)
    ]
    collector = threading.Thread(target=lambda: collected.extend(collect(results)))
    for thread in [*threads, collector]:
        thread.start()
    produce(items, tasks, workers)
    # join() returns once every item and STOP is marked done, so every result is queued.
    tasks.join()
    results.put(STOP)
    for thread in [*threads, collector]:
        thread.join()
    return collected
