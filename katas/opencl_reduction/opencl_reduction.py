"""Kata `opencl_reduction`: summing an array on an OpenCL device, by hand with a tree in local memory, then with pyopencl's ReductionKernel.

A reduction turns n numbers into one. On a device it is done in passes: each work-group of
`local_size` work-items sums its own slice of `local_size` elements and writes one partial sum,
so a pass turns n numbers into ceil(n / local_size); the next pass sums those, and so on until
one number is left. Inside a group the sum is a tree in local memory (`__local`, fast and
shared by the group): every work-item copies its element into a `__local` array `scratch`,
then at each step the first half of the still active part adds the second half to itself
(`scratch[l] += scratch[l + s]` for l < s), halving s from local_size/2 down to 1, until
`scratch[0]` holds the group's sum. A step reads what other work-items wrote in the step before,
so every work-item waits at `barrier(CLK_LOCAL_MEM_FENCE)` between steps, and a barrier must be
reached by every work-item of the group or by none. Floating-point addition is not associative:
the order of the additions decides the last bits of a float32 sum, so this contract fixes the
tree, and the tests compare its result bit for bit. `pyopencl.reduction.ReductionKernel` writes
such kernels for you from three C expressions: what to map each element to, how to combine two
values, and the neutral value that changes nothing.

Contract (the tests check each point; a test's `[oclgrind]` run also fails on any data race,
any access outside a buffer, and any barrier reached by only part of a work-group):

- The three host functions take `queue` (a `pyopencl.CommandQueue`; its context is
  `queue.context`) and `x`, a 1-D array of n >= 1 numbers.
  §1 `block_sums`, `total` and `sum_of_squares` raise `ValueError`, with `x`'s shape in the
  message (as `(2, 3)` or `(0,)`), when `x` is not 1-D or has no element (OpenCL has no empty
  buffers).
  §2 `block_sums`, `total` and `sum_of_squares` accept any real dtype and any 1-D view (float64,
  int64, `x[::2]`): they convert `x` with `np.ascontiguousarray(x, dtype=np.float32)` before
  copying it to the device, because the kernels read 4-byte floats one after another, and they
  leave `x` unchanged.
- `block_sums(queue, x, local_size=64)` runs kernel `block_sums` of `KERNEL` (built by
  `_program`, once per context) with `groups = ceil(n / local_size)` work-groups.
  §3 `block_sums` raises `ValueError` naming `local_size` unless `local_size` is a power of two
  (1, 2, 4, 8, ...) no larger than `queue.device.max_work_group_size`: the tree halves the
  group at each step, and the device refuses larger groups.
  §4 `block_sums` launches local size `(local_size,)` and global size
  `(groups * local_size,)`, n rounded up to whole groups, and gives the kernel
  `cl.LocalMemory(4 * local_size)` as `scratch`: room for one float per work-item.
  §5 `block_sums` returns a new float32 array of `groups` elements whose element g is the sum
  of `x[g * local_size:(g + 1) * local_size]` at float32 tolerance, the last slice being
  shorter when n is not a multiple of `local_size`.
  §6 In kernel `block_sums`, work-item l of a group stores its element `x[i]`
  (`i = get_global_id(0)`) in `scratch[l]`, or 0 when `i >= n`, without reading `x` there.
  §7 In kernel `block_sums`, the group adds up `scratch` in steps s = local_size / 2,
  local_size / 4, ..., 1, in which each work-item l < s sets
  `scratch[l] = scratch[l] + scratch[l + s]`; then work-item 0 alone writes `scratch[0]` to
  `sums[get_group_id(0)]`. The sums are, bit for bit, the float32 sums added in this order.
  §8 In kernel `block_sums`, every work-item calls `barrier(CLK_LOCAL_MEM_FENCE)` after storing
  its element and again after each step, so that no work-item reads an element of `scratch`
  before the work-item that writes it has done so.
  §9 In kernel `block_sums`, every work-item of a group reaches every barrier, those past the
  end of `x` and those with l >= s included: none returns early, and no barrier sits inside
  `if (l < s)`.
- `total(queue, x, local_size=64)`:
  §10 `total` raises `ValueError` naming `local_size` when `local_size < 2`: a pass with groups
  of one work-item returns as many numbers as it was given, and the passes would never end.
  §11 `total` returns the sum of `x` as a Python float, computed by `block_sums(queue, x,
  local_size)`, then `block_sums` of that pass's result, and so on until a pass returns a single
  number: ceil(log(n) / log(local_size)) passes, and one when n <= local_size.
- `sum_of_squares(queue, x)`:
  §12 `sum_of_squares` returns the sum of the squares of `x` as a Python float at float32
  tolerance, computed on the device by a `pyopencl.reduction.ReductionKernel` with
  `dtype_out=np.float32`, `neutral="0"`, `reduce_expr="a+b"`, `map_expr="x[i]*x[i]"` and
  `arguments="__global const float *x"`, called on a `pyopencl.array` copy of `x`.
"""

