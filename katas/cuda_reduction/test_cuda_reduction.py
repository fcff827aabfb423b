"""Kata `cuda_reduction`: sums on an NVIDIA GPU with PyCUDA, by a tree in shared memory, then with ReductionKernel and ElementwiseKernel."""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pycuda.driver as drv
import pytest
from cuda_reduction import (
    MAX_BLOCK,
    block_sums,
    int_total,
    linear_combination,
    sum_of_squares,
    total,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

# A block's sum adds at most 1,024 float32 numbers in a tree of at most 10 levels, each rounding
# by at most half a unit in the last place (6e-8): a right sum is within about 1e-6 of the
# exact one. The bugs drop, double or misread whole runs of elements, which is far more; the
# last bits themselves are judged bit for bit against the tree (§7).
RTOL = 1e-5
# ReductionKernel's order is pycuda's: each thread first adds several elements one after
# another. Up to a few thousand squares that stays within 1e-5; 1e-4 leaves room, and the bugs
# it must catch (a neutral of 1 in every thread, squares not taken, doubles misread) are off by
# far more.
RTOL_SQUARES = 1e-4
# A test whose code under test launches more kernels than this is stuck in a loop of passes.
MAX_LAUNCHES = 30
# The race test: blocks of 1,024 threads (32 warps, which the GPU schedules apart) over
# RACE_N elements (1,025 blocks, the last one partial), run RACE_RUNS times on new numbers.
RACE_N = 1024 * 1024 + 7
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


def numbers(n: int) -> np.ndarray:
    """n new positive float32 numbers of many magnitudes (1/128 to 96) at every call: every sum
    is positive, so a sum never written (0 or garbage) cannot pass, sums added in another order
    than the tree differ from its sums in their last bits, and device memory left over from an
    earlier call never holds this one's answer."""
    rng = np.random.default_rng(next(_seeds))
    scale = 2.0 ** rng.integers(-6, 7, n)
    return (rng.uniform(0.5, 1.5, n) * scale).astype(np.float32)


# -- the sums the contract asks for, and the ones a wrong kernel gives ------------------------


def blocks_of(x32: np.ndarray, block: int) -> np.ndarray:
    """x as float32 in rows of `block`, the last row padded with zeros."""
    blocks = math.ceil(x32.size / block)
    padded = np.zeros(blocks * block, dtype=np.float32)
    padded[: x32.size] = x32
    return padded.reshape(blocks, block)


def exact_sums(x: Any, block: int) -> np.ndarray:
    """Each block's sum in float64 of the float32 numbers the GPU gets: the yardstick."""
    return blocks_of(np.asarray(x, dtype=np.float32), block).astype(np.float64).sum(axis=1)


def stepped_sums(x: Any, block: int, steps: list[int]) -> np.ndarray:
    """The float32 sums of a tree whose step s makes element t < s add element t + s."""
    rows = blocks_of(np.asarray(x, dtype=np.float32), block)
    for s in steps:
        rows[:, :s] = rows[:, :s] + rows[:, s : 2 * s]  # float32 + float32: one rounding each
    return rows[:, 0].copy()


def halving(block: int, last: int = 1) -> list[int]:
    """block / 2, block / 4, ..., down to `last`."""
    return [block >> k for k in range(1, block.bit_length()) if block >> k >= last]


def tree_sums(x: Any, block: int) -> np.ndarray:
    """The float32 sums §7's tree gives: s = block / 2, ..., 1."""
    return stepped_sums(x, block, halving(block))


def serial_sums(x: Any, block: int) -> np.ndarray:
    """The float32 sums of one thread adding its block's elements one after another."""
    rows = blocks_of(np.asarray(x, dtype=np.float32), block)
    acc = rows[:, 0].copy()
    for column in range(1, block):
        acc = acc + rows[:, column]
    return acc


def interleaved_sums(x: Any, block: int) -> np.ndarray:
    """The float32 sums of the other classic tree: s = 1, 2, 4, ..., element 2*s*k adds 2*s*k + s."""
    rows = blocks_of(np.asarray(x, dtype=np.float32), block)
    s = 1
    while s < block:
        rows[:, :: 2 * s] = rows[:, :: 2 * s] + rows[:, s :: 2 * s]
        s *= 2
    return rows[:, 0].copy()


def pass_grids(n: int, block: int) -> list[int]:
    """The number of blocks of each of total's passes."""
    grids = []
    while True:
        grids.append(math.ceil(n / block))
        if grids[-1] == 1:
            return grids
        n = grids[-1]


def tree_total(x: Any, block: int) -> float:
    """What §11's passes of §7's tree give, bit for bit."""
    sums = tree_sums(x, block)
    while sums.size > 1:
        sums = tree_sums(sums, block)
    return float(sums[0])


def listed(indices: np.ndarray) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:8])
    return shown + (f" and {indices.size - 8} more" if indices.size > 8 else "")


