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
    # TODO(kata): asyncio.gather with return_exceptions=True.
    raise NotImplementedError


async def fail_fast(coros: Iterable[Coro[T]]) -> list[T]:
    """Run all at once; on the first failure cancel the rest and raise that failure."""
    # TODO(kata): make tasks, asyncio.wait(tasks, return_when=FIRST_EXCEPTION), cancel and await
    # the pending ones, then raise the failure or return the results in order.
    raise NotImplementedError


async def first_success(coros: Iterable[Coro[T]]) -> T:
    """The first successful result, the rest cancelled; the last failure if every one fails."""
    # TODO(kata): asyncio.wait(pending, return_when=FIRST_COMPLETED) in a loop; in a finally,
    # cancel and await whatever is still pending.
    raise NotImplementedError


async def in_finishing_order(coros: Iterable[Coro[T]], report: Callable[[T], None]) -> list[T]:
    """Report each result the moment it is ready; return the results in finishing order."""
    # TODO(kata): iterate over asyncio.as_completed(...) and await each item as it comes.
    raise NotImplementedError


async def supervise(coros: Iterable[Coro[T]]) -> list[T]:
    """Run all in a TaskGroup; results in order, or an ExceptionGroup with the failures."""
    # TODO(kata): create the tasks with the group's create_task inside `async with TaskGroup()`.
    raise NotImplementedError


async def with_deadline(coro: Coro[T], seconds: float, default: D) -> T | D:
    """The coroutine's result if it finishes within `seconds`, else `default` (it is cancelled)."""
    # TODO(kata): await it inside `async with asyncio.timeout(seconds)`; catch only TimeoutError.
    raise NotImplementedError


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
        # TODO(kata): create the task, add it to self._tasks, and have it removed when done.
        raise NotImplementedError

    async def close(self) -> None:
        """Cancel every running task and wait until all of them have finished."""
        # TODO(kata): cancel each task in self._tasks, then wait for all of them.
        raise NotImplementedError
