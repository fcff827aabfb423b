"""Kata `cuda_kernels`: your first CUDA kernels from Python, on a grid that covers any matrix."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pycuda.compiler
import pycuda.driver as drv
import pycuda.gpuarray as gpuarray
import pytest
from cuda_kernels import (
    BLOCK,
    double_matrix,
    grid_for,
    launch_double,
    launch_scale_rows,
    scale_rows,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

# Floats of guard zone before and after each matrix on the GPU: more than any rounded-up grid
# of these tests reaches past the end of a matrix (at most 48 x 86 threads for 40 x 70).
GUARD = 4096
# What the guard zones hold: a value no kernel here writes (doubled it is -14.5).
SENTINEL = np.float32(-7.25)
# (rows, cols): 1 x 1; the book's 5 x 5 (one block, and the stride-4 bug shows); exactly one
# block of 8 x 16; then sizes that are no multiples of the block (16 columns, 8 rows) and
# round up to different numbers of blocks along x and y (2 and 2, 1 and 3, 3 and 1), so that
# rows and columns taken for each other leave elements out.
SHAPES = [(1, 1), (5, 5), (8, 16), (9, 17), (20, 5), (3, 40)]
ROUNDING = (
    "the grid is rounded up: ceil(cols / block[0]) blocks along x, ceil(rows / block[1]) along "
    "y, so (cols + block[0] - 1) // block[0] and (rows + block[1] - 1) // block[1]"
)
INT32 = (
    "pass rows and cols as np.int32(rows), np.int32(cols): the kernel declares `const int`, 4 "
    "bytes, and NumPy's default integer and np.int64 are 8 (a Python int is refused outright)"
)


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


# -- launches: what the host code asked the GPU to run ---------------------------------------


@dataclass
class Launch:
    kernel: str
    grid: tuple[int, ...]
    block: tuple[int, ...]
    argument_bytes: int


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[Launch]:
    """Every kernel launch of the test, with its kernel's name. Every way of launching ends in
    `Function._launch_kernel` (`function(..., block=, grid=)` and `prepared_call` alike); the
    names come from `SourceModule.get_function`. A launch the driver refuses fails the test
    with what usually causes that."""
    seen: list[Launch] = []
    names: dict[int, str] = {}
    kept: list[Any] = []  # the functions themselves, so that no id is reused during the test
    get_function = pycuda.compiler.SourceModule.get_function
    launch_kernel = drv.Function._launch_kernel

    def named(module: Any, name: str) -> Any:
        function = get_function(module, name)
        names[id(function)] = name
        kept.append(function)
        return function

    def noted(function: Any, grid: Any, block: Any, arguments: Any, *rest: Any) -> Any:
        name = names.get(id(function), "?")
        launch = Launch(name, tuple(grid), tuple(block), len(bytes(arguments)))
        seen.append(launch)
        try:
            return launch_kernel(function, grid, block, arguments, *rest)
        except drv.LogicError as error:
            refused = str(error)
        pytest.fail(
            f"the driver refused to launch kernel {name!r} with grid {launch.grid}, block "
            f"{launch.block} and {launch.argument_bytes} bytes of arguments ({refused}). The "
            f"argument bytes must match the kernel's parameters: pointers are 8 bytes, and "
            f"{INT32}. (And a block has at most 1024 threads.)",
            pytrace=False,
        )

    monkeypatch.setattr(pycuda.compiler.SourceModule, "get_function", named)
    monkeypatch.setattr(drv.Function, "_launch_kernel", noted)
    return seen


def one_launch(seen: list[Launch], kernel: str, call: str, rows: int, cols: int) -> Launch:
    """The single launch `call` made: of `kernel`, with block BLOCK and the rounded-up grid."""
    __tracebackhide__ = True
    ours = [launch for launch in seen if launch.kernel == kernel]
    assert len(ours) == 1, (
        f"{call} launched kernel {kernel!r} {len(ours)} times (all launches: {seen}); it must "
        f"launch it exactly once, one thread per element"
    )
    (launch,) = ours
    want_grid = (-(-cols // BLOCK[0]), -(-rows // BLOCK[1]), 1)
    assert launch.block == BLOCK, (
        f"{call} launched with block={launch.block}; use block=BLOCK = {BLOCK} (16 threads "
        f"along x for the columns, 8 along y for the rows)"
    )
    assert launch.grid[:2] == want_grid[:2] and all(g == 1 for g in launch.grid[2:]), (
        f"{call} launched grid={launch.grid} for {rows} rows and {cols} columns; expected "
        f"{want_grid}: x counts blocks of columns, y blocks of rows, and {ROUNDING}"
    )
    return launch


# -- data on the GPU, with guard zones -------------------------------------------------------


def values(rows: int, cols: int, seed: int) -> np.ndarray:
    """A float32 matrix of numbers in [0.5, 1.5): none is 0, and none equals the sentinel, so
    an element left unchanged, doubled twice or overwritten shows."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 1.5, (rows, cols)).astype(np.float32)


