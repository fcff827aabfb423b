"""Kata `opencl_elementwise`: pyopencl.array and ElementwiseKernel, with dtype-correct argument lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyopencl as cl
import pyopencl.array as cl_array
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from opencl_elementwise import affine, clamp, diff, lin_comb, to_device
from pyopencl.elementwise import ElementwiseKernel
from pyopencl.tools import VectorArg, dtype_to_ctype, parse_arg_list

# Lengths: one element, fewer than any work-group, and lengths on both sides of 64, which is
# not a multiple of whatever group size ElementwiseKernel picks on a device.
LENGTHS = [1, 7, 64, 65, 200]
EPS = float(np.finfo(np.float32).eps)
DECLARED = {
    "lin_comb": "float a, float *x, float b, float *y, float *z",
    "clamp_between": "float *x, float low, float high, float *z",
    "diff": "float *x, float *z",
}
KERNEL_OF = {"lin_comb": "lin_comb", "clamp": "clamp_between", "diff": "diff"}


def numbers(n: int, seed: int, low: float = 1.0, high: float = 2.0) -> np.ndarray:
    """n float32s drawn from [low, high); each seed gives other numbers, so that memory left
    over from an earlier call never holds a right answer."""
    return np.random.default_rng(seed).uniform(low, high, n).astype(np.float32)


def rising(n: int, seed: int) -> np.ndarray:
    """n float32s, each at least 0.5 above the one before: their differences are never 0."""
    return np.cumsum(numbers(n, seed, 0.5, 1.5)).astype(np.float32)


def elements(n: int) -> str:
    return f"{n} element{'s' if n != 1 else ''}"


# -- what the code under test asked of ElementwiseKernel -------------------------------------


@dataclass
class Call:
    kernel: str  # the ElementwiseKernel's name
    declared: str  # its argument list, as pyopencl reads it
    passed: list[tuple[str, Any]]  # (declared name, what was passed), in order

    def vectors(self) -> list[tuple[str, Any]]:
        return [(name, v) for name, v in self.passed if isinstance(v, cl_array.Array)]


@dataclass
class Kernels:
    calls: list[Call] = field(default_factory=list)

    def named(self, kernel: str) -> list[Call]:
        return [call for call in self.calls if call.kernel == kernel]


def render(arguments: Any) -> tuple[str, list[str]]:
    """An argument list as `float a, float *x`, and its names; the text itself if unreadable."""
    try:
        parsed = parse_arg_list(arguments, with_offset=True)
    except Exception:  # the learner's own typo: pyopencl's build will say what it is
        return str(arguments), []
    shown = [
        f"{dtype_to_ctype(arg.dtype)} {'*' if isinstance(arg, VectorArg) else ''}{arg.name}"
        for arg in parsed
    ]
    return ", ".join(shown), [arg.name for arg in parsed]


@pytest.fixture(autouse=True)
def kernels(monkeypatch: pytest.MonkeyPatch) -> Kernels:
    """Records every ElementwiseKernel call of the test: its name, declaration and arguments."""
    seen = Kernels()
    original = ElementwiseKernel.__call__

    def call(self: ElementwiseKernel, *args: Any, **kwargs: Any) -> Any:
        declared, names = render(self.arguments)
        seen.calls.append(Call(self.name, declared, list(zip(names, args, strict=False))))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ElementwiseKernel, "__call__", call)
    return seen


# -- calling, and judging what came back -------------------------------------------------------

# What pyopencl's and NumPy's own errors usually mean in this kata.
ERRORS = {
    "cannot set from non-contiguous": "pyopencl copies memory as it lies, and a view with a "
    "step (v[::2]) has gaps: convert with np.ascontiguousarray(x, dtype=np.float32) in "
    "to_device",
    "setting an array element with a sequence": "a pyopencl.array.Array went through "
    "to_device (np.asarray cannot read a device array): use a 1-D float32 device array as "
    "it is, and send only host arrays through to_device",
    "couldn't parse": "pyopencl cannot read an argument list: write it as C declarations "
    "separated by commas, such as `float a, float *x`",
}


def called(function: Callable[..., Any], queue: Any, *args: Any) -> Any:
    """`function(queue, *args)` for valid arguments, with the usual errors explained."""
    __tracebackhide__ = True
    try:
        return function(queue, *args)
    except NotImplementedError:
        raise  # the stub: nothing to explain
    except (ValueError, RuntimeError, TypeError, cl.Error) as error:
        problem = error  # failed below, outside the handler, without the chained traceback
    advice = next((why for key, why in ERRORS.items() if key in str(problem)), "")
    pytest.fail(
        f"{function.__name__} raised {type(problem).__name__}: {problem}\n"
        f"(its arguments were valid){': ' + advice if advice else ''}",
        pytrace=False,
    )


def shape_and_type(got: Any, n: int, what: str) -> None:
    """`got` is a NumPy float32 vector of n elements, with a diagnosis if it is not."""
    __tracebackhide__ = True
    if isinstance(got, cl_array.Array):
        pytest.fail(
            f"{what} returned a pyopencl.array.Array, which lives on the device: return "
            f"result.get(), the NumPy copy of it",
            pytrace=False,
        )
    assert isinstance(got, np.ndarray), f"{what} returned a {type(got).__name__}, not an array"
    if got.dtype == np.float64:
        pytest.fail(
            f"{what} returned a float64 array, not float32. A float64 came in somewhere: a "
            f"host array copied to the device without np.float32 (send host arrays through "
            f"to_device); an np.float64 or np.int64 scalar in `x_d * scale`, which makes "
            f"pyopencl.array promote the result to float64 as NumPy would (use "
            f"np.float32(scale)); or a result array made with dtype=float, which is float64.",
            pytrace=False,
        )
    assert got.dtype == np.float32, f"{what} returned a {got.dtype} array, not float32"
    assert got.shape == (n,), f"{what} returned shape {got.shape}, not ({n},)"


def dtype_advice(kernels: Kernels) -> str:
    """Why the numbers are wrong, when the recorded calls show a dtype mismatch."""
    for call in kernels.calls:
        for name, array in call.vectors():
            if array.dtype != np.float32:
                return (
                    f"\nThe kernel {call.kernel!r} declares `float *{name}` but was given a "
                    f"{array.dtype} array there: it reads 4-byte floats out of "
                    f"{array.dtype.itemsize}-byte {array.dtype} numbers, meaningless "
                    f"values. Copy host arrays with to_device (np.float32), and refuse device "
                    f"arrays that are not float32."
                )
    return ""


def check_values(
    got: Any,
    want: np.ndarray,
    what: str,
    kernels: Kernels,
    *,
    tolerance: np.ndarray | float = 0.0,
    suspects: tuple[tuple[np.ndarray, str], ...] = (),
) -> None:
    """`got` is a float32 vector equal to `want` (NaN where want is NaN) within `tolerance`;
    when it equals one of the `suspects` instead, the failure says which bug that is."""
    __tracebackhide__ = True
    shape_and_type(got, len(want), what)
    both_nan = np.isnan(got) & np.isnan(want)
    close = np.abs(got.astype(np.float64) - want.astype(np.float64)) <= tolerance
    wrong = ~(close | both_nan)
    if not wrong.any():
        return
    first = int(np.argmax(wrong))
    message = (
        f"{what}: element [{first}] is {got[first]!r} instead of {want[first]!r}, and "
        f"{int(wrong.sum())} of the {elements(len(want))} are wrong."
    )
    for suspect, sentence in suspects:
        if np.allclose(got, suspect, rtol=1e-5, atol=0, equal_nan=True):
            message += f" {sentence}"
            break
    else:
        message += dtype_advice(kernels) or (
            " Check the operation and the order of the arguments against the argument list."
            " Numbers that look like garbage were never written by the kernel: was the "
            "result read back with .get() before the kernel was called, or from another "
            "array than the one the kernel wrote?"
        )
    pytest.fail(message, pytrace=False)


def value_error(function: Callable[..., Any], queue: Any, *args: Any, why: str) -> str:
    """The message of the ValueError `function(queue, *args)` must raise."""
    __tracebackhide__ = True
    try:
        result = function(queue, *args)
    except ValueError as error:
        return str(error)
    except NotImplementedError:
        raise  # the stub: nothing to explain
    except Exception as error:
        did = f"raised {type(error).__name__} ({error})"
    else:
        shown = repr(result)
        did = f"returned {shown[:60]}{'...' if len(shown) > 60 else ''}"
    pytest.fail(f"{function.__name__} {did} instead of raising ValueError: {why}", pytrace=False)


def lin_comb_tolerance(a: float, x: np.ndarray, b: float, y: np.ndarray) -> np.ndarray:
    # Two roundings of a float32 product and one of a sum, or fewer where the device fuses
    # them (fma): a few units in the last place of the larger term.
    return 4 * EPS * (np.abs(a * x.astype(np.float64)) + np.abs(b * y.astype(np.float64)))


def lin_comb_want(a: float, x: np.ndarray, b: float, y: np.ndarray) -> np.ndarray:
    a32, b32 = np.float32(a), np.float32(b)
    return (a32 * x.astype(np.float64) + b32 * y.astype(np.float64)).astype(np.float32)


# -- to_device -------------------------------------------------------------------------------


@pytest.mark.clause(1)
def test_to_device_copies_any_real_vector_into_a_contiguous_float32_device_array(
    pocl_queue: Any,
) -> None:
    x32 = numbers(31, seed=1)
    wide = numbers(62, seed=2).astype(np.float64)
    for x, what in [
        (x32, "a float32 array"),
        (x32.astype(np.float64), "a float64 array"),
        (np.arange(1, 32), "an int64 array (NumPy's default integers)"),
        (x32.tolist(), "a list of Python floats"),
        (wide[::2], "a float64 view with a step, v[::2]"),
        (wide.astype(np.float32)[1::2], "a float32 view with a step, v[1::2]"),
    ]:
        kept = np.array(x, copy=True)
        want = np.ascontiguousarray(x, dtype=np.float32)
        got = called(to_device, pocl_queue, x)
        call = f"to_device(queue, x) for {what}"
        assert isinstance(got, cl_array.Array), (
            f"{call} returned a {type(got).__name__}: return the pyopencl.array.Array that "
            f"cl_array.to_device(queue, host) makes"
        )
        assert got.dtype == np.float32, (
            f"{call} made a {got.dtype} device array: the kernels declare `float *`, 4 bytes "
            f"per number, and would read {got.dtype.itemsize}-byte numbers as meaningless "
            f"floats. Convert with np.ascontiguousarray(x, dtype=np.float32) first."
        )
        assert got.shape == want.shape and got.flags.c_contiguous, (
            f"{call} made a device array of shape {got.shape} with strides {got.strides}; "
            f"expected shape {want.shape}, one float after another"
        )
        assert got.queue is pocl_queue, f"{call} made a device array on another queue"
        assert np.array_equal(got.get(), want), (
            f"{call}: the device array holds {got.get()[:4]}... instead of {want[:4]}..."
        )
        assert np.array_equal(np.asarray(x), kept), f"{call} changed x"


@pytest.mark.clause(2)
def test_to_device_refuses_what_is_not_a_vector_with_elements(pocl_queue: Any) -> None:
    for x, why in [
        (np.zeros(0, dtype=np.float32), "x is empty, and there is nothing to compute on"),
        (numbers(6, seed=3).reshape(2, 3), "x is 2-D, not a vector"),
        (np.float32(2.5), "x is a single number, not a vector"),
    ]:
        message = value_error(to_device, pocl_queue, x, why=why)
        shape = np.shape(x)
        assert str(shape) in message, (
            f"to_device raised ValueError({message!r}) for shape {shape}, which does not "
            f"show {shape}: name the shape, so that the caller sees what was wrong"
        )


# -- operands: host or device, and what is never written -------------------------------------


def every_function(queue: Any, x: Any, y: Any, *, on_device: bool = False) -> dict[str, Any]:
    """Each of the four functions called once on x (and y), as `called` does it; with
    `on_device`, each call gets float32 device copies of its own, so that one function that
    writes into its inputs cannot spoil the next one's."""
    __tracebackhide__ = True

    def fresh(v: Any) -> Any:
        return cl_array.to_device(queue, np.asarray(v, dtype=np.float32)) if on_device else v

    return {
        "affine": called(affine, queue, fresh(x), 1.5, -0.25),
        "lin_comb": called(lin_comb, queue, 2.5, fresh(x), -0.75, fresh(y)),
        "clamp": called(clamp, queue, fresh(x), 1.2, 1.8),
        "diff": called(diff, queue, fresh(x)),
    }


