"""Kata `numba_ufuncs`: ufuncs and gufuncs compiled by Numba, the target each runs on, and a prange reduction."""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba_ufuncs import build_matmul, pi_midpoint, smoothstep

# smoothstep's float64 loop rounds a few times: 1e-12 leaves room for 3x*x - 2x*x*x written
# another way. The float32 loop may compute in float64 and round once at the end, or in float32
# throughout (a few units of 6e-8): 1e-6 covers both; the bugs are off by far more.
RTOL = {np.float32: 1e-6, np.float64: 1e-12}
# A matrix product adds n products; the inputs are in [0.5, 1.5], so there is no cancellation
# and the relative error of a right product stays within a few units of the dtype's epsilon.
MATMUL_RTOL = {np.float32: 1e-5, np.float64: 1e-12}
# A layout with its dimension names replaced by their order of first appearance.
MATMUL_LAYOUT = "(a,b),(b,c)->(a,c)"
# pi_midpoint's threads add their slices apart, NumPy adds pairwise: the sums agree to about
# 1e-13 relative; a wrong formula, a missing slice or a lost partial sum is off by 1e-7 or more.
PI_RTOL = 1e-10
# The timed workload: about 0.2 s of pi_midpoint on one free core of this project's machine.
TIMED_N = 150_000_000
MAX_ROUNDS = 3
# Two threads on two free cores give close to 2x; 1.2x is far above what one thread gives (1.0x)
# and well below what two free cores give, so a machine shared with other work still passes.
REQUIRED_SPEEDUP = 1.2
# A loop split between two threads gives each about half the CPU time, whatever the load; a
# thread with 90% of it ran the loop alone.
ONE_THREAD_SHARE = 0.9
# A two-thread run that got less than this many cores' worth of CPU time (CPU time over wall
# time) shared the cores with other programs: no speedup can be judged then.
BUSY_CORES = 1.5


def smoothstep_by_numpy(x: Any) -> np.ndarray:
    """§1's values in float64, NaN kept, for any real input."""
    x = np.asarray(x, dtype=np.float64)
    cubic = x * x * (3.0 - 2.0 * x)
    return np.where(x <= 0.0, 0.0, np.where(x >= 1.0, 1.0, cubic))


EDGES = np.array(
    [-np.inf, -3e10, -3.0, -0.0, 0.0, 1e-3, 0.25, 0.5, 0.7, 0.999, 1.0, 1.5, 40.0, np.inf, np.nan]
)


DTYPE_HINT = (
    "NumPy runs the first of smoothstep's loops (in the order the signatures are listed) that "
    "the input casts to without loss; compile exactly float32(float32), then float64(float64), "
    "so that float32 stays float32 and integers go to float64"
)


def check_smoothstep(got: Any, x: Any, dtype: type, call: str) -> None:
    """`got` is `smoothstep(x)` of dtype `dtype` and §1's values."""
    __tracebackhide__ = True
    got = np.asarray(got)
    if got.dtype != dtype:
        pytest.fail(
            f"{call} returned dtype {got.dtype}, not {np.dtype(dtype)}: {DTYPE_HINT}", pytrace=False
        )
    want = smoothstep_by_numpy(x)
    close = np.isclose(got, want, rtol=RTOL[dtype], atol=0.0, equal_nan=True)
    if close.all():
        return
    bad = np.flatnonzero(~close.ravel())
    xs, gots, wants = np.ravel(x)[bad], got.ravel()[bad], want.ravel()[bad]
    shown = ", ".join(
        f"x={xv:.6g} gave {gv:.6g} (want {wv:.6g})"
        for xv, gv, wv in list(zip(xs, gots, wants, strict=True))[:5]
    )
    if np.isnan(wants).any() and not np.isnan(gots[np.isnan(wants)]).all():
        hint = (
            "NaN must stay NaN: every comparison with NaN is false, so `if x <= 0.0: ... if "
            "x >= 1.0: ...` lets it fall through to the cubic, which keeps it NaN; a test like "
            "`if not x > 0.0` or `else: return 1.0` turns it into a number"
        )
    elif (xs >= 1.0).any() and not (xs < 1.0).any():
        hint = "above 1 the result is 1: the cubic falls again past x = 1, so clamp there"
    elif (xs <= 0.0).any() and not (xs > 0.0).any():
        hint = "at and below 0 the result is 0: clamp there before the cubic"
    else:
        hint = "between 0 and 1 the result is x * x * (3 - 2 * x), i.e. 3x^2 - 2x^3"
    pytest.fail(f"{call}: {bad.size} of {close.size} values wrong: {shown}. {hint}", pytrace=False)