@dataclass
class Guarded:
    """A matrix on the GPU inside one allocation, with GUARD floats of SENTINEL before and
    after it: `view` is the matrix (a GPUArray pointing into the middle), `whole` all of it."""

    whole: Any
    view: Any
    shape: tuple[int, ...]

    @classmethod
    def of(cls, matrix: np.ndarray) -> Guarded:
        host = np.full(GUARD + matrix.size + GUARD, SENTINEL, dtype=np.float32)
        host[GUARD : GUARD + matrix.size] = matrix.ravel()
        whole = gpuarray.to_gpu(host)
        view = whole[GUARD : GUARD + matrix.size].reshape(matrix.shape)
        return cls(whole, view, matrix.shape)

    def read(self, call: str, what: str) -> np.ndarray:
        """The matrix as the GPU holds it now, after checking that nothing was written into
        the guard zones around it."""
        __tracebackhide__ = True
        host = self.whole.get()
        size = int(np.prod(self.shape))
        for zone, where in ((host[:GUARD], "before"), (host[GUARD + size :], "after")):
            changed = np.flatnonzero(zone != SENTINEL)
            if changed.size:
                offset = changed[0] - GUARD if where == "before" else changed[0] + 1
                pytest.fail(
                    f"{call} wrote {changed.size} floats outside {what} ({self.shape[0]} x "
                    f"{self.shape[1]}), the first {abs(offset)} float(s) {where} it. The grid "
                    f"is rounded up, so some threads have no element: a thread may touch "
                    f"a[row * cols + col] only when row < rows and col < cols (both checks, "
                    f"with <, not <=), and the row stride is cols.",
                    pytrace=False,
                )
        matrix: np.ndarray = host[GUARD : GUARD + size].reshape(self.shape)
        return matrix


def value_error(call: str, why: str, function: Callable[..., Any], *args: Any) -> str:
    """The message of the ValueError that `function(*args)` must raise."""
    __tracebackhide__ = True
    try:
        function(*args)
    except ValueError as error:
        return str(error)
    pytest.fail(f"{call} returned without raising ValueError: {why}", pytrace=False)


def picture(wrong: np.ndarray) -> str:
    """A map of the wrong elements ('X') of a small result, one line per row."""
    if wrong.shape[0] > 24 or wrong.shape[1] > 48:
        return ""
    rows = ["      " + "".join("X" if bad else "." for bad in row) for row in wrong]
    return "\n    wrong elements:\n" + "\n".join(rows)


