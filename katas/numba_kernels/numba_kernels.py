"""Kata `numba_kernels`: CUDA kernels written in Python with Numba: a thread per element, a grid-stride loop, a block reduction in shared memory, and cuda.reduce.

A `@cuda.jit` function is a kernel. `kernel[blocks, threads_per_block](arguments)` launches it:
it runs once in every thread of a grid of `blocks` blocks of `threads_per_block` threads each.
Inside, `cuda.threadIdx.x` is the thread's index in its block, `cuda.blockIdx.x` the block's
index in the grid, `cuda.blockDim.x` the threads per block, `cuda.grid(1)` the thread's index
in the whole grid (blockIdx.x * blockDim.x + threadIdx.x) and `cuda.gridsize(1)` the number
of threads in the grid. A grid is made of whole blocks, so a launch for n elements rounds up,
and the last block may hold threads past the end of the data. The threads of one block share
`cuda.shared.array` memory and can wait for each other at `cuda.syncthreads()`; threads of
different blocks cannot wait for each other during a launch. Arrays go to the device with
`cuda.to_device(array)`, `cuda.device_array(n, dtype=...)` makes one there (float64 unless
told otherwise), and `copy_to_host()` brings one back.

Contract (the tests check each point; on Numba's CUDA simulator, the default without a GPU,
every test also fails on a data race in shared or global memory, on a read of shared memory that
no thread of the block wrote, and on a cuda.syncthreads() reached by only part of a block):

- Launch configuration:
  §1 `blocks_for(n, threads_per_block)` returns the fewest blocks of `threads_per_block`
  threads that give each of `n` elements a thread of its own: ceil(n / threads_per_block),
  computed in integers.
  §2 `blocks_for` raises `ValueError` naming the bad argument when `n < 1`, or when
  `threads_per_block` is not between 1 and `MAX_THREADS_PER_BLOCK` (1024, CUDA's limit).
- One thread per element:
  §3 `saxpy_kernel(a, x, y, out)` is a `cuda.jit` kernel in which the thread of index
  i = cuda.grid(1) sets `out[i] = a * x[i] + y[i]` if `i < out.size`, and does nothing
  otherwise: a thread past the end of the arrays (the grid is rounded up to whole blocks)
  reads and writes no element.
  §4 `saxpy(a, x, y, threads_per_block=128)` raises `ValueError`, with the shapes of x and y
  in its message, unless x and y are 1-D arrays of the same length n >= 1.
  §5 `saxpy` copies x and y to the device as contiguous float32 arrays
  (`np.ascontiguousarray(..., dtype=np.float32)`; x and y themselves are left unchanged),
  makes the output there with `cuda.device_array(n, dtype=np.float32)`, launches
  `saxpy_kernel[blocks_for(n, threads_per_block), threads_per_block]` with `np.float32(a)`,
  and returns the result copied back: a new float32 array of n elements.
- A grid-stride loop:
  §6 `scale_kernel(a, x, out)` is a `cuda.jit` kernel that sets `out[i] = a * x[i]` for every
  i < x.size, whatever the launch's size: each thread starts at i = cuda.grid(1) and steps by
  cuda.gridsize(1), so a grid smaller than the array covers all of it, one larger leaves its
  extra threads idle, and no element is written by two threads.
- A block reduction in shared memory: `block_sums_kernel(x, sums)` is a `cuda.jit` kernel
  launched with `BLOCK` threads per block and `blocks_for(x.size, BLOCK)` blocks; block b sums
  `x[b * BLOCK:(b + 1) * BLOCK]` into `sums[b]`, in float32.
  §7 In `block_sums_kernel`, thread t = cuda.threadIdx.x of a block stores its element `x[i]`
  (i = cuda.grid(1)) at `tile[t]` of a `cuda.shared.array(BLOCK, dtype=float32)`, or 0.0 when
  `i >= x.size`, without reading x there.
  §8 In `block_sums_kernel`, the block adds the tile up in steps s = BLOCK // 2, BLOCK // 4,
  ..., 1, in which each thread t < s sets `tile[t] = tile[t] + tile[t + s]`; then thread 0
  alone writes `tile[0]` to `sums[cuda.blockIdx.x]`. The sums are, bit for bit, the float32
  sums added in this order.
  §9 In `block_sums_kernel`, every thread of the block calls `cuda.syncthreads()` after storing
  its element and again after each step, so that no thread reads an element of the tile before
  the thread that writes it has done so; every thread reaches every one of these barriers (none
  returns early, none sits inside `if t < s`).
  §10 `total(x)` returns the sum of x as a Python float: `block_sums_kernel` on x as a
  contiguous float32 array, then on the block sums it returned, and so on until a launch
  returns a single number (one launch when n <= BLOCK); it raises `ValueError`, with x's
  shape in its message, unless x is 1-D with at least one element.
- `cuda.reduce` (B1's recipe: it writes the tree, the barriers and the passes for you):
  §11 `sum_reduce(a, b)` returns a + b, so the reducer `sum_reduce` (decorated with
  `cuda.reduce`) sums an array: `sum_reduce(np.arange(1, 10001, dtype=np.int64))` is 50005000.
  §12 `largest(x)` returns the largest element of the 1-D array x as a Python float, computed by
  `max_reduce(x, init=...)` with the init taken from x itself (`cuda.reduce` starts from
  `init=0` unless told otherwise, and 0 is larger than every negative number); it raises
  `ValueError` for an empty x.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import cuda, float32  # noqa: F401  # float32: for the tile you declare

BLOCK = 64  # threads per block of block_sums_kernel, and the length of its shared tile
MAX_THREADS_PER_BLOCK = 1024  # CUDA's limit on the threads of one block

Vector = npt.NDArray[np.float32]


def blocks_for(n: int, threads_per_block: int) -> int:
    """How many blocks of `threads_per_block` threads give each of `n` elements a thread."""
    # TODO(kata): raise ValueError naming n when n < 1, and naming threads_per_block unless
    # 1 <= threads_per_block <= MAX_THREADS_PER_BLOCK; then return ceil(n / threads_per_block)
    # in integers: (n + threads_per_block - 1) // threads_per_block.
    raise NotImplementedError


@cuda.jit
def saxpy_kernel(a: Any, x: Any, y: Any, out: Any) -> None:
    """out[i] = a * x[i] + y[i] in the thread of index i, for i < out.size."""
    # TODO(kata): i = cuda.grid(1); only if i < out.size: out[i] = a * x[i] + y[i].
    raise NotImplementedError


def saxpy(a: float, x: npt.ArrayLike, y: npt.ArrayLike, threads_per_block: int = 128) -> Vector:
    """a * x + y in float32, one GPU thread per element."""
    # TODO(kata): check x and y (1-D, same shape, n >= 1; ValueError with both shapes);
    # d_x = cuda.to_device(np.ascontiguousarray(x, dtype=np.float32)), the same for y;
    # d_out = cuda.device_array(n, dtype=np.float32); launch
    # saxpy_kernel[blocks_for(n, threads_per_block), threads_per_block](np.float32(a), d_x,
    # d_y, d_out); return d_out.copy_to_host().
    raise NotImplementedError


@cuda.jit
def scale_kernel(a: Any, x: Any, out: Any) -> None:
    """out[i] = a * x[i] for every i, whatever the number of threads."""
    # TODO(kata): for i in range(cuda.grid(1), x.size, cuda.gridsize(1)): out[i] = a * x[i].
    raise NotImplementedError


@cuda.jit
def block_sums_kernel(x: Any, sums: Any) -> None:
    """sums[b] = the float32 sum of block b's BLOCK elements, added up by a halving tree."""
    # TODO(kata): tile = cuda.shared.array(BLOCK, dtype=float32); t = cuda.threadIdx.x;
    # i = cuda.grid(1); tile[t] = x[i] if i < x.size, else 0.0; cuda.syncthreads(); then for
    # s = BLOCK // 2 down to 1, halving: if t < s: tile[t] = tile[t] + tile[t + s], and
    # cuda.syncthreads() after each step, outside the if. At the end thread 0 alone writes
    # sums[cuda.blockIdx.x] = tile[0].
    raise NotImplementedError