def ufunc_types(function: Any, name: str, builder: str) -> list[str]:
    """The loops a Numba ufunc was compiled for; the test fails when it is no ufunc."""
    __tracebackhide__ = True
    types = getattr(function, "types", None)
    if not isinstance(types, list):
        pytest.fail(
            f"{name} is a {type(function).__name__}, not a ufunc: apply {builder} to it, with "
            f"the signatures listed",
            pytrace=False,
        )
    return types


# -- smoothstep: numba.vectorize -------------------------------------------------------------


@pytest.mark.clause(1)
def test_smoothstep_is_0_up_to_0_1_from_1_and_the_cubic_between() -> None:
    check_smoothstep(smoothstep(EDGES), EDGES, np.float64, "smoothstep(float64 array)")
    x32 = EDGES.astype(np.float32)
    check_smoothstep(smoothstep(x32), x32, np.float32, "smoothstep(float32 array)")


@pytest.mark.clause(1)
@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.lists(st.floats(min_value=-4.0, max_value=4.0, allow_nan=False), min_size=1, max_size=40))
def test_smoothstep_matches_numpy_for_drawn_values(values: list[float]) -> None:
    x = np.array(values)
    check_smoothstep(smoothstep(x), x, np.float64, f"smoothstep({values!r})")


@pytest.mark.clause(2)
def test_smoothstep_is_compiled_for_float32_then_float64_exactly() -> None:
    types = ufunc_types(smoothstep, "smoothstep", "@numba.vectorize([...])")
    if types == ["d->d", "f->f"]:
        pytest.fail(
            "smoothstep's loops are ['d->d', 'f->f']: float64 is listed first, so NumPy, which "
            "takes the first loop the input casts to without loss, computes float32 input in "
            "float64 and returns float64. List 'float32(float32)' first.",
            pytrace=False,
        )
    assert types == ["f->f", "d->d"], (
        f"smoothstep's loops are {types}: compile exactly 'float32(float32)' then "
        f"'float64(float64)' (Numba compiles one loop per signature listed; without "
        f"signatures it compiles a loop for each new input type at its first call, with the "
        f"output type Numba infers: float64 for float32 arithmetic with float constants, int64 "
        f"for ints)"
    )


@pytest.mark.clause(2)
def test_float32_input_gives_float32_output() -> None:
    x = np.linspace(-0.5, 1.5, 9, dtype=np.float32)
    got = smoothstep(x)
    assert got.dtype == np.float32, (
        f"smoothstep(float32 array) returned {got.dtype}: NumPy took a float64 loop, because "
        f"no float32(float32) signature was compiled, or it was listed after float64(float64) "
        f"(float32 casts to float64 without loss, so the first of the two wins). Half the "
        f"memory and twice the SIMD width are lost, and the caller's dtype is not kept."
    )
    check_smoothstep(got, x, np.float32, "smoothstep(float32 array)")
    scalar = smoothstep(np.float32(0.25))
    assert isinstance(scalar, np.float32), (
        f"smoothstep(np.float32(0.25)) returned a {type(scalar).__name__}, not a np.float32"
    )


