"""Kata `mpi_patterns`: a ring allreduce, pi by integration, and a 1-D heat equation over MPI.

Three patterns that real parallel programs are made of, each written with the calls of the
earlier MPI katas:

- a **ring allreduce**: the vector is cut into `size` chunks (`chunk_bounds`); in `size - 1`
  reduce-scatter steps every rank sends one chunk to its right neighbour and adds the chunk it
  receives from its left neighbour into its own copy, so that each rank ends up holding one
  chunk summed over all ranks; in `size - 1` allgather steps the finished chunks travel round
  the ring until every rank has all of them. Each rank sends about `2 * len(vector)` numbers
  whatever the number of ranks: this is how data-parallel training sums its gradients.
- **pi by the midpoint rule**: each rank adds up its share of the intervals, and one reduction
  adds up the shares.
- a **1-D heat equation**: each rank owns a stretch of the rod, with one *ghost* cell at each
  end that holds a copy of the neighbouring rank's edge cell, refreshed before every step.

Given (not to change): `chunk_bounds(length, parts)` cuts `range(length)` into `parts`
consecutive `(start, stop)` pieces whose sizes differ by at most one, the larger ones first,
as `np.array_split` does.

Contract (the tests check each point):

- `ring_allreduce(comm, vector)`, called by every rank of `comm` with a 1-D array of the same
  length and dtype:
  §1 `ring_allreduce` returns, on every rank, a new array of `vector`'s length and dtype holding
  the element-wise sum of every rank's `vector`, for any length (one that is not a multiple of
  `comm.size`, or smaller than it, or 0), and leaves `vector` unchanged.
  §2 `ring_allreduce` uses point-to-point calls only (no collective such as `Allreduce`,
  `Reduce` or `Allgather`), and only along the ring: it sends to rank `(rank + 1) % size` and
  receives from rank `(rank - 1) % size`.
  §3 `ring_allreduce` sends `2 * (size - 1)` messages, each holding one chunk of
  `chunk_bounds(len(vector), size)`, never the whole vector.
- `midpoint_integral(comm, f, a, b, intervals)`, with `h = (b - a) / intervals` and the
  midpoints `a + (i + 0.5) * h` for `i` in `range(intervals)`:
  §4 `midpoint_integral` returns, on every rank, `h` times the sum of `f` at every midpoint,
  each rank adding up its share and one reduction adding up the shares.
  §5 `midpoint_integral` calls `f` with NumPy arrays of midpoints, evaluating each midpoint on
  exactly one rank (none left out, none twice), and gives every rank a share that differs from
  every other rank's by at most one midpoint, also when `intervals` is not a multiple of
  `comm.size`.
- `parallel_pi(comm, intervals)`:
  §6 `parallel_pi` returns `midpoint_integral(comm, f, 0.0, 1.0, intervals)` for
  `f(x) = 4 / (1 + x**2)`, whose integral over [0, 1] is pi.
- `exchange_ghosts(comm, piece)`: `piece` is this rank's stretch of the rod with a ghost cell
  at each end; its own cells are `piece[1:-1]`. Rank r's left neighbour is r - 1 and its right
  neighbour r + 1; the rod does not wrap around.
  §7 `exchange_ghosts` sets `piece[0]` to the left neighbour's last own cell and `piece[-1]` to
  the right neighbour's first own cell, leaving the first rank's left ghost and the last rank's
  right ghost untouched (their neighbour is `MPI.PROC_NULL`), and completes even when every
  send waits for its matching receive.
- `parallel_heat(comm, u0, alpha, steps)`: every rank passes the whole rod's initial
  temperatures `u0` (1-D float64, at least one cell per rank). One explicit step turns `u` into
  `u'` with `u'[i] = u[i] + alpha * (u[i - 1] - 2 * u[i] + u[i + 1])` for every inner cell,
  while the two end cells `u[0]` and `u[-1]` keep their initial temperature.
  §8 `parallel_heat` returns, on every rank, the whole rod after `steps` such steps, each one
  computed from the previous step's values only.
  §9 `parallel_heat` gives rank r the cells `chunk_bounds(len(u0), comm.size)[r]`, and before
  each step (never after it) calls `exchange_ghosts(comm, piece)` once on its piece: its own
  cells with a ghost at each end.
- `pi_share(start, stop, intervals)` and `pool_pi(intervals, workers)`: pi again, without a
  communicator: `MPIPoolExecutor` starts worker processes (with `MPI_Comm_spawn`) and runs the
  tasks it is given on them, like `concurrent.futures.ProcessPoolExecutor`.
  §10 `pi_share` returns `h` times the sum of `4 / (1 + x**2)` at the midpoints of the intervals
  `start .. stop - 1`, with `h = 1 / intervals`.
  §11 `pool_pi` returns the sum of `pi_share(start, stop, intervals)` over the chunks of
  `chunk_bounds(intervals, workers)`, each one a task of an
  `MPIPoolExecutor(max_workers=workers)`, submitted before any result is awaited.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor  # noqa: F401  (imported for you: pool_pi needs it)


def chunk_bounds(length: int, parts: int) -> list[tuple[int, int]]:
    """`range(length)` cut into `parts` consecutive (start, stop) pieces, larger ones first."""
    size, extra = divmod(length, parts)
    bounds, start = [], 0
    for part in range(parts):
        stop = start + size + (1 if part < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def ring_allreduce(comm: MPI.Intracomm, vector: np.ndarray) -> np.ndarray:
    """The element-wise sum of every rank's `vector`, on every rank, by a ring of messages."""
    # TODO(kata): copy vector; size - 1 reduce-scatter steps (send a chunk right, receive the
    # next one from the left and add it in), then size - 1 allgather steps (pass the finished
    # chunks on, receiving into place).
    raise NotImplementedError


