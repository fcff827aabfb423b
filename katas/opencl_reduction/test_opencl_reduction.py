"""Kata `opencl_reduction`: summing an array on an OpenCL device, by a tree in local memory, then with ReductionKernel."""

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
from opencl_reduction import block_sums, sum_of_squares, total
from pyopencl.reduction import ReductionKernel

# A group's sum adds at most 1024 float32 numbers in a tree of at most 10 levels, each rounding
# by at most half a unit in the last place (6e-8): a right sum is within about 1e-6 of the
# exact one. The bugs drop, double or misread whole runs of elements, which is far more; the
# last bits themselves are judged bit for bit against the tree (§7).
RTOL = 1e-5
# ReductionKernel's order is pyopencl's: each work-item first adds several elements one after
# another. Up to a few thousand squares that stays within 1e-5; 1e-4 leaves room, and the bugs
# it must catch (a neutral of 1 in every work-item, squares not taken, float64 misread) are off
# by far more.
RTOL_SQUARES = 1e-4
# A test whose code under test launches more kernels than this is stuck in a loop of passes.
MAX_LAUNCHES = 30
ORACLE = (
    "On [oclgrind], a race or an out-of-bounds access reported below gives wrong sums too: fix "
    "that first. Otherwise check the tree: scratch[l] = x[i] (0 past the end), a barrier, then "
    "for s = local_size / 2, local_size / 4, ..., 1: if (l < s) scratch[l] = scratch[l] + "
    "scratch[l + s], and a barrier after each step, outside the if."
)


def numbers(n: int, seed: int) -> np.ndarray:
    """n positive float32 numbers of many magnitudes (1/128 to 96): every sum is positive, so a
    sum never written (0 or garbage) cannot pass, and sums added in another order than the tree
    differ from its sums in their last bits. Each seed gives other numbers, so a buffer left
    over from an earlier call holds no right answer either."""
    rng = np.random.default_rng(seed)
    scale = 2.0 ** rng.integers(-6, 7, n)
    return (rng.uniform(0.5, 1.5, n) * scale).astype(np.float32)


# -- the sums the contract asks for, and the ones a wrong kernel gives ------------------------


def groups_of(x32: np.ndarray, local_size: int) -> np.ndarray:
    """x as float32 in rows of local_size, the last row padded with zeros."""
    groups = math.ceil(x32.size / local_size)
    padded = np.zeros(groups * local_size, dtype=np.float32)
    padded[: x32.size] = x32
    return padded.reshape(groups, local_size)


def exact_sums(x: Any, local_size: int) -> np.ndarray:
    """Each group's sum in float64 of the float32 numbers the device gets: the yardstick."""
    x32 = np.asarray(x, dtype=np.float32)
    return groups_of(x32, local_size).astype(np.float64).sum(axis=1)


def stepped_sums(x: Any, local_size: int, steps: list[int]) -> np.ndarray:
    """The float32 sums of a tree whose step s makes element l < s add element l + s."""
    rows = groups_of(np.asarray(x, dtype=np.float32), local_size)
    for s in steps:
        rows[:, :s] = rows[:, :s] + rows[:, s : 2 * s]  # float32 + float32: one rounding each
    return rows[:, 0].copy()


def halving(local_size: int, last: int = 1) -> list[int]:
    """local_size / 2, local_size / 4, ..., down to `last`."""
    return [local_size >> k for k in range(1, local_size.bit_length()) if local_size >> k >= last]


def tree_sums(x: Any, local_size: int) -> np.ndarray:
    """The float32 sums §7's tree gives: s = local_size / 2, ..., 1."""
    return stepped_sums(x, local_size, halving(local_size))


def serial_sums(x: Any, local_size: int) -> np.ndarray:
    """The float32 sums of one work-item adding its group's elements one after another."""
    rows = groups_of(np.asarray(x, dtype=np.float32), local_size)
    acc = rows[:, 0].copy()
    for column in range(1, local_size):
        acc = acc + rows[:, column]
    return acc


def interleaved_sums(x: Any, local_size: int) -> np.ndarray:
    """The float32 sums of the other classic tree: s = 1, 2, 4, ..., element 2*s*k adds 2*s*k + s."""
    rows = groups_of(np.asarray(x, dtype=np.float32), local_size)
    s = 1
    while s < local_size:
        rows[:, :: 2 * s] = rows[:, :: 2 * s] + rows[:, s :: 2 * s]
        s *= 2
    return rows[:, 0].copy()


