"""When the self-check may start one more run: one per core always, more only while a core idles.

Half of a verify's runs mostly wait: a mutant that hangs is killed by a 3 or 5 s deadline, a
process kata sleeps in its children, a socket kata waits for its peer. One run per core leaves
such a core idle. So, beyond one run per core, a run that used under half a core in earlier
verifies (its CPU seconds over its wall seconds) may start while the machine has had that much
idle CPU and half a core more over the last half second, one such start per half second, up to
`max_runs` in flight.
The idle time is the machine's own (/proc/stat), so it also yields to work outside the verify;
where it cannot be read (not Linux), no extra run starts.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

MAX_RUNS_VARIABLE = "KATA_VERIFY_MAX_RUNS"  # runs in flight at most; = the job count turns it off
LIGHT_LOAD = 0.5  # cores a run used on average; below it the run mostly waits
IDLE_MARGIN = 0.5  # cores left idle beyond what an extra run is expected to use
SETTLE_SECONDS = 0.5  # the window idle time is judged on, and the gap between extra starts
PROC_STAT = Path("/proc/stat")


def max_runs(jobs: int) -> int:
    """Runs in flight at most: KATA_VERIFY_MAX_RUNS, by default two per job slot."""
    value = os.environ.get(MAX_RUNS_VARIABLE, "")
    return max(jobs, int(value)) if value.strip() else 2 * jobs


class CpuMeter:
    """How many cores stood idle over the last window, from the kernel's CPU time counters."""

    def __init__(self, path: Path = PROC_STAT) -> None:
        self.path = path
        self.cores = os.cpu_count() or 1
        self.start = self._read()
        self.idle: float | None = None  # idle cores over the last full window

    def _read(self) -> tuple[float, int, int] | None:
        """(when, idle ticks, all ticks) summed over the CPUs, or None where unreadable."""
        try:
            first = self.path.read_text(encoding="ascii").splitlines()[0].split()
        except (OSError, IndexError, UnicodeDecodeError):
            return None
        if first[:1] != ["cpu"]:
            return None
        # user nice system idle iowait irq softirq steal
        ticks = [int(field) for field in first[1:9]]
        return time.monotonic(), ticks[3] + ticks[4], sum(ticks)

    def restart(self) -> None:
        """Forget the window so far: the next answer covers only what happens from now on."""
        self.start, self.idle = self._read(), None

    def idle_cores(self) -> float | None:
        """Idle cores over the last complete window (None: unknown, never assume idle)."""
        now = self._read()
        if now is None or self.start is None:
            return None
        if now[0] - self.start[0] >= SETTLE_SECONDS:
            ticks = now[2] - self.start[2]
            self.idle = (now[1] - self.start[1]) / ticks * self.cores if ticks > 0 else None
            self.start = now
        return self.idle


class Admission:
    """Whether a run beyond one per core may start now (the caller holds the scheduler's lock)."""

    def __init__(self, jobs: int, limit: int, meter: CpuMeter | None = None) -> None:
        self.jobs, self.limit = jobs, limit
        self.meter = meter if meter is not None else CpuMeter()
        self.last_extra = 0.0

    def may_add(self, in_flight: int, load: float = 1.0) -> bool:
        """Whether a run expected to use `load` cores may start now."""
        if in_flight < self.jobs:
            return True
        if in_flight >= self.limit or time.monotonic() - self.last_extra < SETTLE_SECONDS:
            return False
        idle = self.meter.idle_cores()
        return idle is not None and idle >= load + IDLE_MARGIN

    def started(self, in_flight: int) -> None:
        """Called as a run starts, `in_flight` counting it."""
        if in_flight > self.jobs:
            self.last_extra = time.monotonic()
            self.meter.restart()  # the next extra start waits for a window that shows this one


def load(cpu_seconds: float | None, seconds: float | None) -> float:
    """The cores a run used on average last time (never measured: a whole core)."""
    if cpu_seconds is None or not seconds:
        return 1.0
    return cpu_seconds / seconds


def is_light(cpu_seconds: float | None, seconds: float | None) -> bool:
    """Whether a run, as measured last time, used under LIGHT_LOAD cores (unmeasured: no)."""
    return load(cpu_seconds, seconds) < LIGHT_LOAD