@pytest.mark.clause(2)
def test_float64_input_gives_float64_output() -> None:
    x = np.array([-0.5, 0.1, 0.3, 0.9, 1.2])
    try:
        got = smoothstep(x)
    except TypeError as error:
        pytest.fail(
            f"smoothstep(float64 array) raised TypeError ({error}): only a float32 loop is "
            f"compiled, and NumPy never casts float64 down to float32 (it would lose "
            f"precision) on its own. Add the float64(float64) signature, after float32's.",
            pytrace=False,
        )
    check_smoothstep(got, x, np.float64, "smoothstep(float64 array)")


@pytest.mark.clause(3)
@pytest.mark.parametrize(
    "x",
    [
        pytest.param(np.array([-2, 0, 1, 3], dtype=np.int32), id="int32-array"),
        pytest.param(np.array([-2, 0, 1, 3], dtype=np.int64), id="int64-array"),
        pytest.param(np.int64(2), id="int64-scalar"),
        pytest.param(-3, id="python-int"),
    ],
)
def test_integer_input_is_computed_in_float64(x: Any) -> None:
    got = np.asarray(smoothstep(x))
    assert got.dtype == np.float64, (
        f"smoothstep({x!r}) returned {got.dtype}: integers are computed by the float64 loop, "
        f"the first one int32 and int64 cast to without loss (not float32, whose 24-bit "
        f"mantissa cannot hold every int32); compile no integer signature"
    )
    check_smoothstep(got, x, np.float64, f"smoothstep({x!r})")


@pytest.mark.clause(4)
def test_smoothstep_keeps_the_shape_of_any_input() -> None:
    for x in (
        np.zeros(0, dtype=np.float32),
        np.zeros((2, 0, 3)),
        np.linspace(-1.0, 2.0, 24).reshape(2, 3, 4),
        np.linspace(-1.0, 2.0, 20)[::3],
        np.array(0.5),
    ):
        got = np.asarray(smoothstep(x))
        assert got.shape == x.shape, (
            f"smoothstep(array of shape {x.shape}) returned shape {got.shape}: a ufunc "
            f"returns its input's shape"
        )
        check_smoothstep(got, x, x.dtype.type, f"smoothstep(array of shape {x.shape})")


@pytest.mark.clause(4)
def test_smoothstep_writes_into_out_and_returns_it() -> None:
    x = np.array([[-1.0, 0.2], [0.6, 7.0]], dtype=np.float32)
    out = np.full(x.shape, np.nan, dtype=np.float32)
    got = smoothstep(x, out=out)
    assert got is out, "smoothstep(x, out=y) returned a new array instead of y"
    check_smoothstep(out, x, np.float32, "smoothstep(x, out=y), in y")


# -- build_matmul: numba.guvectorize, its layout, dtypes and targets ---------------------------


def canonical_layout(layout: str) -> str:
    """`layout` with spaces dropped and each dimension name replaced by a, b, c... in the order
    of first appearance: "(i,k),(k,j)->(i,j)" and "(m,n),(n,p)->(m,p)" are the same."""
    names: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        return names.setdefault(match.group(0), chr(ord("a") + len(names)))

    return re.sub(r"\w+", rename, layout.replace(" ", ""))


LAYOUT_HINTS = {
    "(a,b),(b,c)->(c,a)": "the result's dimensions are swapped: a @ b has a's rows and b's "
    "columns, (m,p)",
    "(a,b),(c,d)->(a,d)": "the inner dimensions have two names, so the gufunc cannot check that "
    "they match (and a kernel would read past the end of the shorter one): call both n",
    "(a,b),(b,c)->(c)": "the result is a matrix, (m,p)",
}


def layout_of(gufunc: Any) -> str | None:
    """A gufunc's layout: `.signature` on the CPU targets; a CUDA gufunc keeps it parsed."""
    layout = getattr(gufunc, "signature", None)
    if isinstance(layout, str):
        return layout
    engine = getattr(gufunc, "engine", None)
    if engine is None or not hasattr(engine, "sin"):
        return None
    shapes = [f"({','.join(names)})" for names in (*engine.sin, *engine.sout)]
    return ",".join(shapes[: engine.nin]) + "->" + ",".join(shapes[engine.nin :])