@dataclass
class Expected:
    want: np.ndarray
    tolerance: Any
    suspects: tuple[tuple[np.ndarray, str], ...]


def affine_expected(x: np.ndarray, scale: float, shift: float) -> Expected:
    want = (x * np.float32(scale) + np.float32(shift)).astype(np.float32)
    swapped = (x * np.float32(shift) + np.float32(scale)).astype(np.float32)
    return Expected(
        want, 2 * EPS * np.abs(want) + EPS, ((swapped, "scale and shift are swapped."),)
    )


def lin_comb_expected(a: float, x: np.ndarray, b: float, y: np.ndarray) -> Expected:
    return Expected(
        lin_comb_want(a, x, b, y),
        lin_comb_tolerance(a, x, b, y),
        (
            (lin_comb_want(b, x, a, y), "That is b*x + a*y: a and b are swapped."),
            (lin_comb_want(a, y, b, x), "That is a*y + b*x: x and y are swapped."),
        ),
    )


def clamp_expected(x: np.ndarray, low: float, high: float) -> Expected:
    lo, hi = np.float32(low), np.float32(high)
    return Expected(
        np.clip(x, lo, hi),
        0.0,
        (
            (np.maximum(x, lo), "Elements above high were not lowered to high."),
            (np.minimum(x, hi), "Elements below low were not raised to low."),
            (
                np.where(x < hi, hi, np.where(x > lo, lo, x)),
                "That is clamp with low and high swapped: check the order of the arguments.",
            ),
            (np.full_like(x, hi), "Every element came out as high: are fmin and fmax swapped?"),
        ),
    )


