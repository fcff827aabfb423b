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
        # An Event is a latch: once set it stays set, so late runners pass too.
        self._fired = threading.Event()

    def fire(self) -> None:
        """Release every runner, now and later."""
        # set() wakes every waiter at once, and no clear() follows: a pulse would be missed by
        # every runner that is not already waiting.
        self._fired.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the gun has been fired; False if `timeout` s passed first."""
        # Event.wait returns the flag: False only when the timeout ran out first.
        return self._fired.wait(timeout)

    @property
    def fired(self) -> bool:
        """Whether the gun has been fired."""
        return self._fired.is_set()


class Poller:
    """Calls `step()` every `interval` seconds until stopped."""

    def __init__(self, step: Callable[[], object], interval: float) -> None:
        self.step = step
        self.interval = interval
        # An Event rather than a bool: the pause can wait on it and end the moment it is set.
        self._stopping = threading.Event()

    def run(self) -> int:
        """Step, pause, step, ... until stop(); return the number of steps."""
        steps = 0
        while not self._stopping.is_set():
            self.step()
            steps += 1
            # An interruptible pause: time.sleep(interval) would sit out the whole interval
            # even after stop().
            self._stopping.wait(self.interval)
        return steps

    def stop(self) -> None:
        """Make run() return as soon as its current step is over."""
        self._stopping.set()


class Inbox(Generic[T]):
    """Items from many posting threads, for one collecting thread."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._lock = threading.Lock()  # guards _items, and keeps the event in step with it
        # Set exactly while _items is not empty; only the collector clears it.
        self._ready = threading.Event()

    def post(self, item: T) -> None:
        """Add `item` and signal the collector."""
        # Append and set under the lock, so the collector never clears the event between them.
        with self._lock:
            self._items.append(item)
            self._ready.set()

    def collect(self, timeout: float | None = None) -> list[T]:
        """Wait for items (at most `timeout` s) and take them all; [] if none came."""
        if not self._ready.wait(timeout):
            return []
        # Take the items and clear the event in one step: a post() cannot land in between and
        # leave an item behind an event that says "nothing here".
        with self._lock:
            items, self._items = self._items, []
            self._ready.clear()
        return items