def total(x: npt.ArrayLike) -> float:
    """The sum of x: block sums, then block sums of those, until one number is left."""
    # TODO(kata): check x (1-D, at least one element; ValueError with its shape); values =
    # cuda.to_device(np.ascontiguousarray(x, dtype=np.float32)); repeat: blocks =
    # blocks_for(values.size, BLOCK), sums = cuda.device_array(blocks, dtype=np.float32),
    # block_sums_kernel[blocks, BLOCK](values, sums); when blocks == 1 return
    # float(sums.copy_to_host()[0]), else values = sums.
    raise NotImplementedError


@cuda.reduce
def sum_reduce(a: Any, b: Any) -> Any:
    """The sum of two elements: cuda.reduce builds a tree of these over an array."""
    # TODO(kata): return their sum.
    raise NotImplementedError


@cuda.reduce
def max_reduce(a: Any, b: Any) -> Any:
    """The larger of two elements: cuda.reduce builds a tree of these over an array."""
    return max(a, b)


def largest(x: npt.ArrayLike) -> float:
    """The largest element of x, by cuda.reduce."""
    # TODO(kata): array = np.asarray(x); ValueError (with its shape) unless it is 1-D and not
    # empty; return float(max_reduce(array, init=array[0])).
    raise NotImplementedError