def midpoint_integral(
    comm: MPI.Intracomm,
    f: Callable[[np.ndarray], np.ndarray],
    a: float,
    b: float,
    intervals: int,
) -> float:
    """The midpoint-rule integral of `f` over [a, b], each rank taking a share of the intervals."""
    # TODO(kata): this rank's range of interval indices; h * f(its midpoints).sum(); allreduce.
    raise NotImplementedError


def parallel_pi(comm: MPI.Intracomm, intervals: int) -> float:
    """Pi, as the midpoint-rule integral of 4 / (1 + x**2) over [0, 1]."""
    # TODO(kata): one call of midpoint_integral.
    raise NotImplementedError


def exchange_ghosts(comm: MPI.Intracomm, piece: np.ndarray) -> None:
    """Fill `piece`'s two ghost cells with the neighbouring ranks' edge cells, in place."""
    # TODO(kata): two Sendrecv calls with the neighbours (MPI.PROC_NULL beyond the rod's ends).
    raise NotImplementedError


def parallel_heat(comm: MPI.Intracomm, u0: np.ndarray, alpha: float, steps: int) -> np.ndarray:
    """The rod `u0` after `steps` explicit heat steps, computed piece by piece on every rank."""
    # TODO(kata): take your piece (with two ghost cells); each step: exchange_ghosts, then update
    # the own cells (not the rod's two end cells); finally gather the pieces on every rank.
    raise NotImplementedError


def pi_share(start: int, stop: int, intervals: int) -> float:
    """h * the sum of 4 / (1 + x**2) at the midpoints of intervals start .. stop - 1."""
    # TODO(kata): the midpoints (np.arange(start, stop) + 0.5) * h, with h = 1 / intervals.
    raise NotImplementedError


def pool_pi(intervals: int, workers: int) -> float:
    """Pi, its shares computed by `workers` processes of an MPIPoolExecutor."""
    # TODO(kata): with MPIPoolExecutor(max_workers=workers) as pool: submit pi_share once per
    # chunk of chunk_bounds(intervals, workers), then add up the futures' results.
    raise NotImplementedError
