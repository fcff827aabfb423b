"""Kata `futures`: asyncio.Future, results that arrive later, bridges to callbacks and threads.

Contract (the tests check each point; loop-time checks run on a virtual clock, which does not
start at 0):

- §1 `describe(future)` tells the state of an `asyncio.Future`: "pending", "cancelled",
  "failed: <repr of the exception>" or "result: <repr of the result>".
  §2 `describe` never raises, whatever state the future is in.
- `sum_to(n, future)` is a slow computation that reports through a future (B1's recipe).
  §3 `sum_to(n, future)` adds 1 + 2 + ... + n and sets the total as the future's result (0
  for n = 0).
  §4 `sum_to` takes one second of loop time per number (`await asyncio.sleep(1)` before each
  addition) and sets the result as soon as the last addition is made.
  §5 For n < 0, `sum_to` sets a `ValueError` as the future's exception at once instead;
  `sum_to` itself never raises.
  §6 If the future is cancelled while `sum_to` works, `sum_to` notices at its next step and
  returns, leaving the future alone.
- §7 `relay(source, target)` copies `source`'s outcome into `target` when `source` finishes:
  its result, its exception, or its cancellation (then `target` is cancelled too).
  §8 If `target` is already done by then, `relay` does nothing (and raises nothing).
  §9 `relay` returns a `detach()` function that unhooks the relay, so that a later outcome of
  `source` is no longer copied.
- `fetch_async(client, key)` turns a callback-style `CallbackClient` into something you can
  await.
  §10 `fetch_async` sends one request for `key` and returns the reply; it cancels nothing
  when the reply comes.
  §11 `fetch_async` raises the error the client reports.
  §12 If the coroutine awaiting `fetch_async` is cancelled, `fetch_async` cancels the
  client's request too and stays cancelled.
  §13 A reply or an error that arrives after `fetch_async` was cancelled (some clients cannot
  take a request back) is ignored quietly.
- §14 `run_in_thread(fn, *args)` runs `fn(*args)` in a new `threading.Thread` and returns its
  result.
  §15 `run_in_thread` raises the exception `fn` raised.
  §16 `run_in_thread` does not block the event loop while the thread works: other coroutines
  keep running.
  §17 The thread hands its outcome over through a `concurrent.futures.Future`, which the
  coroutine awaits via `asyncio.wrap_future`; an `asyncio.Future` must never be touched from
  another thread.
  §18 If the coroutine awaiting `run_in_thread` is cancelled, it stays cancelled at once; the
  thread, which cannot be stopped, runs `fn` to its end and then finishes quietly, raising
  nothing (call `set_running_or_notify_cancel()` on the `concurrent.futures.Future` before
  `fn`, as executors do, so that a cancellation can no longer reach it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures  # noqa: F401  # for run_in_thread, which you write
import threading  # noqa: F401  # for run_in_thread, which you write
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class CallbackClient(Protocol):
    """A client in the old callback style (the tests provide one)."""

    def request(
        self, key: str, on_reply: Callable[[str], None], on_error: Callable[[Exception], None]
    ) -> Callable[[], None]:
        """Send a request. Later, on the event loop, exactly one of `on_reply(reply)` or
        `on_error(error)` is called, unless the returned cancel function is called first
        (a client may be unable to cancel, and then calls back anyway)."""
        ...


def describe(future: asyncio.Future[Any]) -> str:
    """'pending', 'cancelled', 'failed: <exception!r>' or 'result: <result!r>'; never raises."""
    # TODO(kata): ask done() and cancelled() first: result() and exception() raise on a pending
    # or a cancelled future.
    raise NotImplementedError


async def sum_to(n: int, future: asyncio.Future[int]) -> None:
    """Add 1..n, one number per second of loop time, then set the total as the future's result."""
    # TODO(kata): ValueError via set_exception for n < 0; otherwise sleep 1 s before each
    # addition, stop if the future was cancelled, and set_result at the end.
    raise NotImplementedError


def relay(source: asyncio.Future[T], target: asyncio.Future[T]) -> Callable[[], None]:
    """Copy source's outcome into target when source is done; return a function that detaches."""
    # TODO(kata): add a done-callback to source that skips a done target and copies the
    # cancellation, exception or result; return a function that removes that callback.
    raise NotImplementedError


async def fetch_async(client: CallbackClient, key: str) -> str:
    """Await the client's reply to `key`; cancelling this cancels the request."""
    # TODO(kata): create a future on the running loop, let the callbacks complete it (unless it
    # is already done), await it, and on CancelledError cancel the request and re-raise.
    raise NotImplementedError


async def run_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run fn(*args) in a new thread; await its outcome without blocking the loop."""
    # TODO(kata): the thread calls set_running_or_notify_cancel() on a concurrent.futures.Future,
    # then fills it (set_result or set_exception); await asyncio.wrap_future(that future).
    raise NotImplementedError
