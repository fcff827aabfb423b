"""Kata `timers`: delayed calls with `threading.Timer`, a debouncer and a heartbeat.

Contract (the tests check each point, most of them under a controlled scheduler whose clock
is virtual: a five-second timer costs nothing and always fires at exactly five seconds):

- §1 `call_later(delay, function, *args)` calls `function(*args)` once, with exactly those
  arguments, `delay` seconds from now, in the timer's own thread; it does not wait for it.
  §2 `call_later` makes its `Timer` a daemon thread, starts it, and returns it (so the
  caller can `cancel()` it).
- `Debouncer(wait, function)` keeps `wait`, `function`, a lock and the pending timer (given).
  §3 `Debouncer.call(*args)` (re)starts the countdown: `function(*args)` runs `wait` seconds
  after the *last* call of a burst, once, with that last call's arguments.
  §4 Calls further apart than `wait` are separate bursts: each of them fires, `wait` seconds
  after it was made.
  §5 `Debouncer.call` may be used from several threads at once: however they interleave, one
  burst of calls fires exactly once.
  §6 `Debouncer.cancel()` drops the pending call, if any; with nothing pending it does
  nothing.
- `Heartbeat(interval, beat)` makes each timer thread with the given `_arm()`.
  §7 `Heartbeat.start()` makes `beat()` run every `interval` seconds: the first beat
  `interval` seconds after `start()`, each next one `interval` seconds after the previous
  one finished.
  §8 `Heartbeat.stop()` stops it for good: once `stop()` has returned, no beat is running and
  none will start, even when `stop()` comes in the middle of a beat.
  §9 `Heartbeat.stop()` may also be called from inside `beat()`, in the timer's own thread.
- Use `Timer` as imported at the top (`from threading import Timer`), and `threading.Lock`:
  the tests swap in instrumented versions while they probe you.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from threading import Timer
from typing import Any


def call_later(delay: float, function: Callable[..., object], *args: Any) -> Timer:
    """Call `function(*args)` once, `delay` seconds from now, in a daemon timer thread."""
    # TODO(kata): create a Timer with the function and its args, make it a daemon, start it
    # and return it.
    raise NotImplementedError


class Debouncer:
    """Runs `function` once a burst of calls has been quiet for `wait` seconds."""

    def __init__(self, wait: float, function: Callable[..., object]) -> None:
        self.wait = wait
        self.function = function
        self._lock = threading.Lock()
        self._timer: Timer | None = None  # the pending call, if any

    def call(self, *args: Any) -> None:
        """Restart the countdown: `function(*args)` runs `wait` seconds from now, unless..."""
        # TODO(kata): under the lock, cancel the pending timer (if any) and start a new one.
        raise NotImplementedError

    def cancel(self) -> None:
        """Drop the pending call, if any."""
        # TODO(kata): under the lock, cancel the pending timer and forget it.
        raise NotImplementedError


class Heartbeat:
    """Calls `beat()` every `interval` seconds between `start()` and `stop()`."""

    def __init__(self, interval: float, beat: Callable[[], object]) -> None:
        self.interval = interval
        self.beat = beat
        self._lock = threading.Lock()
        self._timer: Timer | None = None  # the timer of the next (or the running) beat
        self._stopped = True

    def _arm(self) -> None:
        """Schedule the next beat (call it with `self._lock` held)."""
        self._timer = Timer(self.interval, self._tick)
        self._timer.daemon = True
        self._timer.start()

    def start(self) -> None:
        """Begin beating: the first beat comes `interval` seconds from now."""
        # TODO(kata): under the lock, clear the stopped flag and arm the first timer.
        raise NotImplementedError

    def _tick(self) -> None:
        """Runs in the timer thread: one beat, then the next one is armed unless stopped."""
        # TODO(kata): call beat(); then, under the lock, arm the next timer unless stopped.
        raise NotImplementedError

    def stop(self) -> None:
        """Stop for good; when this returns, no beat is running and none will start."""
        # TODO(kata): under the lock, set the stopped flag and cancel the timer; then, outside
        # the lock, join that timer unless it is the current thread (stop() from a beat).
        raise NotImplementedError
