"""Kata `mpi_topology`: ranks arranged in a 2-D grid, their neighbours, and a halo exchange.

A Cartesian communicator (`comm.Create_cart(dims, periods=..., reorder=False)`) places the
ranks of `comm` on a grid, row after row: with `dims = [rows, columns]`, grid rank r sits at
row `r // columns`, column `r % columns`. Dimension 0 counts rows (up is row - 1, down is
row + 1), dimension 1 counts columns (left is column - 1, right is column + 1).
`grid.Shift(direction, 1)` returns `(source, dest)`: the rank one step back and the rank one
step forward along that dimension. A dimension that does not wrap around is a *mesh*: beyond
its edge there is no rank, and `Shift` says so with `MPI.PROC_NULL`, a rank that every send
and receive treats as "nobody" (it completes at once and moves no data). A dimension that
wraps around is a *torus*: beyond the last row comes the first one again.

A block of a field lives on each rank, with a one-cell *halo* around it: `block` has shape
`(rows + 2, columns + 2)`; the rank's own cells are `block[1:-1, 1:-1]`, and the ring around
them holds copies of the neighbours' edge cells, so that a stencil can be computed on every
own cell.

Contract (the tests check each point):

- `make_grid(comm, periods=(False, False))`:
  §1 `make_grid` returns a 2-D Cartesian communicator built from `comm` (never from
  `MPI.COMM_WORLD`) over all of its ranks, of shape `MPI.Compute_dims(comm.size, 2)`, keeping
  their order (`reorder=False`).
  §2 `make_grid` makes dimension `d` wrap around exactly when `periods[d]` is true.
- `position(grid)`:
  §3 `position` returns this rank's `(row, column)` in `grid`, from the grid's own rank
  (`grid.Get_coords(grid.rank)`): another communicator's rank may number the ranks differently.
- `neighbours(grid)`:
  §4 `neighbours` returns `Neighbours(up, down, left, right)`: the grid ranks one row up, one
  row down, one column left and one column right of this rank, as `grid.Shift` gives them.
  §5 `neighbours` gives `MPI.PROC_NULL` for a side beyond the edge of a mesh, and the rank on
  the far side of the grid for a side that wraps around.
- `edges(grid)`:
  §6 `edges` returns the set of this rank's sides (`"up"`, `"down"`, `"left"`, `"right"`) that
  lie on the outer boundary of the grid: exactly those whose neighbour is `MPI.PROC_NULL`,
  compared with the constant `MPI.PROC_NULL`, never with its value (MPICH's is -1, Open MPI's
  is -2).
- `exchange_halos(grid, block)`, on every rank of `grid` at once:
  §7 `exchange_halos` fills the top halo row `block[0, 1:-1]` with the up neighbour's last own
  row, and the bottom halo row `block[-1, 1:-1]` with the down neighbour's first own row.
  §8 `exchange_halos` fills the left halo column `block[1:-1, 0]` with the left neighbour's
  last own column, and the right halo column `block[1:-1, -1]` with the right neighbour's first
  own column. A column is not contiguous in memory: send a contiguous copy of it, and receive
  into a contiguous buffer that you copy into the halo.
  §9 `exchange_halos` leaves untouched a halo side that has no neighbour (`MPI.PROC_NULL`), the
  four corner cells, and the rank's own cells.
  §10 `exchange_halos` completes even when every send waits for its matching receive: pair
  each send with its receive (`Sendrecv`) instead of sending first everywhere.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from mpi4py import MPI


class Neighbours(NamedTuple):
    """The grid ranks around one rank; `MPI.PROC_NULL` where there is none."""

    up: int
    down: int
    left: int
    right: int


def make_grid(comm: MPI.Intracomm, periods: tuple[bool, bool] = (False, False)) -> MPI.Cartcomm:
    """A 2-D grid over every rank of `comm`; dimension d wraps around when periods[d] is true."""
    # TODO(kata): comm.Create_cart(MPI.Compute_dims(comm.size, 2), periods=..., reorder=False).
    raise NotImplementedError


def position(grid: MPI.Cartcomm) -> tuple[int, int]:
    """This rank's (row, column) in `grid`."""
    # TODO(kata): ask the grid for the coordinates of the grid's own rank.
    raise NotImplementedError


def neighbours(grid: MPI.Cartcomm) -> Neighbours:
    """The ranks up, down, left and right of this one; MPI.PROC_NULL beyond a mesh's edge."""
    # TODO(kata): grid.Shift(0, 1) gives (up, down); grid.Shift(1, 1) gives (left, right).
    raise NotImplementedError


def edges(grid: MPI.Cartcomm) -> set[str]:
    """The sides of this rank ("up", "down", "left", "right") on the grid's outer boundary."""
    # TODO(kata): the names of the sides whose neighbour is MPI.PROC_NULL (the constant).
    raise NotImplementedError


def exchange_halos(grid: MPI.Cartcomm, block: np.ndarray) -> None:
    """Fill `block`'s one-cell halo with the neighbours' edge cells, in place."""
    # TODO(kata): four Sendrecv calls: last own row down / top halo from up, first own row up /
    # bottom halo from down, and the same for columns, through contiguous copies.
    raise NotImplementedError