def diagnosis(factor: np.ndarray, wrong: np.ndarray, scale: str) -> str:
    """What the pattern of wrong elements usually means; `factor` is got / the input, for a
    doubling (1 for an element never doubled, 4 for one doubled twice)."""
    doubled = scale == "doubled"
    untouched = wrong & np.isclose(factor, 1.0) if doubled else np.zeros_like(wrong)
    twice = wrong & np.isclose(factor, 4.0) if doubled else np.zeros_like(wrong)
    rows_wrong, cols_wrong = wrong.all(axis=1), wrong.all(axis=0)
    if (
        rows_wrong.any()
        and not rows_wrong.all()
        and rows_wrong[-1]
        and wrong[~rows_wrong].sum() == 0
    ):
        return (
            f"Every row from {int(np.argmax(rows_wrong))} on is wrong and the others are right: "
            f"no thread reached them. The grid's y axis covers the rows (row = blockIdx.y * "
            f"blockDim.y + threadIdx.y), and {ROUNDING}."
        )
    if (
        cols_wrong.any()
        and not cols_wrong.all()
        and cols_wrong[-1]
        and wrong[:, ~cols_wrong].sum() == 0
    ):
        return (
            f"Every column from {int(np.argmax(cols_wrong))} on is wrong and the others are "
            f"right: no thread reached them. The grid's x axis covers the columns (col = "
            f"blockIdx.x * blockDim.x + threadIdx.x), and {ROUNDING}."
        )
    if doubled and untouched.all():
        return (
            "No element was doubled: the copy back was made before the kernel ran, or from "
            "another buffer than the one the kernel doubled, or the kernel wrote nothing."
        )
    if twice.any() or untouched.any():
        return (
            "Some elements were never doubled and others doubled twice: several threads "
            "computed the same index and others none. That is the book's threadIdx.y*4 on a "
            "5 x 5 block: the row stride must be the real row length, a[row * cols + col]."
        )
    return (
        "Check the index: col = blockIdx.x * blockDim.x + threadIdx.x, row = blockIdx.y * "
        "blockDim.y + threadIdx.y, element a[row * cols + col]; and the types: the kernel reads "
        "4-byte floats, and the sizes are np.int32."
    )


def check_matrix(got: Any, want: np.ndarray, call: str, scale: str) -> None:
    """`got` equals `want` (float32, same shape), or a failure that explains the pattern."""
    __tracebackhide__ = True
    assert isinstance(got, np.ndarray), f"{call} returned a {type(got).__name__}, not an array"
    assert got.shape == want.shape, f"{call} returned shape {got.shape}; expected {want.shape}"
    if got.dtype != np.float32:
        pytest.fail(
            f"{call} returned dtype {got.dtype}: the kernel works on float32, so convert with "
            f"np.ascontiguousarray(a, dtype=np.float32) before the copy and return an array of "
            f"that type (a float64 buffer is read by the kernel as pairs of meaningless floats)",
            pytrace=False,
        )
    wrong = ~np.isclose(got, want, rtol=1e-6, atol=0.0)
    if wrong.any():
        with np.errstate(all="ignore"):
            factor = got / (want / 2.0) if scale == "doubled" else np.ones_like(got)
        first = tuple(int(i) for i in np.argwhere(wrong)[0])
        pytest.fail(
            f"{call}: {int(wrong.sum())} of {want.size} elements are wrong; the first at "
            f"{first}: got {float(got[first])!r}, expected {float(want[first])!r}."
            f"{picture(wrong)}\n{diagnosis(factor, wrong, scale)}",
            pytrace=False,
        )


# -- grid_for --------------------------------------------------------------------------------


