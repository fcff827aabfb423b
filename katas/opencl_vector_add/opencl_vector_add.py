"""Kata `opencl_vector_add`: two vectors added on an OpenCL device, from buffers to the result.

An OpenCL program has two halves. The host (this Python code) makes buffers on the device of
`queue` (its context is `queue.context`), copies the inputs into them, builds the kernel source
`KERNEL`, launches a kernel over an NDRange of work-items and copies the result back. The kernel
(OpenCL C) is what every work-item runs; here work-item i adds element i. A launch names a
global size (how many work-items in all) and a local size (how many share a work-group), and
the global size must be a multiple of the local size. For n elements the host rounds the
global size up, so the last work-group may hold work-items that have no element.

Contract (the tests check each point; a test's `[oclgrind]` run also fails on every read or
write outside a buffer, even when the numbers come out right):

- `launch_sizes(n, local)`:
  §1 `launch_sizes` returns `(global_size, local)`, where `global_size` is the smallest multiple
  of `local` that is at least `n`.
  §2 `launch_sizes` raises `ValueError` when `n < 1` or `local < 1`: there is nothing to
  launch, or no work-group to launch it in.
- `vector_add(queue, a, b)` and `int_add(queue, a, b)` take a `pyopencl.CommandQueue` and two
  1-D array-likes of one length n >= 1.
  §3 `vector_add` and `int_add` raise `ValueError`, with both shapes in the message (as `(3,)`
  and `(4,)`), when `a` or `b` is not 1-D, when their lengths differ, or when they are empty
  (OpenCL has no empty buffers), before they create any buffer or enqueue anything.
  §4 `vector_add` converts `a` and `b` with `np.ascontiguousarray(x, dtype=np.float32)`, and
  `int_add` with `np.ascontiguousarray(x, dtype=np.int32)`, before copying them to the device:
  the kernels read 4-byte `float`s and `int`s one after another, while NumPy's defaults are
  float64 and int64 (8 bytes each), and a view with a step is not one block of memory.
  §5 `vector_add` returns a new float32 array, and `int_add` a new int32 array, of length n
  holding `a + b` (the tests keep every sum within int32), for every n >= 1; both leave `a` and
  `b` unchanged.
  §6 `vector_add` and `int_add` copy each input into a buffer of its own made with
  `READ_ONLY | COPY_HOST_PTR`, and read the result back with `pyopencl.enqueue_copy` from a
  buffer made with `WRITE_ONLY` alone, of `n * 4` bytes (`c.nbytes`: a buffer's size is
  counted in bytes, not in elements).
  §7 `vector_add` and `int_add` build `KERNEL` and launch its kernel of their own name once,
  with global and local sizes `launch_sizes(n, LOCAL)` and `n` passed as `np.int32(n)` (the
  kernel's `const int n`).
- In `KERNEL`:
  §8 In kernels `vector_add` and `int_add`, work-item i = `get_global_id(0)` sets
  `c[i] = a[i] + b[i]` when i < n; a work-item with i >= n (one of those the rounding up
  added) reads and writes nothing, not even `a[i]`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyopencl as cl

# Work-items per work-group; vector_add and int_add launch their kernels in groups this size.
LOCAL = 64

KERNEL = r"""
__kernel void vector_add(__global const float *a, __global const float *b,
                         __global float *c, const int n)
{
    /* TODO(kata): i = get_global_id(0); only when i < n, set c[i] = a[i] + b[i]. The global
       size was rounded up, so work-items past n exist: they must not touch a, b or c. */
}

__kernel void int_add(__global const int *a, __global const int *b,
                      __global int *c, const int n)
{
    /* TODO(kata): the same for ints: guard with the index < n, then c = a + b there. */
}
"""

# An array as _vectors returns it: 1-D, contiguous, float32 or int32.
Vector = npt.NDArray[Any]


def launch_sizes(n: int, local: int) -> tuple[int, int]:
    """`(global_size, local)` for n work-items: global_size is n rounded up to a multiple of local."""
    # TODO(kata): raise ValueError if n < 1 or local < 1; else return
    # ((n + local - 1) // local * local, local).
    raise NotImplementedError


def _vectors(a: npt.ArrayLike, b: npt.ArrayLike, dtype: npt.DTypeLike) -> tuple[Vector, Vector]:
    """`a` and `b` checked (ValueError naming both shapes) and made contiguous `dtype` arrays."""
    # TODO(kata): x, y = np.asarray(a), np.asarray(b); raise ValueError (showing x.shape and
    # y.shape) unless both are 1-D, of one length, and not empty; return both converted with
    # np.ascontiguousarray(v, dtype=dtype).
    raise NotImplementedError


def _add_on_device(queue: cl.CommandQueue, kernel_name: str, a: Vector, b: Vector) -> Vector:
    """`a + b` by KERNEL's kernel `kernel_name`, for `a` and `b` as `_vectors` returns them."""
    # TODO(kata): in queue.context: cl.Buffer(context, READ_ONLY | COPY_HOST_PTR, hostbuf=...)
    # for a and for b; c = np.empty_like(a) and a WRITE_ONLY buffer of size=c.nbytes;
    # cl.Kernel(cl.Program(context, KERNEL).build(), kernel_name); launch it as
    # kernel(queue, (global,), (local,), a_buf, b_buf, c_buf, np.int32(n)) with the sizes from
    # launch_sizes(n, LOCAL); cl.enqueue_copy(queue, c, c_buf); return c.
    raise NotImplementedError


def vector_add(
    queue: cl.CommandQueue, a: npt.ArrayLike, b: npt.ArrayLike
) -> npt.NDArray[np.float32]:
    """`a + b` as a new float32 array, added by the kernel `vector_add` on `queue`'s device."""
    # TODO(kata): _vectors(a, b, np.float32), then _add_on_device with "vector_add".
    raise NotImplementedError


def int_add(queue: cl.CommandQueue, a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """`a + b` as a new int32 array, added by the kernel `int_add` on `queue`'s device."""
    # TODO(kata): _vectors(a, b, np.int32), then _add_on_device with "int_add". The dtype is
    # np.int32, not `int`: NumPy's `int` is int64, 8 bytes, while the kernel's int has 4.
    raise NotImplementedError