from __future__ import annotations

import weakref

import numpy as np
import numpy.typing as npt
import pyopencl as cl
import pyopencl.array as cl_array  # noqa: F401  # for sum_of_squares, which you write
from pyopencl.reduction import ReductionKernel  # noqa: F401  # for sum_of_squares, too

KERNEL = r"""
__kernel void block_sums(__global const float *x, const int n,
                         __global float *sums, __local float *scratch)
{
    /* TODO(kata): with i = get_global_id(0) and l = get_local_id(0): scratch[l] = x[i], or
       0.0f when i >= n (without reading x); barrier(CLK_LOCAL_MEM_FENCE); then for s from
       get_local_size(0) / 2 down to 1, halving: if l < s, scratch[l] = scratch[l] +
       scratch[l + s]; and a barrier after each step, outside the if. At the end, work-item 0
       alone writes scratch[0] to sums[get_group_id(0)]. */
}
"""

Vector = npt.NDArray[np.float32]

_programs: weakref.WeakKeyDictionary[cl.Context, cl.Program] = weakref.WeakKeyDictionary()


def _program(context: cl.Context) -> cl.Program:
    """`KERNEL` built for `context`, once per context (a build takes tens of milliseconds)."""
    program = _programs.get(context)
    if program is None:
        program = _programs[context] = cl.Program(context, KERNEL).build()
    return program


def _as_float32(x: npt.ArrayLike) -> Vector:
    """`x` checked (ValueError naming its shape) and made a C-contiguous float32 array."""
    # TODO(kata): array = np.asarray(x); raise ValueError (with array.shape in the message)
    # unless array.ndim == 1 and array.size > 0; return np.ascontiguousarray(array,
    # dtype=np.float32).
    raise NotImplementedError


def block_sums(queue: cl.CommandQueue, x: npt.ArrayLike, local_size: int = 64) -> Vector:
    """One float32 sum per work-group of `local_size` elements, each added up by a tree."""
    # TODO(kata): raise ValueError naming local_size unless it is a power of two (>= 1, and
    # local_size & (local_size - 1) == 0) <= queue.device.max_work_group_size; x32 =
    # _as_float32(x); groups = ceil(n / local_size); a READ_ONLY | COPY_HOST_PTR buffer of x32,
    # sums = np.empty(groups, np.float32) and a WRITE_ONLY buffer of sums.nbytes; kernel =
    # cl.Kernel(_program(queue.context), "block_sums"); kernel(queue, (groups * local_size,),
    # (local_size,), x_buffer, np.int32(n), sums_buffer, cl.LocalMemory(4 * local_size));
    # cl.enqueue_copy(queue, sums, sums_buffer); return sums.
    raise NotImplementedError


def total(queue: cl.CommandQueue, x: npt.ArrayLike, local_size: int = 64) -> float:
    """The sum of `x`: block sums of block sums, until one number is left."""
    # TODO(kata): raise ValueError naming local_size if local_size < 2; sums =
    # block_sums(queue, x, local_size); while sums has more than one element, sums =
    # block_sums(queue, sums, local_size); return float(sums[0]).
    raise NotImplementedError


def sum_of_squares(queue: cl.CommandQueue, x: npt.ArrayLike) -> float:
    """The sum of x[i] * x[i] in float32, by a pyopencl ReductionKernel."""
    # TODO(kata): x32 = _as_float32(x); kernel = ReductionKernel(queue.context, np.float32,
    # neutral="0", reduce_expr="a+b", map_expr="x[i]*x[i]", arguments="__global const float
    # *x"); call it on cl_array.to_device(queue, x32) and return float(result.get()).
    raise NotImplementedError
