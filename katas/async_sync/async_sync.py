"""Kata `async_sync`: asyncio's Lock, Condition, Semaphore, Event and Barrier, used across `await`.

Contract (the tests run several coroutines on a probe loop that tries many orders of the
ready callbacks, on a virtual clock where `await asyncio.sleep(10)` costs nothing; the clock
does not always start at 0):

- `AsyncCache(fetch)` (its constructor is given) fetches each key once. Use one
  `asyncio.Lock` per key.
  §1 `await cache.get(key)` returns the value for `key`, fetching it with `await fetch(key)`
  the first time only; later calls get it from the cache.
  §2 Two callers asking `AsyncCache.get` for the same missing key at once cause ONE fetch,
  and both get its value.
  §3 `AsyncCache` fetches of *different* keys run at the same time: one slow key must not
  hold up the others.
  §4 When a fetch raises, or the caller waiting for it is cancelled, `AsyncCache.get` passes
  that on to that caller only, caches nothing and leaves the key's lock free: the next caller
  of the key fetches it again.
- `BoundedBuffer(capacity)` (its constructor is given) is a first-in-first-out buffer. Use
  one `asyncio.Condition`.
  §5 `await buffer.get()` waits while the `BoundedBuffer` is empty and returns the oldest item
  (first in, first out).
  §6 `await buffer.put(item)` waits while the `BoundedBuffer` holds `capacity` items:
  `len(buffer)` never exceeds `capacity`.
  §7 Any number of producers and consumers may use a `BoundedBuffer` at once: every item is
  delivered exactly once, and nobody waits forever while the buffer could serve them.
  §8 A caller cancelled while it waits in `BoundedBuffer.get()` takes nothing and leaves the
  buffer usable by everybody else.
- `RateLimiter(limit, period)` (its constructor is given): `async with limiter:` wraps a body.
  Use an `asyncio.BoundedSemaphore` and `loop.call_later`.
  §9 A `RateLimiter` lets at most `limit` entries start in any window of `period` seconds of
  loop time.
  §10 Each `RateLimiter` entry takes a permit, and that permit comes back `period` seconds
  after it was *taken* (however long the body runs).
  §11 An exception raised in a `RateLimiter` body passes through unchanged.
- §12 `StartingGate(parties)`: `await gate.ready()` returns for everybody at the moment the
  `parties`-th runner has called it, and not before. Use an `asyncio.Event`.
- `run_rounds(parties, rounds, step)` runs `parties` workers; worker `w` awaits `step(w, r)`
  for r = 0, 1, ..., rounds - 1. Use an `asyncio.Barrier`.
  §13 The `run_rounds` workers run at the same time: a round takes as long as its slowest
  step.
  §14 No `run_rounds` worker starts round r + 1 before every worker has finished round r.
  §15 When a step raises, `run_rounds` cancels the other workers, waits until they have
  stopped and raises (an `ExceptionGroup` holding the failure, as a `TaskGroup` does); none is
  left waiting at the barrier.
  §16 When the task running `run_rounds` is cancelled from outside, every worker is cancelled
  and has stopped by the time the `CancelledError` reaches the caller.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")
V = TypeVar("V")


class AsyncCache(Generic[V]):
    """Fetches each key once, however many callers ask for it at the same time."""

    def __init__(self, fetch: Callable[[str], Awaitable[V]]) -> None:
        self._fetch = fetch
        self._values: dict[str, V] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str) -> V:
        """The value for `key`, fetched on first use only."""
        # TODO(kata): take this key's lock (create it on first use), then check-and-fetch
        # inside it, so nobody can slip in between the check and the store.
        raise NotImplementedError


class BoundedBuffer(Generic[T]):
    """A first-in-first-out buffer of at most `capacity` items for coroutines."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: deque[T] = deque()
        self._changed = asyncio.Condition()

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, item: T) -> None:
        """Add `item`, waiting while the buffer is full."""
        # TODO(kata): under the condition, wait while full (re-check after every wake-up),
        # append, then wake every waiter.
        raise NotImplementedError

    async def get(self) -> T:
        """Remove and return the oldest item, waiting while the buffer is empty."""
        # TODO(kata): under the condition, wait while empty (re-check after every wake-up),
        # pop from the left, then wake every waiter.
        raise NotImplementedError


class RateLimiter:
    """`async with limiter:` starts at most `limit` bodies per `period` seconds of loop time."""

    def __init__(self, limit: int, period: float) -> None:
        self._period = period
        self._permits = asyncio.BoundedSemaphore(limit)

    async def __aenter__(self) -> None:
        # TODO(kata): acquire a permit, and schedule its release `period` seconds from now.
        raise NotImplementedError

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # TODO(kata): nothing to release here (the timer does it); let any exception pass.
        raise NotImplementedError


class StartingGate:
    """Holds every runner until `parties` runners are ready, then lets them all go at once."""

    def __init__(self, parties: int) -> None:
        self._parties = parties
        self._arrived = 0
        self._go = asyncio.Event()

    async def ready(self) -> None:
        """Count this runner in, then wait until all `parties` are ready."""
        # TODO(kata): count the arrival; the last runner sets the event; everyone waits for it.
        raise NotImplementedError


async def run_rounds(
    parties: int, rounds: int, step: Callable[[int, int], Awaitable[None]]
) -> None:
    """Run `parties` workers side by side, round by round, in lockstep."""
    # TODO(kata): one asyncio.Barrier(parties); each worker awaits step(w, r) and then the
    # barrier, for every round; run the workers together (TaskGroup or gather).
    raise NotImplementedError