def matmul(target: str) -> Any:
    """`build_matmul(target)`, checked to be a gufunc with the layout of §6 before anything
    calls it: a kernel run with a wrong layout writes outside its output."""
    __tracebackhide__ = True
    gufunc = build_matmul(target)
    layout = layout_of(gufunc)
    if layout is None:
        pytest.fail(
            f"build_matmul({target!r}) returned a {type(gufunc).__name__}, not a gufunc with a "
            f"layout: return numba.guvectorize([...], '(m,n),(n,p)->(m,p)', "
            f"target={target!r})(matmul_kernel)",
            pytrace=False,
        )
    canonical = canonical_layout(layout)
    if canonical != MATMUL_LAYOUT:
        hint = LAYOUT_HINTS.get(canonical, "a (m,n) by (n,p) product is an (m,p) matrix")
        pytest.fail(
            f"build_matmul({target!r}) has layout {layout!r}, not '(m,n),(n,p)->(m,p)': "
            f"{hint}. (Not called: with a wrong layout the kernel writes outside c.)",
            pytrace=False,
        )
    return gufunc


def operands(shape_a: tuple[int, ...], shape_b: tuple[int, ...], dtype: type, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.5, shape_a).astype(dtype)
    b = rng.uniform(0.5, 1.5, shape_b).astype(dtype)
    return a, b


def check_product(gufunc: Any, a: np.ndarray, b: np.ndarray, call: str) -> None:
    """gufunc(a, b, out=NaN) is numpy.matmul(a, b): shape, dtype, and every element written."""
    __tracebackhide__ = True
    want = np.matmul(a, b)
    out = np.full(
        want.shape, np.nan, dtype=want.dtype
    )  # poisoned: an element never written stays NaN
    got = gufunc(a, b, out=out)
    assert got is out, f"{call} with out=c did not return c"
    if np.isnan(got).any():
        where = np.argwhere(np.isnan(got))
        pytest.fail(
            f"{call}: {len(where)} of {got.size} elements are NaN, e.g. at "
            f"{tuple(int(i) for i in where[0])}: "
            f"c arrives holding garbage (here NaN), and every c[i, j] must be stored, not "
            f"added to (`c[i, j] += ...` keeps the garbage), for every i < m and j < p (loop "
            f"to c's shape, not one short)",
            pytrace=False,
        )
    close = np.isclose(got, want, rtol=MATMUL_RTOL[want.dtype.type], atol=0.0)
    if not close.all():
        where = tuple(int(i) for i in np.argwhere(~close)[0])
        n = a.shape[-1]
        hint = (
            "each c[i, j] is the sum of a[i, k] * b[k, j] over every k < n (range(n), not "
            "range(n - 1)), with n = a.shape[1]"
        )
        pytest.fail(
            f"{call}: {int((~close).sum())} of {got.size} elements differ from numpy.matmul, "
            f"e.g. at {where}: {got[where]:.7g} instead of {want[where]:.7g} (n = {n}). {hint}",
            pytrace=False,
        )


@pytest.mark.clause(6)
def test_build_matmul_uses_the_layout_of_a_matrix_product() -> None:
    matmul("cpu")


@pytest.mark.clause(5, 7)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(
    ("m", "n", "p"), [(3, 5, 2), (1, 1, 1), (2, 7, 4), (5, 1, 3), (3, 0, 2)], ids=lambda v: str(v)
)
def test_matmul_of_matrices_of_any_shape_matches_numpy(m: int, n: int, p: int, dtype: type) -> None:
    a, b = operands((m, n), (n, p), dtype, seed=m * 100 + n * 10 + p)
    check_product(matmul("cpu"), a, b, f"matmul({m}x{n} @ {n}x{p}, {np.dtype(dtype)})")


