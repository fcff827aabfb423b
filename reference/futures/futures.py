"""Kata `futures`: asyncio.Future, results that arrive later, bridges to callbacks and threads.

Contract (the tests check each point; loop-time checks run on a virtual clock):

- `describe(future)` tells the state of an `asyncio.Future` without ever raising:
  "pending", "cancelled", "failed: <repr of the exception>" or "result: <repr of the result>".
- `sum_to(n, future)` is a slow computation that reports through a future (B1's recipe): it
  adds 1 + 2 + ... + n, one number per second of loop time (`await asyncio.sleep(1)` before
  each addition), then sets the total as the future's result. For n < 0 it sets a
  `ValueError` as the future's exception at once instead; `sum_to` itself never raises. If
  the future is cancelled while it works, it notices at its next step and stops, leaving the
  future alone.
- `relay(source, target)` copies `source`'s outcome into `target` when `source` finishes: its
  result, its exception, or its cancellation (then `target` is cancelled too). If `target` is
  already done by then, it does nothing (and raises nothing). It returns a `detach()` function
  that unhooks the relay, so that a later outcome of `source` is no longer copied.
- `fetch_async(client, key)` turns a callback-style `CallbackClient` into something you can
  await: it returns the reply, or raises the error the client reports. If the coroutine
  awaiting it is cancelled, it cancels the client's request too and stays cancelled. A reply
  that arrives after that (some clients cannot take a request back) is ignored quietly.
- `run_in_thread(fn, *args)` runs `fn(*args)` in a new `threading.Thread` and returns its
  result, or raises its exception, without blocking the event loop while the thread works:
  other coroutines keep running. The thread hands its outcome over through a
  `concurrent.futures.Future`, which the coroutine awaits via `asyncio.wrap_future`. An
  `asyncio.Future` must never be touched from another thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
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
    # result() and exception() raise on a pending or cancelled future, so ask those first.
    if not future.done():
        return "pending"
    if future.cancelled():
        return "cancelled"
    error = future.exception()
    if error is not None:
        return f"failed: {error!r}"
    return f"result: {future.result()!r}"


async def sum_to(n: int, future: asyncio.Future[int]) -> None:
    """Add 1..n, one number per second of loop time, then set the total as the future's result."""
    if n < 0:
        # The failure travels to whoever awaits the future, not to whoever runs sum_to.
        future.set_exception(ValueError(f"cannot sum up to a negative number: {n}"))
        return
    total = 0
    for i in range(1, n + 1):
        await asyncio.sleep(1)
        # Nobody wants the result any more; set_result on a cancelled future would raise.
        if future.cancelled():
            return
        total += i
    future.set_result(total)


def relay(source: asyncio.Future[T], target: asyncio.Future[T]) -> Callable[[], None]:
    """Copy source's outcome into target when source is done; return a function that detaches."""
    def copy(done: asyncio.Future[T]) -> None:
        # Setting an outcome twice raises InvalidStateError: a done target is left alone.
        if target.done():
            return
        if done.cancelled():
            target.cancel()
        elif (error := done.exception()) is not None:
            target.set_exception(error)
        else:
            target.set_result(done.result())

    def detach() -> None:
        # remove_done_callback needs the very function that was added.
        source.remove_done_callback(copy)

    source.add_done_callback(copy)
    return detach


async def fetch_async(client: CallbackClient, key: str) -> str:
    """Await the client's reply to `key`; cancelling this cancels the request."""
    # A future made by the running loop belongs to it, so awaiting it here is safe.
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_reply(reply: str) -> None:
        # A late reply may find the future already cancelled; setting it then would raise.
        if not future.done():
            future.set_result(reply)

    def on_error(error: Exception) -> None:
        if not future.done():
            future.set_exception(error)

    cancel_request = client.request(key, on_reply, on_error)
    try:
        return await future
    except asyncio.CancelledError:
        # Tell the client too, then let the cancellation travel on.
        cancel_request()
        raise


async def run_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run fn(*args) in a new thread; await its outcome without blocking the loop."""
    # A concurrent.futures.Future is thread-safe; an asyncio.Future is not.
    outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

    def work() -> None:
        try:
            outcome.set_result(fn(*args))
        except BaseException as error:  # every outcome must reach the awaiting coroutine
            outcome.set_exception(error)

    threading.Thread(target=work, name="run_in_thread", daemon=True).start()
    # wrap_future makes the loop wake up when the thread completes the future.
    return await asyncio.wrap_future(outcome)
