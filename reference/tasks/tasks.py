"""Kata `tasks`: run coroutines side by side as tasks, collect them, cancel them, time them out.

Contract (the tests check each point on a virtual clock, where `await asyncio.sleep(10)`
costs nothing and every time is exact, trying many orders of the ready callbacks):

Every function below runs its coroutines *at the same time*, as tasks: the whole call takes as
long as the slowest coroutine it waits for, never the sum. And none leaves work behind: when a
function returns or raises, every task it started has finished (a task it cancels has also
finished cancelling; `task.cancel()` only asks, so wait for the task afterwards).

- `gather_settled(coros)` returns one entry per coroutine, in their order: its result, or the
  exception it raised. It never raises a coroutine's exception itself.
- `fail_fast(coros)` returns the results in order when all succeed. As soon as one raises, it
  cancels the others and raises that exception itself (not wrapped), without waiting for the
  slower ones to end by themselves. Use `asyncio.wait(..., return_when=FIRST_EXCEPTION)`.
- `first_success(coros)` is a hedged request: it returns the result of the first coroutine to
  *succeed* (a failure just drops out of the race), and cancels the rest. If every one fails,
  it raises the last failure; with no coroutines at all, `ValueError`.
- `in_finishing_order(coros, report)` calls `report(result)` for each result the moment its
  coroutine finishes (not when all have), and returns the results in finishing order.
- `supervise(coros)` runs the coroutines in an `asyncio.TaskGroup` and returns the results in
  order. If any fails, the others are cancelled and an `ExceptionGroup` holding the failures
  is raised (that is what the TaskGroup does).
- `with_deadline(coro, seconds, default)` returns the coroutine's result if it finishes within
  `seconds` of loop time; otherwise the coroutine is cancelled and `default` is returned. If
  the task running `with_deadline` is itself cancelled, it must stay cancelled: never turn
  that `CancelledError` into `default`.
- `Background` runs fire-and-forget tasks without losing them. `spawn(coro)` starts a task and
  keeps a strong reference to it while it runs (the event loop keeps only a weak one, so an
  unreferenced task can be garbage-collected in mid-flight); `running` counts the tasks not yet
  finished, so a finished task is forgotten; `close()` cancels every running task and waits
  until each has finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
D = TypeVar("D")
Coro = Coroutine[Any, Any, T]


async def gather_settled(coros: Iterable[Coro[T]]) -> list[T | BaseException]:
    """Run all at once; entry i is coroutine i's result or the exception it raised."""
    # return_exceptions=True turns each failure into an entry instead of raising the first one.
    return list(await asyncio.gather(*coros, return_exceptions=True))


async def fail_fast(coros: Iterable[Coro[T]]) -> list[T]:
    """Run all at once; on the first failure cancel the rest and raise that failure."""
    # asyncio.wait takes tasks, not bare coroutines (a TypeError since Python 3.11).
    tasks = [asyncio.create_task(coro) for coro in coros]
    if not tasks:
        return []
    # FIRST_EXCEPTION wakes us at the first failure (or when all have succeeded).
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in pending:
        task.cancel()
    if pending:
        # cancel() only asks: wait until the tasks have actually finished cancelling.
        await asyncio.wait(pending)
    for task in tasks:
        if task in done and (error := task.exception()) is not None:
            raise error
    return [task.result() for task in tasks]


async def first_success(coros: Iterable[Coro[T]]) -> T:
    """The first successful result, the rest cancelled; the last failure if every one fails."""
    pending = {asyncio.create_task(coro) for coro in coros}
    if not pending:
        raise ValueError("first_success needs at least one coroutine")
    failure: BaseException | None = None
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                # A failure only drops out of the race; the first success wins it.
                if (error := task.exception()) is None:
                    return task.result()
                failure = error
    finally:
        # The losers (or everything, if we were cancelled) must not run on unobserved.
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
    assert failure is not None  # the loop only ends once every task has failed
    raise failure


async def in_finishing_order(coros: Iterable[Coro[T]], report: Callable[[T], None]) -> list[T]:
    """Report each result the moment it is ready; return the results in finishing order."""
    results: list[T] = []
    # as_completed hands out awaitables in the order the coroutines finish, each as soon as it can.
    for next_finished in asyncio.as_completed(list(coros)):
        result = await next_finished
        report(result)
        results.append(result)
    return results


async def supervise(coros: Iterable[Coro[T]]) -> list[T]:
    """Run all in a TaskGroup; results in order, or an ExceptionGroup with the failures."""
    # The group waits for all its tasks; a failure cancels the siblings and raises a group.
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(coro) for coro in coros]
    return [task.result() for task in tasks]


async def with_deadline(coro: Coro[T], seconds: float, default: D) -> T | D:
    """The coroutine's result if it finishes within `seconds`, else `default` (it is cancelled)."""
    # timeout() cancels the await when time is up and turns that cancellation into TimeoutError;
    # a cancellation from outside stays a CancelledError and is not caught here.
    try:
        async with asyncio.timeout(seconds):
            return await coro
    except TimeoutError:
        return default


class Background:
    """Fire-and-forget tasks that are kept alive while they run and can all be cancelled."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def running(self) -> int:
        """How many spawned tasks have not finished yet."""
        return len(self._tasks)

    def spawn(self, coro: Coro[Any]) -> None:
        """Start `coro` as a task now; keep a reference until it finishes."""
        task = asyncio.create_task(coro)
        # The loop holds tasks only weakly: this set is what keeps a running task alive.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel every running task and wait until all of them have finished."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Waiting lets each task run its cleanup; return_exceptions keeps the CancelledErrors in.
        await asyncio.gather(*tasks, return_exceptions=True)
