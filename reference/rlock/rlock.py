"""Kata `rlock`: a box whose methods call each other while holding one re-entrant lock.

Contract (the tests check each point, running threads under a controlled scheduler that tries
many interleavings):

- `Box()` starts with `total_items == 0` (given) and owns one lock, `lock`, that every method
  below holds while it reads or changes `total_items`.
  §1 A thread that already holds `box.lock` can take it again: a method that holds it may call
  another method that takes it too, and a caller holding it may call every method.
  §2 Only the thread that holds `box.lock` may release it: a release from any other thread
  raises `RuntimeError`.
- §3 `execute(value)` adds `value`, which may be negative, to `total_items`.
  §4 `execute` is public and takes `box.lock` itself: two threads may call it at once, and no
  change is lost.
- §5 `add(count=1)` holds the lock and adds `count` items by calling `execute(count)`.
- §6 `remove(count=1)` holds the lock and takes `count` items out by calling
  `execute(-count)`; it may take every item the box holds.
  §7 `remove` raises `NotEnoughItems`, changing nothing, when the box holds fewer than `count`
  items.
  §8 `remove` checks the count and changes it in one step: two threads can never both take the
  last item.
  §9 A refused `remove` leaves the lock free for the other threads.
- §10 `add_batch(counts)` adds every count of `counts` by calling `add(count)` for each.
  §11 `add_batch` holds the lock around its whole loop: a thread that takes `lock` sees the box
  before the batch or after it, never half-way.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence


class NotEnoughItems(Exception):
    """The box holds fewer items than a `remove` asked for."""


class Box:
    """A count of items that several threads change, guarded by one lock (B1's `Box`)."""

    def __init__(self) -> None:
        self.total_items = 0
        # An RLock, not a Lock: remove() and add_batch() hold it while they call methods that
        # take it again, and an RLock counts those nested acquisitions instead of deadlocking.
        self.lock = threading.RLock()

    def execute(self, value: int) -> None:
        """Add `value` to `total_items`, under the lock."""
        # execute() is public: a caller that does not hold the lock yet must be serialised too.
        with self.lock:
            self.total_items += value

    def add(self, count: int = 1) -> None:
        """Add `count` items: holds the lock and calls `execute(count)`."""
        # Holding the lock here makes execute() re-enter it: the case B1's Box demonstrates.
        with self.lock:
            self.execute(count)

    def remove(self, count: int = 1) -> None:
        """Take `count` items out, or raise NotEnoughItems and change nothing."""
        # The check and the change under one hold: nobody can take the items in between.
        with self.lock:
            if self.total_items < count:
                raise NotEnoughItems(f"asked for {count}, the box holds {self.total_items}")
            self.execute(-count)

    def add_batch(self, counts: Sequence[int]) -> None:
        """Add every count in `counts` as one step: nobody sees half a batch."""
        # One hold around the whole loop: each add() re-enters it, so others see all or nothing.
        with self.lock:
            for count in counts:
                self.add(count)
