"""Kata `blocking`: keep the event loop running while blocking code does its work.

Contract (the tests check each point, with a heartbeat task that must keep ticking on the
event loop while your code waits):

- `pause(seconds)` waits `seconds` without stopping the event loop: other tasks run meanwhile.
- `run_blocking(function, *args)` runs the blocking call `function(*args)` in a worker thread
  of the loop's default executor and returns its result; while it runs, the event loop (and
  every other task on it) keeps going.
- `start_blocking(function, *args)`, called on a running event loop, starts `function(*args)`
  in the default executor and returns an `asyncio.Future` for its result at once, while the
  call still runs: it must not call `function` itself, and must never wait for it.
- `run_in(executor, function, *args)` is `run_blocking` on the executor it is given (a thread
  pool for blocking I/O, a process pool for CPU-bound work), not on the default one.
- `serve_all(customers, lookup)` looks up every customer with the blocking `lookup(customer)`,
  all lookups at the same time in worker threads, and returns `{customer: lookup(customer)}`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from typing import TypeVar

R = TypeVar("R")


async def pause(seconds: float) -> None:
    """Wait `seconds` while the event loop goes on running other tasks."""
    # TODO(kata): wait in a way that suspends only this coroutine, not the whole loop.
    raise NotImplementedError


async def run_blocking(function: Callable[..., R], *args: object) -> R:
    """Run the blocking `function(*args)` in a worker thread and return its result."""
    # TODO(kata): hand the call to a worker thread (asyncio.to_thread) and await the result.
    raise NotImplementedError


def start_blocking(function: Callable[..., R], *args: object) -> asyncio.Future[R]:
    """Start `function(*args)` in the default executor; return its pending future at once."""
    # TODO(kata): return the future of loop.run_in_executor(None, ...) without calling function.
    raise NotImplementedError


async def run_in(
    executor: concurrent.futures.Executor, function: Callable[..., R], *args: object
) -> R:
    """Run `function(*args)` in `executor` and return its result, without blocking the loop."""
    # TODO(kata): await loop.run_in_executor with the executor you were given.
    raise NotImplementedError


async def serve_all(customers: Sequence[str], lookup: Callable[[str], str]) -> dict[str, str]:
    """Look every customer up at the same time, each blocking lookup in its own thread."""
    # TODO(kata): start every lookup in a thread before awaiting any (asyncio.gather).
    raise NotImplementedError
