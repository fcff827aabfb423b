"""Kata `opencl_matmul`: matrix multiplication on an OpenCL device, naive, then tiled in local memory."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyopencl as cl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from opencl_matmul import GROUP, matmul_naive, matmul_tiled

# float32 keeps about 7 digits; a sum of at most 40 products of numbers near 1 loses well under
# one of them, so 1e-5 relative passes every correct kernel and no wrong one.
RTOL = 1e-5
# Every product on PoCL has m = 1 or n >= 4. A kernel that writes past the end of a buffer
# corrupts the memory of the test's own process on PoCL (a real device), and the whole run
# may crash; with these sizes the book's stride-4 bug stays inside c and shows as wrong numbers.
#
# (m, k, n): 1 x 1 x 1; then m and n not multiples of GROUP = 8 that round up to different
# sizes (8 and 16, 24 and 8), so that rows and columns taken for each other show.
NAIVE_SHAPES = [(1, 1, 1), (3, 5, 10), (17, 9, 6)]
# With tile 4: 1 x 1 x 1 (smaller than one tile), k = 10 (two full steps and a partial third),
# m = 2 (every group has rows past the end of c), nothing a multiple of 4.
TILE = 4
TILED_SHAPES = [(1, 1, 1), (9, 10, 7), (2, 9, 13)]
INDEXING = (
    "On [oclgrind], a race or an out-of-bounds access reported below gives wrong numbers too: "
    "fix that first. Otherwise check the indexing, row-major with the real row lengths: "
    "a[i, p] is a[i * k + p], b[p, j] is b[p * n + j], c[i, j] is c[i * n + j], where "
    "j = get_global_id(0) is the column and i = get_global_id(1) the row."
)


def matrices(m: int, k: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 matrices of numbers in [0.5, 1.5): every element of a @ b is at least k / 4, so
    an element the kernel never wrote (0 or garbage) cannot pass for a right one."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.5, (m, k)).astype(np.float32)
    b = rng.uniform(0.5, 1.5, (k, n)).astype(np.float32)
    return a, b


def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy.matmul of the float32 values the device gets, summed in float64."""
    return np.matmul(
        np.asarray(a, dtype=np.float32).astype(np.float64),
        np.asarray(b, dtype=np.float32).astype(np.float64),
    )


def picture(wrong: np.ndarray) -> str:
    """A map of the wrong elements ('X') of a small result, one line per row."""
    rows = ["      " + "".join("X" if bad else "." for bad in row) for row in wrong]
    return "\n".join(rows)


def edge(wrong: np.ndarray, axis: int) -> int | None:
    """The first of the last rows (axis 0) or columns (axis 1) that are wholly wrong while the
    others are right, or None when the wrong elements do not look like that."""
    whole = wrong.all(axis=1 - axis)
    touched = wrong.any(axis=1 - axis)
    first = int(np.argmax(touched))
    if touched[first:].all() and whole[first:].all() and first > 0:
        return first
    return None


def diagnosis(
    got: np.ndarray, wrong: np.ndarray, a: np.ndarray, b: np.ndarray, tile: int | None
) -> str:
    """A sentence about what the pattern of wrong elements usually means."""
    k = a.shape[1]
    for axis, what, dimension in ((0, "rows", 1), (1, "columns", 0)):
        first = edge(wrong, axis)
        if first is not None:
            return (
                f"Every {what[:-1]} from {first} on is wrong and the others are right: no "
                f"work-item computed them. Dimension {dimension} of the NDRange must cover the "
                f"{what} ({'i' if axis == 0 else 'j'} = get_global_id({dimension})), and the "
                f"global size is rounded up, never down."
            )
    if not got.any():
        return (
            "Every element is 0: nothing was summed (a k loop that never ran?) or c was never "
            "written, or never copied back with cl.enqueue_copy(queue, c, c_buffer)."
        )
    if np.isnan(got).any():
        return (
            "Some elements are NaN: the kernel read memory outside a or b (or c was never "
            "written there). Guard every read with the real sizes m, k and n."
        )
    if tile is not None and k % tile:
        full = k // tile * tile
        if np.allclose(got, product(a[:, :full], b[:full]), rtol=RTOL):
            return (
                f"The result is a[:, :{full}] @ b[:{full}]: the last {k - full} of the k = {k} "
                f"products were left out. The k loop ran k / TILE = {k // tile} steps, rounded "
                f"down; it needs (k + TILE - 1) / TILE = {math.ceil(k / tile)}, the last one "
                f"over a partial tile whose missing elements are 0."
            )
    return INDEXING


