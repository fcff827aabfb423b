"""Kata `mpi_topology`: a Cartesian grid of ranks, its neighbours, and a 2-D halo exchange."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from mpi4py import MPI
from mpi_topology import Neighbours, edges, exchange_halos, make_grid, neighbours, position

# Each rank owns a block of 2 rows and 3 columns (not square, so rows and columns cannot be
# mixed up unnoticed). The field's cell at global (row i, column j) holds 100 * (i + 1) + j + 1:
# 205 is global row 1, column 4. A halo cell that nothing may write holds UNTOUCHED.
OWN_ROWS, OWN_COLUMNS = 2, 3
UNTOUCHED = -1.0
MESH, TORUS = (False, False), (True, True)
ROWS_WRAP, COLUMNS_WRAP = (True, False), (False, True)
SIDES = ("up", "down", "left", "right")
# Open MPI's MPI_PROC_NULL (MPICH's is -1): code that compares with -1 breaks there.
OPEN_MPI_PROC_NULL = -2
THIS_MPI_PROC_NULL = MPI.PROC_NULL


@pytest.fixture
def grid(request: pytest.FixtureRequest, comm: Any) -> Iterator[Any]:
    """A grid built by the test itself (`Compute_dims` shape, ranks in order) with the periods
    the test is parametrized with, freed afterwards. (The runner's parent process, which
    never runs the test body, has no communicator: None there.)"""
    if comm is None:
        yield None
        return
    made = comm.Create_cart(MPI.Compute_dims(comm.size, 2), periods=request.param, reorder=False)
    yield made
    made.Free()


@pytest.fixture
def reversed_comm(comm: Any) -> Iterator[Any]:
    """`comm`'s ranks numbered backwards: rank r here is rank size - 1 - r of `comm` (and of
    COMM_WORLD), as a grid made with reorder=True may number them. (None in the parent.)"""
    if comm is None:
        yield None
        return
    backwards = comm.Split(0, comm.size - 1 - comm.rank)
    yield backwards
    backwards.Free()


def free(made: Any) -> None:
    """Free a grid that make_grid returned, if it is one (never the test's own communicator)."""
    if isinstance(made, MPI.Cartcomm) and made != MPI.COMM_NULL:
        made.Free()


def expected_neighbours(grid: Any) -> Neighbours:
    """What the four neighbours must be, by arithmetic on the grid's shape (row-major ranks)."""
    (rows, columns), wraps = grid.dims, [bool(p) for p in grid.periods]
    row, column = grid.rank // columns, grid.rank % columns

    def at(r: int, c: int) -> int:
        if not (0 <= r < rows) and not wraps[0]:
            return MPI.PROC_NULL
        if not (0 <= c < columns) and not wraps[1]:
            return MPI.PROC_NULL
        return (r % rows) * columns + c % columns

    return Neighbours(
        at(row - 1, column), at(row + 1, column), at(row, column - 1), at(row, column + 1)
    )


def shown(rank: int) -> str:
    return "PROC_NULL" if rank == MPI.PROC_NULL else str(rank)


def grid_text(grid: Any) -> str:
    rows, columns = grid.dims
    wrapping = [name for name, p in zip(("rows", "columns"), grid.periods, strict=True) if p]
    return (
        f"grid rank {grid.rank} at (row {grid.rank // columns}, column {grid.rank % columns}) "
        f"of a {rows}x{columns} grid ({' and '.join(wrapping) + ' wrap' if wrapping else 'a mesh'})"
    )


# -- make_grid -------------------------------------------------------------------------------


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(1)
@pytest.mark.parametrize("periods", [MESH, COLUMNS_WRAP])
def test_make_grid_is_a_two_dimensional_grid_of_the_shape_compute_dims_gives(
    comm: Any, periods: tuple[bool, bool]
) -> None:
    made = make_grid(comm, periods)
    try:
        assert made is not None and made != MPI.COMM_NULL, (
            f"make_grid returned {made!r}: a rank left out of a grid gets MPI.COMM_NULL"
        )
        shape = f"of {made.ndim} dimension(s)" if isinstance(made, MPI.Cartcomm) else "with no grid"
        assert isinstance(made, MPI.Cartcomm) and made.ndim == 2, (
            f"make_grid returned a {type(made).__name__} {shape}: build it with "
            f"comm.Create_cart(dims, ...) and two dims"
        )
        want = MPI.Compute_dims(comm.size, 2)
        assert list(made.dims) == want, (
            f"make_grid built a {'x'.join(map(str, made.dims))} grid of {comm.size} ranks; "
            f"MPI.Compute_dims({comm.size}, 2) gives {want}. A shape worked out by hand (the "
            f"book's floor(sqrt(size)) rows) differs, and for 5 or 7 ranks leaves a rank out."
        )
        assert made.size == comm.size and made.rank == comm.rank, (
            f"rank {comm.rank} of comm is rank {made.rank} of the grid's {made.size}: keep every "
            f"rank, in order (reorder=False)"
        )
    finally:
        free(made)


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(1)
def test_make_grid_is_built_from_the_communicator_it_is_given(reversed_comm: Any) -> None:
    made = make_grid(reversed_comm)
    try:
        same = MPI.Group.Compare(made.group, reversed_comm.group)
        assert same == MPI.IDENT, (
            "make_grid(comm) returned a grid whose ranks are not comm's ranks in comm's order "
            "(comm numbers them backwards here): build it with comm.Create_cart, not with "
            "MPI.COMM_WORLD's"
        )
    finally:
        free(made)


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(2)
@pytest.mark.parametrize("periods", [ROWS_WRAP, COLUMNS_WRAP, TORUS, MESH])
def test_make_grid_wraps_exactly_the_dimensions_asked_for(
    comm: Any, periods: tuple[bool, bool]
) -> None:
    made = make_grid(comm, periods)
    try:
        got = tuple(bool(p) for p in made.periods)
        assert got == periods, (
            f"make_grid(comm, periods={periods}) made a grid whose dimensions wrap as {got} "
            f"(dimension 0: rows, 1: columns): pass periods through to Create_cart, in order"
        )
    finally:
        free(made)


# -- position --------------------------------------------------------------------------------


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(3)
def test_position_is_the_row_and_column_of_the_grids_own_rank(reversed_comm: Any) -> None:
    dims = MPI.Compute_dims(reversed_comm.size, 2)
    made = reversed_comm.Create_cart(dims, periods=[False, False], reorder=False)
    try:
        want = (made.rank // dims[1], made.rank % dims[1])
        got = tuple(position(made))
        assert got == want, (
            f"grid rank {made.rank} of a {dims[0]}x{dims[1]} grid (COMM_WORLD rank "
            f"{MPI.COMM_WORLD.rank}) got position {got}, but it sits at {want}: ask for the "
            f"coordinates of the grid's own rank, grid.Get_coords(grid.rank). The book prints "
            f"COMM_WORLD's rank next to them; here the grid numbers the ranks backwards."
        )
    finally:
        free(made)


# -- neighbours ------------------------------------------------------------------------------


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(4, 5)
@pytest.mark.parametrize("grid", [MESH, TORUS, ROWS_WRAP, COLUMNS_WRAP], indirect=True)
def test_neighbours_are_the_ranks_one_step_away_in_each_direction(grid: Any) -> None:
    want = expected_neighbours(grid)
    got = neighbours(grid)
    assert isinstance(got, Neighbours), f"neighbours returned {got!r}, not a Neighbours tuple"
    for side in SIDES:
        mine, right = getattr(got, side), getattr(want, side)
        assert mine == right, (
            f"{grid_text(grid)}: its {side} neighbour is {shown(right)}, but neighbours gave "
            f"{shown(mine)}. Dimension 0 is the rows (up = row - 1, down = row + 1), dimension "
            f"1 the columns; grid.Shift(d, 1) returns (one step back, one step forward); beyond "
            f"the edge of a dimension that does not wrap there is nobody: MPI.PROC_NULL. "
            f"(got {tuple(map(shown, got))}, want {tuple(map(shown, want))} as up, down, "
            f"left, right)"
        )


# -- edges -----------------------------------------------------------------------------------


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(6)
@pytest.mark.parametrize("grid", [MESH, TORUS, ROWS_WRAP, COLUMNS_WRAP], indirect=True)
def test_edges_are_the_sides_with_no_neighbour(grid: Any) -> None:
    want = {s for s, r in expected_neighbours(grid)._asdict().items() if r == MPI.PROC_NULL}
    got = edges(grid)
    assert set(got) == want, (
        f"{grid_text(grid)}: edges gave {sorted(got)}, but the sides with no neighbour are "
        f"{sorted(want)}. A side that wraps around has a neighbour on the far side of the grid; "
        f"a side is on the boundary only where Shift gives MPI.PROC_NULL."
    )


class OpenMPIGrid:
    """A grid as Open MPI shows it: Shift gives -2 where there is no neighbour."""

    def __init__(self, grid: Any) -> None:
        self._grid = grid

    def Shift(self, direction: int, disp: int) -> tuple[int, int]:
        source, dest = self._grid.Shift(direction, disp)
        return (self._open_mpi(source), self._open_mpi(dest))

    @staticmethod
    def _open_mpi(rank: int) -> int:
        return OPEN_MPI_PROC_NULL if rank == THIS_MPI_PROC_NULL else rank

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)


@pytest.mark.mpi(n=[1, 4])
@pytest.mark.clause(6)
@pytest.mark.parametrize("grid", [MESH, ROWS_WRAP], indirect=True)
def test_edges_compare_with_the_constant_not_with_minus_one(
    grid: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    want = {s for s, r in expected_neighbours(grid)._asdict().items() if r == MPI.PROC_NULL}
    with monkeypatch.context() as patch:
        patch.setattr(MPI, "PROC_NULL", OPEN_MPI_PROC_NULL)
        got = edges(OpenMPIGrid(grid))
    assert set(got) == want, (
        f"{grid_text(grid)}, under an MPI whose PROC_NULL is -2 (Open MPI's): edges gave "
        f"{sorted(got)}, want {sorted(want)}. Compare each neighbour with the constant "
        f"MPI.PROC_NULL, never with -1: that number is only MPICH's choice (the book printed "
        f"-1 and took it for the meaning)."
    )


# -- exchange_halos --------------------------------------------------------------------------


def cell_value(row: int, column: int) -> float:
    return 100.0 * (row + 1) + column + 1


def where(values: np.ndarray) -> str:
    """Halo values in words: global cells, untouched, or something else."""
    values = np.asarray(values)
    if np.all(values == UNTOUCHED):
        return "its initial values (untouched)"
    if np.all(values == 0):
        return "zeros (a receive buffer that nothing was received into?)"
    if np.all((values > 100) & (values == np.round(values))):
        cells = [f"({int(v) // 100 - 1},{int(v) % 100 - 1})" for v in values]
        return "global cells " + " ".join(cells)
    return str(values)


def blocks(grid: Any) -> tuple[np.ndarray, np.ndarray]:
    """This rank's block (own cells set, halo UNTOUCHED) and the block it must become."""
    rows, columns = grid.dims
    height, width = rows * OWN_ROWS, columns * OWN_COLUMNS
    field = np.fromfunction(cell_value, (height, width))
    padded = np.full((height + 2, width + 2), UNTOUCHED)
    padded[1:-1, 1:-1] = field
    if grid.periods[0]:
        padded[0, 1:-1], padded[-1, 1:-1] = field[-1], field[0]
    if grid.periods[1]:
        padded[1:-1, 0], padded[1:-1, -1] = field[:, -1], field[:, 0]
    row, column = grid.rank // columns, grid.rank % columns
    top, left = row * OWN_ROWS, column * OWN_COLUMNS
    want = padded[top : top + OWN_ROWS + 2, left : left + OWN_COLUMNS + 2].copy()
    want[[0, 0, -1, -1], [0, -1, 0, -1]] = UNTOUCHED  # corners are not exchanged
    block = np.full_like(want, UNTOUCHED)
    block[1:-1, 1:-1] = want[1:-1, 1:-1]
    return block, want


HALO = {
    "up": ((0, slice(1, -1)), "top halo row block[0, 1:-1]", "last own row"),
    "down": ((-1, slice(1, -1)), "bottom halo row block[-1, 1:-1]", "first own row"),
    "left": ((slice(1, -1), 0), "left halo column block[1:-1, 0]", "last own column"),
    "right": ((slice(1, -1), -1), "right halo column block[1:-1, -1]", "first own column"),
}


def assert_halo(grid: Any, block: np.ndarray, want: np.ndarray, sides: tuple[str, ...]) -> None:
    __tracebackhide__ = True
    around = expected_neighbours(grid)
    for side in sides:
        index, name, edge = HALO[side]
        got, right = block[index], want[index]
        if np.array_equal(got, right):
            continue
        neighbour = getattr(around, side)
        if neighbour == MPI.PROC_NULL:
            meaning = (
                f"there is no {side} neighbour (MPI.PROC_NULL), so this halo must keep its "
                f"values: a receive from PROC_NULL moves nothing, and a buffer copied in "
                f"afterwards must start as the halo's own values"
            )
        else:
            meaning = (
                f"it must hold the {side} neighbour's (rank {neighbour}) {edge}, {where(right)}"
            )
        pytest.fail(
            f"{grid_text(grid)}: after exchange_halos its {name} holds {where(got)}; {meaning}."
        )


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(7, 10)
@pytest.mark.parametrize("grid", [MESH, ROWS_WRAP], indirect=True)
def test_halo_rows_hold_the_edge_rows_of_the_neighbours_above_and_below(grid: Any) -> None:
    block, want = blocks(grid)
    exchange_halos(grid, block)
    assert_halo(grid, block, want, ("up", "down"))


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(8, 10)
@pytest.mark.parametrize("grid", [MESH, COLUMNS_WRAP], indirect=True)
def test_halo_columns_hold_the_edge_columns_of_the_neighbours_left_and_right(grid: Any) -> None:
    block, want = blocks(grid)
    exchange_halos(grid, block)
    assert_halo(grid, block, want, ("left", "right"))


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(7, 8, 10)
@pytest.mark.parametrize("grid", [TORUS], indirect=True)
def test_halo_wraps_around_a_torus(grid: Any) -> None:
    block, want = blocks(grid)
    exchange_halos(grid, block)
    assert_halo(grid, block, want, SIDES)


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(9)
@pytest.mark.parametrize("grid", [MESH, ROWS_WRAP, COLUMNS_WRAP, TORUS], indirect=True)
def test_halo_exchange_leaves_missing_sides_corners_and_own_cells_untouched(grid: Any) -> None:
    block, want = blocks(grid)
    exchange_halos(grid, block)
    missing = tuple(s for s, r in expected_neighbours(grid)._asdict().items() if r == MPI.PROC_NULL)
    assert_halo(grid, block, want, missing)
    corners = block[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert np.all(corners == UNTOUCHED), (
        f"{grid_text(grid)}: exchange_halos wrote into the halo's corners ({where(corners)}); "
        f"only the four sides are exchanged: rows are block[0, 1:-1] and block[-1, 1:-1], "
        f"columns block[1:-1, 0] and block[1:-1, -1]"
    )
    assert np.array_equal(block[1:-1, 1:-1], want[1:-1, 1:-1]), (
        f"{grid_text(grid)}: exchange_halos changed the rank's own cells block[1:-1, 1:-1]; "
        f"it may only write the halo"
    )