@pytest.mark.clause(1)
@pytest.mark.parametrize(
    ("rows", "cols", "block", "want"),
    [
        (1, 1, BLOCK, (1, 1, 1)),
        (8, 16, BLOCK, (1, 1, 1)),
        (9, 17, BLOCK, (2, 2, 1)),
        (20, 5, BLOCK, (1, 3, 1)),
        (3, 40, BLOCK, (3, 1, 1)),
        (1000, 1, BLOCK, (1, 125, 1)),
        (10, 33, (32, 4, 1), (2, 3, 1)),
    ],
)
def test_grid_for_covers_columns_on_x_and_rows_on_y_rounding_up(
    rows: int, cols: int, block: tuple[int, int, int], want: tuple[int, int, int]
) -> None:
    call = f"grid_for({rows}, {cols}, block={block})"
    got = grid_for(rows, cols, block)
    assert isinstance(got, tuple) and len(got) == 3, f"{call} returned {got!r}, not (x, y, z)"
    floor = (cols // block[0], rows // block[1], 1)
    swapped = (-(-rows // block[0]), -(-cols // block[1]), 1)
    if got != want and got == floor:
        pytest.fail(
            f"{call} returned {got}, rounded down; expected {want}: the last, partial blocks "
            f"are still needed for the elements they cover, so {ROUNDING}",
            pytrace=False,
        )
    if got != want and got == swapped:
        pytest.fail(
            f"{call} returned {got}, with rows and columns taken for each other; expected "
            f"{want}: x counts columns (block[0] threads each), y counts rows (block[1])",
            pytrace=False,
        )
    assert got == want, f"{call} returned {got}; expected {want}: {ROUNDING}"


@pytest.mark.clause(2)
@pytest.mark.parametrize(("rows", "cols"), [(0, 5), (5, 0), (-1, 3)])
def test_grid_for_refuses_a_matrix_without_rows_or_columns(rows: int, cols: int) -> None:
    value_error(
        f"grid_for({rows}, {cols})",
        "a matrix needs at least one row and one column; there is no grid for it",
        grid_for,
        rows,
        cols,
    )


# -- launch_double ---------------------------------------------------------------------------


@pytest.mark.clause(3)
@pytest.mark.parametrize(("rows", "cols"), [(9, 17), (20, 5)])
def test_launch_double_launches_once_on_the_rounded_up_grid_with_int32_sizes(
    launches: list[Launch], rows: int, cols: int
) -> None:
    guarded = Guarded.of(values(rows, cols, seed=rows))
    call = f"launch_double(a_gpu, {rows}, {cols})"
    launch_double(guarded.view, rows, cols)
    launch = one_launch(launches, "double_matrix", call, rows, cols)
    assert launch.argument_bytes == 16, (
        f"{call} passed {launch.argument_bytes} bytes of arguments; double_matrix(float *a, "
        f"int rows, int cols) takes 8 + 4 + 4 = 16: {INT32}"
    )


@pytest.mark.clause(4)
@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_launch_double_doubles_every_element_and_nothing_outside(
    launches: list[Launch], rows: int, cols: int
) -> None:
    a = values(rows, cols, seed=rows * 100 + cols)
    guarded = Guarded.of(a)
    call = f"launch_double(a_gpu, {rows}, {cols})"
    launch_double(guarded.view, rows, cols)
    got = guarded.read(call, "the matrix")
    check_matrix(got, 2 * a, call, "doubled")


@pytest.mark.clause(1, 3, 4)
@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=st.integers(1, 40), cols=st.integers(1, 70))
def test_launch_double_is_right_for_drawn_shapes(
    launches: list[Launch], rows: int, cols: int
) -> None:
    launches.clear()
    a = values(rows, cols, seed=rows * 1000 + cols)
    guarded = Guarded.of(a)
    call = f"launch_double(a_gpu, {rows}, {cols})"
    launch_double(guarded.view, rows, cols)
    check_matrix(guarded.read(call, "the matrix"), 2 * a, call, "doubled")
    one_launch(launches, "double_matrix", call, rows, cols)


# -- double_matrix ---------------------------------------------------------------------------


@pytest.mark.clause(4, 6)
def test_the_books_five_by_five_matrix_is_doubled_everywhere() -> None:
    a = np.random.default_rng(5).standard_normal((5, 5)).astype(np.float32)
    original = a.copy()
    got = double_matrix(a)
    check_matrix(got, 2 * original, "double_matrix(a 5 x 5 float32 matrix)", "doubled")
    assert np.array_equal(a, original), "double_matrix changed its input a: work on a copy"


@pytest.mark.clause(6)
def test_double_matrix_goes_through_mem_alloc_memcpy_htod_and_memcpy_dtoh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, int]] = []

    def spy(name: str, original: Callable[..., Any], size: Callable[..., int]) -> None:
        def recorded(*args: Any) -> Any:
            calls.append((name, size(*args)))
            return original(*args)

        monkeypatch.setattr(drv, name, recorded)

    spy("mem_alloc", drv.mem_alloc, lambda nbytes: int(nbytes))
    spy("memcpy_htod", drv.memcpy_htod, lambda dest, src: np.asarray(src).nbytes)
    spy("memcpy_dtoh", drv.memcpy_dtoh, lambda dest, src: np.asarray(dest).nbytes)
    rows, cols = 7, 11
    a = values(rows, cols, seed=7)
    got = double_matrix(a)
    check_matrix(got, 2 * a, f"double_matrix(a {rows} x {cols} matrix)", "doubled")
    nbytes = 4 * rows * cols
    want = [("mem_alloc", nbytes), ("memcpy_htod", nbytes), ("memcpy_dtoh", nbytes)]
    assert calls == want, (
        f"double_matrix made these driver calls (name, bytes): {calls}; expected {want}: one "
        f"cuda.mem_alloc(a32.nbytes), cuda.memcpy_htod(a_gpu, a32) before the launch and "
        f"cuda.memcpy_dtoh(result, a_gpu) after it, {nbytes} bytes each (4 per float32)"
    )


