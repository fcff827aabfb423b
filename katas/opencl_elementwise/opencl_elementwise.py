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
LIN_COMB_ARGUMENTS = "/* TODO(kata): a, x, b, y and z, in that order, each with its C type */"
LIN_COMB_OPERATION = "/* TODO(kata): z[i] from a, x[i], b and y[i] */"
CLAMP_ARGUMENTS = "/* TODO(kata): x, low, high and z, in that order, each with its C type */"
CLAMP_OPERATION = "/* TODO(kata): z[i] is x[i] held between low and high; NaN stays NaN */"
DIFF_ARGUMENTS = "/* TODO(kata): x and z, in that order, each with its C type */"
DIFF_OPERATION = "/* TODO(kata): z[i], the step from x[i] to x[i+1] */"

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
    # TODO(kata): host = np.ascontiguousarray(x, dtype=np.float32) after checking np.asarray(x)
    # (ValueError with its shape unless 1-D and not empty); return cl_array.to_device(queue, host).
    raise NotImplementedError


def _operand(queue: cl.CommandQueue, v: Operand) -> cl_array.Array:
    """`v` on the device: a 1-D float32 device array as it is, anything else via to_device."""
    # TODO(kata): if v is a cl_array.Array: raise ValueError (with v.dtype and v.shape) unless
    # v.ndim == 1 and v.dtype == np.float32, else return v itself; otherwise to_device(queue, v).
    raise NotImplementedError


def affine(queue: cl.CommandQueue, x: Operand, scale: float, shift: float) -> Vector:
    """`scale * x + shift` in float32, by pyopencl.array arithmetic on the device."""
    # TODO(kata): (_operand(queue, x) * np.float32(scale) + np.float32(shift)).get(): a new
    # device array (never *= on x's), and scalars that keep the result float32.
    raise NotImplementedError


def lin_comb(queue: cl.CommandQueue, a: float, x: Operand, b: float, y: Operand) -> Vector:
    """`a * x + b * y` in float32, by the ElementwiseKernel `lin_comb`."""
    # TODO(kata): x_d, y_d = _operand(...) for both; ValueError naming both shapes if they
    # differ; z = cl_array.empty_like(x_d); kernel = _elementwise(queue.context,
    # LIN_COMB_ARGUMENTS, LIN_COMB_OPERATION, "lin_comb"); kernel(np.float32(a), x_d,
    # np.float32(b), y_d, z); return z.get(), after the kernel, never before it.
    raise NotImplementedError


def clamp(queue: cl.CommandQueue, x: Operand, low: float, high: float) -> Vector:
    """`x` held between `low` and `high`, NaN kept, by the ElementwiseKernel `clamp_between`."""
    # TODO(kata): ValueError naming low and high unless low <= high; x_d = _operand(queue, x);
    # z = cl_array.empty_like(x_d); the kernel "clamp_between" from CLAMP_ARGUMENTS and
    # CLAMP_OPERATION, called as kernel(x_d, np.float32(low), np.float32(high), z); return z.get().
    raise NotImplementedError


def diff(queue: cl.CommandQueue, x: Operand) -> Vector:
    """The n - 1 differences `x[i+1] - x[i]` in float32, by the ElementwiseKernel `diff`."""
    # TODO(kata): x_d = _operand(queue, x); ValueError with x_d.shape if x_d.size < 2;
    # z = cl_array.empty(queue, x_d.size - 1, np.float32); the kernel "diff" from DIFF_ARGUMENTS
    # and DIFF_OPERATION, called as kernel(x_d, z, range=slice(0, x_d.size - 1)); return z.get().
    raise NotImplementedError