@pytest.mark.clause(6)
def test_matmul_broadcasts_over_the_leading_dimensions() -> None:
    gufunc = matmul("cpu")
    for shape_a, shape_b in (((4, 1, 3, 5), (2, 5, 2)), ((3, 2, 6), (6, 4)), ((0, 2, 3), (3, 2))):
        a, b = operands(shape_a, shape_b, np.float64, seed=len(shape_a))
        want_shape = np.matmul(a, b).shape
        got = gufunc(a, b)
        assert got.shape == want_shape, (
            f"matmul(a of shape {shape_a}, b of shape {shape_b}) returned shape {got.shape}, "
            f"not numpy.matmul's {want_shape}: the dimensions in front of (m,n) and (n,p) "
            f"broadcast, and the result ends with (m,p)"
        )
        check_product(gufunc, a, b, f"matmul(a of shape {shape_a}, b of shape {shape_b})")


@pytest.mark.clause(6)
def test_matmul_refuses_matrices_whose_inner_dimensions_differ() -> None:
    a, b = operands((2, 3), (4, 2), np.float64, seed=1)
    with pytest.raises(ValueError):
        matmul("cpu")(a, b)


@pytest.mark.clause(5, 6, 7)
def test_matmul_matches_numpy_for_drawn_shapes() -> None:
    gufunc = matmul("cpu")  # once: the drawn examples test the product, not the compiling

    @settings(max_examples=15, deadline=None, derandomize=True)
    @given(
        batch=st.lists(st.integers(1, 3), max_size=2),
        m=st.integers(1, 6),
        n=st.integers(1, 6),
        p=st.integers(1, 6),
        single=st.booleans(),
    )
    def product_matches(batch: list[int], m: int, n: int, p: int, single: bool) -> None:
        dtype = np.float32 if single else np.float64
        a, b = operands((*batch, m, n), (n, p), dtype, seed=m + n + p)
        check_product(gufunc, a, b, f"matmul(a of shape {a.shape}, b of shape {b.shape})")

    product_matches()


@pytest.mark.clause(7)
def test_matmul_is_compiled_for_float32_then_float64() -> None:
    gufunc = matmul("cpu")
    types = ufunc_types(gufunc, "build_matmul('cpu')", "numba.guvectorize")
    assert types == ["ff->f", "dd->d"], (
        f"build_matmul('cpu')'s loops are {types}: compile exactly the float32 signature "
        f"'void(float32[:,:], float32[:,:], float32[:,:])' then the float64 one; NumPy takes "
        f"the first loop the inputs cast to without loss, so float64 first would turn float32 "
        f"matrices into a float64 product"
    )
    a, b = operands((2, 3), (3, 2), np.float32, seed=7)
    assert gufunc(a, b).dtype == np.float32, "float32 matrices gave a product of another dtype"


def usable_cores() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than exist)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def compiled_target(gufunc: Any) -> str:
    """Where a ufunc that Numba built runs, read from the object it returned."""
    kind = type(gufunc)
    if "cuda" in kind.__module__.split("."):
        return "cuda"  # numba.cuda's own gufunc class: its loops are CUDA kernels
    if kind is np.ufunc:
        # The "parallel" target hands back a plain NumPy ufunc whose loops Numba compiled to
        # run on its threads; NumPy's own ufuncs are the same type but carry NumPy's names.
        if getattr(gufunc, "__name__", "") == "matmul_kernel":
            return "parallel"
        return f"NumPy's own {gufunc.__name__}"
    if kind.__module__.startswith("numba.np.ufunc"):
        return "cpu"  # GUFunc keeps its dispatcher and runs its loops in the calling thread
    return f"a {kind.__module__}.{kind.__qualname__}, which Numba's guvectorize never returns"


@pytest.mark.clause(8)
@pytest.mark.parametrize("target", ["parallel", "cuda", "cpu"])
def test_build_matmul_compiles_for_the_target_it_is_given(target: str) -> None:
    got = compiled_target(matmul(target))
    if got == "cpu" and target != "cpu":
        pytest.fail(
            f"build_matmul({target!r}) returned a gufunc compiled for the CPU: guvectorize "
            f"compiles for target='cpu' unless it is given target={target!r}. That is the "
            f"book's bug: its matrix product was meant for the GPU, had no target, and ran "
            f"on the CPU without a word.",
            pytrace=False,
        )
    assert got == target, f"build_matmul({target!r}) returned a gufunc compiled for {got}"