@pytest.mark.clause(6)
@pytest.mark.parametrize("kind", ["float64", "int64", "a transposed view", "a slice with steps"])
def test_double_matrix_converts_any_dtype_and_layout_to_float32(kind: str) -> None:
    rng = np.random.default_rng(11)
    a: np.ndarray
    if kind == "float64":
        a = rng.uniform(0.5, 1.5, (6, 9))
    elif kind == "int64":
        a = np.arange(1, 1 + 4 * 13, dtype=np.int64).reshape(4, 13)
    elif kind == "a transposed view":
        a = values(9, 6, seed=3).T
    else:
        a = values(12, 30, seed=4)[::2, ::3]
    original = a.copy()
    call = f"double_matrix(a: {kind}, shape {a.shape})"
    got = double_matrix(a)
    want = 2 * np.asarray(original, dtype=np.float32)
    if isinstance(got, np.ndarray) and got.shape == want.shape and got.dtype == np.float32:
        assert np.allclose(got, want, rtol=1e-6, atol=0), (
            f"{call} is wrong (first row {got[0][:4]}, expected {want[0][:4]}): the kernel "
            f"reads 4-byte floats row after row, so convert a with np.ascontiguousarray(a, "
            f"dtype=np.float32) before memcpy_htod: {a.dtype} numbers or a view whose rows are "
            f"not back to back in memory are misread otherwise"
        )
    check_matrix(got, want, call, "doubled")
    assert np.array_equal(a, original), f"{call} changed its input: work on the float32 copy"


@pytest.mark.clause(5)
@pytest.mark.parametrize("shape", [(6,), (2, 3, 4), (0, 3), (3, 0)])
def test_double_matrix_refuses_what_is_not_a_matrix(
    launches: list[Launch], shape: tuple[int, ...]
) -> None:
    call = f"double_matrix(an array of shape {shape})"
    why = "check that a is 2-D with at least one row and one column before anything else"
    message = value_error(call, why, double_matrix, np.ones(shape, dtype=np.float32))
    assert str(shape) in message, (
        f"{call} raised ValueError({message!r}); "
        f"name the shape {shape} in the message, so that the caller sees what was wrong"
    )
    assert not launches, f"double_matrix launched {launches} before refusing shape {shape}"


