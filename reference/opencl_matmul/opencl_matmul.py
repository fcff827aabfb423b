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
    const int j = get_global_id(0);
    const int i = get_global_id(1);
    /* The global size was rounded up: the extra work-items have no element of c. */
    if (i >= m || j >= n)
        return;
    float sum = 0.0f;
    for (int p = 0; p < k; ++p)
        sum += a[i * k + p] * b[p * n + j];
    c[i * n + j] = sum;
}
"""

TILED_SOURCE = r"""
__kernel void matmul_tiled(const int m, const int k, const int n,
                           __global const float *a, __global const float *b,
                           __global float *c)
{
    __local float a_tile[TILE][TILE];
    __local float b_tile[TILE][TILE];
    const int s = get_local_id(0);
    const int r = get_local_id(1);
    const int j = get_global_id(0);
    const int i = get_global_id(1);
    float sum = 0.0f;
    /* Round up: a last, partial step covers the tail of k. */
    const int steps = (k + TILE - 1) / TILE;
    for (int t = 0; t < steps; ++t) {
        const int ap = t * TILE + s;
        const int bp = t * TILE + r;
        /* Each work-item loads one element of each tile; outside a or b it stores 0. */
        a_tile[r][s] = (i < m && ap < k) ? a[i * k + ap] : 0.0f;
        b_tile[r][s] = (bp < k && j < n) ? b[bp * n + j] : 0.0f;
        /* Nobody reads the tiles before every work-item has stored its element. */
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int q = 0; q < TILE; ++q)
            sum += a_tile[r][q] * b_tile[q][s];
        /* Nobody loads the next step's tiles while a neighbour still reads these. */
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    /* Only here may the work-items outside c drop out: every barrier is behind them. */
    if (i < m && j < n)
        c[i * n + j] = sum;
}
"""

Matrix = npt.NDArray[np.float32]


def _round_up(size: int, multiple: int) -> int:
    return (size + multiple - 1) // multiple * multiple


def _prepare(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[Matrix, Matrix]:
    """`a` and `b` checked (ValueError naming both shapes) and made C-contiguous float32."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or 0 in a.shape + b.shape:
        raise ValueError(
            f"cannot multiply a of shape {a.shape} by b of shape {b.shape}: both must be 2-D, "
            f"non-empty, and a's columns must be b's rows"
        )
    # The kernels read 4-byte floats row after row: any other dtype or layout is misread.
    return np.ascontiguousarray(a, dtype=np.float32), np.ascontiguousarray(b, dtype=np.float32)


def _run(
    queue: cl.CommandQueue,
    kernel: cl.Kernel,
    a: Matrix,
    b: Matrix,
    local: int,
) -> Matrix:
    """Launch `kernel` on (n, m) rounded up to `local`, with `local` x `local` work-groups."""
    (m, k), n = a.shape, b.shape[1]
    flags = cl.mem_flags
    a_buffer = cl.Buffer(queue.context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=a)
    b_buffer = cl.Buffer(queue.context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=b)
    c = np.empty((m, n), dtype=np.float32)
    c_buffer = cl.Buffer(queue.context, flags.WRITE_ONLY, c.nbytes)
    # Columns in dimension 0; a global size must be a multiple of the local size, so round up.
    global_size = (_round_up(n, local), _round_up(m, local))
    kernel(
        queue,
        global_size,
        (local, local),
        np.int32(m),
        np.int32(k),
        np.int32(n),
        a_buffer,
        b_buffer,
        c_buffer,
    )
    # A blocking copy: it returns once the kernel has run and c holds its result.
    cl.enqueue_copy(queue, c, c_buffer)
    return c


def matmul_naive(queue: cl.CommandQueue, a: npt.ArrayLike, b: npt.ArrayLike) -> Matrix:
    """`a @ b` as float32, one work-item per element, reading a and b from global memory."""
    a32, b32 = _prepare(a, b)
    program = cl.Program(queue.context, NAIVE_SOURCE).build()
    # GROUP x GROUP work-groups; the rounding in _run adds the work-items the kernel skips.
    return _run(queue, cl.Kernel(program, "matmul_naive"), a32, b32, GROUP)


def matmul_tiled(
    queue: cl.CommandQueue, a: npt.ArrayLike, b: npt.ArrayLike, tile: int = 8
) -> Matrix:
    """`a @ b` as float32, each work-group sharing tile x tile blocks in local memory."""
    if tile < 1 or tile * tile > queue.device.max_work_group_size:
        raise ValueError(
            f"tile={tile}: a work-group of tile * tile work-items must hold between 1 and "
            f"{queue.device.max_work_group_size} (this device's max_work_group_size)"
        )
    a32, b32 = _prepare(a, b)
    # The local arrays need their size when the kernel is compiled: TILE comes from -D.
    program = cl.Program(queue.context, TILED_SOURCE).build(options=[f"-DTILE={tile}"])
    return _run(queue, cl.Kernel(program, "matmul_tiled"), a32, b32, tile)
