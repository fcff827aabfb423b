"""Kata `opencl_vector_add`: two vectors added on an OpenCL device, from buffers to the result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyopencl as cl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from opencl_vector_add import LOCAL, int_add, launch_sizes, vector_add

# One float32 addition is rounded once, the same way on every device and in NumPy: the sums
# agree exactly. The tolerance only spares a device that rounds differently in the last bit.
RTOL = 1e-6
# Size 1, lengths below one work-group, one short of it, exactly it, one past it (a whole
# group of 64 work-items for one element), and one that is none of these.
LENGTHS = [1, 10, LOCAL - 1, LOCAL, LOCAL + 1, 3 * LOCAL + 7]
FLAGS = cl.mem_flags
INPUT_FLAGS = FLAGS.READ_ONLY | FLAGS.COPY_HOST_PTR
KINDS = [
    pytest.param(vector_add, np.float32, id="vector_add"),
    pytest.param(int_add, np.int32, id="int_add"),
]


def vectors(n: int, dtype: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two vectors of length n whose sum is never 0 (floats in [0.5, 1.5), ints in [1, 1000)):
    an element the kernel never wrote cannot pass for a right one. Each seed gives other
    numbers, so a buffer left over from an earlier call holds no right answer either."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        a, b = rng.uniform(0.5, 1.5, (2, n)).astype(dtype)
    else:
        a, b = rng.integers(1, 1000, (2, n)).astype(dtype)
    return a, b


# -- what the host code did: buffers, launches, copies ---------------------------------------


@dataclass
class Made:
    flags: int
    size: int  # bytes
    from_host: bool  # made with a hostbuf


@dataclass
class Device:
    """What the code under test asked of OpenCL during one test."""

    buffers: list[Made] = field(default_factory=list)
    launches: list[tuple[str, tuple[int, ...], tuple[int, ...] | None]] = field(
        default_factory=list
    )
    copies: list[tuple[str, str]] = field(default_factory=list)  # (destination, source) kinds
    elements: int = 0  # the length of the call's vectors; every buffer needs 4 bytes for each

    def anything(self) -> bool:
        return bool(self.buffers or self.launches or self.copies)


@pytest.fixture(autouse=True)
def device(monkeypatch: pytest.MonkeyPatch, padded_buffers: None) -> Device:
    """Watches `cl.Buffer`, every kernel launch and `cl.enqueue_copy` for the whole test.

    A buffer too small for the call's vectors fails the test at once, before a kernel writes
    past its end. (It wraps the real device's padded buffers, so it sees the sizes asked for.)"""
    seen = Device()

    class WatchedBuffer(cl.Buffer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            hostbuf = kwargs.get("hostbuf", args[3] if len(args) > 3 else None)
            seen.buffers.append(Made(int(self.flags), int(self.size), hostbuf is not None))
            needed = 4 * seen.elements
            if self.size < needed:
                pytest.fail(
                    f"a buffer of {self.size} bytes was made for {elements(seen.elements)} of 4 "
                    f"bytes ({needed} bytes): a buffer's size is counted in bytes, not in "
                    f"elements. Use size=c.nbytes. (The test stopped here, before the kernel "
                    f"could write past the end of the buffer.)",
                    pytrace=False,
                )

    original_launch = cl._cl.enqueue_nd_range_kernel
    original_copy = cl.enqueue_copy

    def kind(thing: Any) -> str:
        if isinstance(thing, np.ndarray):
            return "array"
        return "buffer" if isinstance(thing, cl.MemoryObjectHolder) else type(thing).__name__

    def launch(queue: Any, kernel: Any, global_size: Any, local_size: Any, *rest: Any) -> Any:
        local = None if local_size is None else tuple(local_size)
        seen.launches.append((kernel.function_name, tuple(global_size), local))
        return original_launch(queue, kernel, global_size, local_size, *rest)

    def copy(queue: Any, dest: Any, src: Any, *args: Any, **kwargs: Any) -> Any:
        seen.copies.append((kind(dest), kind(src)))
        return original_copy(queue, dest, src, *args, **kwargs)

    monkeypatch.setattr(cl, "Buffer", WatchedBuffer)
    monkeypatch.setattr(cl._cl, "enqueue_nd_range_kernel", launch)
    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", launch)
    monkeypatch.setattr(cl, "enqueue_copy", copy)
    return seen


# What pyopencl's own errors usually mean in this kata.
CL_ERRORS = {
    "INVALID_ARG_SIZE": "the kernel declares `const int n` (4 bytes): pass np.int32(n), not "
    "a Python int or np.int64",
    "invalid kernel argument": "the kernel declares `const int n` (4 bytes): pass "
    "np.int32(n), not a Python int or np.int64",
    "INVALID_WORK_GROUP_SIZE": "the global size is not a multiple of the local size: launch "
    "with the sizes launch_sizes(n, LOCAL) returns",
    "INVALID_HOST_PTR": "a buffer made with hostbuf= needs COPY_HOST_PTR in its flags, or "
    "the array is never copied",
    "clEnqueueReadBuffer failed: INVALID_VALUE": "the array read back is bigger than the "
    "buffer it is read from: size the result buffer with c.nbytes",
}


def elements(n: int) -> str:
    return f"{n} element{'s' if n != 1 else ''}"


def flag_names(flags: int) -> str:
    names = ["READ_WRITE", "WRITE_ONLY", "READ_ONLY", "USE_HOST_PTR", "ALLOC_HOST_PTR"]
    names.append("COPY_HOST_PTR")
    return " | ".join(name for name in names if flags & getattr(FLAGS, name)) or "0"


def added(
    device: Device, function: Callable[..., Any], queue: Any, a: Any, b: Any, dtype: Any
) -> tuple[Any, np.ndarray]:
    """`function(queue, a, b)` for valid vectors, with pyopencl's complaints explained, and
    a + b in `dtype` as NumPy computes it (before the call, in case the call changes a or b)."""
    __tracebackhide__ = True
    want = np.asarray(a, dtype=dtype) + np.asarray(b, dtype=dtype)
    call = f"{function.__name__}(queue, a, b) on {elements(len(a))}"
    device.elements = len(a)
    try:
        return function(queue, a, b), want
    except cl.Error as error:
        advice = next((why for key, why in CL_ERRORS.items() if key in str(error)), "")
        pytest.fail(f"{call} raised {type(error).__name__}: {error}\n{advice}", pytrace=False)
    except ValueError as error:
        advice = (
            "pyopencl copies an array's memory as it lies, and a view with a step (a[::2]) is "
            "not one block: convert with np.ascontiguousarray(x, dtype=...)"
            if "contiguous" in str(error)
            else "these vectors are 1-D and of one length: raise ValueError only for others"
        )
        pytest.fail(f"{call} raised ValueError({error}): {advice}", pytrace=False)
    finally:
        device.elements = 0


def wrong_elements(got: np.ndarray, want: np.ndarray) -> str:
    """'' when got equals want element by element, else which elements differ, and how."""
    if got.shape != want.shape:
        return f"it has shape {got.shape}, not {want.shape}"
    wrong = ~np.isclose(got.astype(np.float64), want.astype(np.float64), rtol=RTOL, atol=0)
    if not wrong.any():
        return ""
    first = int(np.argmax(wrong))
    return (
        f"element [{first}] is {got[first]!s} instead of {want[first]!s}, and "
        f"{int(wrong.sum())} of the {elements(len(want))} are wrong"
    )


def check_sum(got: Any, want: np.ndarray, call: str) -> None:
    """`got` is a new array of want's dtype equal to `want`, with a diagnosis if it is not."""
    __tracebackhide__ = True
    n, dtype = len(want), want.dtype
    assert isinstance(got, np.ndarray), f"{call} returned a {type(got).__name__}, not an array"
    if got.dtype != dtype:
        if got.dtype.itemsize == 8 and got.dtype.kind == dtype.kind:
            kind = "float" if dtype.kind == "f" else "int"
            why = (
                f"the kernel's `{kind}` is 4 bytes, but {got.dtype}, NumPy's default, is 8: the "
                f"kernel read each 8-byte number as two of its own, and the result came back "
                f"into an 8-byte array. Convert the inputs with np.ascontiguousarray(x, "
                f"dtype=np.{dtype.name}) (`{kind}` as a NumPy dtype means {got.dtype}), and "
                f"make the result with np.empty_like of a converted input."
            )
        else:
            why = (
                f"the kernel writes {dtype.name}s, so the result must be an {dtype.name} array "
                f"(np.empty_like of a converted input): read as {got.dtype}, the same bits "
                f"are other numbers"
            )
        values = wrong_elements(got, want)
        pytest.fail(
            f"{call} returned an array of dtype {got.dtype}, not {dtype.name}"
            f"{f' ({values})' if values else ''}: {why}",
            pytrace=False,
        )
    values = wrong_elements(got, want)
    if not values:
        return
    wrong = ~np.isclose(got, want, rtol=RTOL, atol=0)
    written = n // LOCAL * LOCAL
    if 0 < written < n and not wrong[:written].any() and wrong[written:].all():
        why = (
            f"The last {elements(n - written)} were never written: the launch had only "
            f"{written} work-items, n rounded down to a multiple of {LOCAL}. Round the global "
            f"size up: launch_sizes must cover every element."
        )
    else:
        why = (
            "Every c[i] with i < n must be a[i] + b[i]: work-item i = get_global_id(0) adds "
            "element i, the buffers hold the converted arrays, and the launch covers all n "
            "(a global size rounded down to a multiple of the local size may be 0)"
        )
    pytest.fail(f"{call}: {values}. {why}", pytrace=False)


def value_error(function: Callable[..., Any], queue: Any, a: Any, b: Any, why: str) -> str:
    """The message of the ValueError `function(queue, a, b)` raises; the test fails without one."""
    __tracebackhide__ = True
    call = f"{function.__name__}(queue, a, b) with a of shape {np.shape(a)} and b of shape {np.shape(b)}"
    try:
        function(queue, a, b)
    except ValueError as error:
        return str(error)
    except NotImplementedError:
        raise
    except Exception as error:
        pytest.fail(
            f"{call} raised {type(error).__name__} ({error}): {why}; check the shapes first "
            f"and raise ValueError",
            pytrace=False,
        )
    pytest.fail(f"{call} returned: {why}; raise ValueError", pytrace=False)


# -- launch_sizes -----------------------------------------------------------------------------


@pytest.mark.clause(1)
def test_launch_sizes_rounds_the_global_size_up_to_a_multiple_of_the_local_size() -> None:
    cases = [(1, 64, 64), (63, 64, 64), (64, 64, 64), (65, 64, 128), (100, 32, 128), (7, 1, 7)]
    for n, local, global_size in cases:
        got = launch_sizes(n, local)
        if got == (n // local * local, local):
            why = (
                f"rounded down, so the last {n % local} elements get no work-item and are never "
                f"written"
            )
        elif got == (n, local):
            why = "a global size that is not a multiple of the local size is refused by the device"
        else:
            why = "the smallest multiple of local that is at least n"
        assert got == (global_size, local), (
            f"launch_sizes({n}, {local}) returned {got}; expected ({global_size}, {local}): {why}"
        )


@pytest.mark.clause(1)
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(n=st.integers(1, 10**6), local=st.integers(1, 1024))
def test_launch_sizes_covers_n_with_whole_groups_and_no_spare_group(n: int, local: int) -> None:
    global_size, got_local = launch_sizes(n, local)
    assert got_local == local, f"launch_sizes({n}, {local}) changed the local size to {got_local}"
    assert global_size % local == 0, (
        f"launch_sizes({n}, {local}) gave global size {global_size}, not a multiple of {local}"
    )
    assert global_size >= n, (
        f"launch_sizes({n}, {local}) gave global size {global_size}: {n - global_size} elements "
        f"would get no work-item"
    )
    assert global_size - n < local, (
        f"launch_sizes({n}, {local}) gave global size {global_size}: a whole work-group of "
        f"spare work-items; {global_size - local} already covers {n}"
    )


@pytest.mark.clause(2)
def test_launch_sizes_refuses_an_empty_launch_or_an_empty_group() -> None:
    for n, local in [(0, 64), (-5, 64), (10, 0), (10, -64)]:
        try:
            got = launch_sizes(n, local)
        except ValueError:
            continue
        except ZeroDivisionError:
            pytest.fail(
                f"launch_sizes({n}, {local}) divided by zero: check local >= 1 first and "
                f"raise ValueError",
                pytrace=False,
            )
        pytest.fail(
            f"launch_sizes({n}, {local}) returned {got}: there is nothing to launch (n < 1) or "
            f"no work-group to launch it in (local < 1); raise ValueError",
            pytrace=False,
        )


# -- inputs: shapes and dtypes -----------------------------------------------------------------

MISFITS = [
    (np.ones(3), np.ones(4), "lengths 3 and 4 differ"),
    (np.ones(5), np.ones(4), "lengths 5 and 4 differ"),
    (np.ones((2, 3)), np.ones((2, 3)), "both are 2-D"),
    (np.ones(6), np.ones((6, 1)), "b is 2-D"),
    (np.float32(1.0), np.float32(2.0), "both are scalars (0-D)"),
    (np.ones(0), np.ones(0), "both are empty, and OpenCL has no empty buffers"),
]


@pytest.mark.clause(3)
@pytest.mark.parametrize(("function", "dtype"), KINDS)
def test_inputs_that_are_not_two_vectors_of_one_length_raise_value_error_before_any_buffer(
    pocl_queue: Any, device: Device, function: Callable[..., Any], dtype: Any
) -> None:
    for a, b, why in MISFITS:
        message = value_error(function, pocl_queue, a, b, why)
        for shape in (np.shape(a), np.shape(b)):
            assert str(shape) in message, (
                f"{function.__name__} raised ValueError({message!r}) for shapes {np.shape(a)} "
                f"and {np.shape(b)}, which does not show {shape}: name both shapes, so that the "
                f"caller sees which one is wrong"
            )
        assert not device.anything(), (
            f"{function.__name__} raised ValueError for shapes {np.shape(a)} and {np.shape(b)} "
            f"only after it made {len(device.buffers)} buffer(s), {len(device.launches)} "
            f"launch(es) and {len(device.copies)} copy(ies): check the inputs first, before "
            f"anything goes to the device"
        )


@pytest.mark.clause(4, 5)
def test_vector_add_converts_python_floats_and_float64_to_float32(
    pocl_queue: Any, device: Device
) -> None:
    n = 2 * LOCAL - 1
    a32, b32 = vectors(n, np.float32, seed=1)
    for a, b, what in [
        (a32.astype(np.float64), b32.astype(np.float64), "float64 arrays"),
        (a32.tolist(), b32.tolist(), "lists of Python floats (np.asarray makes them float64)"),
    ]:
        got, want = added(device, vector_add, pocl_queue, a, b, np.float32)
        check_sum(got, want, f"vector_add(queue, a, b) on {what}")


@pytest.mark.clause(4, 5)
def test_int_add_converts_numpy_default_int64_to_int32(pocl_queue: Any, device: Device) -> None:
    # B1 ch.8's vectorSumPyopencl.py passes np.random.randint's arrays, int64 on Linux, to a
    # kernel declared `int *`: the kernel reads each 8-byte number as two 4-byte ints.
    n = 2 * LOCAL - 1
    a32, b32 = vectors(n, np.int32, seed=2)
    for a, b, what in [
        (a32.astype(np.int64), b32.astype(np.int64), "int64 arrays, NumPy's default integers"),
        (a32.tolist(), b32.tolist(), "lists of Python ints (np.asarray makes them int64)"),
    ]:
        got, want = added(device, int_add, pocl_queue, a, b, np.int32)
        check_sum(got, want, f"int_add(queue, a, b) on {what}")


@pytest.mark.clause(4, 5)
@pytest.mark.parametrize(("function", "dtype"), KINDS)
def test_views_with_a_step_are_copied_element_by_element(
    pocl_queue: Any, device: Device, function: Callable[..., Any], dtype: Any
) -> None:
    n = 2 * LOCAL - 1
    base_a, base_b = vectors(2 * n, dtype, seed=3)
    a, b = base_a[::2], base_b[1::2]  # every other element: memory with gaps
    got, want = added(device, function, pocl_queue, a, b, dtype)
    check_sum(got, want, f"{function.__name__}(queue, a[::2], b[1::2])")


@pytest.mark.clause(5)
@pytest.mark.parametrize(("function", "dtype"), KINDS)
def test_the_inputs_are_left_unchanged_and_the_result_is_a_new_array(
    pocl_queue: Any, device: Device, function: Callable[..., Any], dtype: Any
) -> None:
    n = 2 * LOCAL - 1
    a, b = vectors(n, dtype, seed=4)  # already of the kernel's dtype: no conversion copies them
    kept = a.copy(), b.copy()
    got, _ = added(device, function, pocl_queue, a, b, dtype)
    name = function.__name__
    unchanged = np.array_equal(a, kept[0]) and np.array_equal(b, kept[1])
    assert unchanged, (
        f"{name} changed its inputs: when a is already a contiguous {np.dtype(dtype).name} "
        f"array, np.ascontiguousarray returns a itself, so reading the result back into it "
        f"overwrites the caller's data. Read it into a new array, c = np.empty_like(a)."
    )
    shared = isinstance(got, np.ndarray) and (np.shares_memory(got, a) or np.shares_memory(got, b))
    assert not shared, f"{name} returned memory of its inputs: return a new array"


# -- results on every kind of length -----------------------------------------------------------


# (No parametrize beside cl_queue's own: the plugin pairs a test's [oclgrind] and [pocl] runs by
# their other parameters, and a [pocl] run whose twin went out of bounds is not run.)


def add_every_length(queue: Any, device: Device, function: Callable[..., Any], dtype: Any) -> None:
    __tracebackhide__ = True
    for seed, n in enumerate(LENGTHS, start=10):
        a, b = vectors(n, dtype, seed)
        got, want = added(device, function, queue, a, b, dtype)
        check_sum(got, want, f"{function.__name__}(queue, a, b) on {elements(n)}")


@pytest.mark.clause(5, 7, 8)
def test_vector_add_adds_every_element_and_work_items_past_n_touch_nothing(
    cl_queue: Any, device: Device
) -> None:
    add_every_length(cl_queue, device, vector_add, np.float32)


@pytest.mark.clause(5, 7, 8)
def test_int_add_adds_every_element_and_work_items_past_n_touch_nothing(
    cl_queue: Any, device: Device
) -> None:
    add_every_length(cl_queue, device, int_add, np.int32)


@pytest.mark.clause(5, 7, 8)
@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example builds two kernels
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(groups=st.integers(1, 24), short=st.integers(1, LOCAL - 1))
def test_drawn_lengths_that_leave_spare_work_items_are_added_in_full(
    cl_queue: Any, device: Device, groups: int, short: int
) -> None:
    n = groups * LOCAL - short  # the last group has `short` spare work-items
    for function, dtype in ((vector_add, np.float32), (int_add, np.int32)):
        a, b = vectors(n, dtype, seed=n)
        got, want = added(device, function, cl_queue, a, b, dtype)
        check_sum(got, want, f"{function.__name__}(queue, a, b) on {elements(n)}")


# -- buffers and the launch --------------------------------------------------------------------


@pytest.mark.clause(6)
@pytest.mark.parametrize(("function", "dtype"), KINDS)
def test_inputs_go_to_read_only_buffers_and_the_result_comes_from_a_write_only_one(
    pocl_queue: Any, device: Device, function: Callable[..., Any], dtype: Any
) -> None:
    n = 2 * LOCAL - 1
    a, b = vectors(n, dtype, seed=5)
    added(device, function, pocl_queue, a, b, dtype)
    name = function.__name__
    inputs = [made for made in device.buffers if made.from_host]
    outputs = [made for made in device.buffers if not made.from_host]
    assert len(inputs) == 2 and len(outputs) == 1, (
        f"{name} made {len(inputs)} buffer(s) from host arrays and {len(outputs)} without: "
        f"one for each input, cl.Buffer(context, READ_ONLY | COPY_HOST_PTR, hostbuf=x), and "
        f"one for the result, cl.Buffer(context, WRITE_ONLY, size=c.nbytes). (The test "
        f"watches pyopencl.Buffer: make them as cl.Buffer(...).)"
    )
    for made in inputs:
        flags = made.flags
        assert flags == INPUT_FLAGS, (
            f"{name} made an input buffer with flags {flag_names(flags)}; "
            f"expected READ_ONLY | COPY_HOST_PTR: the kernel only reads the inputs, and "
            f"saying so lets the device place them where reading is cheap"
        )
    flags, size = outputs[0].flags, outputs[0].size
    assert flags == FLAGS.WRITE_ONLY, (
        f"{name} made the result buffer with flags {flag_names(flags)}; expected WRITE_ONLY "
        f"alone: the kernel only writes it, and there is nothing to copy in"
    )
    why = (
        "8 bytes per element: the result array is float64 or int64; make it with np.empty_like "
        "of a converted input"
        if size == 8 * n
        else "size=c.nbytes, with c the result array"
    )
    assert size == 4 * n, f"{name} made a result buffer of {size} bytes for {elements(n)}: {why}"
    copies = device.copies
    assert copies == [("array", "buffer")], (
        f"{name} made these copies (destination, source): {copies}; expected one, "
        f"cl.enqueue_copy(queue, c, c_buffer), from the result buffer into a NumPy array "
        f"(the cl._enqueue_read_buffer of B1's profiling recipe is pyopencl's private API)"
    )


@pytest.mark.clause(7)
@pytest.mark.parametrize(("function", "dtype"), KINDS)
def test_each_call_launches_its_own_kernel_once_in_groups_of_local(
    pocl_queue: Any, device: Device, function: Callable[..., Any], dtype: Any
) -> None:
    name = function.__name__
    for n in (LOCAL - 1, 3 * LOCAL - 1):
        device.launches.clear()
        a, b = vectors(n, dtype, seed=6 + n)
        added(device, function, pocl_queue, a, b, dtype)
        global_size = -(-n // LOCAL) * LOCAL
        launches = device.launches
        assert len(launches) == 1, f"{name} on {elements(n)} made launches {launches}; one, please"
        kernel, got_global, got_local = launches[0]
        assert kernel == name, (
            f"{name} launched the kernel {kernel!r}: use cl.Kernel(program, {name!r}), the "
            f"kernel for its dtype"
        )
        assert got_local == (LOCAL,), (
            f"{name} launched with local size {got_local}; expected ({LOCAL},), the "
            f"LOCAL of launch_sizes(n, LOCAL). B1's recipe passes None and lets the device "
            f"choose; then the group size, and with it the rounding, is not yours."
        )
        assert got_global == (global_size,), (
            f"{name} on {elements(n)} launched global size {got_global}; expected "
            f"({global_size},), n rounded up to a multiple of {LOCAL}: use launch_sizes(n, LOCAL)"
        )
