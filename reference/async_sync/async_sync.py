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
        # setdefault needs no await, so no other coroutine can run between its check and insert.
        lock = self._locks.setdefault(key, asyncio.Lock())
        # The check and the store sit under one lock: a second caller waits, then finds the value.
        async with lock:
            if key not in self._values:
                self._values[key] = await self._fetch(key)
            return self._values[key]


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
        async with self._changed:
            # while, not if: another coroutine may have filled the slot before we got the lock back.
            while len(self._items) >= self._capacity:
                await self._changed.wait()
            self._items.append(item)
            # Producers and consumers share one condition, so wake them all: notify() might
            # wake only another producer, which would go straight back to sleep.
            self._changed.notify_all()

    async def get(self) -> T:
        """Remove and return the oldest item, waiting while the buffer is empty."""
        async with self._changed:
            # while, not if: another consumer may have taken the item before we got the lock back.
            while not self._items:
                await self._changed.wait()
            item = self._items.popleft()
            self._changed.notify_all()
            return item


class RateLimiter:
    """`async with limiter:` starts at most `limit` bodies per `period` seconds of loop time."""

    def __init__(self, limit: int, period: float) -> None:
        self._period = period
        self._permits = asyncio.BoundedSemaphore(limit)

    async def __aenter__(self) -> None:
        await self._permits.acquire()
        # The permit returns `period` after it was taken, not when the body ends: a rate, not a cap.
        asyncio.get_running_loop().call_later(self._period, self._permits.release)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Returning None (a false value) lets an exception from the body propagate.
        return None


class StartingGate:
    """Holds every runner until `parties` runners are ready, then lets them all go at once."""

    def __init__(self, parties: int) -> None:
        self._parties = parties
        self._arrived = 0
        self._go = asyncio.Event()

    async def ready(self) -> None:
        """Count this runner in, then wait until all `parties` are ready."""
        # No await between counting and checking, so no other runner can interleave here.
        self._arrived += 1
        if self._arrived == self._parties:
            self._go.set()
        # An Event stays set: runners already waiting and the last one all pass at once.
        await self._go.wait()


async def run_rounds(
    parties: int, rounds: int, step: Callable[[int, int], Awaitable[None]]
) -> None:
    """Run `parties` workers side by side, round by round, in lockstep."""
    barrier = asyncio.Barrier(parties)

    async def worker(w: int) -> None:
        for r in range(rounds):
            await step(w, r)
            # Nobody leaves round r until all `parties` workers have arrived here.
            await barrier.wait()

    # The workers must run at the same time, or the first would wait at the barrier alone.
    async with asyncio.TaskGroup() as group:
        for w in range(parties):
            group.create_task(worker(w))
