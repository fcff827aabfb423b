"""Kata `numba_kernels`: CUDA kernels written in Python with Numba, run on Numba's CUDA simulator (or a GPU)."""

from __future__ import annotations

import math
from typing import Any

import numba_kernels
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from numba import cuda
from numba_kernels import (
    BLOCK,
    MAX_THREADS_PER_BLOCK,
    block_sums_kernel,
    blocks_for,
    largest,
    saxpy,
    saxpy_kernel,
    scale_kernel,
    sum_reduce,
    total,
)

EPS32 = float(np.finfo(np.float32).eps)
# Room past the end of every array a test hands a kernel, holding SENTINEL: a thread that
# writes past the end lands there (on a GPU as on the simulator, where a view that short makes
# the write raise IndexError instead).
PAD = 64
SENTINEL = -12345.0
BOUNDS = (
    "a thread past the end of the arrays indexed them. The grid is rounded up to whole blocks, "
    "so the last block has threads with i >= n: guard the body with `if i < out.size` (or loop "
    "only while i < x.size)."
)


def numbers(n: int, seed: int) -> np.ndarray:
    """n positive float32 numbers of many magnitudes (1/64 to 96): a sum never written (0, NaN)
    cannot pass, and float32 sums added in another order, or in float64, differ in their last
    bits. Each seed gives other numbers."""
    rng = np.random.default_rng(seed)
    scale = 2.0 ** rng.integers(-6, 7, n)
    return (rng.uniform(0.5, 1.5, n) * scale).astype(np.float32)


def padded(values: np.ndarray) -> tuple[Any, Any]:
    """(`values` on the device, the device array it is the start of): PAD elements of SENTINEL
    follow it."""
    room = np.full(values.size + PAD, SENTINEL, dtype=values.dtype)
    room[: values.size] = values
    whole = cuda.to_device(room)
    return whole[: values.size], whole


def poisoned(n: int) -> tuple[Any, Any]:
    """A float32 device array of n NaN (an element never written stays NaN), padded."""
    return padded(np.full(n, np.nan, dtype=np.float32))


