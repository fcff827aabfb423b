"""Kata `tasks`: run coroutines side by side as tasks, collect them, cancel them, time them out.

Contract (the tests check each point on a virtual clock, where `await asyncio.sleep(10)`
costs nothing and every time is exact, trying many orders of the ready callbacks; the clock
does not start at 0):

- §1 Every function below runs its coroutines *at the same time*, as tasks: the whole call
  takes as long as the slowest coroutine it waits for, never the sum.
  §2 No function below leaves work behind: when it returns or raises, every task it started
  has finished, and a task it cancelled has also finished cancelling (`task.cancel()` only
  asks, so wait for the task afterwards).
  §3 No function below leaves work behind when the task running it is cancelled from outside
  either: it cancels every task it started and waits until each has stopped before the
  `CancelledError` goes on to its caller.
- §4 `gather_settled(coros)` returns one entry per coroutine, in their order: its result, or
  the exception it raised; `gather_settled` never raises a coroutine's exception itself.
- §5 `fail_fast(coros)` returns the results in order when all succeed (an empty list for no
  coroutines at all).
  §6 As soon as one coroutine raises, `fail_fast` cancels the others and raises that exception
  itself (not wrapped), without waiting for the slower ones to end by themselves. Use
  `asyncio.wait(..., return_when=FIRST_EXCEPTION)`.
- §7 `first_success(coros)` is a hedged request: it returns the result of the first coroutine
  to *succeed* (a failure just drops out of the race), and cancels the rest.
  §8 If every coroutine fails, `first_success` raises the last failure; with no coroutines at
  all, `ValueError`.
- §9 `in_finishing_order(coros, report)` calls `report(result)` for each result the moment its
  coroutine finishes (not when all have).
  §10 `in_finishing_order` returns the results in finishing order.
  §11 When a coroutine raises, `in_finishing_order` raises that exception as soon as it comes
  to it, having cancelled the others and waited until they stopped.
- §12 `supervise(coros)` runs the coroutines in an `asyncio.TaskGroup` and returns the results
  in order.
  §13 If any coroutine fails, `supervise` cancels the others and raises an `ExceptionGroup`
  holding the failures (that is what the TaskGroup does).
- §14 `with_deadline(coro, seconds, default)` returns the coroutine's result as soon as it is
  ready, if that is within `seconds` of loop time from the call.
  §15 When the coroutine is not done `seconds` after the call, `with_deadline` cancels it and
  returns `default` at that moment.
  §16 If the task running `with_deadline` is itself cancelled, it must stay cancelled: never
  turn that `CancelledError` into `default`.
- `Background` runs fire-and-forget tasks without losing them.
  §17 `Background.spawn(coro)` starts a task at once and keeps a strong reference to it while
  it runs (the event loop keeps only a weak one, so an unreferenced task can be
  garbage-collected in mid-flight).
  §18 `Background.running` counts the tasks not yet finished, so a finished task is
  forgotten.
  §19 `Background.close()` cancels every running task and waits until each has finished.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
D = TypeVar("D")
Coro = Coroutine[Any, Any, T]


async def _stop(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel the tasks that are still running and wait until every one of them has stopped."""
    running = [task for task in tasks if not task.done()]
    for task in running:
        task.cancel()
    if running:
        # cancel() only asks: each task stops when it next runs, after its own cleanup.
        await asyncio.wait(running)


async def gather_settled(coros: Iterable[Coro[T]]) -> list[T | BaseException]:
    """Run all at once; entry i is coroutine i's result or the exception it raised."""
    # return_exceptions=True turns each failure into an entry instead of raising the first one.
    # Cancelled from outside, gather cancels its tasks and, with return_exceptions=True, waits
    # until all of them have stopped before it passes the CancelledError on.
    return list(await asyncio.gather(*coros, return_exceptions=True))


async def fail_fast(coros: Iterable[Coro[T]]) -> list[T]:
    """Run all at once; on the first failure cancel the rest and raise that failure."""
    # asyncio.wait takes tasks, not bare coroutines (a TypeError since Python 3.11).
    tasks = [asyncio.create_task(coro) for coro in coros]
    if not tasks:
        return []
    try:
        # FIRST_EXCEPTION wakes us at the first failure (or when all have succeeded).
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        # After a failure, and also when we are cancelled from outside (asyncio.wait never
        # cancels what it waits for), no task may run on.
        await _stop(tasks)
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
    tasks = [asyncio.create_task(coro) for coro in coros]
    results: list[T] = []
    try:
        # as_completed hands out awaitables in the order the tasks finish, each as soon as it can.
        for next_finished in asyncio.as_completed(tasks):
            result = await next_finished
            report(result)
            results.append(result)
    finally:
        # A failure, or a cancellation from outside, ends the loop early: the others must stop.
        await _stop(tasks)
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
