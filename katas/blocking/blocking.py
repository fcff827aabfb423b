"""Kata `blocking`: keep the event loop running while blocking code does its work.

Contract (the tests check each point, with a heartbeat task that must keep ticking on the
event loop while your code waits):

- §1 `pause(seconds)` returns once `seconds` have passed: not before, and not long after.
  §2 While `pause` waits, the event loop keeps running: other tasks run meanwhile.
- §3 `run_blocking(function, *args)` calls `function(*args)` once and returns its result.
  §4 `run_blocking` runs the call in a worker thread of the loop's default executor, never on
  the event loop's own thread.
  §5 While `run_blocking`'s call runs, the event loop (and every other task on it) keeps going.
- §6 `start_blocking(function, *args)`, called on a running event loop, starts
  `function(*args)` in the default executor and returns an `asyncio.Future` that gives the
  call's result when awaited.
  §7 `start_blocking` returns its future at once, while the call still runs: it must not call
  `function` itself, and must never wait for it.
- §8 `run_in(executor, function, *args)` runs `function(*args)` on the executor it is given
  (a thread pool for blocking I/O, a process pool for CPU-bound work), not on the default
  one, and returns its result.
  §9 While `run_in`'s call runs, the event loop keeps going: `run_in` never blocks waiting
  for the executor.
- §10 `serve_all(customers, lookup)` returns `{customer: lookup(customer)}`: each customer
  paired with the result of its own lookup, whatever order the lookups finish in.
  §11 `serve_all` runs all the lookups at the same time, each in a worker thread.
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