# -- launch_scale_rows -----------------------------------------------------------------------


def device_arrays(rows: int, cols: int, seed: int) -> tuple[Any, Any, Any]:
    """a (rows, cols), weights (rows,) and out (rows, cols) as float32 GPUArrays."""
    a = values(rows, cols, seed)
    weights = np.random.default_rng(seed + 1).uniform(-2.0, 2.0, rows).astype(np.float32)
    out = gpuarray.empty((rows, cols), np.float32)
    return gpuarray.to_gpu(a), gpuarray.to_gpu(weights), out


@pytest.mark.clause(7)
@pytest.mark.parametrize(
    "wrong",
    [
        "a_gpu float64",
        "weights_gpu float64",
        "out_gpu float64",
        "out_gpu int32",
        "weights_gpu (cols,)",
        "out_gpu (cols, rows)",
        "a_gpu 1-D",
    ],
)
def test_launch_scale_rows_refuses_wrong_dtypes_and_shapes_before_launching(
    launches: list[Launch], wrong: str
) -> None:
    rows, cols = 6, 10
    a_gpu, weights_gpu, out_gpu = device_arrays(rows, cols, seed=21)
    if wrong == "a_gpu float64":
        a_gpu = gpuarray.to_gpu(values(rows, cols, 1).astype(np.float64))
    elif wrong == "weights_gpu float64":
        weights_gpu = gpuarray.to_gpu(np.ones(rows))
    elif wrong == "out_gpu float64":
        out_gpu = gpuarray.empty((rows, cols), np.float64)
    elif wrong == "out_gpu int32":
        out_gpu = gpuarray.empty((rows, cols), np.int32)
    elif wrong == "weights_gpu (cols,)":
        weights_gpu = gpuarray.to_gpu(np.ones(cols, dtype=np.float32))
    elif wrong == "out_gpu (cols, rows)":
        out_gpu = gpuarray.empty((cols, rows), np.float32)
    else:
        a_gpu = gpuarray.to_gpu(np.ones(rows * cols, dtype=np.float32))
    call = f"launch_scale_rows with {wrong} (a is {rows} x {cols})"
    why = (
        "check every array's dtype (np.float32 only) and the shapes before launching: the "
        "kernel cannot tell what bytes it was given, and reads and writes whatever is there"
    )
    message = value_error(call, why, launch_scale_rows, a_gpu, weights_gpu, out_gpu)
    if "float64" in wrong or "int32" in wrong:
        dtype = wrong.split()[-1]
        assert dtype in message, (
            f"{call} raised ValueError({message!r}); name the dtype {dtype} that the kernel "
            f"cannot read"
        )
    assert not launches, (
        f"{call} launched {[launch.kernel for launch in launches]} before refusing: check "
        f"every array first, since the kernel cannot tell what bytes it was given"
    )


@pytest.mark.clause(8)
@pytest.mark.parametrize(("rows", "cols"), [(9, 17), (3, 40)])
def test_launch_scale_rows_launches_once_on_the_rounded_up_grid_with_int32_sizes(
    launches: list[Launch], rows: int, cols: int
) -> None:
    a_gpu, weights_gpu, out_gpu = device_arrays(rows, cols, seed=31)
    call = f"launch_scale_rows(a_gpu, weights_gpu, out_gpu) for {rows} x {cols}"
    launch_scale_rows(a_gpu, weights_gpu, out_gpu)
    launch = one_launch(launches, "scale_rows", call, rows, cols)
    assert launch.argument_bytes == 32, (
        f"{call} passed {launch.argument_bytes} bytes of arguments; scale_rows(three pointers, "
        f"int rows, int cols) takes 3 * 8 + 4 + 4 = 32: {INT32}"
    )