@pytest.mark.clause(7, 8)
def test_the_parallel_matmul_matches_numpy_on_a_batch() -> None:
    gufunc = matmul("parallel")
    assert compiled_target(gufunc) == "parallel", (
        "build_matmul('parallel') is not compiled for target='parallel'"
    )
    for dtype in (np.float32, np.float64):
        a, b = operands((9, 4, 5), (5, 3), dtype, seed=9)
        check_product(gufunc, a, b, f"build_matmul('parallel') on a batch of 9, {np.dtype(dtype)}")


def on_simulator() -> bool:
    return bool(numba.config.ENABLE_CUDASIM)


@pytest.mark.clause(8)
@pytest.mark.skipif(
    on_simulator(),
    reason="Numba's CUDA simulator builds a target='cuda' gufunc but cannot call it (numba-cuda "
    "0.30's simulator has no cuda.is_cuda_array): the product is checked only on an NVIDIA GPU, "
    "with KATA_NUMBA_GPU=1",
)
def test_the_cuda_matmul_matches_numpy_on_a_gpu() -> None:
    gufunc = matmul("cuda")
    a, b = operands((6, 5, 7), (7, 3), np.float32, seed=6)
    want = np.matmul(a, b)
    got = np.asarray(gufunc(a, b))
    assert got.shape == want.shape, f"on the GPU, shape {got.shape} instead of {want.shape}"
    np.testing.assert_allclose(got, want, rtol=MATMUL_RTOL[np.float32], atol=0.0)


@pytest.mark.clause(9)
@pytest.mark.parametrize("target", ["gpu", "CPU", "", "parallel "])
def test_build_matmul_refuses_other_targets_naming_the_three(target: str) -> None:
    try:
        build_matmul(target)
    except ValueError as error:
        message = str(error)
    else:
        pytest.fail(f"build_matmul({target!r}) returned: raise ValueError", pytrace=False)
    missing = [name for name in ("cpu", "parallel", "cuda") if name not in message]
    assert not missing, (
        f"build_matmul({target!r}) raised ValueError({message!r}), which does not name "
        f"{', '.join(missing)}: check target yourself and name the three valid ones (Numba's "
        f"own error names none of them)"
    )


@pytest.mark.clause(10)
def test_build_matmul_compiles_once_per_target() -> None:
    first = build_matmul("cpu")
    assert build_matmul("cpu") is first, (
        "build_matmul('cpu') returned a new gufunc on its second call: each call compiled "
        "every signature again (tenths of a second each); cache it with @functools.cache"
    )
    assert build_matmul("parallel") is not first, (
        "build_matmul('parallel') returned the 'cpu' gufunc: cache per target"
    )


# -- pi_midpoint: njit(parallel=True) and prange ---------------------------------------------


def pi_by_numpy(n: int) -> float:
    h = 1.0 / n
    x = (np.arange(n, dtype=np.float64) + 0.5) * h
    return float(np.sum(4.0 / (1.0 + x * x)) * h)


def pi_hint(got: float, n: int) -> str:
    h = 1.0 / n
    left = float(np.sum(4.0 / (1.0 + (np.arange(n) * h) ** 2)) * h)
    if math.isclose(got, left, rel_tol=PI_RTOL):
        return "x_i is the middle of slice i, (i + 0.5) * h, not its left edge i * h"
    if n > 1 and math.isclose(
        got, pi_by_numpy(n) - 4.0 / (1.0 + (1.0 - h / 2) ** 2) * h, rel_tol=PI_RTOL
    ):
        return "the last slice is missing: the loop runs over all n slices, prange(n)"
    return (
        "add 4 / (1 + x * x) for every slice into a scalar, then multiply by h once (if the "
        "sums differ from run to run, the threads overwrite each other's sums: see §13)"
    )


