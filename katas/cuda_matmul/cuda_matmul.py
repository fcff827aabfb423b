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
import pycuda.gpuarray as gpuarray  # noqa: F401  # for _multiply
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
    /* TODO(kata): col = blockIdx.x * blockDim.x + threadIdx.x, row = blockIdx.y * blockDim.y
       + threadIdx.y; return at once if row >= m or col >= n; else c[row * n + col] = the sum
       over p < k of a[row * k + p] * b[p * n + col]. */
}

__global__ void matmul_tiled(const int m, const int k, const int n,
                             const float *a, const float *b, float *c)
{
    /* TODO(kata): declare __shared__ float a_tile[MAX_TILE][MAX_TILE] and b_tile likewise;
       with tile = blockDim.x, s = threadIdx.x, r = threadIdx.y, col = blockIdx.x * tile + s,
       row = blockIdx.y * tile + r, for each of the (k + tile - 1) / tile steps t: store
       a[row, t*tile + s] in a_tile[r][s] and b[t*tile + r, col] in b_tile[r][s] (0 where the
       index is past m, n or k), __syncthreads(), add a_tile[r][q] * b_tile[q][s] for q < tile
       to the sum, __syncthreads(). After the loop, and only there, write c[row, col] if
       row < m and col < n. */
}
"""

Matrix = npt.NDArray[np.float32]


def _function(name: str) -> Any:
    """Kernel `name` of KERNELS, compiled for the current context (pycuda caches the build)."""
    return SourceModule(KERNELS).get_function(name)


def _prepare(a: npt.ArrayLike, b: npt.ArrayLike) -> tuple[Matrix, Matrix]:
    """`a` and `b` checked (ValueError naming both shapes) and made C-contiguous float32."""
    # TODO(kata): np.asarray both; raise ValueError (with a.shape and b.shape in the message)
    # unless both are 2-D, non-empty and a.shape[1] == b.shape[0]; return both converted with
    # np.ascontiguousarray(x, dtype=np.float32).
    raise NotImplementedError


def _multiply(function: Any, a: Matrix, b: Matrix, edge: int) -> Matrix:
    """Run `function` over c in blocks of edge x edge threads; c copied back to the host."""
    # TODO(kata): a_gpu = gpuarray.to_gpu(a), likewise b; c_gpu = gpuarray.empty((m, n),
    # dtype=np.float32); function(np.int32(m), np.int32(k), np.int32(n), a_gpu, b_gpu, c_gpu,
    # block=(edge, edge, 1), grid=(blocks over the n columns, blocks over the m rows), each
    # rounded up); return c_gpu.get().
    raise NotImplementedError


def matmul_naive(a: npt.ArrayLike, b: npt.ArrayLike) -> Matrix:
    """`a @ b` as float32, one thread per element, reading a and b from global memory."""
    # TODO(kata): _prepare; _multiply with _function("matmul_naive") and blocks of BLOCK x BLOCK.
    raise NotImplementedError


def matmul_tiled(a: npt.ArrayLike, b: npt.ArrayLike, tile: int = 16) -> Matrix:
    """`a @ b` as float32, each block sharing tile x tile blocks of a and b in shared memory."""
    # TODO(kata): raise ValueError naming tile unless 1 <= tile <= MAX_TILE; _prepare;
    # _multiply with _function("matmul_tiled") and blocks of tile x tile.
    raise NotImplementedError
