"""Kata `mpi_collectives`: calls that every rank of a communicator makes together.

A collective operation is one call made by every rank of a communicator, in the same order on
every rank: a rank that skips one, or calls another one instead, leaves the others waiting.
Where one rank is special (it sends to all, or receives from all) it is the `root`, and every
rank must name the same root. mpi4py spells each operation twice: in lower case (`bcast`,
`scatter`, `gather`, `allgather`, `allreduce`, `scan`, `exscan`) it moves any picklable Python
object; capitalized (`Scatterv`, `Gatherv`, `Alltoall`, `Reduce`, `Allreduce`, `Barrier`) it
moves the memory of NumPy arrays, which must be contiguous and whose dtypes the sender and the
receiver must agree on.

Every function below takes the communicator first and is called by every rank of it. The
tests run each one on 1, 2 and 3 ranks, with `root` the last rank, never rank 0 alone.

Contract (the tests check each point):

- `share(comm, value, root)`:
  §1 `share` returns the root's `value` on every rank; the other ranks' `value` is ignored.
- `split_counts(total, parts)` (no communication):
  §2 `split_counts` returns `(counts, displacements)`, two lists of `parts` ints: `total`
  items cut into `parts` consecutive runs whose lengths differ by at most one, the longer runs
  first (`counts[i]` is `total // parts + 1` for the first `total % parts` runs and
  `total // parts` for the others), and `displacements[i]`, the index where run `i` starts
  (the sum of the counts before it).
- `deal_out(comm, items, root)`:
  §3 `deal_out` returns this rank's run of the root's list `items`, a list of any length (the
  other ranks pass None): with `counts, displacements = split_counts(len(items), comm.size)`,
  rank `i` gets the list of the `counts[i]` items from `items[displacements[i]]` on.
- `scatter_chunks(comm, data, root)`:
  §4 `scatter_chunks` returns this rank's run of the root's 1-D int64 array `data`, of any
  length (the other ranks pass None), cut as in `deal_out`, as an int64 array.
- `gather_chunks(comm, chunk, root)`:
  §5 `gather_chunks` returns, on the root, every rank's 1-D int64 array `chunk` (of any
  length, 0 included, each rank its own) joined in rank order into one int64 array.
  §6 `gather_chunks` returns None on every rank but the root.
- `all_values(comm, value)`:
  §7 `all_values` returns, on every rank, the list of every rank's `value`, in rank order.
- `transpose(comm, rows)`:
  §8 `transpose` returns this rank's block of rows of the transpose of a matrix `A` spread
  over the ranks: with n = `comm.size`, `A` has n·b rows and n·c columns, and rank `r` holds
  `rows`, of shape (b, n·c): `A`'s rows r·b to r·b+b-1; it returns the array of shape (c, n·b)
  of rows r·c to r·c+c-1 of `A.T`, with the dtype of `rows`.
- `total_at_root(comm, values, root)`:
  §9 `total_at_root` returns, on the root, the element-wise sum over the ranks of their 1-D
  int64 arrays `values` (all of one length) as an int64 array, sums beyond 2**31 included.
  §10 `total_at_root` returns None on every rank but the root.
- `elementwise_max(comm, values)`:
  §11 `elementwise_max` returns, on every rank, the element-wise maximum over the ranks of
  their 1-D float64 arrays `values` (all of one length) as a new float64 array, and leaves
  `values` as it was.
- `max_and_owner(comm, value)`:
  §12 `max_and_owner` returns, on every rank, `(largest, owner)`: the largest of the ranks'
  float `value`s and the rank that holds it; where several ranks hold it, the lowest of them.
- `running_total(comm, value)`:
  §13 `running_total` returns the sum of the ints `value` of ranks 0 to this one, this one
  included.
- `start_offset(comm, count)`:
  §14 `start_offset` returns the sum of the ints `count` of the ranks below this one, this one
  excluded, and 0 on rank 0 (where MPI leaves an exclusive scan's result undefined and
  mpi4py's `exscan` returns None).
- `run_in_steps(comm, steps)`:
  §15 `run_in_steps` calls each of `steps` (functions of no argument) in order and returns the
  list of what they returned.
  §16 `run_in_steps` lets no rank start step k+1 before every rank has finished step k.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from mpi4py import MPI

T = TypeVar("T")
Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


def share(comm: MPI.Intracomm, value: T, root: int) -> T:
    """The root's `value`, on every rank."""
    # TODO(kata): comm.bcast(value, root=root), and return what it returns.
    raise NotImplementedError


