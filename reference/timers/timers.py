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
    timer = Timer(delay, function, args)
    # A pending timer must not keep the program alive at exit.
    timer.daemon = True
    timer.start()
    return timer


class Debouncer:
    """Runs `function` once a burst of calls has been quiet for `wait` seconds."""

    def __init__(self, wait: float, function: Callable[..., object]) -> None:
        self.wait = wait
        self.function = function
        self._lock = threading.Lock()
        self._timer: Timer | None = None  # the pending call, if any

    def call(self, *args: Any) -> None:
        """Restart the countdown: `function(*args)` runs `wait` seconds from now, unless..."""
        # Cancel-and-replace is one step for other callers: two callers cannot both replace
        # the same timer and leave two pending calls.
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = call_later(self.wait, self.function, *args)

    def cancel(self) -> None:
        """Drop the pending call, if any."""
        with self._lock:
            # cancel() stops a timer that has not fired yet; dropping the reference would not.
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None


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
        with self._lock:
            self._stopped = False
            self._arm()

    def _tick(self) -> None:
        """Runs in the timer thread: one beat, then the next one is armed unless stopped."""
        self.beat()
        with self._lock:
            # stop() may have run during the beat: re-arming now would beat on forever.
            if not self._stopped:
                self._arm()

    def stop(self) -> None:
        """Stop for good; when this returns, no beat is running and none will start."""
        with self._lock:
            self._stopped = True
            timer = self._timer
            if timer is not None:
                timer.cancel()
        # cancel() cannot stop a beat that is already running: wait for it to end (outside the
        # lock, which its _tick needs), unless that beat is the one calling us.
        if timer is not None and timer is not threading.current_thread():
            timer.join()
