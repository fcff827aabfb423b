"""Kata `event_loop`: callbacks that an event loop runs on its own schedule.

Contract (the tests check each point on an event loop whose clock is virtual: it jumps
straight to the next timer, so waiting costs nothing and every time is exact; it starts at
1000 s, not at 0):

- `schedule_demo(loop, record)` hands four callbacks, each calling `record(label)`, to the loop.
  §1 `schedule_demo` only *schedules* its callbacks and returns; none of them may run before
  the loop does.
  §2 `schedule_demo` schedules `record("first")` and then `record("second")` with
  `call_soon`: they run at once, in that order.
  §3 `schedule_demo` schedules `record("at")` with `call_at`, at the absolute loop time 1
  second from now.
  §4 `schedule_demo` schedules `record("later")` with `call_later`, 2 seconds from now.
- `round_robin(loop, names, interval, duration, record)` is a round-robin scheduler; `start`
  below is `loop.time()` when `round_robin` was called.
  §5 `round_robin` returns at once: it runs no turn itself, it only schedules the first one.
  §6 Once the loop runs, turn k (k = 0, 1, 2, ...) of `round_robin` calls
  `record(names[k % len(names)])` at `start + k * interval`.
  §7 A `round_robin` turn runs only if it starts before `start + duration`: a turn due exactly
  at the deadline, or after it, never runs.
  §8 The last `round_robin` turn stops the loop with `loop.stop()`, at once, instead of
  scheduling another, so `loop.run_forever()` returns by itself.
  §9 Each `round_robin` turn schedules the next one and returns; nothing ever blocks the loop
  (no `time.sleep`), so other callbacks run on time between the turns.
- `Debouncer(loop, delay, action)` (its constructor is given) runs `action()` once a burst of
  triggers is over.
  §10 `Debouncer.trigger()` starts a countdown: `action()` runs once, exactly `delay` seconds
  of loop time later, and a `Debouncer` can be triggered again after its action ran.
  §11 A `Debouncer.trigger()` that comes before the countdown ends restarts it: `action()`
  runs once, `delay` seconds after the *last* trigger.
  §12 `Debouncer.cancel()` drops the pending action, if any; with nothing pending it does
  nothing (and raises nothing).
- §13 `round_robin` and `Debouncer` measure time only with `loop.time()`, the clock the loop's
  timers run on, never with `time.time()` or `time.monotonic()`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence


def schedule_demo(loop: asyncio.AbstractEventLoop, record: Callable[[str], None]) -> None:
    """Schedule record("first"), record("second"), record("at") at +1 s, record("later") at +2 s."""
    # call_soon queues in FIFO order, so "first" runs before "second" on the next iteration.
    loop.call_soon(record, "first")
    loop.call_soon(record, "second")
    # call_at takes an absolute time on the loop's own clock, never a delay.
    loop.call_at(loop.time() + 1.0, record, "at")
    # call_later takes a delay relative to now.
    loop.call_later(2.0, record, "later")


def round_robin(
    loop: asyncio.AbstractEventLoop,
    names: Sequence[str],
    interval: float,
    duration: float,
    record: Callable[[str], None],
) -> None:
    """Take turns among `names` every `interval` s of loop time; stop the loop at the deadline."""
    # The deadline is on the loop's clock, the one its timers run on.
    deadline = loop.time() + duration

    def turn(index: int) -> None:
        record(names[index % len(names)])
        # Hand control back to the loop with a timer instead of waiting here: the loop stays free.
        if loop.time() + interval < deadline:
            loop.call_later(interval, turn, index + 1)
        else:
            loop.stop()

    # Only schedule: the first turn runs once the loop runs, not inside this call.
    loop.call_soon(turn, 0)


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
        # A later trigger replaces the earlier countdown, so the action runs only once.
        self.cancel()
        self._pending = self._loop.call_later(self._delay, self._action)

    def cancel(self) -> None:
        """Drop the pending action, if there is one."""
        # A cancelled TimerHandle stays in the loop's heap but is skipped when its time comes.
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