def diff_expected(x: np.ndarray) -> Expected:
    return Expected(
        np.diff(x), 0.0, ((-np.diff(x), "That is x[i] - x[i+1]: the signs are turned round."),)
    )


def every_expected(x: np.ndarray, y: np.ndarray) -> dict[str, Expected]:
    """What every_function must return for float32 x and y."""
    return {
        "affine": affine_expected(x, 1.5, -0.25),
        "lin_comb": lin_comb_expected(2.5, x, -0.75, y),
        "clamp": clamp_expected(x, 1.2, 1.8),
        "diff": diff_expected(x),
    }


def check(got: Any, expected: Expected, what: str, kernels: Kernels) -> None:
    __tracebackhide__ = True
    check_values(
        got,
        expected.want,
        what,
        kernels,
        tolerance=expected.tolerance,
        suspects=expected.suspects,
    )


@pytest.mark.clause(3)
def test_device_vectors_of_float32_are_taken_as_they_are(pocl_queue: Any, kernels: Kernels) -> None:
    x, y = rising(40, seed=4), numbers(40, seed=5)
    got = every_function(pocl_queue, x, y, on_device=True)
    for name, expected in every_expected(x, y).items():
        check(got[name], expected, f"{name}(queue, ...) on float32 device arrays", kernels)
    mixed = called(lin_comb, pocl_queue, 2.5, x, -0.75, cl_array.to_device(pocl_queue, y))
    what = "lin_comb with x on the host, y on the device"
    check(mixed, lin_comb_expected(2.5, x, -0.75, y), what, kernels)


