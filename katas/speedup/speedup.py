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
    # TODO(kata): check 0 <= f <= 1 and n >= 1 (else ValueError), then apply the law.
    raise NotImplementedError


def amdahl_limit(parallel_fraction: float) -> float:
    """The best speedup any number of processors can give: 1 / (1 - f)."""
    # TODO(kata): return 1 / (1 - f), or math.inf when nothing is serial.
    raise NotImplementedError


def gustafson(parallel_fraction: float, processors: float) -> float:
    """Gustafson's scaled speedup: (1 - f) + f * n."""
    # TODO(kata): check the arguments like amdahl, then apply the law.
    raise NotImplementedError


def efficiency(speedup: float, processors: float) -> float:
    """Speedup per processor."""
    # TODO(kata): divide the speedup by the number of processors.
    raise NotImplementedError


def processors_for(parallel_fraction: float, speedup: float) -> int:
    """The fewest processors for which Amdahl's law reaches `speedup`."""
    # TODO(kata): solve 1 / ((1 - f) + f / n) = speedup for n, round up allowing for float error,
    # and raise ValueError when the speedup is not below the limit.
    raise NotImplementedError


def split(stop: int, parts: int) -> list[tuple[int, int]]:
    """Cut 1 .. stop - 1 into `parts` consecutive balanced ranges (start, end)."""
    # TODO(kata): divmod the count by parts; the first `remainder` ranges get one number more.
    raise NotImplementedError


def parallel_collatz(pool: Pool, stop: int, parts: int) -> int:
    """collatz_steps_total(1, stop), computed by the pool's workers, one task per range."""
    # TODO(kata): starmap collatz_steps_total over split(stop, parts) and sum the partial totals.
    raise NotImplementedError