@pytest.mark.clause(11)
@pytest.mark.parametrize("n", [1, 2, 3, 7, 1000, 1_000_003])
def test_pi_midpoint_matches_numpy(n: int) -> None:
    got = pi_midpoint(n)
    assert isinstance(got, float), f"pi_midpoint({n}) returned a {type(got).__name__}, not a float"
    want = pi_by_numpy(n)
    assert math.isclose(got, want, rel_tol=PI_RTOL), (
        f"pi_midpoint({n}) returned {got!r}, the midpoint rule gives {want!r}: {pi_hint(got, n)}"
    )


@pytest.mark.clause(12)
@pytest.mark.parametrize("n", [0, -4])
def test_pi_midpoint_refuses_fewer_than_one_slice(n: int) -> None:
    with pytest.raises(ValueError):
        pi_midpoint(n)


def parallel_loops(function: Any) -> list[tuple[bool, list[str]]]:
    """(made from a prange?, its reduction variables) for each parallel loop that Numba made of
    `function`'s compiled code; the test fails when `function` is no parallel Numba function."""
    __tracebackhide__ = True
    options = getattr(function, "targetoptions", None)
    if not isinstance(options, dict) or not getattr(function, "signatures", None):
        pytest.fail(
            "pi_midpoint is not compiled by Numba: decorate it with @numba.njit(parallel=True)",
            pytrace=False,
        )
    if not options.get("parallel"):
        pytest.fail(
            "pi_midpoint is compiled without parallel=True: numba.prange is then plain range, "
            "and the whole loop runs on one thread. Use @numba.njit(parallel=True).",
            pytrace=False,
        )
    metadata = function.get_metadata(function.signatures[0])
    diagnostics = metadata.get("parfor_diagnostics")
    loops = []
    for parfor in getattr(diagnostics, "initial_parfors", None) or []:
        kinds = [p if isinstance(p, str) else p[0] for p in getattr(parfor, "patterns", [])]
        loops.append(("prange" in kinds, list(getattr(parfor, "redvars", []))))
    return loops


@pytest.mark.clause(13)
def test_pi_midpoint_is_a_prange_loop_with_a_scalar_reduction() -> None:
    pi_midpoint(10)  # compiled now, if it was not before
    loops = parallel_loops(pi_midpoint)
    pranges = [reductions for from_prange, reductions in loops if from_prange]
    assert pranges, (
        "Numba made no parallel loop of a numba.prange in pi_midpoint: a loop over range(n) "
        "runs on one thread even under parallel=True (Numba splits only prange loops, and "
        "array expressions, between its threads). Loop with `for i in numba.prange(n):`."
    )
    assert any(pranges), (
        "pi_midpoint's prange loop adds into no scalar that Numba could make a reduction: "
        "adding into an array element from every iteration (acc[0] += ...) is a data race, "
        "in which both threads read the element, add their own term and write it back, so one "
        "overwrites the other's sums. Add into a local scalar, `total += ...`: Numba gives "
        "each thread a private copy and adds the copies once the loop ends."
    )


@pytest.fixture
def threads() -> Iterator[Callable[[int], None]]:
    """Sets how many threads Numba's parallel loops use in this test; restored afterwards."""
    before = numba.get_num_threads()
    yield numba.set_num_threads
    numba.set_num_threads(before)


@pytest.mark.clause(11, 13)
def test_pi_midpoint_gives_numpys_sum_on_two_threads_every_time(
    threads: Callable[[int], None],
) -> None:
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba was started with one thread (NUMBA_NUM_THREADS=1): nothing to share")
    threads(2)
    n = 1_000_003
    want = pi_by_numpy(n)
    got = [pi_midpoint(n) for _ in range(6)]
    wrong = [g for g in got if not math.isclose(g, want, rel_tol=PI_RTOL)]
    assert not wrong, (
        f"on two threads, pi_midpoint({n}) returned {sorted(set(got))} over six calls; the "
        f"midpoint rule gives {want!r}. Sums that are lost, or that change from call to call, "
        f"come from threads writing the same memory (see §13)."
    )