@pytest.mark.clause(3)
def test_device_arrays_that_are_not_float32_vectors_are_refused(
    pocl_queue: Any, kernels: Kernels
) -> None:
    good = cl_array.to_device(pocl_queue, numbers(12, seed=6))
    for host, what in [
        (rising(12, seed=7).astype(np.float64), "float64"),
        (np.arange(1, 13, dtype=np.int32), "int32 (4 bytes too, but the bits of ints)"),
        (numbers(12, seed=8).reshape(3, 4), "2-D float32"),
    ]:
        bad = cl_array.to_device(pocl_queue, host)
        why = (
            f"a {what} device array cannot be read by a kernel that declares `float *`, and "
            f"nothing converts an array that is already on the device"
        )
        for function, args in [
            (affine, (bad, 1.5, 0.5)),
            (lin_comb, (2.0, bad, 3.0, good)),
            (lin_comb, (2.0, good, 3.0, bad)),
            (clamp, (bad, 0.0, 1.0)),
            (diff, (bad,)),
        ]:
            kernels.calls.clear()
            message = value_error(function, pocl_queue, *args, why=why)
            for detail in (str(host.dtype), str(host.shape)):
                assert detail in message, (
                    f"{function.__name__} raised ValueError({message!r}) for a device array of "
                    f"dtype {host.dtype} and shape {host.shape}, which does not show "
                    f"{detail}: say what the array is, so that the caller sees what to fix"
                )
            assert not kernels.calls, (
                f"{function.__name__} launched {kernels.calls[0].kernel!r} on a {what} device "
                f"array before refusing it: check first"
            )


