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
from mpi4py.futures import MPIPoolExecutor


def chunk_bounds(length: int, parts: int) -> list[tuple[int, int]]:
    """`range(length)` cut into `parts` consecutive (start, stop) pieces, larger ones first."""
    size, extra = divmod(length, parts)
    bounds, start = [], 0
    for part in range(parts):
        stop = start + size + (1 if part < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


REDUCE_TAG, GATHER_TAG, TO_RIGHT_TAG, TO_LEFT_TAG = 21, 22, 23, 24


def ring_allreduce(comm: MPI.Intracomm, vector: np.ndarray) -> np.ndarray:
    """The element-wise sum of every rank's `vector`, on every rank, by a ring of messages."""
    # Sum into a contiguous copy: the caller's array stays as it was, and every chunk is a
    # contiguous slice that MPI can send from and receive into without copying.
    result = np.array(vector, copy=True, order="C")
    rank, size = comm.rank, comm.size
    left, right = (rank - 1) % size, (rank + 1) % size
    bounds = chunk_bounds(len(result), size)
    scratch = np.empty(bounds[0][1] - bounds[0][0], dtype=result.dtype)
    # Reduce-scatter: each step passes on the chunk summed so far and adds in the one from the
    # left; after size - 1 steps rank r holds chunk (r + 1) % size summed over every rank.
    for step in range(size - 1):
        send_start, send_stop = bounds[(rank - step) % size]
        recv_start, recv_stop = bounds[(rank - step - 1) % size]
        incoming = scratch[: recv_stop - recv_start]
        comm.Sendrecv(
            result[send_start:send_stop],
            dest=right,
            sendtag=REDUCE_TAG,
            recvbuf=incoming,
            source=left,
            recvtag=REDUCE_TAG,
        )
        result[recv_start:recv_stop] += incoming
    # Allgather: each step passes on the finished chunk it got last and receives the next one
    # straight into place.
    for step in range(size - 1):
        send_start, send_stop = bounds[(rank + 1 - step) % size]
        recv_start, recv_stop = bounds[(rank - step) % size]
        comm.Sendrecv(
            result[send_start:send_stop],
            dest=right,
            sendtag=GATHER_TAG,
            recvbuf=result[recv_start:recv_stop],
            source=left,
            recvtag=GATHER_TAG,
        )
    return result


def midpoint_integral(
    comm: MPI.Intracomm,
    f: Callable[[np.ndarray], np.ndarray],
    a: float,
    b: float,
    intervals: int,
) -> float:
    """The midpoint-rule integral of `f` over [a, b], each rank taking a share of the intervals."""
    # Consecutive index ranges from chunk_bounds: every interval once, shares within one.
    h = (b - a) / intervals
    start, stop = chunk_bounds(intervals, comm.size)[comm.rank]
    share = 0.0
    if stop > start:
        midpoints = a + (np.arange(start, stop) + 0.5) * h
        share = h * float(np.sum(f(midpoints)))
    # allreduce, not reduce: every rank needs the answer.
    return float(comm.allreduce(share, op=MPI.SUM))


def parallel_pi(comm: MPI.Intracomm, intervals: int) -> float:
    """Pi, as the midpoint-rule integral of 4 / (1 + x**2) over [0, 1]."""
    # The integral of 4 / (1 + x**2) from 0 to 1 is 4 * atan(1) = pi.
    return midpoint_integral(comm, lambda x: 4.0 / (1.0 + x * x), 0.0, 1.0, intervals)


def exchange_ghosts(comm: MPI.Intracomm, piece: np.ndarray) -> None:
    """Fill `piece`'s two ghost cells with the neighbouring ranks' edge cells, in place."""
    # PROC_NULL beyond the rod's ends: those Sendrecv halves move nothing and the ghost stays.
    left = comm.rank - 1 if comm.rank > 0 else MPI.PROC_NULL
    right = comm.rank + 1 if comm.rank < comm.size - 1 else MPI.PROC_NULL
    # Sendrecv pairs each send with a receive, so no rank waits for an unposted receive.
    comm.Sendrecv(
        piece[-2:-1],
        dest=right,
        sendtag=TO_RIGHT_TAG,
        recvbuf=piece[0:1],
        source=left,
        recvtag=TO_RIGHT_TAG,
    )
    comm.Sendrecv(
        piece[1:2],
        dest=left,
        sendtag=TO_LEFT_TAG,
        recvbuf=piece[-1:],
        source=right,
        recvtag=TO_LEFT_TAG,
    )


def parallel_heat(comm: MPI.Intracomm, u0: np.ndarray, alpha: float, steps: int) -> np.ndarray:
    """The rod `u0` after `steps` explicit heat steps, computed piece by piece on every rank."""
    # Own cells in the middle, a ghost at each end; zeros, so that a missed exchange shows.
    start, stop = chunk_bounds(len(u0), comm.size)[comm.rank]
    piece = np.zeros(stop - start + 2)
    piece[1:-1] = u0[start:stop]
    for _ in range(steps):
        # The ghosts must hold the neighbours' values of this step, before the update uses them.
        exchange_ghosts(comm, piece)
        # The right-hand side is computed whole before it is stored: old values only.
        new = piece[1:-1] + alpha * (piece[:-2] - 2.0 * piece[1:-1] + piece[2:])
        # The rod's two end cells are fixed; the ends of the other pieces are not.
        if start == 0:
            new[0] = piece[1]
        if stop == len(u0):
            new[-1] = piece[-2]
        piece[1:-1] = new
    return np.concatenate(comm.allgather(piece[1:-1].copy()))


def pi_share(start: int, stop: int, intervals: int) -> float:
    """h * the sum of 4 / (1 + x**2) at the midpoints of intervals start .. stop - 1."""
    # The same midpoints as parallel_pi's, so both give the same estimate.
    h = 1.0 / intervals
    midpoints = (np.arange(start, stop) + 0.5) * h
    return h * float(np.sum(4.0 / (1.0 + midpoints * midpoints)))


def pool_pi(intervals: int, workers: int) -> float:
    """Pi, its shares computed by `workers` processes of an MPIPoolExecutor."""
    # Submit every task before waiting for any, so the workers compute at the same time;
    # main=False: the workers need not import the caller's __main__ (here, pytest's).
    with MPIPoolExecutor(max_workers=workers, main=False) as pool:
        futures = [
            pool.submit(pi_share, start, stop, intervals)
            for start, stop in chunk_bounds(intervals, workers)
        ]
        return sum(future.result() for future in futures)
