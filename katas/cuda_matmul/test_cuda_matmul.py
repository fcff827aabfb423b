"""Kata `cuda_matmul`: matrix multiplication on an NVIDIA GPU with PyCUDA, naive, then tiled in shared memory."""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pycuda.driver as drv
import pytest
from cuda_matmul import BLOCK, MAX_TILE, matmul_naive, matmul_tiled
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

# float32 keeps about 7 digits; a sum of at most 1,000 products of numbers in [0.5, 1.5) (no
# cancellation) stays within about 1e-5 of the exact sum in any order of addition, so 1e-4
# relative passes every correct kernel, and every bug below is off by far more.
RTOL = 1e-4
# (m, k, n) for the naive kernel (BLOCK = 16): 1 x 1 x 1; then m and n that are no multiples
# of 16 and round up to different numbers of blocks (1 and 3, 3 and 1, 2 and 2), so that rows
# and columns taken for each other leave whole rows or columns unwritten.
NAIVE_SHAPES = [(1, 1, 1), (3, 5, 40), (40, 7, 5), (17, 33, 18)]
# (m, k, n, tile): 1 x 1 x 1 (smaller than a tile); k = 45 = 2 full steps of 16 and a partial
# third, m and n no multiples of 16 (every edge block has threads outside c); a tile of 5 (not a
# power of two, fewer threads than a warp) over k = 9 and k = 23 (partial last steps again).
TILED_SHAPES = [(1, 1, 1, 16), (37, 45, 21, 16), (2, 9, 13, 5), (20, 23, 7, 5)]
# The race test: tiles of 32 x 32 threads (32 warps a block, which the GPU schedules apart) over
# a product of 10 x 10 blocks and 32 steps each, run RACE_RUNS times on new inputs.
RACE_SHAPE = (320, 1000, 300)
RACE_RUNS = 3
_seeds = itertools.count(1)


@pytest.fixture(scope="module", autouse=True)
def cuda_context() -> Iterator[None]:
    """The GPU's primary context, current while this file's tests run (what
    pycuda.autoprimaryctx sets up), and no longer current afterwards."""
    drv.init()
    context = drv.Device(0).retain_primary_context()
    context.push()
    try:
        yield
    finally:
        gc.collect()  # free this file's device arrays while their context is current
        drv.Context.pop()