@pytest.mark.clause(1, 3)
def test_host_inputs_of_any_dtype_reach_the_kernels_as_float32(
    pocl_queue: Any, kernels: Kernels
) -> None:
    x32, y32 = rising(30, seed=9), numbers(30, seed=10)
    for convert, what in [
        (lambda v: v.astype(np.float64), "float64 arrays"),
        (lambda v: v.tolist(), "lists of Python floats"),
        (lambda v: np.repeat(v, 2)[::2], "float32 views with a step"),
    ]:
        kernels.calls.clear()
        got = every_function(pocl_queue, convert(x32), convert(y32))
        for name, expected in every_expected(x32, y32).items():
            check(got[name], expected, f"{name}(queue, ...) on {what}", kernels)
    ints = np.arange(3, 33)  # int64, as NumPy makes integers
    downs = ints[::-1].copy()
    got = called(lin_comb, pocl_queue, 2.5, ints, -0.75, downs)
    check(got, lin_comb_expected(2.5, ints, -0.75, downs), "lin_comb on int64 arrays", kernels)


@pytest.mark.clause(4)
def test_results_are_new_float32_numpy_arrays_and_host_inputs_are_left_unchanged(
    pocl_queue: Any, kernels: Kernels
) -> None:
    x, y = rising(50, seed=11), numbers(50, seed=12)
    kept = x.copy(), y.copy()
    got = every_function(pocl_queue, x, y)
    for name, expected in every_expected(kept[0], kept[1]).items():
        check(got[name], expected, f"{name}(queue, ...)", kernels)
        assert not (np.shares_memory(got[name], x) or np.shares_memory(got[name], y)), (
            f"{name} returned memory of its inputs: return the new array .get() makes"
        )
    assert np.array_equal(x, kept[0]) and np.array_equal(y, kept[1]), (
        "a function changed the caller's host arrays: read results back into new arrays "
        "(result.get()), never into x or y"
    )


