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
    const int i = get_global_id(0);
    /* The global size was rounded up: a work-item past n has no element, so it does nothing. */
    if (i < n)
        c[i] = a[i] + b[i];
}

__kernel void int_add(__global const int *a, __global const int *b,
                      __global int *c, const int n)
{
    const int j = get_global_id(0);
    /* The same guard: reading a[j] past n is already outside the buffer. */
    if (j < n)
        c[j] = a[j] + b[j];
}
"""

# An array as _vectors returns it: 1-D, contiguous, float32 or int32.
Vector = npt.NDArray[Any]


def launch_sizes(n: int, local: int) -> tuple[int, int]:
    """`(global_size, local)` for n work-items: global_size is n rounded up to a multiple of local."""
    if n < 1 or local < 1:
        raise ValueError(f"cannot launch n={n} work-items in work-groups of local={local}")
    # Rounded up, never down: the last group's spare work-items are cheaper than a lost tail.
    return (n + local - 1) // local * local, local


def _vectors(a: npt.ArrayLike, b: npt.ArrayLike, dtype: npt.DTypeLike) -> tuple[Vector, Vector]:
    """`a` and `b` checked (ValueError naming both shapes) and made contiguous `dtype` arrays."""
    x, y = np.asarray(a), np.asarray(b)
    shapes = f"a has shape {x.shape}, b has shape {y.shape}"
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"a and b must be 1-D vectors: {shapes}")
    if x.shape != y.shape:
        raise ValueError(f"a and b must have one length: {shapes}")
    if x.size == 0:
        raise ValueError(f"a and b are empty (OpenCL has no buffer of 0 bytes): {shapes}")
    # The kernel reads 4-byte numbers back to back: a copy of exactly that type and layout.
    return np.ascontiguousarray(x, dtype=dtype), np.ascontiguousarray(y, dtype=dtype)


def _add_on_device(queue: cl.CommandQueue, kernel_name: str, a: Vector, b: Vector) -> Vector:
    """`a + b` by KERNEL's kernel `kernel_name`, for `a` and `b` as `_vectors` returns them."""
    context = queue.context
    flags = cl.mem_flags
    # The kernel only reads the inputs and only writes the result: the flags say so.
    a_buffer = cl.Buffer(context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=a)
    b_buffer = cl.Buffer(context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=b)
    c = np.empty_like(a)
    c_buffer = cl.Buffer(context, flags.WRITE_ONLY, size=c.nbytes)
    program = cl.Program(context, KERNEL).build()
    kernel = cl.Kernel(program, kernel_name)
    global_size, local_size = launch_sizes(a.size, LOCAL)
    kernel(queue, (global_size,), (local_size,), a_buffer, b_buffer, c_buffer, np.int32(a.size))
    # Blocking by default: c holds the result when enqueue_copy returns.
    cl.enqueue_copy(queue, c, c_buffer)
    return c


def vector_add(
    queue: cl.CommandQueue, a: npt.ArrayLike, b: npt.ArrayLike
) -> npt.NDArray[np.float32]:
    """`a + b` as a new float32 array, added by the kernel `vector_add` on `queue`'s device."""
    # np.float32, never `float`: NumPy's `float` is float64, 8 bytes the kernel would misread.
    return _add_on_device(queue, "vector_add", *_vectors(a, b, np.float32))


def int_add(queue: cl.CommandQueue, a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """`a + b` as a new int32 array, added by the kernel `int_add` on `queue`'s device."""
    # np.int32, never `int`: NumPy's `int` is int64, two of the kernel's ints per number.
    return _add_on_device(queue, "int_add", *_vectors(a, b, np.int32))