def check_product(
    got: Any, a: np.ndarray, b: np.ndarray, call: str, tile: int | None = None
) -> None:
    """`got` is a float32 (m, n) array equal to numpy.matmul(a, b)."""
    __tracebackhide__ = True
    m, n = a.shape[0], b.shape[1]
    assert isinstance(got, np.ndarray), f"{call} returned a {type(got).__name__}, not an array"
    assert got.shape == (m, n), (
        f"{call} returned shape {got.shape}; a {a.shape} @ b {b.shape} has shape {(m, n)}"
    )
    assert got.dtype == np.float32, (
        f"{call} returned dtype {got.dtype}: return the float32 array the kernel's result was "
        f"copied into"
    )
    want = product(a, b)
    wrong = ~np.isclose(got, want, rtol=RTOL, atol=0.0)
    if wrong.any():
        first = tuple(int(x) for x in np.argwhere(wrong)[0])
        shown = f"\n    wrong elements:\n{picture(wrong)}" if m <= 24 and n <= 40 else ""
        pytest.fail(
            f"{call}: {int(wrong.sum())} of {m * n} elements differ from numpy.matmul; the "
            f"first at {first}: got {float(got[first]):.6g}, expected {want[first]:.6g}.{shown}\n"
            f"{diagnosis(got, wrong, a, b, tile)}",
            pytrace=False,
        )


# -- launches: what the host code asked the device to run ------------------------------------


@dataclass
class Launch:
    kernel: str
    global_size: tuple[int, ...]
    local_size: tuple[int, ...] | None
    local_memory: int  # bytes of local memory the kernel uses per work-group
    refused: str = ""  # the device's error, when it refused the launch


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[Launch]:
    """Every kernel launch of the test, whichever way it is made (`kernel(queue, ...)` and
    `cl.enqueue_nd_range_kernel` both end in pyopencl's `_cl.enqueue_nd_range_kernel`)."""
    seen: list[Launch] = []
    original = cl._cl.enqueue_nd_range_kernel

    def noted(queue: Any, kernel: Any, global_size: Any, local_size: Any, *rest: Any) -> Any:
        seen.append(
            Launch(
                kernel.function_name,
                tuple(global_size),
                None if local_size is None else tuple(local_size),
                kernel.get_work_group_info(cl.kernel_work_group_info.LOCAL_MEM_SIZE, queue.device),
            )
        )
        return original(queue, kernel, global_size, local_size, *rest)

    monkeypatch.setattr(cl._cl, "enqueue_nd_range_kernel", noted)
    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", noted)
    return seen


def only_launch(
    seen: list[Launch], call: str, function: Callable[..., Any], *args: Any, **kw: Any
) -> Launch:
    """The one launch `function(*args, **kw)` makes; one the device refused is returned too, so
    that its sizes (the usual reason) are judged before the device's error."""
    __tracebackhide__ = True
    refused = ""
    try:
        function(*args, **kw)
    except cl.Error as error:
        refused = str(error)
    raised = f" and raised {refused}" if refused else ""
    assert len(seen) == 1, f"{call} launched {len(seen)} kernels{raised}; it should launch one"
    seen[0].refused = refused
    return seen[0]


def check_geometry(launch: Launch, call: str, group: int, m: int, n: int) -> None:
    __tracebackhide__ = True
    assert launch.local_size == (group, group), (
        f"{call} launched with local size {launch.local_size}: pass ({group}, {group}) "
        f"explicitly (None lets the device choose, and then the groups are not {group} x "
        f"{group})"
    )
    want = (math.ceil(n / group) * group, math.ceil(m / group) * group)
    if launch.global_size == (n, m):
        reason = (
            "not rounded up: a global size must be a multiple of the local size (OpenCL 1.2 "
            "refuses the launch)"
        )
    elif launch.global_size == want[::-1]:
        reason = (
            "its dimensions are swapped: dimension 0 counts the n columns, dimension 1 the m rows"
        )
    else:
        reason = "round m and n each up to a multiple of the local size"
    assert launch.global_size == want, (
        f"{call} on a ({m}, k) @ (k, {n}) product launched global size {launch.global_size}; "
        f"expected {want}, (n, m) rounded up: {reason}"
    )
    assert not launch.refused, f"{call}: the device refused the launch: {launch.refused}"


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


# -- shapes and dtypes -----------------------------------------------------------------------

BOTH = [pytest.param(matmul_naive, id="naive"), pytest.param(matmul_tiled, id="tiled")]
MISFITS = [
    (np.ones((3, 4)), np.ones((5, 2))),  # 4 columns, 5 rows
    (np.ones((4, 3)), np.ones((4, 3))),  # same shapes, still no fit
    (np.ones(4), np.ones((4, 2))),  # a is 1-D
    (np.ones((2, 3)), np.ones((3, 2, 2))),  # b is 3-D
    (np.ones((0, 3)), np.ones((3, 2))),  # m = 0: OpenCL has no empty buffer
    (np.ones((2, 0)), np.ones((0, 2))),  # k = 0
]