def matrices(m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """New float32 matrices of numbers in [0.5, 1.5) at every call: every element of a @ b is at
    least k / 4, and device memory left over from an earlier product never holds this one's
    answer, so an element the kernel never wrote cannot pass for a right one."""
    rng = np.random.default_rng(next(_seeds))
    a = rng.uniform(0.5, 1.5, (m, k)).astype(np.float32)
    b = rng.uniform(0.5, 1.5, (k, n)).astype(np.float32)
    return a, b


def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy.matmul of the float32 values the GPU gets, summed in float64."""
    return np.matmul(
        np.asarray(a, dtype=np.float32).astype(np.float64),
        np.asarray(b, dtype=np.float32).astype(np.float64),
    )


def picture(wrong: np.ndarray) -> str:
    """A map of the wrong elements ('X') of a small result, one line per row."""
    return "\n".join("      " + "".join("X" if bad else "." for bad in row) for row in wrong)


def edge(wrong: np.ndarray, axis: int) -> int | None:
    """The first of the last rows (axis 0) or columns (axis 1) that are wholly wrong while the
    others are right, or None when the wrong elements do not look like that."""
    whole = wrong.all(axis=1 - axis)
    touched = wrong.any(axis=1 - axis)
    first = int(np.argmax(touched))
    if touched[first:].all() and whole[first:].all() and first > 0:
        return first
    return None


def stale_padding(a: np.ndarray, b: np.ndarray, tile: int) -> np.ndarray | None:
    """What a tiled kernel gives when it skips the store of a tile element past k instead of
    storing 0: the last step then also adds the products the previous step left there."""
    k = a.shape[1]
    rest = k % tile
    if k <= tile or not rest:
        return None
    last = k - rest  # where the last, partial step starts
    extra = product(a[:, last - tile + rest : last], b[last - tile + rest : last])
    return product(a, b) + extra


def diagnosis(
    got: np.ndarray, wrong: np.ndarray, a: np.ndarray, b: np.ndarray, tile: int | None
) -> str:
    """A sentence about what the pattern of wrong elements usually means."""
    k = a.shape[1]
    for axis, what, letter, index in ((0, "rows", "y", "row"), (1, "columns", "x", "col")):
        first = edge(wrong, axis)
        if first is not None:
            return (
                f"Every {what[:-1]} from {first} on is wrong and the others are right: no thread "
                f"computed them. The grid's {letter} axis must cover the {what} ({index} = "
                f"blockIdx.{letter} * blockDim.{letter} + threadIdx.{letter}), and the number "
                f"of blocks is rounded up, (size + edge - 1) // edge, never down."
            )
    if not got.any():
        return (
            "Every element is 0: nothing was summed (a k loop that never ran?) or c was never "
            "written: launch the kernel on the GPUArrays and return c_gpu.get()."
        )
    if np.isnan(got).any():
        return (
            "Some elements are NaN: the kernel read memory outside a or b, or c was never "
            "written there. Guard every read with the real sizes m, k and n."
        )
    if tile is not None and k % tile:
        full = k // tile * tile
        if np.allclose(got, product(a[:, :full], b[:full]), rtol=RTOL):
            return (
                f"The result is a[:, :{full}] @ b[:{full}]: the last {k - full} of the k = {k} "
                f"products were left out. The k loop ran k / tile = {k // tile} steps, rounded "
                f"down; it needs (k + tile - 1) / tile = {math.ceil(k / tile)}, the last one "
                f"over a partial tile whose missing elements are 0."
            )
        stale = stale_padding(a, b, tile)
        if stale is not None and np.allclose(got, stale, rtol=RTOL):
            return (
                "The last, partial step also added the products of the previous step's tiles: "
                "a tile element past k was not stored, so the previous step's value stayed "
                "there. Store 0 there (a_tile[r][s] = inside ? a[...] : 0.0f), never skip the "
                "store."
            )
    if tile is not None:
        return (
            "The wrong elements follow no edge: if the naive kernel passes, look at the tiles. "
            "A tile element is a[row, t * tile + s] in a_tile[r][s] and b[t * tile + r, col] in "
            "b_tile[r][s], and 0 where that is past m, k or n (a store of 0, never no store: "
            "shared memory keeps whatever was there before). The sum adds a_tile[r][q] * "
            "b_tile[q][s], and every thread reaches a __syncthreads() after storing and after "
            "summing (none returns early)."
        )
    return (
        "Check the indexing, row-major with the real row lengths: a[row, p] is a[row * k + p], "
        "b[p, col] is b[p * n + col], c[row, col] is c[row * n + col], where col counts along "
        "x (blockIdx.x * blockDim.x + threadIdx.x) and row along y."
    )


def check_product(
    got: Any, a: np.ndarray, b: np.ndarray, call: str, tile: int | None = None
) -> None:
    """`got` is a float32 (m, n) NumPy array equal to numpy.matmul(a, b)."""
    __tracebackhide__ = True
    m, n = a.shape[0], b.shape[1]
    assert isinstance(got, np.ndarray), (
        f"{call} returned a {type(got).__name__}, not a NumPy array: return c_gpu.get()"
    )
    assert got.shape == (m, n), (
        f"{call} returned shape {got.shape}; a {a.shape} @ b {b.shape} has shape {(m, n)}"
    )
    assert got.dtype == np.float32, (
        f"{call} returned dtype {got.dtype}: return the float32 array the kernel wrote"
    )
    want = product(a, b)
    wrong = ~np.isclose(got, want, rtol=RTOL, atol=0.0)
    if wrong.any():
        first = tuple(int(x) for x in np.argwhere(wrong)[0])
        shown = f"\n    wrong elements:\n{picture(wrong)}" if m <= 40 and n <= 60 else ""
        pytest.fail(
            f"{call}: {int(wrong.sum())} of {m * n} elements differ from numpy.matmul; the "
            f"first at {first}: got {float(got[first]):.6g}, expected {want[first]:.6g}.{shown}\n"
            f"{diagnosis(got, wrong, a, b, tile)}",
            pytrace=False,
        )


# -- launches: what the host code asked the GPU to run ---------------------------------------


@dataclass
class Launch:
    grid: tuple[int, ...]
    block: tuple[int, ...]
    static_shared: int  # bytes of the __shared__ arrays the kernel declares
    refused: str = ""  # the driver's error, when it refused the launch


@pytest.fixture(autouse=True)
def launches(monkeypatch: pytest.MonkeyPatch) -> list[Launch]:
    """Every kernel launch of the test: `function(..., block=, grid=)` and the prepared calls
    all end in `Function._launch_kernel`. A grid with no blocks fails the test with why,
    where the driver would only say "invalid argument"."""
    seen: list[Launch] = []
    original = drv.Function._launch_kernel

    def noted(function: Any, grid: Any, block: Any, *rest: Any) -> Any:
        seen.append(Launch(tuple(grid), tuple(block), int(function.shared_size_bytes)))
        if 0 in tuple(grid):
            pytest.fail(
                f"a kernel was launched on a grid of {tuple(grid)} blocks (with blocks of "
                f"{tuple(block)} threads), which the driver refuses: the number of blocks was "
                f"rounded down. Round up, (size + edge - 1) // edge, so that a partial block "
                f"covers the last rows and columns (the kernel skips its threads outside c).",
                pytrace=False,
            )
        return original(function, grid, block, *rest)

    monkeypatch.setattr(drv.Function, "_launch_kernel", noted)
    return seen


def only_launch(
    seen: list[Launch], call: str, function: Callable[..., Any], *args: Any, **kw: Any
) -> Launch:
    """The one launch `function(*args, **kw)` makes; one the driver refused is returned too, so
    that its sizes (the usual reason) are judged before the driver's error."""
    __tracebackhide__ = True
    refused = ""
    try:
        function(*args, **kw)
    except drv.Error as error:
        refused = f"{type(error).__name__}: {error}"
    raised = f" and raised {refused}" if refused else ""
    assert len(seen) == 1, f"{call} launched {len(seen)} kernels{raised}; it should launch one"
    seen[0].refused = refused
    return seen[0]


def check_geometry(launch: Launch, call: str, edge: int, m: int, n: int) -> None:
    __tracebackhide__ = True
    assert launch.block == (edge, edge, 1), (
        f"{call} launched blocks of {launch.block} threads; expected ({edge}, {edge}, 1): "
        f"{edge} columns (x) by {edge} rows (y)"
    )
    want = (math.ceil(n / edge), math.ceil(m / edge))
    if launch.grid == (n // edge, m // edge):
        reason = (
            "rounded down, so the last, partial blocks of rows and columns are missing (and a "
            "product smaller than a block gets a grid of 0 blocks, which is no launch)"
        )
    elif launch.grid == want[::-1]:
        reason = "its axes are swapped: x counts the n columns, y the m rows"
    elif launch.grid == (n, m):
        reason = "that is one block per element: divide by the block's edge, rounding up"
    else:
        reason = "ceil(n / edge) blocks in x, ceil(m / edge) in y"
    assert launch.grid[:2] == want, (
        f"{call} on a ({m}, k) @ (k, {n}) product launched a grid of {launch.grid} blocks; "
        f"expected {want}: {reason}"
    )
    assert not launch.refused, f"{call}: the driver refused the launch: {launch.refused}"


def value_error(call: str, advice: str, function: Callable[..., Any], *args: Any, **kw: Any) -> str:
    """The message of the ValueError `function(*args, **kw)` raises; the test fails without one."""
    __tracebackhide__ = True
    try:
        function(*args, **kw)
    except ValueError as error:
        return str(error)
    except NotImplementedError:
        raise
    except Exception as error:
        pytest.fail(f"{call} raised {type(error).__name__} ({error}): {advice}", pytrace=False)
    pytest.fail(f"{call} returned: {advice}", pytrace=False)


BOTH = [pytest.param(matmul_naive, id="naive"), pytest.param(matmul_tiled, id="tiled")]
MISFITS = [
    (np.ones((3, 4)), np.ones((5, 2))),  # 4 columns, 5 rows
    (np.ones((4, 3)), np.ones((4, 3))),  # same shapes, still no fit
    (np.ones(4), np.ones((4, 2))),  # a is 1-D
    (np.ones((2, 3)), np.ones((3, 2, 2))),  # b is 3-D
    (np.ones((0, 3)), np.ones((3, 2))),  # m = 0: a grid of no blocks
    (np.ones((2, 0)), np.ones((0, 2))),  # k = 0
]


def default_tile(function: Callable[..., Any]) -> int | None:
    """The tile a call without `tile=` uses (None for the naive kernel)."""
    return 16 if function is matmul_tiled else None


# -- shapes and dtypes -----------------------------------------------------------------------


@pytest.mark.clause(1)
@pytest.mark.parametrize("function", BOTH)
def test_shapes_that_do_not_fit_raise_value_error_naming_both(
    function: Callable[..., Any],
) -> None:
    for a, b in MISFITS:
        call = f"{function.__name__}(a of shape {a.shape}, b of shape {b.shape})"
        advice = (
            "check the shapes before anything else and raise ValueError: a must be (m, k) and "
            "b (k, n), both 2-D, with m, k and n at least 1"
        )
        message = value_error(call, advice, function, a, b)
        for shape in (a.shape, b.shape):
            assert str(shape) in message, (
                f"{call} raised ValueError({message!r}), which does not show {shape}: name "
                f"both shapes, so that the caller sees which one is wrong"
            )


@pytest.mark.clause(2, 3)
@pytest.mark.parametrize("function", BOTH)
def test_float64_and_integer_inputs_are_converted_to_float32(
    function: Callable[..., Any],
) -> None:
    name, tile = function.__name__, default_tile(function)
    a32, b32 = matrices(5, 6, 7)
    # First float32 itself, so that a kernel's own bug is not blamed on the dtypes below.
    check_product(function(a32, b32), a32, b32, f"{name}(a, b)", tile)
    a32, b32 = matrices(5, 6, 7)
    whole_a, whole_b = (a32 * 4).astype(np.int32), (b32 * 4).astype(np.int64)  # 2 to 5
    for a, b in ((a32.astype(np.float64), whole_b), (whole_a, b32)):
        kept = a.copy(), b.copy()
        call = f"{name}({a.dtype} a, {b.dtype} b)"
        got = function(a, b)
        want = product(a, b)
        assert isinstance(got, np.ndarray) and got.shape == want.shape, (
            f"{call} returned {got!r}, not a {want.shape} array"
        )
        assert np.allclose(got, want, rtol=RTOL), (
            f"{call} is wrong (first row {got[0]}, expected {want[0]}), though float32 inputs "
            f"of the same shape came out right: the kernels read 4-byte floats, so a "
            f"{a.dtype} or {b.dtype} array copied to the GPU as it is gets misread (8 bytes a "
            f"number for float64 and int64, and an int's bits are no float). Convert both with "
            f"np.ascontiguousarray(x, dtype=np.float32) before gpuarray.to_gpu."
        )
        check_product(got, a, b, call, tile)
        assert np.array_equal(a, kept[0]) and np.array_equal(b, kept[1]), (
            f"{call} changed its inputs: convert into new arrays, never into a or b"
        )


@pytest.mark.clause(2, 3)
@pytest.mark.parametrize("function", BOTH)
def test_transposed_and_strided_views_are_read_row_by_row(
    function: Callable[..., Any],
) -> None:
    name, tile = function.__name__, default_tile(function)
    base_a, base_b = matrices(6, 5, 14)
    kept = base_a.copy(), base_b.copy()
    a = base_a.T  # (5, 6), its memory column after column (Fortran order)
    b = base_b[::2, 1::2]  # (3, 7), every other row and column: not contiguous at all
    call = f"{name}(a.T, a)"
    try:
        got = function(a, base_a)  # (5, 6) @ (6, 5)
    except (NotImplementedError, drv.Error):
        raise  # not about views: a kernel or a launch the driver refused
    except Exception as error:
        pytest.fail(
            f"{call} raised {type(error).__name__} ({error}): a transposed view is not "
            f"C-contiguous, and gpuarray.to_gpu wants rows one after another. Copy it with "
            f"np.ascontiguousarray(x, dtype=np.float32) first.",
            pytrace=False,
        )
    misread = product(base_a.reshape(5, 6), base_a)  # a's memory taken as rows
    fits = isinstance(got, np.ndarray) and got.shape == (5, 5)
    if fits and not np.allclose(got, product(a, base_a), rtol=RTOL) and np.allclose(got, misread):
        pytest.fail(
            f"{call} computed a.reshape(5, 6) @ a instead: a transposed view keeps its numbers "
            f"column after column, and gpuarray.to_gpu copies that memory as it is. "
            f"np.ascontiguousarray(x, dtype=np.float32) copies it row after row; "
            f"x.astype(np.float32) keeps the column order.",
            pytrace=False,
        )
    check_product(got, a, base_a, call, tile)
    check_product(function(b.T, b), b.T, b, f"{name}(b.T, b)", tile)
    assert np.array_equal(base_a, kept[0]) and np.array_equal(base_b, kept[1]), (
        f"{name} changed the arrays its inputs are views of"
    )
    assert not np.shares_memory(got, base_a), f"{call} returned memory of its input"


# -- the naive kernel ------------------------------------------------------------------------


@pytest.mark.clause(4)
def test_naive_launches_one_thread_per_element_rounded_up_to_whole_blocks(
    launches: list[Launch],
) -> None:
    for m, k, n in ((40, 3, 5), (3, 2, 17)):
        launches.clear()
        a, b = matrices(m, k, n)
        launch = only_launch(
            launches, f"matmul_naive on ({m}, {k}) @ ({k}, {n})", matmul_naive, a, b
        )
        check_geometry(launch, "matmul_naive", BLOCK, m, n)


@pytest.mark.clause(3, 5)
def test_naive_matches_numpy_for_non_square_sizes_that_are_not_multiples_of_the_block() -> None:
    for m, k, n in NAIVE_SHAPES:
        a, b = matrices(m, k, n)
        got = matmul_naive(a, b)
        check_product(got, a, b, f"matmul_naive on a ({m}, {k}) @ ({k}, {n}) product")


# -- the tiled kernel ------------------------------------------------------------------------


@pytest.mark.clause(6)
def test_tiles_that_do_not_fit_a_block_raise_value_error() -> None:
    a, b = matrices(3, 3, 3)
    for tile in (0, -2, MAX_TILE + 1):
        call = f"matmul_tiled(a, b, tile={tile})"
        why = (
            f"a block of {tile} x {tile} = {tile * tile} threads is more than the 1,024 a block "
            f"may hold, and more than the {MAX_TILE} x {MAX_TILE} shared arrays"
            if tile > 0
            else "a tile needs at least one thread"
        )
        advice = f"{why}: check the tile first and raise ValueError"
        message = value_error(call, advice, matmul_tiled, a, b, tile=tile)
        assert "tile" in message.lower(), (
            f"{call} raised ValueError({message!r}): say that the tile is the problem"
        )


@pytest.mark.clause(7)
def test_tiled_launches_tile_by_tile_blocks_with_two_tiles_of_shared_memory(
    launches: list[Launch],
) -> None:
    m, k, n = 23, 5, 12
    for tile, call in ((5, "matmul_tiled(a, b, tile=5)"), (16, "matmul_tiled(a, b)")):
        launches.clear()
        a, b = matrices(m, k, n)
        arguments = {"tile": tile} if tile != 16 else {}  # the second call takes the default
        launch = only_launch(launches, call, matmul_tiled, a, b, **arguments)
        check_geometry(launch, call, tile, m, n)
        tiles = 2 * tile * tile * 4
        assert launch.static_shared >= tiles, (
            f"{call}'s kernel declares {launch.static_shared} bytes of __shared__ memory; two "
            f"tiles of {tile} x {tile} floats take {tiles}. Declare __shared__ float "
            f"a_tile[MAX_TILE][MAX_TILE] and b_tile[MAX_TILE][MAX_TILE] in the kernel and "
            f"compute from them (a kernel that reads a and b straight from global memory is "
            f"the naive one again)."
        )


@pytest.mark.clause(3, 8, 9, 11)
def test_tiled_matches_numpy_when_no_size_is_a_multiple_of_the_tile() -> None:
    for m, k, n, tile in TILED_SHAPES:
        a, b = matrices(m, k, n)
        got = matmul_tiled(a, b, tile=tile)
        call = f"matmul_tiled(tile={tile}) on a ({m}, {k}) @ ({k}, {n}) product"
        check_product(got, a, b, call, tile=tile)


@pytest.mark.clause(10)
def test_tiled_is_right_in_every_block_of_a_large_product_run_three_times() -> None:
    m, k, n = RACE_SHAPE
    results = []
    for run in range(1, RACE_RUNS + 1):
        a, b = matrices(m, k, n)
        got = matmul_tiled(a, b, tile=MAX_TILE)
        results.append(got)
        want = product(a, b)
        if not isinstance(got, np.ndarray) or got.shape != want.shape:
            check_product(got, a, b, f"matmul_tiled(tile={MAX_TILE})", tile=MAX_TILE)
        wrong = ~np.isclose(got, want, rtol=RTOL, atol=0.0)
        if not wrong.any():
            continue
        blocks = {(int(i) // MAX_TILE, int(j) // MAX_TILE) for i, j in np.argwhere(wrong)}
        pytest.fail(
            f"matmul_tiled(tile={MAX_TILE}) on a ({m}, {k}) @ ({k}, {n}) product, run {run} of "
            f"{RACE_RUNS}: {int(wrong.sum())} of {m * n} elements are wrong, in {len(blocks)} "
            f"of the {math.ceil(m / MAX_TILE) * math.ceil(n / MAX_TILE)} blocks. If the smaller "
            f"products of the other tests come out right, this is the mark of a race on shared "
            f"memory: the 32 warps of a block run apart, and without a __syncthreads() after "
            f"storing the tiles a warp reads elements another warp has not stored yet; without "
            f"one after the sum, a fast warp stores the next step's tiles while a slow one still "
            f"reads these. Both barriers are needed, in every step, reached by every thread. "
            f"(A race may also hide on a given run: `compute-sanitizer --tool racecheck` finds "
            f"it for sure.)\n{diagnosis(got, wrong, a, b, MAX_TILE)}",
            pytrace=False,
        )


@pytest.mark.clause(3, 5, 8, 9)
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: each example runs two kernels, and the first failure says enough.
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    m=st.integers(1, 70),
    k=st.integers(1, 70),
    n=st.integers(1, 70),
    tile=st.sampled_from([1, 4, 7, 16, 32]),
)
def test_both_match_numpy_for_drawn_sizes_and_tiles(m: int, k: int, n: int, tile: int) -> None:
    a, b = matrices(m, k, n)
    shape = f"a ({m}, {k}) @ ({k}, {n}) product"
    check_product(matmul_naive(a, b), a, b, f"matmul_naive on {shape}")
    got = matmul_tiled(a, b, tile=tile)
    check_product(got, a, b, f"matmul_tiled(tile={tile}) on {shape}", tile=tile)
