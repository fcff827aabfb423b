"""Kata `async_queues`: workers fed by an asyncio.Queue, and a clean shutdown.

Contract (the tests check each point):

- `worker(queue, handle, results, errors)` handles `(index, item)` pairs from `queue`.
  §1 `worker` stores `await handle(item)` in `results[index]` for every pair it takes.
  §2 When `handle` raises an `Exception`, `worker` stores it in `errors[index]` and goes on
  with the next pair: one bad item must not stop the worker.
  §3 `worker` calls `queue.task_done()` exactly once for every pair it took, whether `handle`
  succeeded or not.
  §4 `worker` runs until it is cancelled: when the queue runs empty it waits for the next
  pair instead of returning.
- `process_all(items, handle, workers=3)` handles a batch with worker tasks on one queue.
  §5 `process_all` handles every item exactly once with `workers` worker tasks that share one
  `asyncio.Queue`, so up to `workers` handlers run at the same time.
  §6 `process_all` starts 3 workers unless the caller says otherwise.
  §7 `process_all` returns the results in the order of `items`.
  §8 When `process_all` returns or raises, no worker task is left running: it waits with
  `queue.join()` until every item is done, then cancels the workers and waits until they have
  finished.
  §9 If any handler raised, `process_all` raises the exception of the first such item (in the
  order of `items`) instead, after all the other items were handled.
  §10 When the task running `process_all` is cancelled from outside, `process_all` cancels
  its workers and waits until they have finished before the `CancelledError` goes on.
- §11 `produce(source, queue, consumers)` puts every item of the async iterable `source` on
  `queue`, in order, then puts `STOP` once for each of the `consumers`.
- `consume(queue, handle, results)` handles items until it is told to stop.
  §12 `consume` takes items from `queue` and appends `await handle(item)` to `results` for
  each, until it takes `STOP`: then it returns, taking nothing more.
  §13 An empty queue does not make `consume` return: the producer may still be on its way.
- `run_pipeline(source, handle, consumers=2, maxsize=2)` runs one `produce` task and
  `consumers` `consume` tasks around one `asyncio.Queue(maxsize)`.
  §14 `run_pipeline` returns the results (in the order they were made) once the producer and
  every consumer have finished; up to `consumers` handlers run at the same time.
  §15 In `run_pipeline`, a producer that is faster than the consumers waits while the queue
  is full (back-pressure), so it is never more than `maxsize + 1` items ahead of them.
  §16 `run_pipeline` runs 2 consumers around a queue of 2 items unless the caller says
  otherwise.
  §17 When a handler raises, `run_pipeline` cancels the producer and the other consumers,
  waits until they have finished, and raises (an `ExceptionGroup` holding the failure, as a
  `TaskGroup` does).
  §18 When the task running `run_pipeline` is cancelled from outside, the producer and every
  consumer are cancelled and have finished before the `CancelledError` goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Stop:
    """The type of `STOP`, the sentinel that tells one consumer: no more items, return."""

    def __repr__(self) -> str:
        return "STOP"


STOP = Stop()


async def worker(
    queue: asyncio.Queue[tuple[int, T]],
    handle: Callable[[T], Awaitable[R]],
    results: dict[int, R],
    errors: dict[int, Exception],
) -> None:
    """Handle `(index, item)` pairs from `queue` until cancelled; task_done() for each one."""
    while True:
        index, item = await queue.get()
        # task_done() sits in `finally` so that join() counts a failed item as done too, and
        # the exception is recorded rather than raised so that the worker lives on.
        try:
            results[index] = await handle(item)
        except Exception as exc:
            errors[index] = exc
        finally:
            queue.task_done()


async def process_all(
    items: Sequence[T], handle: Callable[[T], Awaitable[R]], *, workers: int = 3
) -> list[R]:
    """Handle every item with `workers` tasks on one queue; return the results in item order."""
    queue: asyncio.Queue[tuple[int, T]] = asyncio.Queue()
    for index, item in enumerate(items):
        queue.put_nowait((index, item))
    results: dict[int, R] = {}
    errors: dict[int, Exception] = {}
    tasks = [asyncio.create_task(worker(queue, handle, results, errors)) for _ in range(workers)]
    # join() returns once every item got its task_done(); the workers then wait forever on an
    # empty queue, so they are cancelled, and awaited so that none outlives this call.
    try:
        await queue.join()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if errors:
        raise errors[min(errors)]
    return [results[index] for index in range(len(items))]


async def produce(source: AsyncIterable[T], queue: asyncio.Queue[T | Stop], consumers: int) -> None:
    """Put every item of `source` on `queue`, then one `STOP` per consumer."""
    async for item in source:
        # put() waits while a bounded queue is full: that wait is the back-pressure.
        await queue.put(item)
    # Each consumer leaves after taking one STOP, so every consumer needs its own.
    for _ in range(consumers):
        await queue.put(STOP)


async def consume(
    queue: asyncio.Queue[T | Stop], handle: Callable[[T], Awaitable[R]], results: list[R]
) -> None:
    """Append `await handle(item)` to `results` for each item until `STOP` is taken."""
    while True:
        # Only STOP ends the loop: an empty queue may just mean the producer is slow.
        item = await queue.get()
        if isinstance(item, Stop):
            return
        results.append(await handle(item))


async def run_pipeline(
    source: AsyncIterable[T],
    handle: Callable[[T], Awaitable[R]],
    *,
    consumers: int = 2,
    maxsize: int = 2,
) -> list[R]:
    """One producer, `consumers` consumers, one bounded queue; return once all have finished."""
    queue: asyncio.Queue[T | Stop] = asyncio.Queue(maxsize)
    results: list[R] = []
    # A TaskGroup waits for every task, and cancels the others if one fails: none outlives it.
    async with asyncio.TaskGroup() as group:
        group.create_task(produce(source, queue, consumers))
        for _ in range(consumers):
            group.create_task(consume(queue, handle, results))
    return results