def default_tile(function: Callable[..., Any]) -> int | None:
    """The tile a call without `tile=` uses (None for the naive kernel)."""
    return 8 if function is matmul_tiled else None


@pytest.mark.clause(1)
@pytest.mark.parametrize("function", BOTH)
def test_shapes_that_do_not_fit_raise_value_error_naming_both(
    pocl_queue: Any, function: Callable[..., Any]
) -> None:
    name = function.__name__
    for a, b in MISFITS:
        call = f"{name}(queue, a of shape {a.shape}, b of shape {b.shape})"
        advice = (
            "check the shapes before anything else and raise ValueError: a must be (m, k) and "
            "b (k, n), both 2-D, with m, k and n at least 1"
        )
        message = value_error(call, advice, function, pocl_queue, a, b)
        for shape in (a.shape, b.shape):
            assert str(shape) in message, (
                f"{call} raised ValueError({message!r}), which does not show {shape}: name "
                f"both shapes, so that the caller sees which one is wrong"
            )


@pytest.mark.clause(2, 3)
@pytest.mark.parametrize("function", BOTH)
def test_float64_and_integer_inputs_are_converted_to_float32(
    pocl_queue: Any, function: Callable[..., Any]
) -> None:
    name, tile = function.__name__, default_tile(function)
    a32, b32 = matrices(5, 6, 7, seed=1)
    # First float32 itself, so that a kernel's own bug is not blamed on the dtypes below.
    check_product(function(pocl_queue, a32, b32), a32, b32, f"{name}(queue, a, b)", tile)
    whole_a, whole_b = (a32 * 4).astype(np.int32), (b32 * 4).astype(np.int64)  # 2 to 5
    for a, b in ((a32.astype(np.float64), whole_b), (whole_a, b32)):
        kept = a.copy(), b.copy()
        call = f"{name}(queue, {a.dtype} a, {b.dtype} b)"
        got = function(pocl_queue, a, b)
        want = product(a, b)
        assert isinstance(got, np.ndarray) and got.shape == want.shape, (
            f"{call} returned {got!r}, not a {want.shape} array"
        )
        assert np.allclose(got, want, rtol=RTOL), (
            f"{call} is wrong (first row {got[0]}, expected {want[0]}), though float32 inputs "
            f"of the same shape came out right: the kernels read 4-byte floats, so a "
            f"{a.dtype} or {b.dtype} array copied as it is gets misread (8 bytes a number for "
            f"float64 and int64, and an int's bits are no float). Convert both with "
            f"np.ascontiguousarray(x, dtype=np.float32) before making the buffers."
        )
        check_product(got, a, b, call, tile)
        assert np.array_equal(a, kept[0]) and np.array_equal(b, kept[1]), (
            f"{call} changed its inputs: convert into new arrays, never into a or b"
        )


@pytest.mark.clause(2, 3)
@pytest.mark.parametrize("function", BOTH)
def test_transposed_and_strided_views_are_read_row_by_row(
    pocl_queue: Any, function: Callable[..., Any]
) -> None:
    name, tile = function.__name__, default_tile(function)
    base_a, base_b = matrices(6, 5, 14, seed=2)
    kept = base_a.copy(), base_b.copy()
    a = base_a.T  # (5, 6), its memory column after column (Fortran order)
    b = base_b[::2, 1::2]  # (3, 7), every other row and column: not contiguous at all
    got = function(pocl_queue, a, base_a)  # (5, 6) @ (6, 5)
    call = f"{name}(queue, a.T, a)"
    misread = product(base_a.reshape(5, 6), base_a)  # a's memory taken as rows
    fits = isinstance(got, np.ndarray) and got.shape == (5, 5)
    if fits and not np.allclose(got, product(a, base_a), rtol=RTOL) and np.allclose(got, misread):
        pytest.fail(
            f"{call} computed a.reshape(5, 6) @ a instead: a transposed view keeps its numbers "
            f"column after column, and a buffer made from it copies that memory as it is. "
            f"np.ascontiguousarray(x, dtype=np.float32) copies it row after row; "
            f"x.astype(np.float32) and np.asarray(x, dtype=np.float32) keep the column order.",
            pytrace=False,
        )
    check_product(got, a, base_a, call, tile)
    check_product(function(pocl_queue, b.T, b), b.T, b, f"{name}(queue, b.T, b)", tile)
    assert np.array_equal(base_a, kept[0]) and np.array_equal(base_b, kept[1]), (
        f"{name} changed the arrays its inputs are views of"
    )
    assert not np.shares_memory(got, base_a), f"{call} returned memory of its input"


