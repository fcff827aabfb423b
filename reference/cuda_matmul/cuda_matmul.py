"""Kata `cuda_matmul`: matrix multiplication on an NVIDIA GPU with PyCUDA, naive, then tiled in shared memory.

`c = a @ b` for `a` of shape (m, k) and `b` of shape (k, n): `c[row, col]` is the sum over `p`
of `a[row, p] * b[p, col]`. On the GPU a matrix is one allocation holding its rows one after
another (row-major), so `a[row, p]` is `a[row * k + p]`, `b[p, col]` is `b[p * n + col]` and
`c[row, col]` is `c[row * n + col]`: the row length is the stride, never a number written into
the kernel. Both kernels of `KERNELS` run one thread per element of `c` on a 2-D grid of 2-D
blocks whose x axis counts columns and y axis rows (`col = blockIdx.x * blockDim.x +
threadIdx.x`, `row = blockIdx.y * blockDim.y + threadIdx.y`): the 32 threads of a warp are
neighbours in x, so they read neighbouring addresses of `b` and write neighbouring addresses of
`c`, which the GPU serves in one transaction. A grid is made of whole blocks, so its size is
rounded up, and the threads past the last row or column of `c` exist and must be handled. The
sizes are kernel arguments, so one compiled module serves every shape; `_function` compiles
`KERNELS` with `pycuda.compiler.SourceModule` (pycuda keeps the build on disk) and looks a
kernel up by name. The tests make a CUDA context current before they call anything.

Contract (the tests check each point):

- Both host functions take two 2-D NumPy arrays `a` and `b`.
  §1 `matmul_naive` and `matmul_tiled` raise `ValueError`, with both shapes in the message (as
  `(3, 4)` and `(5, 2)`), when `a` or `b` is not 2-D, when `a.shape[1] != b.shape[0]`, or when a
  dimension is 0 (a grid of no blocks is no launch).
  §2 `matmul_naive` and `matmul_tiled` accept any real dtype and any memory layout (float64,
  int, a transposed view, a slice with a step): they convert `a` and `b` with
  `np.ascontiguousarray(x, dtype=np.float32)` before copying them to the GPU, because the
  kernels read 4-byte `float`s, row after row, and they leave `a` and `b` unchanged.
  §3 `matmul_naive` and `matmul_tiled` return a new float32 NumPy array of shape (m, n) equal
  to `numpy.matmul(a, b)` at float32 tolerance, for every m, k, n >= 1.
- `matmul_naive(a, b)` runs kernel `matmul_naive`.
  §4 `matmul_naive` launches blocks of `(BLOCK, BLOCK, 1)` threads on a grid of
  `(ceil(n / BLOCK), ceil(m / BLOCK))` blocks: columns in x, rows in y, each rounded up.
  §5 In kernel `matmul_naive`, the thread at (row, col) computes `c[row, col]` from row `row` of
  `a` and column `col` of `b`, indexed with the real row lengths k and n; a thread outside `c`
  (row >= m or col >= n) reads and writes nothing.
- `matmul_tiled(a, b, tile=16)` runs kernel `matmul_tiled`.
  §6 `matmul_tiled` raises `ValueError` naming `tile` unless 1 <= `tile` <= `MAX_TILE` (32: a
  block of 32 x 32 threads is the 1,024 a block may hold).
  §7 `matmul_tiled` launches blocks of `(tile, tile, 1)` threads on a grid of
  `(ceil(n / tile), ceil(m / tile))` blocks, so that each block computes one tile-by-tile
  block of `c`; its kernel declares two `__shared__ float` arrays of `MAX_TILE` x `MAX_TILE`
  (the tests read the kernel's static shared memory: at least `2 * tile * tile * 4` bytes).
  §8 In kernel `matmul_tiled`, with `tile = blockDim.x`, a block walks k in
  `ceil(k / tile)` steps; at each step each thread copies one element of a tile-by-tile tile
  of `a` and one of `b` into the shared arrays, and then adds up the products of its row of the
  `a` tile and its column of the `b` tile from shared memory.
  §9 In kernel `matmul_tiled`, a tile element that falls outside `a` or `b` (past row m, past
  column n, or past k) is stored as 0, without reading `a` or `b`: skipping the store would
  leave the previous step's value there, and the last, partial tile needs no special case in
  the sum only because its missing elements are zeros.
  §10 In kernel `matmul_tiled`, every thread calls `__syncthreads()` after storing its
  elements of a step's tiles (so that nobody reads a tile before it is complete) and again
  after its sum over them (so that nobody overwrites a tile a neighbour still reads).
  §11 In kernel `matmul_tiled`, every thread of a block reaches every `__syncthreads()`, the
  ones outside `c` included: they load their tile elements like the others and skip only the
  write to `c`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pycuda.gpuarray as gpuarray
from pycuda.compiler import SourceModule

# The naive kernel's blocks are BLOCK x BLOCK threads.
BLOCK = 16
# The largest tile: a block of MAX_TILE x MAX_TILE threads is the most a block may hold.
MAX_TILE = 32

KERNELS = r"""
#define MAX_TILE 32