def split_counts(total: int, parts: int) -> tuple[list[int], list[int]]:
    """`total` items cut into `parts` consecutive runs: their lengths, and where each starts."""
    # TODO(kata): size, remainder = divmod(total, parts); the first `remainder` runs get one more.
    raise NotImplementedError


def deal_out(comm: MPI.Intracomm, items: list[T] | None, root: int) -> list[T]:
    """This rank's consecutive run of the root's `items`."""
    # TODO(kata): on the root, cut `items` into one list per rank with split_counts; scatter them.
    raise NotImplementedError


def scatter_chunks(comm: MPI.Intracomm, data: Int64Array | None, root: int) -> Int64Array:
    """This rank's consecutive run of the root's int64 array `data`."""
    # TODO(kata): bcast the length; size an int64 receive buffer with split_counts; Scatterv.
    raise NotImplementedError


def gather_chunks(comm: MPI.Intracomm, chunk: Int64Array, root: int) -> Int64Array | None:
    """Every rank's `chunk`, joined in rank order, on the root; None elsewhere."""
    # TODO(kata): gather the lengths to the root; an int64 buffer and displacements there; Gatherv.
    raise NotImplementedError


def all_values(comm: MPI.Intracomm, value: T) -> list[T]:
    """Every rank's `value`, in rank order, on every rank."""
    # TODO(kata): one collective gives every rank the whole list: which one?
    raise NotImplementedError


def transpose(comm: MPI.Intracomm, rows: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """This rank's rows of A.T, where every rank holds its rows of A."""
    # TODO(kata): block j (columns j*c to j*c+c-1) at index j of a contiguous buffer;
    # Alltoall; transpose each block that comes back.
    raise NotImplementedError


def total_at_root(comm: MPI.Intracomm, values: Int64Array, root: int) -> Int64Array | None:
    """The element-wise sum of every rank's `values`, on the root; None elsewhere."""
    # TODO(kata): Reduce with op=MPI.SUM into an int64 buffer that only the root allocates.
    raise NotImplementedError


def elementwise_max(comm: MPI.Intracomm, values: Float64Array) -> Float64Array:
    """The element-wise maximum of every rank's `values`, on every rank."""
    # TODO(kata): Allreduce with op=MPI.MAX into a new float64 buffer.
    raise NotImplementedError


def max_and_owner(comm: MPI.Intracomm, value: float) -> tuple[float, int]:
    """The largest `value` and the lowest rank that holds it, on every rank."""
    # TODO(kata): allreduce the pair (value, comm.rank) with op=MPI.MAXLOC.
    raise NotImplementedError


def running_total(comm: MPI.Intracomm, value: int) -> int:
    """The sum of `value` over ranks 0 to this one, this one included."""
    # TODO(kata): comm.scan(value, op=MPI.SUM).
    raise NotImplementedError


def start_offset(comm: MPI.Intracomm, count: int) -> int:
    """The sum of `count` over the ranks below this one; 0 on rank 0."""
    # TODO(kata): comm.exscan(count, op=MPI.SUM); decide what rank 0 returns.
    raise NotImplementedError


def run_in_steps(comm: MPI.Intracomm, steps: Sequence[Callable[[], T]]) -> list[T]:
    """Call each step in order; no rank starts a step before all have finished the last."""
    # TODO(kata): call the steps in order, with comm.Barrier() between two steps.
    raise NotImplementedError