# -- the naive kernel ------------------------------------------------------------------------


@pytest.mark.clause(4)
def test_naive_launches_one_work_item_per_element_rounded_up_to_the_group(
    pocl_queue: Any, launches: list[Launch]
) -> None:
    a, b = matrices(10, 5, 5)
    launch = only_launch(launches, "matmul_naive", matmul_naive, pocl_queue, a, b)
    check_geometry(launch, "matmul_naive", GROUP, 10, 5)


@pytest.mark.clause(3, 5)
def test_naive_matches_numpy_for_sizes_that_are_not_multiples_of_the_group(
    cl_queue: Any,
) -> None:
    for m, k, n in NAIVE_SHAPES:
        a, b = matrices(m, k, n)
        got = matmul_naive(cl_queue, a, b)
        check_product(got, a, b, f"matmul_naive on a ({m}, {k}) @ ({k}, {n}) product")


# -- the tiled kernel ------------------------------------------------------------------------


@pytest.mark.clause(6)
def test_tiles_the_device_cannot_run_raise_value_error(pocl_queue: Any) -> None:
    limit = pocl_queue.device.max_work_group_size
    a, b = matrices(3, 3, 3)
    for tile in (0, -2, math.isqrt(limit) + 1):
        call = f"matmul_tiled(queue, a, b, tile={tile})"
        why = (
            f"a group of tile * tile = {tile * tile} work-items exceeds this device's "
            f"max_work_group_size, {limit}"
            if tile > 0
            else "a tile needs at least one work-item"
        )
        advice = f"{why}: check the tile first and raise ValueError"
        message = value_error(call, advice, matmul_tiled, pocl_queue, a, b, tile=tile)
        assert "tile" in message.lower(), (
            f"{call} raised ValueError({message!r}): say that the tile is the problem"
        )


@pytest.mark.clause(7, 8)
def test_tiled_launches_tile_by_tile_groups_with_two_tiles_in_local_memory(
    pocl_queue: Any, launches: list[Launch]
) -> None:
    a, b = matrices(10, 5, 5)
    for tile, call in (
        (TILE, f"matmul_tiled(queue, a, b, tile={TILE})"),
        (8, "matmul_tiled(queue, a, b)"),
    ):
        launches.clear()
        arguments = {"tile": tile} if tile == TILE else {}  # the second call takes the default
        launch = only_launch(launches, call, matmul_tiled, pocl_queue, a, b, **arguments)
        check_geometry(launch, call, tile, 10, 5)
        tiles = 2 * tile * tile * 4
        assert launch.local_memory >= tiles, (
            f"{call}'s kernel {launch.kernel!r} uses {launch.local_memory} bytes of local memory "
            f"a work-group; two tiles of {tile} x {tile} floats take {tiles}. Declare "
            f"__local float a_tile[TILE][TILE] and b_tile[TILE][TILE] in the kernel, build it "
            f"with -DTILE={tile}, and compute from them (a kernel that reads a and b straight "
            f"from global memory is the naive one again)."
        )


@pytest.mark.clause(3, 8, 9, 10, 11)
def test_tiled_matches_numpy_when_no_size_is_a_multiple_of_the_tile(cl_queue: Any) -> None:
    for m, k, n in TILED_SHAPES:
        a, b = matrices(m, k, n, seed=3)
        got = matmul_tiled(cl_queue, a, b, tile=TILE)
        call = f"matmul_tiled(tile={TILE}) on a ({m}, {k}) @ ({k}, {n}) product"
        check_product(got, a, b, call, tile=TILE)


@pytest.mark.clause(3, 5, 8, 9)
@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: each example builds and runs two kernels, and the first failure says enough.
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    m=st.integers(1, 40),
    k=st.integers(1, 40),
    n=st.integers(4, 40),  # n >= 4: see NAIVE_SHAPES
    tile=st.sampled_from([1, 3, 16]),
)
def test_both_match_numpy_for_drawn_sizes_and_tiles(
    pocl_queue: Any, m: int, k: int, n: int, tile: int
) -> None:
    a, b = matrices(m, k, n, seed=m * 10_000 + k * 100 + n)
    shape = f"a ({m}, {k}) @ ({k}, {n}) product"
    check_product(matmul_naive(pocl_queue, a, b), a, b, f"matmul_naive on {shape}")
    got = matmul_tiled(pocl_queue, a, b, tile=tile)
    check_product(got, a, b, f"matmul_tiled(tile={tile}) on {shape}", tile=tile)