@pytest.mark.clause(4)
def test_device_inputs_are_left_unchanged(pocl_queue: Any, kernels: Kernels) -> None:
    x, y = rising(50, seed=13), numbers(50, seed=14)
    for name, args in [
        ("affine", lambda x_d, y_d: (x_d, 1.5, -0.25)),
        ("lin_comb", lambda x_d, y_d: (2.5, x_d, -0.75, y_d)),
        ("clamp", lambda x_d, y_d: (x_d, 1.2, 1.8)),
        ("diff", lambda x_d, y_d: (x_d,)),
    ]:
        x_d, y_d = cl_array.to_device(pocl_queue, x), cl_array.to_device(pocl_queue, y)
        function = {"affine": affine, "lin_comb": lin_comb, "clamp": clamp, "diff": diff}[name]
        called(function, pocl_queue, *args(x_d, y_d))
        for label, device, host in (("x", x_d, x), ("y", y_d, y)):
            now = device.get()
            assert np.array_equal(now, host), (
                f"{name} wrote into the caller's device array {label}: element [{int(np.argmax(now != host))}] "
                f"changed. Write the result into a new device array (cl_array.empty_like(x_d), "
                f"or the new array that `x_d * s + t` makes), never in place (z = x_d, "
                f"x_d *= s): the caller still needs {label}."
            )


# -- affine ----------------------------------------------------------------------------------


@pytest.mark.clause(5)
def test_affine_scales_and_shifts_every_element(cl_queue: Any, kernels: Kernels) -> None:
    for seed, n in enumerate(LENGTHS, start=20):
        x = numbers(n, seed, -2.0, 2.0)
        scale, shift = 1.0 + seed / 8, 0.5 - seed / 16
        got = called(affine, cl_queue, x, scale, shift)
        what = f"affine(queue, x, {scale}, {shift}) on {elements(n)}"
        check(got, affine_expected(x, scale, shift), what, kernels)


@pytest.mark.clause(5)
def test_affine_keeps_float32_when_the_scalars_are_numpy_float64_or_int64(
    pocl_queue: Any, kernels: Kernels
) -> None:
    x = numbers(33, 30, -2.0, 2.0)
    for scale, shift, what in [
        (np.float64(1.75), np.float64(-0.5), "np.float64 scalars"),
        (np.int64(3), np.int64(-2), "np.int64 scalars"),
        (1.75, -0.5, "Python floats"),
    ]:
        got = called(affine, pocl_queue, x, scale, shift)
        expected = affine_expected(x, float(scale), float(shift))
        check(got, expected, f"affine(queue, x, scale, shift) with {what}", kernels)


# -- lin_comb --------------------------------------------------------------------------------


@pytest.mark.clause(6)
def test_lin_comb_refuses_vectors_of_different_lengths(pocl_queue: Any, kernels: Kernels) -> None:
    x, y = numbers(3, seed=31), numbers(4, seed=32)
    for a_x, a_y, what in [
        (x, y, "host arrays"),
        (x, cl_array.to_device(pocl_queue, y), "x on the host and y on the device"),
    ]:
        why = f"x has 3 elements and y 4 ({what}): there is no a*x + b*y"
        message = value_error(lin_comb, pocl_queue, 2.0, a_x, 3.0, a_y, why=why)
        for shape in ("(3,)", "(4,)"):
            assert shape in message, (
                f"lin_comb raised ValueError({message!r}) for shapes (3,) and (4,), which "
                f"does not show {shape}: name both shapes"
            )
        assert not kernels.calls, (
            "lin_comb launched its kernel on vectors of different lengths before refusing "
            "them: the kernel takes its length from x and would read y past its end"
        )


def combine_every_length(queue: Any, kernels: Kernels, lengths: list[int]) -> None:
    __tracebackhide__ = True
    for seed, n in enumerate(lengths, start=40):
        x, y = numbers(n, seed), numbers(n, seed + 100, 0.5, 1.0)
        a, b = 2.5 + seed / 10, -0.75
        got = called(lin_comb, queue, a, x, b, y)
        what = f"lin_comb(queue, {a}, x, {b}, y) on {elements(n)}"
        check(got, lin_comb_expected(a, x, b, y), what, kernels)


