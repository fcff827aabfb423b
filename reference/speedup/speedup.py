"""Kata `speedup`: Amdahl's and Gustafson's laws, and a speedup measured on this machine.

Contract (the tests check each point):

- §1 `amdahl(parallel_fraction, processors)` returns 1 / ((1 - f) + f / n), the speedup of a
  program whose run on one processor spends `parallel_fraction` f of its time in work that can
  be spread over `processors` n processors (the rest stays serial).
  §2 `amdahl` accepts `processors = math.inf` and then gives the limit 1 / (1 - f).
  §3 `amdahl` raises `ValueError` unless 0 <= f <= 1 and n >= 1 (both edges allowed).
- §4 `amdahl_limit(parallel_fraction)` returns 1 / (1 - f), the speedup that no number of
  processors can beat: for f = 0.9 that is 10, not the 9 that B1 says.
  §5 `amdahl_limit(1.0)` returns `math.inf`: a program with no serial part has no limit.
  §6 `amdahl_limit` raises `ValueError` unless 0 <= f <= 1.
- §7 `gustafson(parallel_fraction, processors)` returns (1 - f) + f * n, the scaled speedup of
  Gustafson's law, where `f` is the parallel fraction of the run *on n processors* and the
  problem grows with n.
  §8 `gustafson` raises `ValueError` by the same rule as `amdahl`.
- §9 `efficiency(speedup, processors)` returns the speedup per processor, speedup / n (1.0 =
  perfect).
- §10 `processors_for(parallel_fraction, speedup)` returns the fewest whole processors n for
  which `amdahl(f, n) >= speedup`, as an `int`: solve the law for n and round up.
  §11 `processors_for` treats a solution within a relative 1e-9 of a whole number as that number
  (floats give 3.000000000000001 for f = 0.5, speedup 1.5, where exactly 3 processors suffice).
  §12 `processors_for` returns 1 for a speedup of 1 or less, whatever f is.
  §13 `processors_for` raises `ValueError` when the speedup is out of reach: at or beyond
  `amdahl_limit(f)`, again allowing for float rounding.
- §14 `split(stop, parts)` cuts the numbers 1 .. stop - 1 into `parts` consecutive ranges
  `(start, end)` (end excluded) that cover them exactly once, in order.
  §15 `split`'s ranges differ in size by at most one.
- §16 `parallel_collatz(pool, stop, parts)` returns `collatz_steps_total(1, stop)` computed by
  the given `multiprocessing.Pool`, one task per range of `split(stop, parts)`, the partial
  totals added up in the caller.
  §17 `parallel_collatz` hands the pool every task before it waits for any result.
  §18 `parallel_collatz` leaves the caller's pool open, ready for the next call at once.
  §19 `parallel_collatz` with two workers on two free cores runs at least 1.4 times faster than
  the serial call.

`collatz_steps_total` (given) is the CPU-bound job; it lives at module level so that the
pool's worker processes can find it by name.
"""

from __future__ import annotations

import math
from multiprocessing.pool import Pool


def collatz_steps_total(start: int, stop: int) -> int:
    """The total number of Collatz steps (n -> n/2 or 3n+1) that takes each n in
    [start, stop) down to 1. Pure Python, so it keeps one core busy."""
    total = 0
    for number in range(start, stop):
        steps = 0
        while number != 1:
            number = number // 2 if number % 2 == 0 else 3 * number + 1
            steps += 1
        total += steps
    return total


def amdahl(parallel_fraction: float, processors: float) -> float:
    """Amdahl's speedup: 1 / ((1 - f) + f / n)."""
    _check(parallel_fraction, processors)
    # The serial part takes as long as ever; only the parallel part shrinks by n.
    return 1 / ((1 - parallel_fraction) + parallel_fraction / processors)


def amdahl_limit(parallel_fraction: float) -> float:
    """The best speedup any number of processors can give: 1 / (1 - f)."""
    _check(parallel_fraction, 1)
    # With infinitely many processors the parallel part costs nothing: only 1 - f is left.
    serial = 1 - parallel_fraction
    return math.inf if serial == 0 else 1 / serial


def gustafson(parallel_fraction: float, processors: float) -> float:
    """Gustafson's scaled speedup: (1 - f) + f * n."""
    _check(parallel_fraction, processors)
    # One processor would need the serial part plus n times the parallel part of the run.
    return (1 - parallel_fraction) + parallel_fraction * processors


def efficiency(speedup: float, processors: float) -> float:
    """Speedup per processor."""
    # How much of each processor's time went into useful speedup.
    return speedup / processors


def processors_for(parallel_fraction: float, speedup: float) -> int:
    """The fewest processors for which Amdahl's law reaches `speedup`."""
    if speedup <= 1:
        return 1
    # From 1/S = (1 - f) + f/n: n = f / (1/S - (1 - f)). The gap must be clearly positive:
    # at S = 1 / (1 - f) it is zero in exact arithmetic, but floats may leave a crumb of it.
    gap = 1 / speedup - (1 - parallel_fraction)
    if gap <= 1e-12:
        raise ValueError(f"a speedup of {speedup} is out of reach for f = {parallel_fraction}")
    # Float arithmetic can also land a hair above a whole number (3.000000000000001), so
    # round up only past a small relative tolerance.
    exact = parallel_fraction / gap
    return max(1, math.ceil(exact * (1 - 1e-9)))


def split(stop: int, parts: int) -> list[tuple[int, int]]:
    """Cut 1 .. stop - 1 into `parts` consecutive balanced ranges (start, end)."""
    size, remainder = divmod(stop - 1, parts)
    ranges = []
    start = 1
    for index in range(parts):
        # Spreading the remainder one by one keeps every range within one number of the others.
        end = start + size + (1 if index < remainder else 0)
        ranges.append((start, end))
        start = end
    return ranges


def parallel_collatz(pool: Pool, stop: int, parts: int) -> int:
    """collatz_steps_total(1, stop), computed by the pool's workers, one task per range."""
    # Each range is an independent task; only the small partial totals come back to be added.
    return sum(pool.starmap(collatz_steps_total, split(stop, parts)))


def _check(parallel_fraction: float, processors: float) -> None:
    # Fractions outside [0, 1] and fewer than one processor have no meaning in either law.
    if not 0 <= parallel_fraction <= 1:
        raise ValueError(f"the parallel fraction must lie in [0, 1], not {parallel_fraction}")
    if processors < 1:
        raise ValueError(f"there must be at least one processor, not {processors}")