def sums_diagnosis(got: np.ndarray, wrong: np.ndarray, x: Any, block: int) -> str:
    """A sentence about what the pattern of wrong sums usually means."""
    x32 = np.asarray(x, dtype=np.float32)
    n, blocks = x32.size, wrong.size
    if np.isnan(got).any():
        return (
            "Some sums are NaN: the kernel read memory outside x, or an element of scratch that "
            "no thread had stored. A thread past the end of x stores 0 in scratch and reads "
            "nothing from x."
        )
    if not got.any():
        return (
            "Every sum is 0: nothing was written to sums, or the result was never copied back "
            "with sums_gpu.get()."
        )
    if np.array_equal(got, blocks_of(x32, block)[:, 0]):
        return (
            "Each sum is its block's first element: no step of the tree ran (the loop over s "
            "starts at blockDim.x / 2 and runs while s > 0)."
        )
    if block > 2 and np.array_equal(got, stepped_sums(x32, block, halving(block, 2))):
        return (
            "Each sum misses the last step, s = 1 (scratch[0] + scratch[1]): it holds only the "
            "even elements of its block. The loop runs while s > 0 (or s >= 1), not s > 1."
        )
    upward = [block >> k for k in range(block.bit_length() - 1, 0, -1)]
    if block > 2 and np.array_equal(got, stepped_sums(x32, block, upward)):
        return (
            "The steps ran the wrong way, s = 1, 2, 4, ...: with `if (t < s)` that adds only a "
            "few elements into scratch[0]. The tree halves: s starts at blockDim.x / 2 and goes "
            "down to 1, so each step folds the upper half onto the lower half."
        )
    short = [(block - 1) >> k for k in range(1, block.bit_length()) if (block - 1) >> k]
    if block > 2 and np.array_equal(got, stepped_sums(x32, block, short)):
        return (
            "The tree started one short, at s = (blockDim.x - 1) / 2: the first step then "
            "leaves the top elements of every block out. It starts at blockDim.x / 2, half "
            "of a power of two, so each step folds exactly the upper half onto the lower half."
        )
    if n % block and wrong[-1] and not wrong[:-1].any():
        return (
            f"Only the last block is wrong, the one that holds the last {n % block} elements "
            f"and {block - n % block} threads past the end of x: they must store 0 in scratch "
            f"(0 adds nothing), without reading x."
        )
    if blocks > 1 and not wrong[0] and wrong[1:].all():
        return (
            "The first block is right and the others are wrong: index x with the thread's "
            "place in the grid (i = blockIdx.x * blockDim.x + threadIdx.x), scratch with "
            "threadIdx.x, and write sums[blockIdx.x]."
        )
    return (
        "Check the tree: scratch[t] = x[i] (0 past the end), __syncthreads(), then for "
        "s = blockDim.x / 2, blockDim.x / 4, ..., 1: if (t < s) scratch[t] = scratch[t] + "
        "scratch[t + s], and a __syncthreads() after each step, outside the if."
    )


