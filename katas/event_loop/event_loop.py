"""Kata `event_loop`: callbacks that an event loop runs on its own schedule.

Contract (the tests check each point on an event loop whose clock is virtual: it jumps
straight to the next timer, so waiting costs nothing and every time is exact):

- `schedule_demo(loop, record)` only *schedules* four callbacks and returns; none of them may
  run before the loop does. Each calls `record(label)`:
  "first" and then "second" with `call_soon` (they run at once, in that order), "at" with
  `call_at` exactly 1 second of loop time from now, and "later" with `call_later` 2 seconds
  from now.
- `round_robin(loop, names, interval, duration, record)` is a round-robin scheduler: it returns
  at once, and once the loop runs, turn k (k = 0, 1, 2, ...) calls `record(names[k % len(names)])`
  at `start + k * interval`, where `start` is `loop.time()` when `round_robin` was called.
  A turn runs only if it starts before `start + duration`. The last turn stops the loop with
  `loop.stop()` instead of scheduling another, so `loop.run_forever()` returns by itself.
  Each turn schedules the next one; nothing ever blocks the loop (no `time.sleep`).
- `Debouncer(loop, delay, action)`: `trigger()` (re)starts a countdown; `action()` runs once,
  `delay` seconds of loop time after the *last* `trigger()`. Triggers that come before the
  countdown ends push the action back. `cancel()` drops a pending action, if any.
- Measure time only with `loop.time()`: it is the clock the loop's timers run on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence


def schedule_demo(loop: asyncio.AbstractEventLoop, record: Callable[[str], None]) -> None:
    """Schedule record("first"), record("second"), record("at") at +1 s, record("later") at +2 s."""
    # TODO(kata): use call_soon twice, call_at with an absolute loop time, and call_later.
    raise NotImplementedError


def round_robin(
    loop: asyncio.AbstractEventLoop,
    names: Sequence[str],
    interval: float,
    duration: float,
    record: Callable[[str], None],
) -> None:
    """Take turns among `names` every `interval` s of loop time; stop the loop at the deadline."""
    # TODO(kata): schedule the first turn; each turn records its name, then schedules the next
    # turn `interval` later or, if that would not start before the deadline, stops the loop.
    raise NotImplementedError


class Debouncer:
    """Runs `action()` once, `delay` seconds of loop time after the last `trigger()`."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, delay: float, action: Callable[[], None]
    ) -> None:
        self._loop = loop
        self._delay = delay
        self._action = action
        self._pending: asyncio.TimerHandle | None = None

    def trigger(self) -> None:
        """(Re)start the countdown: the action runs `delay` seconds from now, not earlier."""
        # TODO(kata): cancel the pending timer, if any, then keep the handle of a new call_later.
        raise NotImplementedError

    def cancel(self) -> None:
        """Drop the pending action, if there is one."""
        # TODO(kata): cancel the pending timer handle, if any, and forget it.
        raise NotImplementedError
