"""Kata `events`: a start gun, a stoppable poller and an inbox, each built on threading.Event.

Contract (the tests check each point, running threads under a controlled scheduler that tries
many interleavings, on a virtual clock):

- `StartGun()` holds runners at the start line until it is fired.
  - §1 `StartGun.fire()` releases every runner waiting in `wait`, not just one.
  - §2 After `fire()`, a runner that calls `StartGun.wait` later passes at once: the gun stays
    fired.
  - §3 `StartGun.fired` is True once the gun has been fired, and False before.
  - §4 `StartGun.wait(timeout=None)` returns True once the gun has been fired; without a
    timeout it waits for as long as that takes.
  - §5 `StartGun.wait(timeout)` returns False when `timeout` seconds pass before the gun fires,
    and True when it fires within them.
- `Poller(step, interval)` calls `step()` over and over from the thread that runs it.
  - §6 `Poller.run()` calls `step()`, then pauses `interval` seconds, and again, until `stop()`
    is called; it returns how many times it called `step()`.
  - §7 A `Poller` that is paused when `stop()` comes returns at once, without sitting out its
    pause.
  - §8 `Poller.stop()` may be called from any thread, at any time: a stop that comes before
    `run()` starts makes `run()` return 0 without calling `step()`.
- `Inbox()` collects items posted by any number of threads for one collector thread.
  - §9 `Inbox.post(item)` adds `item`, and `Inbox.collect(timeout=None)` waits until at least
    one item is there and returns all of them (oldest first), leaving the inbox empty.
  - §10 No item posted to an `Inbox` is ever lost, whenever it is posted: before the collector
    waits, while it waits, or while it is taking the previous items.
  - §11 `Inbox.collect(timeout)` returns `[]` when `timeout` seconds pass with nothing posted,
    and the items posted within them.
- Use `threading.Event` and `threading.Lock` (the tests swap in instrumented versions while
  they probe you).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class StartGun:
    """Keeps runners at the line until fired; a fired gun stays fired."""

    def __init__(self) -> None:
        # TODO(kata): create the Event that records whether the gun has been fired.
        raise NotImplementedError

    def fire(self) -> None:
        """Release every runner, now and later."""
        # TODO(kata): set the event, and leave it set.
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> bool:
        """True once the gun has been fired; False if `timeout` s passed first."""
        # TODO(kata): wait on the event and return what the wait returned.
        raise NotImplementedError

    @property
    def fired(self) -> bool:
        """Whether the gun has been fired."""
        # TODO(kata): ask the event.
        raise NotImplementedError


class Poller:
    """Calls `step()` every `interval` seconds until stopped."""

    def __init__(self, step: Callable[[], object], interval: float) -> None:
        self.step = step
        self.interval = interval
        # TODO(kata): create the Event that stop() sets.
        raise NotImplementedError

    def run(self) -> int:
        """Step, pause, step, ... until stop(); return the number of steps."""
        # TODO(kata): loop while the stop event is not set: step, then pause by waiting on the
        # stop event with timeout=interval (a stop during the pause then ends it at once).
        raise NotImplementedError

    def stop(self) -> None:
        """Make run() return as soon as its current step is over."""
        # TODO(kata): set the stop event.
        raise NotImplementedError


class Inbox(Generic[T]):
    """Items from many posting threads, for one collecting thread."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._lock = threading.Lock()  # guards _items, and keeps the event in step with it
        # TODO(kata): create the Event that says "there are items to collect".
        raise NotImplementedError

    def post(self, item: T) -> None:
        """Add `item` and signal the collector."""
        # TODO(kata): under the lock, append the item and set the event (and leave it set: only
        # the collector clears it).
        raise NotImplementedError

    def collect(self, timeout: float | None = None) -> list[T]:
        """Wait for items (at most `timeout` s) and take them all; [] if none came."""
        # TODO(kata): wait on the event (return [] on a timeout); then, under the lock, take all
        # the items and clear the event.
        raise NotImplementedError
