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
from typing import Generic, TypeVar

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
        # TODO(kata): create self._slots, a semaphore that counts idle connections and refuses to
        # be released above `size`.
        raise NotImplementedError

    def acquire(self, timeout: float | None = None) -> Connection:
        """Wait (at most `timeout` s) for an idle connection and hand it out."""
        # TODO(kata): take a slot (PoolTimeout if none came in time), then pop an idle connection
        # under the idle lock.
        raise NotImplementedError

    def release(self, connection: Connection) -> None:
        """Give `connection` back; ValueError if every connection is already idle."""
        # TODO(kata): under the idle lock, free the slot (it raises ValueError when over-released)
        # and put the connection back on the idle list.
        raise NotImplementedError

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Connection]:
        """Acquire a connection for the `with` block; always release it afterwards."""
        # TODO(kata): acquire, yield the connection, and release it even if the block raises.
        raise NotImplementedError


class Handoff(Generic[T]):
    """One item at a time from producers to consumers, signalled with two semaphores."""

    def __init__(self) -> None:
        self._item: T | None = None
        # TODO(kata): create self._filled (items ready to take, starts at 0) and self._empty
        # (free places, starts at 1).
        raise NotImplementedError

    def put(self, item: T) -> None:
        """Wait until the previous item has been taken, then leave `item`."""
        # TODO(kata): wait on self._empty, store the item, signal self._filled.
        raise NotImplementedError

    def take(self) -> T:
        """Wait until an item is there, then take it."""
        # TODO(kata): wait on self._filled, take the item, signal self._empty.
        raise NotImplementedError
