"""Kata `conditions`: a bounded buffer shared by several producers and several consumers.

Contract (the tests check each point, running threads under a controlled scheduler that tries
many interleavings):

- `BoundedBuffer(capacity)` (given) keeps its items in `items` (a deque, oldest first) and
  guards `items` and `closed` with one `threading.Condition`, `condition`. Any number of
  threads may put and get at the same time.
- §1 `put(item)` appends `item` and `get()` removes and returns the oldest item: items come out
  in the order they went in.
- §2 The buffer never holds more than `capacity` items: `put` waits while the buffer is full,
  even when several producers wait for room at once.
- §3 `get` waits while the buffer is empty, and every item put is got exactly once, even when
  several consumers wait at once.
- §4 `put` wakes the threads waiting for an item and `get` wakes the threads waiting for room,
  so no interleaving leaves a thread waiting for ever when there is work it could do.
- §5 `put` raises `Closed` if the buffer is closed, also when it is closed while `put` waits
  for room.
- §6 `get` on a closed buffer still hands out the items left in it, and raises `Closed` once it
  is empty, also when it is closed while `get` waits.
- §7 `get` never tells a consumer `Closed` while the buffer is still open.
- §8 `close()` marks the buffer closed, holding `condition`, and wakes every thread waiting in
  `put` or `get`.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Closed(Exception):
    """The buffer is closed: no more puts, and nothing left to get."""


class BoundedBuffer(Generic[T]):
    """A FIFO of at most `capacity` items, guarded by one Condition."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.items: deque[T] = deque()
        self.closed = False
        self.condition = threading.Condition()

    def put(self, item: T) -> None:
        """Wait for room, then append `item`; raise Closed if the buffer is closed."""
        # TODO(kata): under the condition, wait_for room (or closed), raise Closed if closed,
        # append, and wake the threads that wait for items.
        raise NotImplementedError

    def get(self) -> T:
        """Wait for an item and return the oldest; raise Closed once closed and empty."""
        # TODO(kata): under the condition, wait in a `while` loop until there is an item (or the
        # buffer is closed), raise Closed if empty, pop the oldest, and wake the waiting threads.
        raise NotImplementedError

    def close(self) -> None:
        """Refuse further puts, and wake every waiting thread."""
        # TODO(kata): under the condition, set closed and wake every waiter.
        raise NotImplementedError
