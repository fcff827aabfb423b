"""Kata `opencl_matmul`: matrix multiplication on an OpenCL device, naive, then tiled in local memory.

`c = a @ b` for `a` of shape (m, k) and `b` of shape (k, n): `c[i, j]` is the sum over `p` of
`a[i, p] * b[p, j]`. On the device a matrix is one buffer holding its rows one after another
(row-major), so `a[i, p]` is `a[i * k + p]`, `b[p, j]` is `b[p * n + j]` and `c[i, j]` is
`c[i * n + j]`: the row length is the stride, never a number written into the kernel. Both
kernels run one work-item per element of `c` on a 2-D NDRange whose dimension 0 counts columns
(`get_global_id(0)` is j) and dimension 1 rows (`get_global_id(1)` is i), as CUDA's
`threadIdx.x` does: work-items next to each other in dimension 0 then touch neighbouring
addresses of `b` and `c`, which a GPU reads and writes in one go. A launch's global size must
be a multiple of its local (work-group) size, so both are rounded up, and the work-items past
the last row or column of `c` exist and must be handled.

Contract (the tests check each point; a test's `[oclgrind]` run also fails on any data race,
any access outside a buffer, and any barrier reached by only part of a work-group):

- Both host functions take `queue` (a `pyopencl.CommandQueue`; its context is `queue.context`)
  and two 2-D NumPy arrays `a` and `b`.
  §1 `matmul_naive` and `matmul_tiled` raise `ValueError`, with both shapes in the message (as
  `(3, 4)` and `(5, 2)`), when `a` or `b` is not 2-D, when `a.shape[1] != b.shape[0]`, or when a
  dimension is 0 (OpenCL has no empty buffers).
  §2 `matmul_naive` and `matmul_tiled` accept any real dtype and any memory layout (float64,
  int, a transposed view, a slice with a step): they convert `a` and `b` with
  `np.ascontiguousarray(x, dtype=np.float32)` before copying them to the device, because the
  kernels read 4-byte `float`s, row after row.
  §3 `matmul_naive` and `matmul_tiled` return a new float32 array of shape (m, n) equal to
  `numpy.matmul(a, b)` at float32 tolerance, for every m, k, n >= 1, and leave `a` and `b`
  unchanged.
- `matmul_naive(queue, a, b)` builds `NAIVE_SOURCE` and runs its kernel `matmul_naive`.
  §4 `matmul_naive` launches local size `(GROUP, GROUP)` and global size `(n, m)` (columns,
  then rows) with each dimension rounded up to a multiple of `GROUP`.
  §5 In kernel `matmul_naive`, work-item (i, j) computes `c[i, j]` from row i of `a` and column j
  of `b`, indexed with the real row lengths k and n; a work-item outside `c` (i >= m or
  j >= n) reads and writes nothing.
- `matmul_tiled(queue, a, b, tile=8)` builds `TILED_SOURCE` with the option `-DTILE=<tile>` and
  runs its kernel `matmul_tiled`.
  §6 `matmul_tiled` raises `ValueError` naming `tile` when `tile < 1`, or when a tile's
  `tile * tile` work-items exceed `queue.device.max_work_group_size`.
  §7 `matmul_tiled` launches local size `(tile, tile)` and global size `(n, m)` (columns,
  then rows) with each dimension rounded up to a multiple of `tile`, so that each work-group
  computes one tile-by-tile block of `c`.
  §8 In kernel `matmul_tiled`, a work-group walks k in `ceil(k / TILE)` steps; at each step its
  work-items copy one TILE-by-TILE tile of `a` and one of `b` into two `__local` arrays of
  `TILE * TILE` floats, one element of each per work-item, and then add up their products from
  local memory.
  §9 In kernel `matmul_tiled`, a tile element that falls outside `a` or `b` (past row m, past
  column n, or past k) is stored as 0 without reading `a` or `b`, so the last, partial tile
  needs no special case in the sum.
  §10 In kernel `matmul_tiled`, every work-item calls `barrier(CLK_LOCAL_MEM_FENCE)` after
  storing its elements of a step's tiles (so that nobody reads a tile before it is complete)
  and again after its sum over them (so that nobody overwrites a tile a neighbour still reads).
  §11 In kernel `matmul_tiled`, every work-item of a group reaches every barrier, the ones
  outside `c` included: they load their tile elements like the others and skip only the
  write to `c`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyopencl as cl

# The naive kernel's work-groups are GROUP x GROUP work-items.
GROUP = 8

NAIVE_SOURCE = r"""
__kernel void matmul_naive(const int m, const int k, const int n,
                           __global const float *a, __global const float *b,
                           __global float *c)
{
    /* TODO(kata): j = get_global_id(0) (the column), i = get_global_id(1) (the row); return
       at once if i >= m or j >= n; else c[i * n + j] = the sum over p < k of
       a[i * k + p] * b[p * n + j]. */
}
"""

TILED_SOURCE = r"""
__kernel void matmul_tiled(const int m, const int k, const int n,
                           __global const float *a, __global const float *b,
                           __global float *c)
{
    /* TODO(kata): declare __local float a_tile[TILE][TILE] and b_tile[TILE][TILE]; with
       s = get_local_id(0), r = get_local_id(1), j = get_global_id(0), i = get_global_id(1)
       (column before row, as in matmul_naive), for each of the (k + TILE - 1) / TILE
       steps t: store a[i, t*TILE + s] in a_tile[r][s] and b[t*TILE + r, j] in b_tile[r][s]
       (0 where the index is past m, n or k), barrier, add a_tile[r][q] * b_tile[q][s] for
       q < TILE to the sum, barrier. After the loop, and only there, write c[i, j] if i < m
       and j < n. */
}
"""

Matrix = npt.NDArray[np.float32]


def _round_up(size: int, multiple: int) -> int:
    return (size + multiple - 1) // multiple * multiple


def _prepare(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[Matrix, Matrix]:
    """`a` and `b` checked (ValueError naming both shapes) and made C-contiguous float32."""
    # TODO(kata): np.asarray both; raise ValueError (with a.shape and b.shape in the message)
    # unless both are 2-D, non-empty and a.shape[1] == b.shape[0]; return both converted with
    # np.ascontiguousarray(x, dtype=np.float32).
    raise NotImplementedError


def _run(
    queue: cl.CommandQueue,
    kernel: cl.Kernel,
    a: Matrix,
    b: Matrix,
    local: int,
) -> Matrix:
    """Launch `kernel` on (n, m) rounded up to `local`, with `local` x `local` work-groups."""
    # TODO(kata): READ_ONLY | COPY_HOST_PTR buffers for a and b, a WRITE_ONLY one of c.nbytes
    # for c = np.empty((m, n), np.float32); kernel(queue, global_size, (local, local),
    # np.int32(m), np.int32(k), np.int32(n), the three buffers) with global_size (n, m), each
    # rounded up to a multiple of `local`; cl.enqueue_copy(queue, c, c_buffer); return c.
    raise NotImplementedError


def matmul_naive(queue: cl.CommandQueue, a: npt.ArrayLike, b: npt.ArrayLike) -> Matrix:
    """`a @ b` as float32, one work-item per element, reading a and b from global memory."""
    # TODO(kata): _prepare; build NAIVE_SOURCE in queue.context; _run its kernel
    # cl.Kernel(program, "matmul_naive") with work-groups of GROUP x GROUP.
    raise NotImplementedError


def matmul_tiled(
    queue: cl.CommandQueue, a: npt.ArrayLike, b: npt.ArrayLike, tile: int = 8
) -> Matrix:
    """`a @ b` as float32, each work-group sharing tile x tile blocks in local memory."""
    # TODO(kata): raise ValueError unless 1 <= tile * tile <= queue.device.max_work_group_size
    # (and tile >= 1); _prepare; build TILED_SOURCE with options=[f"-DTILE={tile}"]; _run its
    # kernel "matmul_tiled" with work-groups of tile x tile.
    raise NotImplementedError