def pass_sizes(n: int, local_size: int) -> list[int]:
    """The global sizes of total's passes: n rounded up to whole groups, then the group count."""
    sizes = []
    while True:
        groups = math.ceil(n / local_size)
        sizes.append(groups * local_size)
        if groups == 1:
            return sizes
        n = groups


def tree_total(x: Any, local_size: int) -> float:
    """What §11's passes of §7's tree give, bit for bit."""
    sums = tree_sums(x, local_size)
    while sums.size > 1:
        sums = tree_sums(sums, local_size)
    return float(sums[0])


def listed(indices: np.ndarray) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:8])
    return shown + (f" and {indices.size - 8} more" if indices.size > 8 else "")


def sums_diagnosis(got: np.ndarray, wrong: np.ndarray, x: Any, local_size: int) -> str:
    """A sentence about what the pattern of wrong sums usually means."""
    x32 = np.asarray(x, dtype=np.float32)
    n, groups = x32.size, wrong.size
    if np.isnan(got).any():
        return (
            "Some sums are NaN: the kernel read memory outside x, or an element of scratch that "
            "no work-item had stored. A work-item past the end of x stores 0 in scratch and "
            "reads nothing from x."
        )
    if not got.any():
        return (
            "Every sum is 0: nothing was written to sums, or the result was never copied back "
            "with cl.enqueue_copy(queue, sums, sums_buffer)."
        )
    if np.array_equal(got, groups_of(x32, local_size)[:, 0]):
        return (
            "Each sum is its group's first element: no step of the tree ran (the loop over s "
            "starts at get_local_size(0) / 2 and runs while s > 0). (PoCL 3.0 also gives this "
            "for the interleaved tree `for (s = 1; s < get_local_size(0); s *= 2) if (l % "
            "(2 * s) == 0) ...`, which it compiles wrongly; §7 asks for the halving tree.)"
        )
    if local_size > 2 and np.array_equal(
        got, stepped_sums(x32, local_size, halving(local_size, 2))
    ):
        return (
            "Each sum misses the last step, s = 1 (scratch[0] + scratch[1]): it holds only the "
            "even elements of its group. The loop runs while s > 0, not s > 1."
        )
    upward = [local_size >> k for k in range(local_size.bit_length() - 1, 0, -1)]
    if local_size > 2 and np.array_equal(got, stepped_sums(x32, local_size, upward)):
        return (
            "The steps ran the wrong way, s = 1, 2, 4, ...: with `if (l < s)` that adds only a "
            "few elements into scratch[0]. The tree halves: s starts at get_local_size(0) / 2 "
            "and goes down to 1, so each step folds the upper half onto the lower half."
        )
    if n % local_size and wrong[-1] and not wrong[:-1].any():
        return (
            f"Only the last group is wrong, the one that holds the last {n % local_size} "
            f"elements and {local_size - n % local_size} work-items past the end of x: they "
            f"must store 0 in scratch (0 adds nothing), without reading x."
        )
    if groups > 1 and not wrong[0] and wrong[1:].all():
        return (
            "The first group is right and the others are wrong: index x with the global id "
            "(i = get_global_id(0)), scratch with the local id (l = get_local_id(0)), and "
            "write sums[get_group_id(0)]."
        )
    return ORACLE


