"""Kata `semaphores`: a bounded connection pool, and a semaphore used as a signal.

Contract (the tests check each point, running threads under a controlled scheduler that tries
many interleavings, on a virtual clock):

- `ConnectionPool(size)` owns `size` connections (`Connection(0)` .. `Connection(size - 1)`,
  given).
  - §1 `ConnectionPool.acquire(timeout=None)` hands out an idle connection, and
    `release(connection)` puts it back, so that it can be handed out again.
  - §2 `ConnectionPool.acquire()` waits while no connection is idle: without a timeout, for as
    long as it takes.
  - §3 `ConnectionPool.acquire(timeout)` raises `PoolTimeout` once `timeout` seconds have
    passed without an idle connection, and gets a connection that comes back within that time.
  - §4 A `ConnectionPool(size)` never has more than `size` connections out at once, and never
    hands one connection to two holders at once.
  - §5 `size` holders of a `ConnectionPool(size)` really can be inside at the same time.
  - §6 `ConnectionPool.release` when every connection is already idle is a bug in the caller:
    it raises `ValueError` and changes nothing (the check a `threading.BoundedSemaphore` makes).
  - §7 `ConnectionPool.connection(timeout=None)` is a context manager: it acquires a connection
    with that `timeout`, yields it, and releases it when the block ends.
  - §8 `ConnectionPool.connection` releases its connection also when the block raises.
- `Handoff()` passes items one at a time from producer threads to consumer threads.
  - §9 `Handoff.take()` waits until an item is there, then returns it.
  - §10 `Handoff.put(item)` waits until the previous item has been taken, then leaves `item`:
    every item put is taken exactly once, in order, however many producers and consumers there
    are.
  - Build it from two `threading.Semaphore`s: one that counts items ready to take (it starts at
    0: a semaphore used as a signal) and one that counts free places (it starts at 1).
- Use `threading.BoundedSemaphore`, `threading.Semaphore` and `threading.Lock` (the tests swap in
  instrumented versions while they probe you).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class PoolTimeout(TimeoutError):
    """No connection became idle within the timeout."""


class Connection:
    """A stand-in for a database connection: it only knows its number."""

    def __init__(self, number: int) -> None:
        self.number = number

    def __repr__(self) -> str:
        return f"Connection({self.number})"


class ConnectionPool:
    """Hands out at most `size` connections at a time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle = [Connection(number) for number in range(size)]
        self._idle_lock = threading.Lock()  # guards the list of idle connections
        # Bounded: a release above `size` is a caller's bug, and it raises instead of silently
        # letting one holder too many in later.
        self._slots = threading.BoundedSemaphore(size)

    def acquire(self, timeout: float | None = None) -> Connection:
        """Wait (at most `timeout` s) for an idle connection and hand it out."""
        # Wait for a slot *before* taking the idle lock: a waiter holding it would keep every
        # release() out, and the pool would deadlock the moment it is full.
        if not self._slots.acquire(timeout=timeout):
            raise PoolTimeout(f"no idle connection within {timeout} s")
        with self._idle_lock:
            return self._idle.pop()

    def release(self, connection: Connection) -> None:
        """Give `connection` back; ValueError if every connection is already idle."""
        # Under the idle lock, so a waiter woken by the slot cannot look at the list before the
        # connection is back on it; the slot first, so an over-release raises before any change.
        with self._idle_lock:
            self._slots.release()
            self._idle.append(connection)

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Connection]:
        """Acquire a connection for the `with` block; always release it afterwards."""
        connection = self.acquire(timeout)
        # finally: a block that raises must not keep the connection out of the pool for ever.
        try:
            yield connection
        finally:
            self.release(connection)


class Handoff(Generic[T]):
    """One item at a time from producers to consumers, signalled with two semaphores."""

    def __init__(self) -> None:
        self._item: T | None = None
        # _filled starts at 0: a take() before any put() has nothing to take and must wait for
        # the signal. _empty starts at 1: one place, so a put() cannot overwrite an untaken item.
        self._filled = threading.Semaphore(0)
        self._empty = threading.Semaphore(1)

    def put(self, item: T) -> None:
        """Wait until the previous item has been taken, then leave `item`."""
        # Wait for the place to be free, fill it, then signal the consumers.
        self._empty.acquire()
        self._item = item
        self._filled.release()

    def take(self) -> T:
        """Wait until an item is there, then take it."""
        # Wait for the signal, read the item, then tell producers the place is free again.
        self._filled.acquire()
        item = self._item
        self._item = None
        self._empty.release()
        return cast("T", item)
