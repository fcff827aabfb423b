"""When the self-check may start one more run: a busy run per core, waiting runs beside them.

Half of a verify's runs mostly wait: a mutant that hangs is killed by a 3 or 5 s deadline, a
process kata sleeps in its children, a socket kata waits for its peer. A run's *load* is the
cores it used on average in earlier verifies (its CPU seconds over its wall seconds): 0.05 to
0.3 for such a run, about 1 for a busy one, and 1 for a run never measured. Up to one run per
job slot always starts. Beyond that, a run starts while the loads of the runs in flight and its
own add up to at most the job count and HEADROOM, up to `max_runs` in flight: two busy runs keep
the two cores, and half a core's worth of waiting runs waits beside them instead of in a slot.

An earlier version started extra runs only while /proc/stat showed a core idle, one per half
second. The waiting runs sat in the slots instead (they are the longest, so they came first) and
the cores idled: the 35 CPU katas' verify used 187 s of CPU in 160 s of wall on two cores.
"""

from __future__ import annotations

import os
from collections.abc import Collection

MAX_RUNS_VARIABLE = "KATA_VERIFY_MAX_RUNS"  # runs in flight at most; = the job count turns it off
LIGHT_LOAD = 0.5  # cores a run used on average; below it the run mostly waits
# The cores the runs in flight may be expected to use beyond one per job slot. Each run also
# spends its first 0.1-0.2 s at a whole core (pytest starting); a margin, not a target.
HEADROOM = 0.5


def max_runs(jobs: int) -> int:
    """Runs in flight at most: KATA_VERIFY_MAX_RUNS, by default four per job slot."""
    value = os.environ.get(MAX_RUNS_VARIABLE, "")
    return max(jobs, int(value)) if value.strip() else 4 * jobs


class Admission:
    """Whether a run may start now (the caller holds the scheduler's lock)."""

    def __init__(self, jobs: int, limit: int) -> None:
        self.jobs, self.limit = jobs, limit

    def may_add(self, loads: Collection[float], load: float = 1.0) -> bool:
        """Whether a run expected to use `load` cores may start beside runs using `loads`."""
        if len(loads) < self.jobs:
            return True
        if len(loads) >= self.limit:
            return False
        return sum(loads) + load <= self.jobs + HEADROOM


def load(cpu_seconds: float | None, seconds: float | None) -> float:
    """The cores a run used on average last time (never measured: a whole core)."""
    if cpu_seconds is None or not seconds:
        return 1.0
    return cpu_seconds / seconds