__global__ void matmul_naive(const int m, const int k, const int n,
                             const float *a, const float *b, float *c)
{
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    const int row = blockIdx.y * blockDim.y + threadIdx.y;
    /* The grid was rounded up to whole blocks: the extra threads have no element of c. */
    if (row >= m || col >= n)
        return;
    float sum = 0.0f;
    for (int p = 0; p < k; ++p)
        sum += a[row * k + p] * b[p * n + col];
    c[row * n + col] = sum;
}

__global__ void matmul_tiled(const int m, const int k, const int n,
                             const float *a, const float *b, float *c)
{
    __shared__ float a_tile[MAX_TILE][MAX_TILE];
    __shared__ float b_tile[MAX_TILE][MAX_TILE];
    const int tile = blockDim.x;
    const int s = threadIdx.x;
    const int r = threadIdx.y;
    const int col = blockIdx.x * tile + s;
    const int row = blockIdx.y * tile + r;
    float sum = 0.0f;
    /* Round up: a last, partial step covers the tail of k. */
    const int steps = (k + tile - 1) / tile;
    for (int t = 0; t < steps; ++t) {
        const int ap = t * tile + s;
        const int bp = t * tile + r;
        /* Each thread stores one element of each tile, and 0 outside a or b: never nothing. */
        a_tile[r][s] = (row < m && ap < k) ? a[row * k + ap] : 0.0f;
        b_tile[r][s] = (bp < k && col < n) ? b[bp * n + col] : 0.0f;
        /* Nobody reads the tiles before every thread has stored its element. */
        __syncthreads();
        for (int q = 0; q < tile; ++q)
            sum += a_tile[r][q] * b_tile[q][s];
        /* Nobody stores the next step's tiles while a neighbour still reads these. */
        __syncthreads();
    }
    /* Only here may the threads outside c drop out: every barrier is behind them. */
    if (row < m && col < n)
        c[row * n + col] = sum;
}
"""

Matrix = npt.NDArray[np.float32]


def _function(name: str) -> Any:
    """Kernel `name` of KERNELS, compiled for the current context (pycuda caches the build)."""
    return SourceModule(KERNELS).get_function(name)


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


def _multiply(function: Any, a: Matrix, b: Matrix, edge: int) -> Matrix:
    """Run `function` over c in blocks of edge x edge threads; c copied back to the host."""
    (m, k), n = a.shape, b.shape[1]
    a_gpu, b_gpu = gpuarray.to_gpu(a), gpuarray.to_gpu(b)
    c_gpu = gpuarray.empty((m, n), dtype=np.float32)
    # Columns in x, rows in y; whole blocks, so round up (the kernels skip the extra threads).
    grid = ((n + edge - 1) // edge, (m + edge - 1) // edge)
    function(
        np.int32(m),
        np.int32(k),
        np.int32(n),
        a_gpu,
        b_gpu,
        c_gpu,
        block=(edge, edge, 1),
        grid=grid,
    )
    # get() waits for the kernel (same stream) and returns a new host array.
    result: Matrix = c_gpu.get()
    return result


def matmul_naive(a: npt.ArrayLike, b: npt.ArrayLike) -> Matrix:
    """`a @ b` as float32, one thread per element, reading a and b from global memory."""
    a32, b32 = _prepare(a, b)
    # BLOCK x BLOCK threads a block; _multiply's rounding adds the threads the kernel skips.
    return _multiply(_function("matmul_naive"), a32, b32, BLOCK)


def matmul_tiled(a: npt.ArrayLike, b: npt.ArrayLike, tile: int = 16) -> Matrix:
    """`a @ b` as float32, each block sharing tile x tile blocks of a and b in shared memory."""
    if not 1 <= tile <= MAX_TILE:
        raise ValueError(
            f"tile={tile}: a block of tile x tile threads needs 1 <= tile <= {MAX_TILE} "
            f"(the shared arrays are {MAX_TILE} x {MAX_TILE}, and a block holds 1,024 threads)"
        )
    a32, b32 = _prepare(a, b)
    # The kernel reads its tile size from blockDim.x: one compiled module serves every tile.
    return _multiply(_function("matmul_tiled"), a32, b32, tile)