@pytest.mark.clause(7)
def test_lin_comb_combines_every_element(cl_queue: Any, kernels: Kernels) -> None:
    combine_every_length(cl_queue, kernels, LENGTHS)
    calls = kernels.named("lin_comb")
    assert len(calls) == len(LENGTHS) == len(kernels.calls), (
        f"{len(LENGTHS)} calls of lin_comb made these ElementwiseKernel calls: "
        f"{[call.kernel for call in kernels.calls]}; expected one call of the kernel "
        f"'lin_comb' each (name it 'lin_comb' when you build it)"
    )


@pytest.mark.clause(8, 10, 13)
@pytest.mark.parametrize(
    ("function", "args", "scalars", "z_size"),
    [
        pytest.param(lin_comb, (2.5, "x", np.float64(-0.75), "y"), ("a", "b"), 20, id="lin_comb"),
        pytest.param(clamp, ("x", 1, np.float64(1.5)), ("low", "high"), 20, id="clamp"),
        pytest.param(diff, ("x",), (), 19, id="diff"),
    ],
)
def test_each_kernel_declares_its_argument_list_and_gets_float32_scalars(
    pocl_queue: Any,
    kernels: Kernels,
    function: Callable[..., Any],
    args: tuple[Any, ...],
    scalars: tuple[str, ...],
    z_size: int,
) -> None:
    x, y = rising(20, seed=50), numbers(20, seed=51)
    arrays = {"x": x, "y": y}
    called(function, pocl_queue, *(arrays[a] if isinstance(a, str) else a for a in args))
    kernel = KERNEL_OF[function.__name__]
    calls = kernels.named(kernel)
    assert len(calls) == 1, (
        f"{function.__name__} made these ElementwiseKernel calls: "
        f"{[call.kernel for call in kernels.calls]}; expected one call of the kernel "
        f"{kernel!r}, built with the name {kernel!r}"
    )
    call = calls[0]
    want = DECLARED[kernel]
    advice = (
        " A Python float is a C double, but the arrays hold floats: declare the scalars "
        "`float` and pass np.float32."
        if "double" in call.declared
        else ""
    )
    assert call.declared == want, (
        f"the kernel {kernel!r} declares `{call.declared}`; the contract's argument list is "
        f"`{want}` (names, C types and order: the arguments are passed in that order).{advice}"
    )
    passed = dict(call.passed)
    z = passed.get("z")
    assert isinstance(z, cl_array.Array) and z.size == z_size, (
        f"{function.__name__} gave its kernel a result array z of "
        f"{getattr(z, 'size', '?')} elements for x of 20: make it a new device array of "
        f"{z_size} (a difference needs two neighbours, so diff has one result fewer)"
    )
    for name in scalars:
        value = passed[name]
        assert type(value) is np.float32, (
            f"{function.__name__} passed {name} as {type(value).__name__} {value!r}: pass "
            f"np.float32({name}), the 4-byte float the argument list declares. "
            f"ElementwiseKernel converts it for you, but a kernel called directly does not: "
            f"there a Python float is refused and an np.float64 is 8 bytes for a 4-byte float."
        )


# -- clamp -----------------------------------------------------------------------------------


@pytest.mark.clause(9)
def test_clamp_refuses_low_above_high_and_nan_bounds(pocl_queue: Any, kernels: Kernels) -> None:
    x = numbers(10, seed=60)
    for low, high, why in [
        (2.0, 1.0, "low=2.0 is above high=1.0, and no number lies between them"),
        (float("nan"), 1.0, "low is NaN: `low > high` is false for it, but `low <= high` too"),
        (0.0, float("nan"), "high is NaN, and no number lies below it"),
    ]:
        message = value_error(clamp, pocl_queue, x, low, high, why=why)
        for bound in (str(low), str(high)):
            assert bound in message, (
                f"clamp raised ValueError({message!r}) for low={low} and high={high}, which "
                f"does not show {bound}: name both bounds"
            )
        assert not kernels.calls, (
            f"clamp launched its kernel before refusing low={low}, high={high}"
        )