def check_sums(got: Any, x: Any, local_size: int, call: str) -> None:
    """`got` is a float32 array holding one right sum per group of local_size elements."""
    __tracebackhide__ = True
    n = np.asarray(x).size
    groups = math.ceil(n / local_size)
    if not isinstance(got, np.ndarray):
        pytest.fail(f"{call} returned a {type(got).__name__}, not an array", pytrace=False)
    if got.shape != (groups,):
        dropped = got.shape == (n // local_size,) and n % local_size
        reason = (
            f": the last, partial group of {n % local_size} elements was dropped. Round up, "
            f"(n + local_size - 1) // local_size groups; the kernel's work-items past the end "
            f"store 0"
            if dropped
            else ""
        )
        pytest.fail(
            f"{call} returned shape {got.shape}; n = {n} elements in groups of {local_size} "
            f"make ceil({n} / {local_size}) = {groups} sums{reason}",
            pytrace=False,
        )
    if got.dtype != np.float32:
        pytest.fail(
            f"{call} returned dtype {got.dtype}: return the float32 array the sums were "
            f"copied into",
            pytrace=False,
        )
    want = exact_sums(x, local_size)
    wrong = ~np.isclose(got, want, rtol=RTOL, atol=0.0)
    if wrong.any():
        first = int(np.argmax(wrong))
        pytest.fail(
            f"{call}: {int(wrong.sum())} of {groups} sums differ from numpy's (groups "
            f"{listed(np.flatnonzero(wrong))}); group {first}, x[{first * local_size}:"
            f"{(first + 1) * local_size}], summed to {float(got[first]):.7g} instead of "
            f"{want[first]:.7g}.\n{sums_diagnosis(got, wrong, x, local_size)}",
            pytrace=False,
        )


# -- what the host code asked the device to run ----------------------------------------------


@dataclass
class Launch:
    kernel: str
    global_size: tuple[int, ...]
    local_size: tuple[int, ...] | None
    local_memory: int  # bytes of local memory a work-group gets, the __local arguments included


@pytest.fixture(autouse=True)
def launches(monkeypatch: pytest.MonkeyPatch) -> list[Launch]:
    """Every kernel launch of the test, whichever way it is made (`kernel(queue, ...)` and
    `cl.enqueue_nd_range_kernel` both end in pyopencl's `_cl.enqueue_nd_range_kernel`).

    A `block_sums` launch whose `scratch` is too small for its group fails the test before it
    runs, where it would write past its local memory; a test that launches more than
    MAX_LAUNCHES kernels fails at once, from a loop of passes that never ends."""
    seen: list[Launch] = []
    original = cl._cl.enqueue_nd_range_kernel

    def noted(queue: Any, kernel: Any, global_size: Any, local_size: Any, *rest: Any) -> Any:
        launch = Launch(
            kernel.function_name,
            tuple(global_size),
            None if local_size is None else tuple(local_size),
            kernel.get_work_group_info(cl.kernel_work_group_info.LOCAL_MEM_SIZE, queue.device),
        )
        seen.append(launch)
        if len(seen) > MAX_LAUNCHES:
            pytest.fail(
                f"{len(seen)} kernel launches in one test, the last of global size "
                f"{launch.global_size}: a loop of passes that never ends. Each pass of total "
                f"must shrink the array (groups of local_size >= 2), and the loop stops when a "
                f"pass returns one number.",
                pytrace=False,
            )
        if launch.kernel == "block_sums" and launch.local_size is not None:
            needed = 4 * math.prod(launch.local_size)
            if launch.local_memory < needed:
                pytest.fail(
                    f"block_sums launched groups of {launch.local_size[0]} work-items with "
                    f"{launch.local_memory} bytes of local memory; scratch needs one 4-byte "
                    f"float per work-item, {needed} bytes: pass cl.LocalMemory(4 * local_size) "
                    f"(its size is in bytes) as the kernel's last argument. (Not launched: it "
                    f"would write past its local memory.)",
                    pytrace=False,
                )
        return original(queue, kernel, global_size, local_size, *rest)

    monkeypatch.setattr(cl._cl, "enqueue_nd_range_kernel", noted)
    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", noted)
    return seen


@pytest.fixture
def reduction_kernels(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every pyopencl ReductionKernel made during the test (however it was imported)."""
    made: list[Any] = []
    original = ReductionKernel.__init__

    def noted(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(ReductionKernel, "__init__", noted)
    return made


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


FUNCTIONS = [
    pytest.param(block_sums, id="block_sums"),
    pytest.param(total, id="total"),
    pytest.param(sum_of_squares, id="sum_of_squares"),
]


# -- checks on the arguments -----------------------------------------------------------------


@pytest.mark.clause(1)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_arrays_that_are_not_1d_or_are_empty_raise_value_error_naming_their_shape(
    pocl_queue: Any, function: Callable[..., Any]
) -> None:
    name = function.__name__
    for x in (np.ones((2, 3), np.float32), np.ones(0, np.float32), np.ones((1, 1), np.float32)):
        call = f"{name}(queue, x of shape {x.shape})"
        advice = (
            "check x before anything else and raise ValueError: x must be 1-D (np.ravel is the "
            "caller's choice, not yours) with at least one element (OpenCL has no empty buffer)"
        )
        message = value_error(call, advice, function, pocl_queue, x)
        assert str(x.shape) in message, (
            f"{call} raised ValueError({message!r}), which does not show the shape {x.shape}: "
            f"name it, so that the caller sees what was wrong"
        )


@pytest.mark.clause(3)
@pytest.mark.parametrize("function", [FUNCTIONS[0], FUNCTIONS[1]])
def test_local_sizes_that_are_not_powers_of_two_raise_value_error(
    pocl_queue: Any, function: Callable[..., Any]
) -> None:
    limit = pocl_queue.device.max_work_group_size
    too_big = 1 << limit.bit_length()  # the first power of two past the device's limit
    x = numbers(10, seed=1)
    for local_size in (3, 6, 24, 0, -4, too_big):
        call = f"{function.__name__}(queue, x, local_size={local_size})"
        if local_size == too_big:
            why = f"it is a power of two, but this device runs groups of at most {limit}"
        elif local_size < 1:
            why = "a group needs at least one work-item"
        else:
            why = (
                "the tree halves the group at every step (s = local_size / 2, ...), which "
                "leaves elements out unless local_size is a power of two"
            )
        advice = f"{why}: check local_size first and raise ValueError"
        message = value_error(call, advice, function, pocl_queue, x, local_size=local_size)
        assert "local_size" in message, (
            f"{call} raised ValueError({message!r}): say that local_size is the problem"
        )


@pytest.mark.clause(10)
def test_total_refuses_groups_of_one_work_item(pocl_queue: Any) -> None:
    call = "total(queue, x, local_size=1)"
    advice = (
        "a pass with groups of one work-item returns as many sums as it was given, so the "
        "passes would never end: raise ValueError when local_size < 2"
    )
    message = value_error(call, advice, total, pocl_queue, numbers(5, seed=2), local_size=1)
    assert "local_size" in message, (
        f"{call} raised ValueError({message!r}): say that local_size is the problem"
    )


# -- block_sums ------------------------------------------------------------------------------


@pytest.mark.clause(5, 6, 8, 9)
def test_block_sums_match_numpy_when_n_is_not_a_multiple_of_the_group(cl_queue: Any) -> None:
    # Several groups with a partial last one; a whole number of groups; n below one group;
    # one element; groups of one work-item (no step at all).
    for n, local_size in ((37, 8), (300, 32), (1000, 256), (64, 16), (5, 16), (1, 4), (3, 1)):
        x = numbers(n, seed=10 * n + local_size)
        got = block_sums(cl_queue, x, local_size=local_size)
        check_sums(got, x, local_size, f"block_sums(queue, x of {n}, local_size={local_size})")


@pytest.mark.clause(7)
def test_block_sums_add_in_the_order_of_the_tree_bit_for_bit(cl_queue: Any) -> None:
    for n, local_size in ((45, 16), (200, 64)):
        x = numbers(n, seed=n)
        call = f"block_sums(queue, x of {n}, local_size={local_size})"
        got = block_sums(cl_queue, x, local_size=local_size)
        check_sums(got, x, local_size, call)
        want = tree_sums(x, local_size)
        if np.array_equal(got, want):
            continue
        if np.array_equal(got, serial_sums(x, local_size)):
            how = (
                "one after another, as a loop in one work-item adds them: that is not a tree, "
                "and on a GPU it leaves all but one work-item of the group idle"
            )
        elif np.array_equal(got, interleaved_sums(x, local_size)):
            how = (
                "in the interleaved tree (s = 1, 2, 4, ...; work-items l % (2 * s) == 0 add "
                "element l + s), whose active work-items are scattered across the group"
            )
        else:
            how = "in an order that is not the tree's"
        wrong = np.flatnonzero(got != want)
        pytest.fail(
            f"{call}: the sums are right to float32 tolerance, but {wrong.size} of them differ "
            f"in their last bits from the tree's (group {wrong[0]}: {float(got[wrong[0]])!r} "
            f"instead of {float(want[wrong[0]])!r}). Float additions in another order round "
            f"differently, and yours were added {how}. §7 fixes the order: s = local_size / 2, "
            f"local_size / 4, ..., 1, and work-item l < s adds scratch[l + s] to scratch[l].",
            pytrace=False,
        )


@pytest.mark.clause(4)
def test_block_sums_launches_whole_groups_with_a_float_of_local_memory_each(
    pocl_queue: Any, launches: list[Launch]
) -> None:
    for n, local_size in ((37, 8), (5, 16), (100, None)):
        launches.clear()
        arguments = {} if local_size is None else {"local_size": local_size}
        size = 64 if local_size is None else local_size
        call = f"block_sums(queue, x of {n}{'' if local_size is None else f', {local_size=}'})"
        block_sums(pocl_queue, numbers(n, seed=n), **arguments)
        assert len(launches) == 1, f"{call} launched {len(launches)} kernels, not one"
        launch = launches[0]
        assert launch.local_size == (size,), (
            f"{call} launched local size {launch.local_size}: pass ({size},) explicitly (None "
            f"lets the device choose, and then its groups are not the ones the sums are for)"
        )
        want = (math.ceil(n / size) * size,)
        if launch.global_size == (n,):
            reason = "not rounded up: a global size must be a multiple of the local size"
        elif launch.global_size == (n // size * size,):
            reason = "rounded down, which drops the last, partial group"
        else:
            reason = "one work-item per element, rounded up to whole groups"
        assert launch.global_size == want, (
            f"{call} launched global size {launch.global_size}; expected {want}: {reason}"
        )


# -- total -----------------------------------------------------------------------------------


@pytest.mark.clause(11)
def test_total_sums_the_block_sums_pass_after_pass(cl_queue: Any, launches: list[Launch]) -> None:
    # 37 -> 10 -> 3 -> 1 in groups of 4; one pass for one element and for n = local_size; two
    # for the default groups of 64 (1000 -> 16 -> 1).
    for n, local_size in ((37, 4), (1, 8), (16, 16), (1000, None)):
        launches.clear()
        x = numbers(n, seed=100 + n)
        arguments = {} if local_size is None else {"local_size": local_size}
        size = 64 if local_size is None else local_size
        call = f"total(queue, x of {n}{'' if local_size is None else f', {local_size=}'})"
        got = total(cl_queue, x, **arguments)
        want = float(x.astype(np.float64).sum())
        assert isinstance(got, float), (
            f"{call} returned {got!r}, a {type(got).__name__}: return a Python float, "
            f"float(sums[0]) once a pass has returned a single number"
        )
        assert math.isclose(got, want, rel_tol=RTOL), (
            f"{call} returned {got!r}; the sum is {want!r}. If block_sums passes its tests, "
            f"check the loop: each pass sums the previous pass's result, until one number is left"
        )
        passes = [launch.global_size[0] for launch in launches]
        expected = pass_sizes(n, size)
        assert passes == expected, (
            f"{call} launched passes of global size {passes}; expected {expected}: "
            f"block_sums of x, then block_sums of that result, and so on until a pass returns "
            f"one number (at least one pass, and none summed on the host)"
        )
        assert got == tree_total(x, size), (
            f"{call} returned {got!r}, right to float32 tolerance but not {tree_total(x, size)!r}, "
            f"what the passes' trees give: return the last pass's number as it is, float(sums[0])"
        )


# -- sum_of_squares --------------------------------------------------------------------------


def squares_diagnosis(got: float, x: np.ndarray, launches: list[Launch]) -> str:
    x64 = np.asarray(x, dtype=np.float32).astype(np.float64)
    if math.isnan(got):
        return "NaN: the kernel read bytes that are no float32 (a float64 or int64 array?)."
    if math.isclose(got, x64.sum(), rel_tol=RTOL_SQUARES):
        return "That is the plain sum of x: map_expr must square each element, x[i]*x[i]."
    extra = got - (x64**2).sum()
    items = sum(math.prod(launch.global_size) for launch in launches)
    if extra > 0.5 and abs(extra - round(extra)) < 0.05:
        return (
            f"It is {round(extra)} too large, a whole number, with {items} work-items launched: "
            f"every work-item starts from the neutral value, so it must change nothing in a "
            f"sum: neutral='0'."
        )
    return "Check map_expr ('x[i]*x[i]'), reduce_expr ('a+b') and neutral ('0')."


@pytest.mark.clause(12)
def test_sum_of_squares_runs_a_float32_reduction_kernel(
    cl_queue: Any, launches: list[Launch], reduction_kernels: list[Any]
) -> None:
    for n in (1000, 37, 1):
        launches.clear()
        x = numbers(n, seed=200 + n)
        call = f"sum_of_squares(queue, x of {n})"
        got = sum_of_squares(cl_queue, x)
        assert isinstance(got, float), (
            f"{call} returned {got!r}, a {type(got).__name__}: return a Python float, "
            f"float(result.get())"
        )
        want = float((x.astype(np.float64) ** 2).sum())
        assert math.isclose(got, want, rel_tol=RTOL_SQUARES), (
            f"{call} returned {got!r}; the sum of the squares is {want!r}. "
            f"{squares_diagnosis(got, x, launches)}"
        )
        assert reduction_kernels, (
            f"{call} made no pyopencl.reduction.ReductionKernel (this test's queue has a "
            f"context of its own, so even a kernel kept from call to call is made here): build "
            f"one (it writes the reduction's kernels for you) and call it on a pyopencl.array "
            f"of x"
        )
        dtypes = [np.dtype(kernel.dtype_out).name for kernel in reduction_kernels]
        assert dtypes == ["float32"] * len(dtypes), (
            f"{call} made a ReductionKernel with dtype_out {dtypes}: the sums are float32 "
            f"(pass np.float32), the type the kernel adds in and returns"
        )
        assert any(launch.kernel.endswith("_stage1") for launch in launches), (
            f"{call} launched {[launch.kernel for launch in launches]}: call the "
            f"ReductionKernel on the device array; it launches its own kernels (*_stage1)"
        )


# -- dtypes, views and any size ---------------------------------------------------------------


@pytest.mark.clause(2, 5, 11, 12)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_float64_int64_and_strided_inputs_are_converted_to_float32(
    pocl_queue: Any, function: Callable[..., Any]
) -> None:
    name = function.__name__
    base = numbers(150, seed=3)  # three groups of 64 for block_sums, the last one partial

    def want(x: Any) -> Any:
        x32 = np.asarray(x, dtype=np.float32)
        if function is block_sums:
            return exact_sums(x32, 64)
        if function is total:
            return float(x32.astype(np.float64).sum())
        return float((x32.astype(np.float64) ** 2).sum())

    # First float32 itself, so that a kernel's own bug is not blamed on the dtypes below.
    got = function(pocl_queue, base)
    if function is block_sums:
        check_sums(got, base, 64, "block_sums(queue, x of 150 float32 numbers)")
    else:
        assert math.isclose(got, want(base), rel_tol=RTOL_SQUARES), (
            f"{name}(queue, x) on 150 float32 numbers gave {got!r}, expected {want(base)!r}"
        )
    whole = np.random.default_rng(4).integers(1, 100, 150)  # int64, as NumPy makes them
    cases = [
        ("float64 x", base.astype(np.float64) * 1.5),
        ("int64 x", whole),
        ("x[::3] (a view with a step)", numbers(450, seed=5)[::3]),
        ("x[::2] of float64", (base.astype(np.float64) + 0.25)[::2]),
    ]
    for what, x in cases:
        kept = x.copy()
        call = f"{name}(queue, {what})"
        try:
            got = function(pocl_queue, x)
        except NotImplementedError:
            raise
        except Exception as error:
            pytest.fail(
                f"{call} raised {type(error).__name__} ({error}): a buffer copies an array's "
                f"memory as it is, and a view with a step has gaps in it. Convert x with "
                f"np.ascontiguousarray(x, dtype=np.float32) before making the buffer.",
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
@given(n=st.integers(1, 5000), local_size=st.sampled_from([2, 8, 128, 1024]))
def test_all_three_match_numpy_for_drawn_sizes(
    pocl_queue: Any, launches: list[Launch], n: int, local_size: int
) -> None:
    launches.clear()
    x = numbers(n, seed=n * 16 + local_size)
    call = f"block_sums(queue, x of {n}, local_size={local_size})"
    got = block_sums(pocl_queue, x, local_size=local_size)
    check_sums(got, x, local_size, call)
    assert np.array_equal(got, tree_sums(x, local_size)), (
        f"{call}: right to float32 tolerance, but not bit for bit the tree's sums (§7)"
    )
    want = float(x.astype(np.float64).sum())
    got_total = total(pocl_queue, x, local_size=local_size)
    assert got_total == tree_total(x, local_size) and math.isclose(got_total, want, rel_tol=RTOL), (
        f"total(queue, x of {n}, local_size={local_size}) returned {got_total!r}; the passes' "
        f"trees give {tree_total(x, local_size)!r}, and the sum is {want!r}"
    )
    squares = float((x.astype(np.float64) ** 2).sum())
    got_squares = sum_of_squares(pocl_queue, x)
    assert math.isclose(got_squares, squares, rel_tol=RTOL_SQUARES), (
        f"sum_of_squares(queue, x of {n}) returned {got_squares!r}; expected {squares!r}"
    )
