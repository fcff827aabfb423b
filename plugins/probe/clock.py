"""Virtual clock for one probe run: time only moves when no worker can run.

Timeouts (``lock.acquire(timeout=...)``, ``cond.wait(1)``, ``time.sleep``) resolve against
this clock, so a back-off that waits ten seconds costs nothing and always behaves the same.
The real clock functions are captured at import so the harness never calls patched ones.
"""

from __future__ import annotations

import time as _time

REAL_MONOTONIC = _time.monotonic
REAL_PERF_COUNTER = _time.perf_counter
REAL_SLEEP = _time.sleep
REAL_TIME = _time.time

# Fixed origins keep reports and learner-visible timestamps identical from run to run.
MONOTONIC_ORIGIN = 10_000.0
EPOCH_ORIGIN = 1_700_000_000.0


class VirtualClock:
    """Seconds elapsed inside one run; advanced only by the scheduler (autojump)."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0

    def advance_to(self, when: float) -> None:
        if when > self.now:
            self.now = when

    def deadline(self, timeout: float | None) -> float | None:
        """Absolute virtual deadline for a relative timeout (None = wait forever)."""
        if timeout is None:
            return None
        return self.now + max(0.0, float(timeout))