def thread_cpu_ns() -> dict[str, int]:
    """Each thread of this process and its time on a CPU so far, in nanoseconds (Linux's
    /proc/self/task/*/schedstat); empty where that is not available."""
    times: dict[str, int] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return times
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat", encoding="ascii") as stat:
                times[tid] = int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that ended meanwhile
            continue
    return times


@pytest.mark.timing
@pytest.mark.clause(14)
def test_pi_midpoint_runs_at_least_1_2_times_faster_on_two_threads_than_on_one(
    threads: Callable[[int], None],
) -> None:
    cores = usable_cores()
    if cores < 2 or numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip(
            f"this machine lets us use {cores} core(s) and Numba {numba.config.NUMBA_NUM_THREADS} "
            f"thread(s); a speedup needs at least two of each"
        )
    pi_midpoint(10)  # compiled before the clock runs

    def timed(count: int) -> tuple[float, list[float], float]:
        """Wall time of pi_midpoint(TIMED_N) on `count` threads, each thread's share of the CPU
        time it took (largest first; empty where unknown), and the cores' worth of CPU time it
        got: CPU time over wall time."""
        threads(count)
        before = thread_cpu_ns()
        started = time.perf_counter()
        pi_midpoint(TIMED_N)
        wall = time.perf_counter() - started
        after = thread_cpu_ns()
        used = [after[tid] - before.get(tid, 0) for tid in after]
        total = sum(used)
        if not before or total <= 0:
            return wall, [], 0.0
        return wall, sorted((u / total for u in used), reverse=True), total / 1e9 / wall

    best_one = best_two = math.inf
    rounds: list[str] = []
    # Each round times pi_midpoint on one thread, then on two, and keeps the best time of each
    # so far (another program may take a core away for a moment). It passes once the best
    # times show REQUIRED_SPEEDUP. Whether the loop was split does not depend on the machine's
    # load: the CPU time each thread used during the two-thread run shows it. One thread doing
    # ONE_THREAD_SHARE or more of the work fails the test at once. A loop that was split but
    # got no speedup ran while other programs held the cores: Linux shares the CPU between
    # sessions, so one busy program elsewhere can leave this test one core's worth of time in
    # all. The CPU time over the wall time says how many cores' worth it got; below
    # BUSY_CORES the test is skipped, never failed.
    for _ in range(MAX_ROUNDS):
        one, _, _ = timed(1)
        two, shares, cores_got = timed(2)
        if shares and shares[0] >= ONE_THREAD_SHARE:
            pytest.fail(
                f"on two threads, one thread did {shares[0]:.0%} of pi_midpoint({TIMED_N})'s "
                f"work (each thread's CPU time, from /proc/self/task): its loop ran on one "
                f"thread, {one / two:.2f}x as fast as on one. Numba splits a loop between "
                f"threads only when it is a numba.prange loop under "
                f"@numba.njit(parallel=True) (see §13).",
                pytrace=False,
            )
        best_one, best_two = min(best_one, one), min(best_two, two)
        if best_one / best_two >= REQUIRED_SPEEDUP:
            return
        split = "/".join(f"{share:.0%}" for share in shares[:2]) or "unknown"
        rounds.append(f"{one / two:.2f}x (work split {split}, {cores_got:.2f} cores' worth)")
        if shares and cores_got < BUSY_CORES:
            break  # the cores are busy: another round now would most likely be too
    if not shares:
        why = "this system shows no CPU time per thread, so a loop run by one thread cannot be "
        why += "told from cores kept busy by other programs"
    elif cores_got < BUSY_CORES:
        why = "the loop was split between threads, but other programs kept the cores busy"
    else:
        why = "the loop was split between threads and got the cores, but the times were too "
        why += "uneven to judge"
    pytest.skip(
        f"no speedup could be measured (two threads against one, per round: "
        f"{', '.join(rounds)}; best times {best_one:.3f} s and {best_two:.3f} s): {why}; run "
        f"this test again when the machine is quieter"
    )
