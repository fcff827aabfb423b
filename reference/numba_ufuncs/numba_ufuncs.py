"""Kata `numba_ufuncs`: NumPy ufuncs and gufuncs compiled by Numba, where each one runs, and a loop that Numba splits between threads with `prange`.

A ufunc applies a scalar function to every element of its inputs, whatever their shape; a
gufunc (generalized ufunc) applies a function to whole sub-arrays, described by a layout such
as `(m,n),(n,p)->(m,p)`, and loops over the dimensions in front of them. `numba.vectorize`
and `numba.guvectorize` compile a Python function into one. Each signature you list becomes one
compiled loop, and NumPy picks, for the dtypes it is called with, the first loop in the list
that those dtypes cast to without loss. The `target` keyword decides where the loops run:
"cpu" (the default: in the calling thread), "parallel" (on Numba's threads) or "cuda" (on an
NVIDIA GPU). `numba.njit(parallel=True)` turns a `numba.prange` loop into a loop whose
iterations are shared among threads; a scalar that the loop adds to (`total += ...`) becomes
a reduction: each thread adds into its own copy, and the copies are added at the end.

Contract (the tests check each point):

- `smoothstep(x)` is `numba.vectorize` applied to the Python function of that name.
  §1 `smoothstep` returns, element by element, 0 where x <= 0, 1 where x >= 1, and
  3x^2 - 2x^3 in between; NaN stays NaN.
  §2 `smoothstep` is compiled for exactly two signatures, `float32(float32)` listed before
  `float64(float64)` (so `smoothstep.types == ['f->f', 'd->d']`): float32 input gives float32
  output, float64 input gives float64 output.
  §3 `smoothstep` computes int32 and int64 input (arrays, NumPy scalars and Python ints) in
  float64, as NumPy casts them to the float64 loop, and returns float64 (no integer
  signature is listed: int32 and int64 cast to float64 without loss, not to float32).
  §4 `smoothstep` behaves as a ufunc: it takes any shape (a 0-d scalar, an empty array, n
  dimensions) and returns that shape, and `smoothstep(x, out=y)` writes into `y` and returns
  `y`.
- `matmul_kernel(a, b, c)` is the core of the gufunc: one product of an (m, n) matrix `a` by
  an (n, p) matrix `b` into the (m, p) matrix `c`.
  §5 `matmul_kernel` sets every `c[i, j]` (i < m, j < p) to the sum over k < n of
  `a[i, k] * b[k, j]`, overwriting whatever `c` held (a gufunc's output starts uninitialized).
- `build_matmul(target)` returns `numba.guvectorize` applied to `matmul_kernel`.
  §6 `build_matmul` uses the layout `(m,n),(n,p)->(m,p)` (other letters in the same pattern
  are the same layout): `(..., m, n)` and `(..., n, p)` inputs give an `(..., m, p)` result,
  the leading dimensions broadcast as in `numpy.matmul`, and the gufunc itself raises
  `ValueError` when the two inputs' n differ.
  §7 `build_matmul` compiles two signatures, float32 arrays listed before float64 arrays:
  float32 inputs give a float32 result and float64 inputs a float64 one, equal to
  `numpy.matmul`'s to that dtype's precision.
  §8 `build_matmul` compiles for the `target` it is given, "cpu", "parallel" or "cuda" (on
  Numba's CUDA simulator where there is no GPU), by passing it to `numba.guvectorize`, whose
  own target is "cpu" when none is given: the mistake of the book's recipe, whose gufunc was
  meant for the GPU and never ran there.
  §9 `build_matmul` raises `ValueError` naming the three targets ("cpu", "parallel", "cuda")
  for any other target, such as NumbaPro's old "gpu".
  §10 `build_matmul` compiles once per target: a second call with the same target returns the
  same object (`functools.cache`).
- `pi_midpoint(n)` approximates π by the midpoint rule: the integral of 4 / (1 + x²) from 0
  to 1, in n slices.
  §11 `pi_midpoint` returns, as a float, h times the sum over i < n of 4 / (1 + x_i²), where
  h = 1 / n and x_i = (i + 0.5) h, computed in float64.
  §12 `pi_midpoint` raises `ValueError` when n < 1.
  §13 `pi_midpoint` is compiled by `numba.njit(parallel=True)`, and its loop over i is a
  `numba.prange` loop that adds into a scalar (`total += ...`), which Numba makes a reduction:
  adding into an array element (`acc[0] += ...`) from every iteration is a data race between
  the threads.
  §14 `pi_midpoint` computes a large n at least 1.2 times faster on two threads than on one.
"""

from __future__ import annotations

import functools
from typing import Any

import numba
import numpy as np  # noqa: F401  # given with the stub; this solution needs none of it

# The three places Numba's ufunc builders can compile for.
TARGETS = ("cpu", "parallel", "cuda")


# float32 first: NumPy takes the first listed loop the input casts to without loss.
@numba.vectorize(["float32(float32)", "float64(float64)"])  # type: ignore[untyped-decorator,no-untyped-call]
def smoothstep(x: float) -> float:
    """0 below 0, 1 above 1, and the smooth cubic 3x^2 - 2x^3 in between."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    # NaN fails both comparisons above and comes out of the cubic as NaN.
    return x * x * (3.0 - 2.0 * x)


def matmul_kernel(a: Any, b: Any, c: Any) -> None:
    """c = a @ b for one (m, n) matrix a and one (n, p) matrix b: the gufunc's core."""
    m, n = a.shape
    p = b.shape[1]
    for i in range(m):
        for j in range(p):
            # A local total: c holds garbage until it is stored, so c is never read.
            total = 0.0
            for k in range(n):
                total += a[i, k] * b[k, j]
            c[i, j] = total


@functools.cache
def build_matmul(target: str) -> Any:
    """`matmul_kernel` as a gufunc with layout (m,n),(n,p)->(m,p), compiled for `target`."""
    # Checked here, so the message names the valid targets (Numba's own names none).
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    # target= is what decides where the loops run: without it, "cpu".
    return numba.guvectorize(  # type: ignore[no-untyped-call]
        [
            "void(float32[:,:], float32[:,:], float32[:,:])",
            "void(float64[:,:], float64[:,:], float64[:,:])",
        ],
        "(m,n),(n,p)->(m,p)",
        target=target,
    )(matmul_kernel)


@numba.njit(parallel=True)
def pi_midpoint(n: int) -> float:
    """π by the midpoint rule in n slices, the slices shared among Numba's threads."""
    if n < 1:
        raise ValueError("pi_midpoint needs n >= 1 slices")
    h = 1.0 / n
    # A scalar that the prange loop adds to: Numba gives each thread its own copy.
    total = 0.0
    for i in numba.prange(n):
        x = (i + 0.5) * h
        total += 4.0 / (1.0 + x * x)
    return total * h