def check_sums(got: Any, x: Any, block: int, call: str) -> None:
    """`got` is a float32 array holding one right sum per block of `block` elements."""
    __tracebackhide__ = True
    n = np.asarray(x).size
    blocks = math.ceil(n / block)
    if not isinstance(got, np.ndarray):
        pytest.fail(
            f"{call} returned a {type(got).__name__}, not a NumPy array: return sums_gpu.get()",
            pytrace=False,
        )
    if got.shape != (blocks,):
        dropped = got.shape == (n // block,) and n % block
        reason = (
            f": the last, partial block of {n % block} elements was dropped. Round up, "
            f"(n + block - 1) // block blocks; the kernel's threads past the end store 0"
            if dropped
            else ""
        )
        pytest.fail(
            f"{call} returned shape {got.shape}; n = {n} elements in blocks of {block} make "
            f"ceil({n} / {block}) = {blocks} sums{reason}",
            pytrace=False,
        )
    if got.dtype != np.float32:
        pytest.fail(
            f"{call} returned dtype {got.dtype}: return the float32 array the kernel wrote",
            pytrace=False,
        )
    want = exact_sums(x, block)
    wrong = ~np.isclose(got, want, rtol=RTOL, atol=0.0)
    if wrong.any():
        first = int(np.argmax(wrong))
        pytest.fail(
            f"{call}: {int(wrong.sum())} of {blocks} sums differ from numpy's (blocks "
            f"{listed(np.flatnonzero(wrong))}); block {first}, x[{first * block}:"
            f"{(first + 1) * block}], summed to {float(got[first]):.7g} instead of "
            f"{want[first]:.7g}.\n{sums_diagnosis(got, wrong, x, block)}",
            pytrace=False,
        )


# -- what the host code asked the GPU to run -------------------------------------------------


@dataclass
class Launch:
    grid: tuple[int, ...]
    block: tuple[int, ...]
    shared: int  # bytes of dynamic shared memory (the launch's `shared=`)
    library: bool  # a kernel of a pycuda ReductionKernel or ElementwiseKernel


@pytest.fixture(autouse=True)
def launches(monkeypatch: pytest.MonkeyPatch) -> list[Launch]:
    """Every kernel launch of the test: `function(..., block=, grid=, shared=)` and the prepared
    calls of ReductionKernel and ElementwiseKernel all end in `Function._launch_kernel`.

    A grid with no blocks fails the test with why, where the driver would only say "invalid
    argument"; a `block_sums` launch whose shared memory is too small for its block fails the
    test before it runs, where it would write past its shared memory; a test that launches more than
    MAX_LAUNCHES kernels fails at once, from a loop of passes that never ends."""
    seen: list[Launch] = []
    original = drv.Function._launch_kernel

    def noted(function: Any, grid: Any, block: Any, arg_buf: Any, shared: Any, *rest: Any) -> Any:
        library = bool(getattr(function, "_kata_library", False))
        launch = Launch(tuple(grid), tuple(block), int(shared or 0), library)
        seen.append(launch)
        if 0 in launch.grid:
            pytest.fail(
                f"a kernel was launched on a grid of {launch.grid} blocks, which the driver "
                f"refuses: the number of blocks was rounded down. Round up, (n + block - 1) // "
                f"block, so that a partial block covers the last elements (its threads past "
                f"the end store 0).",
                pytrace=False,
            )
        if len(seen) > MAX_LAUNCHES:
            pytest.fail(
                f"{len(seen)} kernel launches in one test, the last on a grid of {launch.grid} "
                f"blocks: a loop of passes that never ends. Each pass of total must shrink the "
                f"array (blocks of 2 threads or more), and the loop stops when a pass writes "
                f"one number.",
                pytrace=False,
            )
        threads = math.prod(launch.block)
        if not library and launch.shared < 4 * threads:
            pytest.fail(
                f"block_sums launched blocks of {threads} threads with shared={launch.shared}; "
                f"scratch needs one 4-byte float per thread, {4 * threads} bytes: pass "
                f"shared=4 * block (in bytes) with the launch. (Not launched: it would write "
                f"past its shared memory.)",
                pytrace=False,
            )
        return original(function, grid, block, arg_buf, shared, *rest)

    monkeypatch.setattr(drv.Function, "_launch_kernel", noted)
    return seen


@pytest.fixture(autouse=True)
def library_launches_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Marks the functions pycuda's ReductionKernel and ElementwiseKernel build (they size their
    own shared memory), so that `launches` tells them from the kata's own kernel. A kernel kept
    from an earlier test of this file was built, and marked, there."""
    import pycuda.elementwise
    import pycuda.reduction

    def marking(module: Any, name: str) -> None:
        original = getattr(module, name)

        def marked(*args: Any, **kw: Any) -> Any:
            result = original(*args, **kw)
            function = result[1] if module is pycuda.elementwise else result[0]
            function._kata_library = True
            return result

        monkeypatch.setattr(module, name, marked)

    marking(pycuda.reduction, "get_reduction_kernel_and_types")
    marking(pycuda.elementwise, "get_elwise_kernel_and_types")


@pytest.fixture
def copies_back(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size in bytes of every copy from the GPU to the host during the test."""
    sizes: list[int] = []
    original = drv.memcpy_dtoh

    def noted(dest: Any, src: Any, *rest: Any, **kw: Any) -> Any:
        sizes.append(int(np.asarray(dest).nbytes))
        return original(dest, src, *rest, **kw)

    monkeypatch.setattr(drv, "memcpy_dtoh", noted)
    return sizes


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


