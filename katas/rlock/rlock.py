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

import threading  # noqa: F401 - the lock you create comes from here
from collections.abc import Sequence


class NotEnoughItems(Exception):
    """The box holds fewer items than a `remove` asked for."""


class Box:
    """A count of items that several threads change, guarded by one lock (B1's `Box`)."""

    def __init__(self) -> None:
        self.total_items = 0
        # TODO(kata): create self.lock, the one lock every method holds; methods that hold it call
        # other methods that take it again.
        raise NotImplementedError

    def execute(self, value: int) -> None:
        """Add `value` to `total_items`, under the lock."""
        # TODO(kata): change total_items while holding self.lock.
        raise NotImplementedError

    def add(self, count: int = 1) -> None:
        """Add `count` items: holds the lock and calls `execute(count)`."""
        # TODO(kata): hold self.lock and call self.execute(count).
        raise NotImplementedError

    def remove(self, count: int = 1) -> None:
        """Take `count` items out, or raise NotEnoughItems and change nothing."""
        # TODO(kata): hold self.lock while you check there are enough items and call
        # self.execute(-count).
        raise NotImplementedError

    def add_batch(self, counts: Sequence[int]) -> None:
        """Add every count in `counts` as one step: nobody sees half a batch."""
        # TODO(kata): hold self.lock for the whole loop that calls self.add(count).
        raise NotImplementedError