def host(array: tuple[Any, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(a padded array's elements, the padding past them), copied back from the device."""
    view, whole = array
    values = view.copy_to_host()
    return values, whole.copy_to_host()[values.size :]


def launch(call: str, kernel: Any, blocks: int, threads: int, *arguments: Any) -> None:
    """kernel[blocks, threads](*arguments); an index past an array's end fails the test."""
    __tracebackhide__ = True
    try:
        kernel[blocks, threads](*arguments)
    except IndexError as error:
        pytest.fail(f"{call} raised IndexError ({error}): {BOUNDS}", pytrace=False)


def check_untouched_padding(call: str, padding: np.ndarray) -> None:
    __tracebackhide__ = True
    touched = np.flatnonzero(padding != SENTINEL)
    assert touched.size == 0, (
        f"{call} wrote past the end of out, at index n + {int(touched[0])}: {BOUNDS}"
    )


def saxpy_bound(a: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """How far a float32 a * x + y may be from the exact one: one rounding after the product
    and one after the sum (a GPU may fuse them into one), each at most half an ulp."""
    return EPS32 * (np.abs(np.float64(a) * x) + np.abs(y)) + 1e-30


def check_saxpy(call: str, got: np.ndarray, a: float, x: np.ndarray, y: np.ndarray) -> None:
    __tracebackhide__ = True
    x64, y64 = x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)
    want = np.float64(np.float32(a)) * x64 + y64
    never = np.flatnonzero(np.isnan(got))
    if never.size:
        first, n = int(never[0]), got.size
        reason = (
            "the elements of the last, partial block got no thread: round the number of blocks "
            "up, ceil(n / threads_per_block)"
            if never.size == n - first
            else "those elements got no thread"
        )
        pytest.fail(
            f"{call}: {never.size} of {n} elements of out were never written (still NaN), the "
            f"first at index {first}: {reason}",
            pytrace=False,
        )
    wrong = np.flatnonzero(np.abs(got - want) > saxpy_bound(a, x64, y64))
    assert wrong.size == 0, (
        f"{call}: {wrong.size} of {got.size} elements are wrong, the first at index "
        f"{int(wrong[0])}: {float(got[wrong[0]])!r} instead of a * x + y = "
        f"{float(want[wrong[0]])!r} (to float32 precision)"
    )


# -- launch configuration ---------------------------------------------------------------------


@pytest.mark.clause(1)
def test_blocks_for_rounds_up_to_whole_blocks() -> None:
    cases = [
        (1, 1, 1),
        (1, 128, 1),
        (128, 128, 1),
        (129, 128, 2),
        (1000, 64, 16),
        (1025, 1024, 2),
        (33, 32, 2),
        (2**60 + 1, 1, 2**60 + 1),  # past float64's 53 bits: only integers get it right
    ]
    for n, threads, want in cases:
        got = blocks_for(n, threads)
        call = f"blocks_for({n}, {threads})"
        assert isinstance(got, int), (
            f"{call} returned {got!r}, a {type(got).__name__}: a launch takes a whole number of "
            f"blocks, an int (use //, not /)"
        )
        if got == n // threads:
            why = (
                f"that is n // threads_per_block rounded down: the last {n % threads} elements "
                f"get no thread. Round up: (n + threads_per_block - 1) // threads_per_block"
            )
        elif got != want and n > 2**53:
            why = "a float (n / threads_per_block) cannot hold this n exactly: stay in integers"
        else:
            why = f"{want} blocks of {threads} threads are the fewest that cover {n} elements"
        assert got == want, f"{call} returned {got}; expected {want}: {why}"


@pytest.mark.clause(2)
def test_blocks_for_refuses_an_empty_launch_and_impossible_blocks() -> None:
    for n, threads, name in (
        (0, 32, "n"),
        (-5, 32, "n"),
        (10, 0, "threads_per_block"),
        (10, -1, "threads_per_block"),
        (10, MAX_THREADS_PER_BLOCK + 1, "threads_per_block"),
    ):
        call = f"blocks_for({n}, {threads})"
        with pytest.raises(ValueError) as raised:
            blocks_for(n, threads)
        message = str(raised.value)
        assert name in message, (
            f"{call} raised ValueError({message!r}), which does not name {name}: say which "
            f"argument is wrong"
        )


# -- one thread per element -------------------------------------------------------------------


@pytest.mark.clause(3)
def test_saxpy_kernel_gives_each_element_one_thread_and_threads_past_the_end_do_nothing() -> None:
    a = 2.5
    # Sizes that are not multiples of the block, one element, and a grid with a whole spare
    # block (n = 5 in 3 blocks of 4).
    for n, blocks, threads in ((1, 1, 32), (31, 1, 32), (33, 2, 32), (100, 4, 32), (5, 3, 4)):
        x, y = numbers(n, seed=n), numbers(n, seed=1000 + n)
        out = poisoned(n)
        call = f"saxpy_kernel[{blocks}, {threads}](a, x, y, out) with n = {n}"
        arguments = (np.float32(a), padded(x)[0], padded(y)[0], out[0])
        launch(call, saxpy_kernel, blocks, threads, *arguments)
        got, padding = host(out)
        check_untouched_padding(call, padding)
        check_saxpy(call, got, a, x, y)


@pytest.mark.clause(4)
def test_saxpy_refuses_arrays_that_are_not_1d_or_differ_in_length() -> None:
    cases = [
        (np.ones((2, 3), np.float32), np.ones((2, 3), np.float32)),
        (np.ones(4, np.float32), np.ones(5, np.float32)),
        (np.ones(0, np.float32), np.ones(0, np.float32)),
    ]
    for x, y in cases:
        call = f"saxpy(1.0, x of shape {x.shape}, y of shape {y.shape})"
        with pytest.raises(ValueError) as raised:
            saxpy(1.0, x, y)
        message = str(raised.value)
        assert str(x.shape) in message and str(y.shape) in message, (
            f"{call} raised ValueError({message!r}): name both shapes, so that the caller sees "
            f"what did not match"
        )


class LaunchSpy:
    """Stands in for a kernel of the kata module: records each launch configuration."""

    def __init__(self, kernel: Any, name: str, seen: list[tuple[str, int, int]]) -> None:
        self.kernel, self.name, self.seen = kernel, name, seen

    def __getitem__(self, configuration: Any) -> Any:
        blocks, threads = configuration[:2]
        self.seen.append((self.name, _count(blocks), _count(threads)))
        return self.kernel[configuration]

    def __call__(self, *arguments: Any) -> Any:
        pytest.fail(
            f"{self.name}(...) was called without a launch configuration: launch it as "
            f"{self.name}[blocks, threads_per_block](...)",
            pytrace=False,
        )


def _count(value: Any) -> int:
    if isinstance(value, tuple):
        return math.prod(int(v) for v in value)
    return int(value)


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """(kernel, blocks, threads per block) of every launch the kata's host functions make, and
    every float array they make with cuda.device_array is filled with NaN first."""
    seen: list[tuple[str, int, int]] = []
    for name in ("saxpy_kernel", "block_sums_kernel"):
        spy = LaunchSpy(getattr(numba_kernels, name), name, seen)
        monkeypatch.setattr(numba_kernels, name, spy)
    made = cuda.device_array

    def device_array(*arguments: Any, **keywords: Any) -> Any:
        array = made(*arguments, **keywords)
        if np.dtype(array.dtype).kind == "f":
            array.copy_to_device(np.full(array.shape, np.nan, dtype=array.dtype))
        return array

    monkeypatch.setattr(cuda, "device_array", device_array)
    return seen


@pytest.mark.clause(5)
def test_saxpy_launches_rounded_up_blocks_and_returns_float32(
    launches: list[tuple[str, int, int]],
) -> None:
    a = -1.75
    for n, threads in ((100, 32), (300, None), (1, 1), (64, 64)):
        launches.clear()
        x, y = numbers(n, seed=2 * n), numbers(n, seed=2 * n + 1)
        arguments = {} if threads is None else {"threads_per_block": threads}
        size = 128 if threads is None else threads
        call = f"saxpy({a}, x, y{'' if threads is None else f', threads_per_block={threads}'})"
        call += f" with n = {n}"
        got = saxpy(a, x, y, **arguments)
        assert isinstance(got, np.ndarray) and got.shape == (n,), (
            f"{call} returned {type(got).__name__} of shape {getattr(got, 'shape', None)}: "
            f"return the n results copied back, d_out.copy_to_host()"
        )
        assert got.dtype == np.float32, (
            f"{call} returned dtype {got.dtype}: cuda.device_array(n) makes float64 unless told "
            f"otherwise; make the output with dtype=np.float32"
        )
        want = [("saxpy_kernel", math.ceil(n / size), size)]
        assert launches == want, (
            f"{call} launched {launches}; expected {want}: blocks_for(n, threads_per_block) "
            f"blocks of threads_per_block threads each"
        )
        check_saxpy(call, got, a, x, y)


@pytest.mark.clause(5)
def test_saxpy_converts_float64_int64_and_strided_inputs_to_float32() -> None:
    a = 0.3
    base = numbers(150, seed=7)
    cases = [
        ("float64 x and y", base.astype(np.float64) * 1.5, base.astype(np.float64)),
        ("int64 x", np.arange(150) - 75, base),
        ("x[::2] and y[::3] (views with a step)", numbers(300, 8)[::2], numbers(450, 9)[::3]),
    ]
    for what, x, y in cases:
        kept_x, kept_y = x.copy(), y.copy()
        call = f"saxpy({a}, {what})"
        got = saxpy(a, x, y)
        assert got.dtype == np.float32, f"{call} returned dtype {got.dtype}, not float32"
        check_saxpy(call, got, a, x, y)
        assert np.array_equal(x, kept_x) and np.array_equal(y, kept_y), (
            f"{call} changed its inputs: convert into new arrays"
        )


# -- a grid-stride loop -----------------------------------------------------------------------


@pytest.mark.clause(6)
def test_scale_kernel_covers_every_element_with_a_grid_of_any_size() -> None:
    a = np.float32(3.0)
    # Fewer threads than elements (200 in 64 threads; 7 in one thread), as many, and more.
    for n, blocks, threads in ((200, 2, 32), (7, 1, 1), (64, 2, 32), (50, 4, 32), (1, 1, 32)):
        x = numbers(n, seed=3 * n)
        out = poisoned(n)
        call = f"scale_kernel[{blocks}, {threads}](a, x, out) with n = {n}"
        launch(call, scale_kernel, blocks, threads, a, padded(x)[0], out[0])
        got, padding = host(out)
        check_untouched_padding(call, padding)
        grid = blocks * threads
        never = np.flatnonzero(np.isnan(got))
        if never.size and never[0] == grid:
            pytest.fail(
                f"{call}: only the first {grid} elements were written, one per thread of the "
                f"grid: each thread must go on, i += cuda.gridsize(1), while i < x.size (a "
                f"grid-stride loop)",
                pytrace=False,
            )
        assert never.size == 0, (
            f"{call}: elements {list(never[:8])} of {n} were never written: start at "
            f"i = cuda.grid(1) and step by cuda.gridsize(1)"
        )
        want = a * x  # one float32 rounding, the same on every device
        wrong = np.flatnonzero(got != want)
        assert wrong.size == 0, (
            f"{call}: out[{int(wrong[0])}] = {float(got[wrong[0]])!r}, expected a * x = "
            f"{float(want[wrong[0]])!r}"
        )


# -- a block reduction in shared memory -------------------------------------------------------


def tiles_of(x32: np.ndarray) -> np.ndarray:
    """x in rows of BLOCK, the last row padded with zeros."""
    rows = np.zeros(math.ceil(x32.size / BLOCK) * BLOCK, dtype=np.float32)
    rows[: x32.size] = x32
    return rows.reshape(-1, BLOCK)


def stepped_sums(x32: np.ndarray, steps: list[int]) -> np.ndarray:
    """The float32 sums of a tree whose step s makes element t < s add element t + s."""
    rows = tiles_of(x32)
    for s in steps:
        rows[:, :s] = rows[:, :s] + rows[:, s : 2 * s]  # float32 + float32: one rounding each
    return rows[:, 0].copy()


HALVING = [BLOCK >> k for k in range(1, BLOCK.bit_length()) if BLOCK >> k >= 1]


def tree_sums(x32: np.ndarray) -> np.ndarray:
    """The float32 sums §8's tree gives: s = BLOCK / 2, ..., 1."""
    return stepped_sums(x32, HALVING)


def tree_total(x32: np.ndarray) -> float:
    """What §10's launches of §8's tree give, bit for bit."""
    sums = tree_sums(x32)
    while sums.size > 1:
        sums = tree_sums(sums)
    return float(sums[0])


def sums_diagnosis(got: np.ndarray, x32: np.ndarray) -> str:
    """A sentence about what the pattern of wrong sums usually means."""
    if np.isnan(got).any():
        return (
            "Some sums are NaN: an element of sums was never written (thread 0 of each block "
            "writes sums[cuda.blockIdx.x]), or the tree read an element of the tile that no "
            "thread stored (a thread past the end of x stores 0.0 there)."
        )
    if np.array_equal(got, tiles_of(x32)[:, 0]):
        return "Each sum is its block's first element: no step of the tree ran."
    if np.array_equal(got, stepped_sums(x32, HALVING[:-1])):
        return (
            "Each sum misses the last step, s = 1 (tile[0] + tile[1]): it holds only the even "
            "elements of its block. The loop runs while s > 0, not s > 1."
        )
    if np.array_equal(got, tiles_of(x32).astype(np.float64).sum(axis=1).astype(np.float32)):
        return (
            "The sums are float64 sums rounded to float32 at the end: the tile must be float32 "
            "(cuda.shared.array(BLOCK, dtype=float32)), so that each step rounds as the "
            "contract's tree does."
        )
    return (
        "Check the tree: tile[t] = x[i] (0.0 past the end), cuda.syncthreads(), then for "
        "s = BLOCK // 2, BLOCK // 4, ..., 1: if t < s: tile[t] = tile[t] + tile[t + s], and "
        "cuda.syncthreads() after each step, outside the if."
    )


@pytest.mark.clause(7, 8, 9)
def test_block_sums_kernel_adds_each_block_by_the_halving_tree() -> None:
    # (Seed 64 gives 64 numbers whose float32 tree differs in its last bit from the same tree
    # added in float64: about one block in three does.)
    for n, seed in ((1, 5), (BLOCK, 64), (100, 500), (2 * BLOCK + 2, 650)):
        x = numbers(n, seed=seed)
        blocks = math.ceil(n / BLOCK)
        sums = poisoned(blocks)
        call = f"block_sums_kernel[{blocks}, {BLOCK}](x, sums) with n = {n}"
        launch(call, block_sums_kernel, blocks, BLOCK, padded(x)[0], sums[0])
        got, padding = host(sums)
        check_untouched_padding(call, padding)
        want = tree_sums(x)
        exact = tiles_of(x).astype(np.float64).sum(axis=1)
        if not np.allclose(got, exact, rtol=1e-5, atol=0) or np.isnan(got).any():
            wrong = np.flatnonzero(~np.isclose(got, exact, rtol=1e-5, atol=0))
            first = int(wrong[0])
            pytest.fail(
                f"{call}: {wrong.size} of {blocks} sums are wrong; sums[{first}] = "
                f"{float(got[first])!r}, but x[{first * BLOCK}:{(first + 1) * BLOCK}] sums to "
                f"{exact[first]:.7g}.\n{sums_diagnosis(got, x)}",
                pytrace=False,
            )
        if not np.array_equal(got, want):
            first = int(np.flatnonzero(got != want)[0])
            pytest.fail(
                f"{call}: the sums are right to float32 tolerance but not bit for bit the "
                f"halving tree's (sums[{first}] = {float(got[first])!r} instead of "
                f"{float(want[first])!r}). {sums_diagnosis(got, x)}",
                pytrace=False,
            )


@pytest.mark.clause(10)
def test_total_launches_block_sums_until_one_number_is_left(
    launches: list[tuple[str, int, int]],
) -> None:
    # 1000 -> 16 -> 1 and 70 -> 2 -> 1 in blocks of 64; one launch for 1 and for 64 elements.
    for n in (1000, 70, 1, BLOCK):
        launches.clear()
        x = numbers(n, seed=7 * n)
        call = f"total(x) with n = {n}"
        got = total(x)
        passes, blocks = [], n
        while True:
            blocks = math.ceil(blocks / BLOCK)
            passes.append(("block_sums_kernel", blocks, BLOCK))
            if blocks == 1:
                break
        assert launches == passes, (
            f"{call} launched {launches}; expected {passes}: block_sums_kernel with "
            f"blocks_for(n, BLOCK) blocks of BLOCK threads, then on its sums, and so on until a "
            f"launch gives one number (none summed on the host)"
        )
        assert isinstance(got, float), (
            f"{call} returned {got!r}, a {type(got).__name__}: return a Python float, "
            f"float(sums.copy_to_host()[0])"
        )
        want = float(x.astype(np.float64).sum())
        assert math.isclose(got, want, rel_tol=1e-5), (
            f"{call} returned {got!r}; the sum is {want!r}"
        )
        assert got == tree_total(x), (
            f"{call} returned {got!r}, right to float32 tolerance but not {tree_total(x)!r}, what "
            f"the launches' trees give: return the last launch's number as it is"
        )


@pytest.mark.clause(10)
def test_total_refuses_arrays_that_are_not_1d_or_empty_and_converts_the_rest() -> None:
    for x in (np.ones((2, 3), np.float32), np.ones(0, np.float32)):
        with pytest.raises(ValueError) as raised:
            total(x)
        assert str(x.shape) in str(raised.value), (
            f"total(x of shape {x.shape}) raised ValueError({str(raised.value)!r}), which does "
            f"not show the shape {x.shape}"
        )
    x = numbers(90, seed=11)
    for what, other in (("float64", x.astype(np.float64)), ("x[::2]", numbers(180, 12)[::2])):
        want = tree_total(np.ascontiguousarray(other, dtype=np.float32))
        got = total(other)
        assert got == want, (
            f"total({what}) returned {got!r}, expected {want!r}: convert x with "
            f"np.ascontiguousarray(x, dtype=np.float32) before copying it to the device"
        )


# -- cuda.reduce ------------------------------------------------------------------------------


@pytest.mark.clause(11)
def test_sum_reduce_sums_one_to_ten_thousand_as_the_book_does() -> None:
    a = np.arange(10000, dtype=np.int64) + 1  # B1's reduceNumba.py
    got = sum_reduce(a)
    assert got == 50005000, (
        f"sum_reduce(1..10000) returned {got!r}; the book prints it without checking, and it "
        f"must be 10000 * 10001 / 2 = 50005000: sum_reduce(a, b) returns a + b"
    )
    x = numbers(300, seed=13)
    got_float = float(sum_reduce(x))
    assert math.isclose(got_float, float(x.astype(np.float64).sum()), rel_tol=1e-5), (
        f"sum_reduce(300 float32 numbers) returned {got_float!r}"
    )


@pytest.mark.clause(12)
def test_largest_starts_from_an_element_not_from_zero() -> None:
    rng = np.random.default_rng(17)
    cases = [
        ("all negative", -numbers(200, seed=19)),
        ("mixed signs", rng.uniform(-50, 50, 100).astype(np.float32)),
        ("one element, negative", np.array([-3.5], np.float32)),
    ]
    for what, x in cases:
        got = largest(x)
        want = float(x.max())
        assert isinstance(got, float), f"largest({what}) returned a {type(got).__name__}"
        if got == 0.0 and want < 0:
            pytest.fail(
                f"largest({what}) returned 0.0, but every element is negative (the largest is "
                f"{want!r}): cuda.reduce starts from init=0, and 0 wins every max. Start from "
                f"an element of x: max_reduce(x, init=x[0])",
                pytrace=False,
            )
        assert got == want, f"largest({what}) returned {got!r}; expected {want!r}"
    with pytest.raises(ValueError):
        largest(np.ones(0, np.float32))


# -- any size ---------------------------------------------------------------------------------


@pytest.mark.clause(1, 3, 5, 8, 10)
@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: each example runs simulated kernels, and the first failure says enough.
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(n=st.integers(1, 600), threads=st.sampled_from([1, 32, 96, 128]))
def test_saxpy_and_total_match_numpy_for_drawn_sizes(n: int, threads: int) -> None:
    x, y = numbers(n, seed=n), numbers(n, seed=n + 1)
    got = saxpy(1.5, x, y, threads_per_block=threads)
    check_saxpy(f"saxpy(1.5, x, y, threads_per_block={threads}) with n = {n}", got, 1.5, x, y)
    got_total = total(x)
    assert got_total == tree_total(x), (
        f"total(x) with n = {n} returned {got_total!r}; the launches' trees give {tree_total(x)!r}"
    )
