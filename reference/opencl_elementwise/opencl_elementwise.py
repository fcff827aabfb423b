"""Kata `opencl_elementwise`: arrays on an OpenCL device with pyopencl.array, and element-wise kernels of one line of C with ElementwiseKernel.

A `pyopencl.array.Array` is a NumPy-like array whose elements live in a buffer on the device of
a queue: `pyopencl.array.to_device(queue, a)` copies a NumPy array there, `.get()` copies it
back into a new NumPy array (waiting for every kernel queued before), and `+`, `*` with scalars
or other arrays run small kernels that pyopencl writes for you. For anything else,
`pyopencl.elementwise.ElementwiseKernel(context, arguments, operation, name)` writes the
kernel around one C statement: `arguments` is the kernel's argument list in C (`float *x` is an
array of 4-byte floats, `float a` one such float), `operation` is what to do for one index `i`
(`z[i] = 2*x[i]`), and pyopencl adds the loop over `i` from 0 to the length of the first array
argument. Nothing compares what you pass with what the list declares: a float64 array handed to
`float *x` is read as twice as many meaningless floats.

Contract (the tests check each point; a test's `[oclgrind]` run also fails on every read or
write outside an array, even when the numbers come out right):

- `to_device(queue, x)` takes a 1-D array-like of real numbers on the host.
  §1 `to_device` returns a new `pyopencl.array.Array` on `queue`, 1-D, C-contiguous and float32,
  holding `np.ascontiguousarray(x, dtype=np.float32)`, for every real 1-D array-like (float64,
  int64, a list, a view with a step such as `v[::2]`), and leaves `x` unchanged.
  §2 `to_device` raises `ValueError`, with x's shape in the message (as `(2, 3)` or `(0,)`),
  when `x` is not 1-D or has no element.
- `affine`, `lin_comb`, `clamp` and `diff` take each of `x` and `y` either as an array-like on
  the host or as a `pyopencl.array.Array` already on the device.
  §3 `affine`, `lin_comb`, `clamp` and `diff` copy a host `x` or `y` to the device with
  `to_device`, and use a `pyopencl.array.Array` as it is when it is 1-D float32, raising
  `ValueError` with its dtype and shape in the message when it is not: nothing converts an
  array that is already on the device, and the kernels read 4-byte floats.
  §4 `affine`, `lin_comb`, `clamp` and `diff` return a new float32 NumPy array, read back with
  `.get()` from a device array the kernel wrote, and never write into `x` or `y`, on the host or
  on the device.
- `affine(queue, x, scale, shift)`:
  §5 `affine` returns `scale * x + shift` (at float32 tolerance), computed on the device by
  pyopencl.array arithmetic, `x_d * np.float32(scale) + np.float32(shift)`, with both scalars
  converted to `np.float32` first: an `np.float64` or `np.int64` scalar makes pyopencl, like
  NumPy, promote the whole result to float64.
- `lin_comb(queue, a, x, b, y)`:
  §6 `lin_comb` raises `ValueError`, with both shapes in the message (as `(3,)` and `(4,)`),
  when `x` and `y` differ in length, without launching its kernel.
  §7 `lin_comb` returns `a * x + b * y` (at float32 tolerance), computed by one call of the
  ElementwiseKernel `lin_comb` built from `LIN_COMB_ARGUMENTS` and `LIN_COMB_OPERATION`, whose
  operation is `z[i] = a*x[i] + b*y[i]`.
  §8 `lin_comb`'s kernel declares exactly `float a, float *x, float b, float *y, float *z`, and
  `lin_comb` passes `a` and `b` to it as `np.float32`: ElementwiseKernel happens to convert
  other scalars to the declared type, but a kernel called directly does not (a Python float is
  refused there, and an np.float64 is 8 bytes for a 4-byte `float`).
- `clamp(queue, x, low, high)`:
  §9 `clamp` raises `ValueError`, with `low` and `high` in the message, unless `low <= high`
  (so also when either is NaN), without launching its kernel.
  §10 `clamp` returns `x` with every element below `low` replaced by `low` and every element
  above `high` by `high`, exactly as `np.clip` does in float32, computed by the ElementwiseKernel
  `clamp_between` (on PoCL a kernel named `clamp` is lost behind OpenCL's built-in `clamp`)
  built from `CLAMP_ARGUMENTS` and `CLAMP_OPERATION`, which declares exactly
  `float *x, float low, float high, float *z` and gets `low` and `high` as `np.float32`.
  §11 `clamp` leaves a NaN element NaN, as `np.clip` does. OpenCL's `clamp`, `fmin` and `fmax`
  return `low` for it (they treat NaN as a missing value); comparisons with `<` and `>` are
  false for NaN, so `x[i] < low ? low : (x[i] > high ? high : x[i])` keeps it.
- `diff(queue, x)`:
  §12 `diff` raises `ValueError`, with x's shape in the message, when `x` has fewer than 2
  elements.
  §13 `diff` returns the n - 1 differences `x[i+1] - x[i]`, exactly as `np.diff` does in
  float32, computed by the ElementwiseKernel `diff` built from `DIFF_ARGUMENTS` and
  `DIFF_OPERATION`, which declares exactly `float *x, float *z`, into a device array of n - 1
  elements.
  §14 `diff` launches its kernel over i = 0 .. n - 2 only, with `range=slice(0, n - 1)`:
  without it ElementwiseKernel runs i up to the length of its first array argument, x, and the
  last work-item reads x[n] and writes z[n - 1], past the ends of both arrays.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import pyopencl as cl
import pyopencl.array as cl_array
from pyopencl.elementwise import ElementwiseKernel

# Each ElementwiseKernel is two strings of OpenCL C: its argument list, and its operation for
# one index i (pyopencl writes the loop over i around it).
LIN_COMB_ARGUMENTS = "float a, float *x, float b, float *y, float *z"
LIN_COMB_OPERATION = "z[i] = a*x[i] + b*y[i]"
CLAMP_ARGUMENTS = "float *x, float low, float high, float *z"
# Comparisons with NaN are false, so a NaN falls through both tests and is copied as it is.
CLAMP_OPERATION = "z[i] = x[i] < low ? low : (x[i] > high ? high : x[i])"
DIFF_ARGUMENTS = "float *x, float *z"
DIFF_OPERATION = "z[i] = x[i+1] - x[i]"

# What the four functions take as x and y: an array-like on the host, or an array on the device.
Operand = npt.ArrayLike | cl_array.Array
Vector = npt.NDArray[np.float32]


@functools.lru_cache(maxsize=32)  # a build takes tens of milliseconds: once per context
def _elementwise(
    context: cl.Context, arguments: str, operation: str, name: str
) -> ElementwiseKernel:
    """The ElementwiseKernel `name` for `context`, built from its argument list and operation."""
    return ElementwiseKernel(context, arguments, operation, name)


def to_device(queue: cl.CommandQueue, x: npt.ArrayLike) -> cl_array.Array:
    """A new float32 device array on `queue` holding the host vector `x`."""
    array = np.asarray(x)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"x must be a vector of at least one number; its shape is {array.shape}")
    # 4-byte floats one after another: what `float *` reads, whatever dtype or step x had.
    host = np.ascontiguousarray(array, dtype=np.float32)
    return cl_array.to_device(queue, host)


def _operand(queue: cl.CommandQueue, v: Operand) -> cl_array.Array:
    """`v` on the device: a 1-D float32 device array as it is, anything else via to_device."""
    if isinstance(v, cl_array.Array):
        # Already on the device: converting it would be a kernel of its own, so refuse instead.
        if v.ndim != 1 or v.dtype != np.float32:
            raise ValueError(
                f"a device array must be a float32 vector: this one is {v.dtype} of shape {v.shape}"
            )
        return v
    return to_device(queue, v)


def affine(queue: cl.CommandQueue, x: Operand, scale: float, shift: float) -> Vector:
    """`scale * x + shift` in float32, by pyopencl.array arithmetic on the device."""
    # np.float32 scalars keep the result float32; each operator makes a new device array.
    result = _operand(queue, x) * np.float32(scale) + np.float32(shift)
    return result.get()


def lin_comb(queue: cl.CommandQueue, a: float, x: Operand, b: float, y: Operand) -> Vector:
    """`a * x + b * y` in float32, by the ElementwiseKernel `lin_comb`."""
    x_d, y_d = _operand(queue, x), _operand(queue, y)
    if x_d.shape != y_d.shape:
        raise ValueError(f"x and y must have one length: shapes {x_d.shape} and {y_d.shape}")
    # A result array of its own: writing into x_d would change a caller's device array.
    z = cl_array.empty_like(x_d)
    kernel = _elementwise(queue.context, LIN_COMB_ARGUMENTS, LIN_COMB_OPERATION, "lin_comb")
    # The scalars as the 4-byte floats the argument list declares.
    kernel(np.float32(a), x_d, np.float32(b), y_d, z)
    # get() waits for the kernel (same queue, in order) and copies z into a new NumPy array.
    return z.get()  # type: ignore[no-any-return]


def clamp(queue: cl.CommandQueue, x: Operand, low: float, high: float) -> Vector:
    """`x` held between `low` and `high`, NaN kept, by the ElementwiseKernel `clamp_between`."""
    # `not low <= high` is true for NaN bounds too, where `low > high` is false.
    if not low <= high:
        raise ValueError(f"clamp needs low <= high, got low={low} and high={high}")
    x_d = _operand(queue, x)
    z = cl_array.empty_like(x_d)
    kernel = _elementwise(queue.context, CLAMP_ARGUMENTS, CLAMP_OPERATION, "clamp_between")
    # low and high in the argument order CLAMP_ARGUMENTS declares: x, low, high, z.
    kernel(x_d, np.float32(low), np.float32(high), z)
    return z.get()  # type: ignore[no-any-return]


def diff(queue: cl.CommandQueue, x: Operand) -> Vector:
    """The n - 1 differences `x[i+1] - x[i]` in float32, by the ElementwiseKernel `diff`."""
    x_d = _operand(queue, x)
    n = x_d.size
    if n < 2:
        raise ValueError(f"diff needs at least 2 elements; x has shape {x_d.shape}")
    z = cl_array.empty(queue, n - 1, np.float32)
    kernel = _elementwise(queue.context, DIFF_ARGUMENTS, DIFF_OPERATION, "diff")
    # Only n - 1 indices: the loop would otherwise run to x's length and i + 1 would reach n.
    kernel(x_d, z, range=slice(0, n - 1))
    return z.get()