@pytest.mark.clause(9)
@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_launch_scale_rows_writes_every_element_and_nothing_outside(
    launches: list[Launch], rows: int, cols: int
) -> None:
    a = values(rows, cols, seed=rows + 7 * cols)
    # Weights that differ from row to row, and from any column's weight would-be.
    weights = (np.arange(rows, dtype=np.float32) + 2.0) * np.float32(1.5)
    a_in, weights_in = Guarded.of(a), Guarded.of(weights.reshape(rows, 1))
    out = Guarded.of(np.full((rows, cols), np.nan, dtype=np.float32))
    call = f"launch_scale_rows(a_gpu, weights_gpu, out_gpu) for {rows} x {cols}"
    launch_scale_rows(a_in.view, weights_in.view.reshape(rows), out.view)
    got = out.read(call, "out")
    a_in.read(call, "a")
    weights_in.read(call, "weights")
    want = a * weights[:, None]
    never = np.isnan(got)
    if never.any():
        pytest.fail(
            f"{call}: {int(never.sum())} of {rows * cols} elements of out were never written "
            f"(out was filled with NaN before the launch).{picture(never)}\n"
            f"{diagnosis(np.ones_like(got), never, 'scaled')}",
            pytrace=False,
        )
    by_column = np.array(
        [[a[r, c] * weights[c] if c < rows else np.nan for c in range(cols)] for r in range(rows)],
        dtype=np.float32,
    )
    wrong = ~np.isclose(got, want, rtol=1e-6, atol=0.0)
    if wrong.any() and np.isclose(got, by_column, rtol=1e-6, atol=0.0)[wrong].all():
        pytest.fail(
            f"{call}: out[row, col] is a[row, col] * weights[col]; each row has one weight, "
            f"weights[row]",
            pytrace=False,
        )
    check_matrix(got, want, call, "scaled")


# -- scale_rows ------------------------------------------------------------------------------


@pytest.mark.clause(11)
@pytest.mark.parametrize("kind", ["float32", "float64 and a list", "int64", "a transposed view"])
def test_scale_rows_matches_numpy_for_any_dtype_and_layout(kind: str) -> None:
    rng = np.random.default_rng(41)
    a: Any
    weights: Any
    if kind == "float32":
        a, weights = values(13, 21, 2), rng.uniform(-3, 3, 13).astype(np.float32)
    elif kind == "float64 and a list":
        a, weights = rng.uniform(0.5, 1.5, (4, 50)), [0.5, -1.25, 3.0, 2.0]
    elif kind == "int64":
        a, weights = np.arange(1, 1 + 9 * 7, dtype=np.int64).reshape(9, 7), np.arange(1, 10)
    else:
        a, weights = values(17, 3, 5).T, np.array([1.5, -2.0, 0.25])
    a_before = np.array(a, copy=True)
    call = f"scale_rows(a: {kind}, shape {np.shape(a)}, weights)"
    got = scale_rows(a, weights)
    want = np.asarray(a_before, dtype=np.float32) * np.asarray(weights, dtype=np.float32)[:, None]
    check_matrix(got, want, call, "scaled")
    assert np.array_equal(np.asarray(a), a_before), f"{call} changed its input a"


@pytest.mark.clause(10)
@pytest.mark.parametrize(
    ("a_shape", "w_shape"), [((4, 5), (5,)), ((4, 5), (4, 1)), ((20,), (20,)), ((0, 3), (0,))]
)
def test_scale_rows_refuses_shapes_that_do_not_fit(
    launches: list[Launch], a_shape: tuple[int, ...], w_shape: tuple[int, ...]
) -> None:
    call = f"scale_rows(a of shape {a_shape}, weights of shape {w_shape})"
    why = "a must be 2-D with rows and columns, and weights 1-D with one weight per row"
    message = value_error(call, why, scale_rows, np.ones(a_shape), np.ones(w_shape))
    assert str(a_shape) in message and str(w_shape) in message, (
        f"{call} raised ValueError({message!r}); name both shapes in the message"
    )
    assert not launches, f"scale_rows launched {launches} before refusing the shapes"