@pytest.mark.clause(10)
def test_clamp_holds_every_element_between_low_and_high(cl_queue: Any, kernels: Kernels) -> None:
    for seed, n in enumerate(LENGTHS, start=70):
        x = numbers(n, seed, -3.0, 3.0)
        x[0] = -2.5  # below, above and inside in every vector, whatever was drawn
        x[-1] = 2.5 if n > 1 else x[-1]
        for low, high in ((-1.0 - seed / 100, 1.5), (0.25, 0.25)):
            got = called(clamp, cl_queue, x, low, high)
            what = f"clamp(queue, x, {low}, {high}) on {elements(n)}"
            check(got, clamp_expected(x, low, high), what, kernels)


@pytest.mark.clause(11)
def test_clamp_keeps_nan_elements_nan(pocl_queue: Any, kernels: Kernels) -> None:
    x = numbers(9, 80, -3.0, 3.0)
    x[[0, 4, 8]] = np.nan
    got = called(clamp, pocl_queue, x, -1.0, 1.0)
    shape_and_type(got, len(x), "clamp(queue, x, -1.0, 1.0)")
    lost = [i for i in (0, 4, 8) if not np.isnan(got[i])]
    assert not lost, (
        f"clamp turned NaN at {lost} into {got[lost[0]]!r}: OpenCL's clamp, fmin and fmax "
        f"treat NaN as a missing value and return the other operand, while np.clip keeps NaN. "
        f"Write the comparisons out, x[i] < low ? low : (x[i] > high ? high : x[i]): both "
        f"are false for NaN, which then passes through."
    )
    check(got, clamp_expected(x, -1.0, 1.0), "clamp(queue, x, -1.0, 1.0) with NaN", kernels)


# -- diff ------------------------------------------------------------------------------------


@pytest.mark.clause(12)
def test_diff_refuses_fewer_than_two_elements(pocl_queue: Any) -> None:
    for x, what in [
        (np.array([1.5], dtype=np.float32), "a host vector"),
        (cl_array.to_device(pocl_queue, np.array([1.5], dtype=np.float32)), "a device vector"),
    ]:
        why = f"x is {what} of one element, and there is no difference to take"
        message = value_error(diff, pocl_queue, x, why=why)
        assert "(1,)" in message, (
            f"diff raised ValueError({message!r}) for {what} of shape (1,), which does not "
            f"show (1,): name the shape"
        )


def differences(queue: Any, kernels: Kernels, lengths: list[int]) -> None:
    __tracebackhide__ = True
    for seed, n in enumerate(lengths, start=90):
        x = rising(n, seed)
        check(called(diff, queue, x), diff_expected(x), f"diff(queue, x) on {elements(n)}", kernels)


@pytest.mark.clause(13, 14)
def test_diff_takes_every_step_and_reads_nothing_past_x(cl_queue: Any, kernels: Kernels) -> None:
    differences(cl_queue, kernels, [2, *LENGTHS[1:]])


# -- drawn lengths ---------------------------------------------------------------------------


@pytest.mark.clause(7, 10, 13, 14)
@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the lengths say enough
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(n=st.integers(2, 300))
def test_drawn_lengths_are_computed_in_full(cl_queue: Any, kernels: Kernels, n: int) -> None:
    combine_every_length(cl_queue, kernels, [n])
    differences(cl_queue, kernels, [n])
    x = numbers(n, n, -3.0, 3.0)
    got = called(clamp, cl_queue, x, -1.0, 1.0)
    check(
        got, clamp_expected(x, -1.0, 1.0), f"clamp(queue, x, -1.0, 1.0) on {elements(n)}", kernels
    )
