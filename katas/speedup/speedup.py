"""Kata `speedup`: Amdahl's and Gustafson's laws, and a speedup measured on this machine.

Contract (the tests check each point):

- `amdahl(parallel_fraction, processors)`: the speedup of a program whose run on one processor
  spends `parallel_fraction` of its time in work that can be spread over `processors`
  processors (the rest stays serial): 1 / ((1 - f) + f / n). `processors` may be `math.inf`.
  Raises `ValueError` unless 0 <= f <= 1 and n >= 1.
- `amdahl_limit(parallel_fraction)`: the speedup that no number of processors can beat:
  1 / (1 - f), and `math.inf` for f = 1. (For f = 0.9 that is 10, not the 9 that B1 says.)
- `gustafson(parallel_fraction, processors)`: the scaled speedup of Gustafson's law, where `f`
  is the parallel fraction of the run *on n processors* and the problem grows with n:
  (1 - f) + f * n. Same `ValueError` rule as `amdahl`.
- `efficiency(speedup, processors)`: speedup per processor, speedup / n (1.0 = perfect).
- `processors_for(parallel_fraction, speedup)`: the fewest whole processors n for which
  `amdahl(f, n) >= speedup`: solve the law for n and round up, but treat a solution within a
  relative 1e-9 of a whole number as that number (floats give 3.000000000000001 for f = 0.5,
  speedup 1.5, where exactly 3 processors suffice; f = 0.9 reaches 9 at 81). Returns 1 for a
  speedup of 1 or less. Raises `ValueError` when the speedup is out of reach (at or beyond
  `amdahl_limit(f)`, again allowing for float rounding).
- `split(stop, parts)`: cut the numbers 1 .. stop - 1 into `parts` consecutive ranges
  `(start, end)` (end excluded) that cover them exactly once, in order, with sizes that differ
  by at most one.
- `parallel_collatz(pool, stop, parts)`: `collatz_steps_total(1, stop)` computed by the given
  `multiprocessing.Pool`, one task per range of `split(stop, parts)`, the partial totals added
  up in the caller. With two workers on two free cores the tests require it to run at least
  1.4 times faster than the serial call.

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