def library_call(call: str, function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)`, with pycuda's complaint about a NumPy array where a GPUArray belongs
    turned into a sentence."""
    __tracebackhide__ = True
    try:
        return function(*args)
    except AttributeError as error:
        if "gpudata" not in str(error):
            raise
        pytest.fail(
            f"{call} raised AttributeError ({error}): a NumPy array was handed to a pycuda "
            f"kernel, as the book's ElementwiseKernel example does. A NumPy array lives in host "
            f"memory, which the GPU cannot read; pycuda's kernels take GPUArrays: "
            f"gpuarray.to_gpu(x32) for each input and gpuarray.empty_like(x_gpu) for the "
            f"result, then result.get().",
            pytrace=False,
        )


FLOAT_FUNCTIONS = [
    pytest.param(block_sums, id="block_sums"),
    pytest.param(total, id="total"),
    pytest.param(sum_of_squares, id="sum_of_squares"),
]


# -- checks on the arguments -----------------------------------------------------------------


@pytest.mark.clause(1)
@pytest.mark.parametrize("function", [*FLOAT_FUNCTIONS, pytest.param(int_total, id="int_total")])
def test_arrays_that_are_not_1d_or_are_empty_raise_value_error_naming_their_shape(
    function: Callable[..., Any],
) -> None:
    for x in (np.ones((2, 3), np.int32), np.ones(0, np.int32), np.ones((1, 1), np.int32)):
        call = f"{function.__name__}(x of shape {x.shape})"
        advice = (
            "check x before anything else and raise ValueError: x must be 1-D (np.ravel is the "
            "caller's choice, not yours) with at least one element (a grid of no blocks is no "
            "launch)"
        )
        message = value_error(call, advice, function, x)
        assert str(x.shape) in message, (
            f"{call} raised ValueError({message!r}), which does not show the shape {x.shape}: "
            f"name it, so that the caller sees what was wrong"
        )


@pytest.mark.clause(3)
@pytest.mark.parametrize("function", FLOAT_FUNCTIONS[:2])
def test_blocks_that_are_not_powers_of_two_raise_value_error(
    function: Callable[..., Any],
) -> None:
    x = numbers(10)
    for block in (3, 6, 24, 0, -4, 2 * MAX_BLOCK):
        call = f"{function.__name__}(x, block={block})"
        if block == 2 * MAX_BLOCK:
            why = f"it is a power of two, but a block holds at most {MAX_BLOCK} threads"
        elif block < 1:
            why = "a block needs at least one thread"
        else:
            why = (
                "the tree halves the block at every step (s = blockDim.x / 2, ...), which "
                "leaves elements out unless the block is a power of two"
            )
        message = value_error(
            call, f"{why}: check block first and raise ValueError", function, x, block=block
        )
        assert "block" in message, (
            f"{call} raised ValueError({message!r}): say that block is the problem"
        )


@pytest.mark.clause(10)
def test_total_refuses_blocks_of_one_thread() -> None:
    call = "total(x, block=1)"
    advice = (
        "a pass with blocks of one thread returns as many sums as it was given, so the passes "
        "would never end: raise ValueError when block < 2"
    )
    message = value_error(call, advice, total, numbers(5), block=1)
    assert "block" in message, (
        f"{call} raised ValueError({message!r}): say that block is the problem"
    )


# -- block_sums ------------------------------------------------------------------------------


@pytest.mark.clause(5, 6, 9)
def test_block_sums_match_numpy_when_n_is_not_a_multiple_of_the_block() -> None:
    # Several blocks with a partial last one; a whole number of blocks; n below one block; one
    # element; blocks of one thread (no step at all); and blocks of more than one warp.
    for n, block in (
        (37, 8),
        (300, 32),
        (1000, 256),
        (64, 16),
        (5, 16),
        (1, 4),
        (3, 1),
        (2000, 512),
    ):
        x = numbers(n)
        got = block_sums(x, block=block)
        check_sums(got, x, block, f"block_sums(x of {n}, block={block})")


@pytest.mark.clause(7)
def test_block_sums_add_in_the_order_of_the_tree_bit_for_bit() -> None:
    for n, block in ((45, 16), (200, 64), (3000, 1024)):
        x = numbers(n)
        call = f"block_sums(x of {n}, block={block})"
        got = block_sums(x, block=block)
        check_sums(got, x, block, call)
        want = tree_sums(x, block)
        if np.array_equal(got, want):
            continue
        if np.array_equal(got, serial_sums(x, block)):
            how = (
                "one after another, as a loop in one thread adds them: that is not a tree, and "
                "it leaves all but one thread of the block idle"
            )
        elif np.array_equal(got, interleaved_sums(x, block)):
            how = (
                "in the interleaved tree (s = 1, 2, 4, ...; threads t % (2 * s) == 0 add element "
                "t + s), whose active threads are scattered over every warp"
            )
        else:
            how = "in an order that is not the tree's (or a race changed a few of them)"
        wrong = np.flatnonzero(got != want)
        pytest.fail(
            f"{call}: the sums are right to float32 tolerance, but {wrong.size} of them differ "
            f"in their last bits from the tree's (block {wrong[0]}: {float(got[wrong[0]])!r} "
            f"instead of {float(want[wrong[0]])!r}). Float additions in another order round "
            f"differently, and yours were added {how}. §7 fixes the order: s = blockDim.x / 2, "
            f"blockDim.x / 4, ..., 1, and thread t < s adds scratch[t + s] to scratch[t].",
            pytrace=False,
        )


@pytest.mark.clause(4)
def test_block_sums_launches_whole_blocks_with_a_float_of_shared_memory_each(
    launches: list[Launch],
) -> None:
    for n, block in ((37, 8), (5, 16), (1000, None)):
        launches.clear()
        arguments = {} if block is None else {"block": block}
        size = 256 if block is None else block
        call = f"block_sums(x of {n}{'' if block is None else f', {block=}'})"
        with contextlib.suppress(drv.Error):  # the launch below says why the driver refused it
            block_sums(numbers(n), **arguments)
        assert len(launches) == 1, f"{call} launched {len(launches)} kernels, not one"
        launch = launches[0]
        assert launch.block == (size, 1, 1), (
            f"{call} launched blocks of {launch.block} threads; expected ({size}, 1, 1)"
        )
        want = math.ceil(n / size)
        if launch.grid[0] == n // size:
            reason = (
                "rounded down, which drops the last, partial block (and a grid of 0 blocks is "
                "no launch)"
            )
        elif launch.grid[0] == n:
            reason = "that is a block per element: divide by the block, rounding up"
        else:
            reason = "one thread per element, rounded up to whole blocks"
        assert launch.grid[:2] == (want, 1), (
            f"{call} launched a grid of {launch.grid} blocks; expected ({want}, 1): {reason}"
        )
        assert launch.shared == 4 * size, (
            f"{call} launched with shared={launch.shared}: scratch needs 4 * block = "
            f"{4 * size} bytes, one float per thread"
        )


@pytest.mark.clause(8)
def test_block_sums_are_the_trees_bits_in_every_block_of_a_large_array_run_three_times() -> None:
    for run in range(1, RACE_RUNS + 1):
        x = numbers(RACE_N)
        call = f"block_sums(x of {RACE_N}, block={MAX_BLOCK})"
        got = block_sums(x, block=MAX_BLOCK)
        check_sums(got, x, MAX_BLOCK, call)
        wrong = np.flatnonzero(got != tree_sums(x, MAX_BLOCK))
        assert not wrong.size, (
            f"{call}, run {run} of {RACE_RUNS}: {wrong.size} of {got.size} block sums differ "
            f"from the tree's in their last bits (blocks {listed(wrong)}). If the smaller "
            f"arrays of the other tests come out bit for bit, this is the mark of a race on "
            f"shared memory: the 32 warps of a block run apart, so without a __syncthreads() "
            f"after the copy into scratch, and after every step of the tree, a warp adds an "
            f"element another warp has not stored yet. (A race may also hide on a given run: "
            f"`compute-sanitizer --tool racecheck` finds it for sure.)"
        )


# -- total -----------------------------------------------------------------------------------


@pytest.mark.clause(11)
def test_total_sums_the_block_sums_pass_after_pass_on_the_gpu(
    launches: list[Launch], copies_back: list[int]
) -> None:
    # 37 -> 10 -> 3 -> 1 in blocks of 4; one pass for one element and for n = block; two for
    # the default blocks of 256 (5000 -> 20 -> 1).
    for n, block in ((37, 4), (1, 8), (16, 16), (5000, None)):
        launches.clear()
        copies_back.clear()
        x = numbers(n)
        arguments = {} if block is None else {"block": block}
        size = 256 if block is None else block
        call = f"total(x of {n}{'' if block is None else f', {block=}'})"
        got = total(x, **arguments)
        want = float(x.astype(np.float64).sum())
        assert isinstance(got, float), (
            f"{call} returned {got!r}, a {type(got).__name__}: return a Python float, "
            f"float(sums_gpu.get()[0]) once a pass has written a single number"
        )
        assert math.isclose(got, want, rel_tol=RTOL), (
            f"{call} returned {got!r}; the sum is {want!r}. If block_sums passes its tests, "
            f"check the loop: each pass sums the previous pass's sums, until one number is left"
        )
        grids = [launch.grid[0] for launch in launches]
        expected = pass_grids(n, size)
        assert grids == expected, (
            f"{call} launched passes on grids of {grids} blocks; expected {expected}: "
            f"block_sums' kernel over x, then over that pass's sums, and so on until a pass "
            f"writes one number (at least one pass, and none summed on the host)"
        )
        assert copies_back == [4], (
            f"{call} copied {len(copies_back)} arrays back from the GPU ({copies_back} bytes); "
            f"only the last pass's one float (4 bytes) should come back: each pass reads the "
            f"GPUArray the last one wrote, without a round trip through the host (which waits "
            f"for the GPU and crosses the PCIe bus every time)"
        )
        assert got == tree_total(x, size), (
            f"{call} returned {got!r}, right to float32 tolerance but not "
            f"{tree_total(x, size)!r}, what the passes' trees give: return the last pass's "
            f"number as it is"
        )


# -- sum_of_squares and int_total: ReductionKernel --------------------------------------------


def squares_diagnosis(got: float, x: np.ndarray, launches: list[Launch]) -> str:
    x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
    if math.isnan(got) or math.isinf(got):
        return (
            f"{got}: the kernel read bytes that are no float32: its arguments must declare "
            f"'const float *x' for a float32 GPUArray ('const double *x' reads each pair of "
            f"floats as one double, and twice as many bytes as the array holds)."
        )
    if math.isclose(got, x64.sum(), rel_tol=RTOL_SQUARES):
        return "That is the plain sum of x: map_expr must square each element, x[i]*x[i]."
    extra = got - (x64**2).sum()
    threads = sum(math.prod(launch.grid) * math.prod(launch.block) for launch in launches)
    if extra > 0.5 and abs(extra - round(extra)) < 0.05 * max(1.0, abs(extra)) ** 0.5:
        return (
            f"It is about {round(extra)} too large, with {threads} threads launched: every "
            f"thread starts its own sum from the neutral value, so it must change nothing in a "
            f"sum: neutral='0'."
        )
    return (
        "Check the arguments ('const float *x', matching the float32 GPUArray passed), "
        "map_expr ('x[i]*x[i]'), reduce_expr ('a+b') and neutral ('0')."
    )


@pytest.mark.clause(12)
def test_sum_of_squares_runs_a_reduction_kernel_on_float32(launches: list[Launch]) -> None:
    for n in (3000, 37, 1):
        launches.clear()
        x = numbers(n)
        call = f"sum_of_squares(x of {n})"
        got = library_call(call, sum_of_squares, x)
        assert isinstance(got, float), (
            f"{call} returned {got!r}, a {type(got).__name__}: return a Python float, "
            f"float(result.get())"
        )
        want = float((x.astype(np.float64) ** 2).sum())
        assert math.isclose(got, want, rel_tol=RTOL_SQUARES), (
            f"{call} returned {got!r}; the sum of the squares is {want!r}. "
            f"{squares_diagnosis(got, x, launches)}"
        )
        assert any(launch.library for launch in launches), (
            f"{call} launched no kernel of a pycuda.reduction.ReductionKernel: build one (it "
            f"writes the reduction's kernels for you) and call it on a GPUArray of x"
        )


@pytest.mark.clause(13)
def test_int_total_refuses_floats_and_numbers_outside_int32() -> None:
    floats = np.array([1.5, 2.0, 3.25])
    message = value_error(
        "int_total(x of float64)",
        "int_total sums integers: converting 1.5 to an int would drop the .5 without a word",
        int_total,
        floats,
    )
    assert "float64" in message, (
        f"int_total(x of float64) raised ValueError({message!r}): name the dtype, float64"
    )
    for value in (2**31, -(2**31) - 1):
        x = np.array([1, value, 2], dtype=np.int64)
        call = f"int_total(np.array([1, {value}, 2]))"
        advice = f"the kernel reads int32 numbers, and {value} is none: raise ValueError"
        message = value_error(call, advice, int_total, x)
        assert str(value) in message, (
            f"{call} raised ValueError({message!r}): name the number, {value}, that does not fit"
        )


@pytest.mark.clause(14)
def test_int_total_adds_in_int64_past_the_int32_range(launches: list[Launch]) -> None:
    rng = np.random.default_rng(next(_seeds))
    # 3,000 numbers near a million: the sum, about 3e9, is past int32's 2,147,483,647.
    big = rng.integers(900_000, 1_100_000, 3000, dtype=np.int32)
    for what, x in (
        ("3000 int32 numbers near 1e6", big),
        ("the same as int64", big.astype(np.int64)),
        ("37 negative int16 numbers", rng.integers(-30_000, -1, 37).astype(np.int16)),
        ("one number", np.array([-7], dtype=np.int32)),
    ):
        call = f"int_total({what})"
        launches.clear()
        got = library_call(call, int_total, x)
        want = int(x.astype(np.int64).sum())
        assert isinstance(got, int) and not isinstance(got, bool), (
            f"{call} returned {got!r}, a {type(got).__name__}: return a Python int, "
            f"int(result.get())"
        )
        if got != want and got == (want + 2**31) % 2**32 - 2**31:
            pytest.fail(
                f"{call} returned {got}, the exact sum {want} wrapped around to 32 bits: the "
                f"ReductionKernel adds in its dtype_out, and an int32 sum overflows "
                f"past 2,147,483,647. Make the accumulator wide enough: dtype_out=np.int64.",
                pytrace=False,
            )
        if got != want and x.dtype == np.int64:
            pytest.fail(
                f"{call} returned {got}, not {want}, though int32 input of the same numbers "
                f"came out right: a kernel declared 'const int *x' reads 4-byte ints, so NumPy's "
                f"int64 copied as it is is read as pairs of halves. Convert x with "
                f"np.ascontiguousarray(x, dtype=np.int32) first.",
                pytrace=False,
            )
        assert got == want, f"{call} returned {got}; the exact sum is {want}"
        assert any(launch.library for launch in launches), (
            f"{call} launched no kernel of a pycuda.reduction.ReductionKernel: the sum must be "
            f"added up on the GPU, by a ReductionKernel with dtype_out=np.int64"
        )


# -- linear_combination: ElementwiseKernel ---------------------------------------------------


@pytest.mark.clause(15)
def test_linear_combination_refuses_shapes_that_differ() -> None:
    for x, y in (
        (np.ones(4), np.ones(5)),
        (np.ones((2, 3)), np.ones((2, 3))),
        (np.ones(0), np.ones(0)),
    ):
        call = f"linear_combination(2.0, x of shape {x.shape}, 3.0, y of shape {y.shape})"
        advice = "x and y must be 1-D arrays of the same, non-zero length: raise ValueError"
        message = value_error(call, advice, linear_combination, 2.0, x, 3.0, y)
        for shape in (x.shape, y.shape):
            assert str(shape) in message, (
                f"{call} raised ValueError({message!r}), which does not show {shape}: name both"
            )


@pytest.mark.clause(16)
def test_linear_combination_is_a_times_x_plus_b_times_y_by_an_elementwise_kernel(
    launches: list[Launch],
) -> None:
    # n = 1; n not a multiple of any block size; a negative and a fractional coefficient.
    for n, a, b in ((1, 2.5, -3.0), (1037, -0.75, 4.0), (20_000, 3.0, 0.125)):
        launches.clear()
        x, y = numbers(n), numbers(n)
        call = f"linear_combination({a}, x of {n}, {b}, y of {n})"
        got = library_call(call, linear_combination, a, x, b, y)
        want = a * x.astype(np.float64) + b * y.astype(np.float64)
        assert isinstance(got, np.ndarray) and got.shape == (n,) and got.dtype == np.float32, (
            f"{call} returned {got!r}: return the float32 NumPy array z_gpu.get()"
        )
        wrong = ~np.isclose(got, want, rtol=RTOL, atol=1e-6 * np.abs(want).max())
        if wrong.any():
            first = int(np.argmax(wrong))
            swapped = np.allclose(
                got, b * x.astype(np.float64) + a * y.astype(np.float64), rtol=RTOL
            )
            hint = (
                " That is b * x + a * y: the coefficients went to the wrong arrays; pass them "
                "in the order the kernel's arguments declare them."
                if swapped
                else " Check the operation, 'z[i] = a * x[i] + b * y[i]', and the order of the "
                "arguments: a, x, b, y, z as declared."
            )
            pytest.fail(
                f"{call}: {int(wrong.sum())} of {n} elements are wrong; z[{first}] = "
                f"{float(got[first])!r}, expected {want[first]!r}.{hint}",
                pytrace=False,
            )
        assert [launch.library for launch in launches] == [True], (
            f"{call} made {len(launches)} launches, none of them or not only a pycuda "
            f"ElementwiseKernel's: the result must be computed on the GPU, one thread per "
            f"element, by one call of an ElementwiseKernel"
        )


# -- dtypes, views and any size ---------------------------------------------------------------


@pytest.mark.clause(2)
@pytest.mark.parametrize(
    "function",
    [*FLOAT_FUNCTIONS, pytest.param(linear_combination, id="linear_combination")],
)
def test_float64_int64_and_strided_inputs_are_converted_to_float32(
    function: Callable[..., Any],
) -> None:
    name = function.__name__

    def run(x: Any) -> Any:
        if function is linear_combination:
            return library_call(f"{name}(...)", function, 2.0, x, -1.0, x[::-1])
        return library_call(f"{name}(...)", function, x)

    def want(x: Any) -> Any:
        x32 = np.asarray(x, dtype=np.float32).astype(np.float64)
        if function is block_sums:
            return exact_sums(x32, 256)
        if function is total:
            return float(x32.sum())
        if function is sum_of_squares:
            return float((x32**2).sum())
        return 2.0 * x32 - x32[::-1]

    base = numbers(600)  # three blocks of 256 for block_sums, the last one partial
    # First float32 itself, so that a kernel's own bug is not blamed on the dtypes below.
    got = run(base)
    assert np.allclose(got, want(base), rtol=RTOL_SQUARES), (
        f"{name} on 600 float32 numbers gave {got}, expected {want(base)}"
    )
    whole = np.random.default_rng(next(_seeds)).integers(1, 100, 600)  # int64, as NumPy makes them
    cases = [
        ("float64 x", numbers(600).astype(np.float64) * 1.5),
        ("int64 x", whole),
        ("x[::3] (a view with a step)", numbers(1800)[::3]),
        ("x[::2] of float64", (numbers(1200).astype(np.float64) + 0.25)[::2]),
    ]
    for what, x in cases:
        kept = x.copy()
        call = f"{name}({what})"
        try:
            got = run(x)
        except NotImplementedError:
            raise
        except Exception as error:
            pytest.fail(
                f"{call} raised {type(error).__name__} ({error}): the GPU gets an array's "
                f"memory as it is, and a view with a step has gaps in it. Convert x with "
                f"np.ascontiguousarray(x, dtype=np.float32) before gpuarray.to_gpu.",
                pytrace=False,
            )
        expected = want(x)
        right = np.shape(got) == np.shape(expected) and np.allclose(
            got, expected, rtol=RTOL_SQUARES
        )
        assert right, (
            f"{call} gave {got}, expected {expected}, though float32 input came out right: the "
            f"kernels read 4-byte floats, so a {x.dtype} array copied as it is gets misread "
            f"(8 bytes a number for float64 and int64, and an integer's bits are no float). "
            f"Convert x with np.ascontiguousarray(x, dtype=np.float32) before copying it."
        )
        assert np.array_equal(x, kept), f"{call} changed x: convert into a new array"


@pytest.mark.clause(5, 7, 11, 12)
@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: each example runs a few kernels, and the first failure says enough.
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(n=st.integers(1, 5000), block=st.sampled_from([2, 8, 128, 1024]))
def test_all_three_match_numpy_for_drawn_sizes(launches: list[Launch], n: int, block: int) -> None:
    launches.clear()  # one list for all the examples: count each example's launches alone
    x = numbers(n)
    call = f"block_sums(x of {n}, block={block})"
    got = block_sums(x, block=block)
    check_sums(got, x, block, call)
    assert np.array_equal(got, tree_sums(x, block)), (
        f"{call}: right to float32 tolerance, but not bit for bit the tree's sums (§7)"
    )
    want = float(x.astype(np.float64).sum())
    got_total = total(x, block=block)
    assert got_total == tree_total(x, block) and math.isclose(got_total, want, rel_tol=RTOL), (
        f"total(x of {n}, block={block}) returned {got_total!r}; the passes' trees give "
        f"{tree_total(x, block)!r}, and the sum is {want!r}"
    )
    squares = float((x.astype(np.float64) ** 2).sum())
    got_squares = library_call(f"sum_of_squares(x of {n})", sum_of_squares, x)
    assert math.isclose(got_squares, squares, rel_tol=RTOL_SQUARES), (
        f"sum_of_squares(x of {n}) returned {got_squares!r}; expected {squares!r}"
    )
