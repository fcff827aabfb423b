# mypy: disable-error-code="untyped-decorator,attr-defined"
# (numba's decorators are untyped, and the kernel API, cuda.grid, cuda.shared, cuda.syncthreads
# and the rest, exists only while a kernel runs: mypy sees a module without it.)
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
from numba import cuda, float32

BLOCK = 64  # threads per block of block_sums_kernel, and the length of its shared tile
MAX_THREADS_PER_BLOCK = 1024  # CUDA's limit on the threads of one block

Vector = npt.NDArray[np.float32]


def blocks_for(n: int, threads_per_block: int) -> int:
    """How many blocks of `threads_per_block` threads give each of `n` elements a thread."""
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    if not 1 <= threads_per_block <= MAX_THREADS_PER_BLOCK:
        raise ValueError(
            f"threads_per_block must be between 1 and {MAX_THREADS_PER_BLOCK}, "
            f"not {threads_per_block}"
        )
    # Round up: the last block may be partial, and its extra threads do nothing.
    return (n + threads_per_block - 1) // threads_per_block


@cuda.jit
def saxpy_kernel(a: Any, x: Any, y: Any, out: Any) -> None:
    """out[i] = a * x[i] + y[i] in the thread of index i, for i < out.size."""
    i = cuda.grid(1)
    # The grid is rounded up to whole blocks: threads past the end must touch nothing.
    if i < out.size:
        out[i] = a * x[i] + y[i]


def saxpy(a: float, x: npt.ArrayLike, y: npt.ArrayLike, threads_per_block: int = 128) -> Vector:
    """a * x + y in float32, one GPU thread per element."""
    x_array, y_array = np.asarray(x), np.asarray(y)
    if x_array.ndim != 1 or x_array.shape != y_array.shape or x_array.size == 0:
        raise ValueError(
            f"x and y must be 1-D arrays of one length n >= 1, not shapes {x_array.shape} "
            f"and {y_array.shape}"
        )
    n = x_array.size
    # The kernel is compiled for float32: a float64 array would make it float64 throughout.
    d_x = cuda.to_device(np.ascontiguousarray(x_array, dtype=np.float32))
    d_y = cuda.to_device(np.ascontiguousarray(y_array, dtype=np.float32))
    d_out = cuda.device_array(n, dtype=np.float32)
    saxpy_kernel[blocks_for(n, threads_per_block), threads_per_block](
        np.float32(a), d_x, d_y, d_out
    )
    result: Vector = d_out.copy_to_host()
    return result


@cuda.jit
def scale_kernel(a: Any, x: Any, out: Any) -> None:
    """out[i] = a * x[i] for every i, whatever the number of threads."""
    # A grid-stride loop: the threads of the whole grid take turns over the array.
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        out[i] = a * x[i]


@cuda.jit
def block_sums_kernel(x: Any, sums: Any) -> None:
    """sums[b] = the float32 sum of block b's BLOCK elements, added up by a halving tree."""
    tile = cuda.shared.array(BLOCK, dtype=float32)
    t = cuda.threadIdx.x
    i = cuda.grid(1)
    # Threads past the end store 0, which adds nothing, and still take part in every step.
    if i < x.size:
        tile[t] = x[i]
    else:
        tile[t] = 0.0
    # Nobody adds a neighbour's element before the neighbour has stored it.
    cuda.syncthreads()
    s = BLOCK // 2
    while s > 0:
        if t < s:
            tile[t] = tile[t] + tile[t + s]
        # Outside the if, so the whole block reaches it: nobody reads this step's sums early.
        cuda.syncthreads()
        s //= 2
    # One writer per block: every other thread would write the same value again.
    if t == 0:
        sums[cuda.blockIdx.x] = tile[0]


def total(x: npt.ArrayLike) -> float:
    """The sum of x: block sums, then block sums of those, until one number is left."""
    array = np.asarray(x)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"x must be 1-D with at least one element, not of shape {array.shape}")
    # The sums stay on the device from pass to pass; only the last number comes back.
    values = cuda.to_device(np.ascontiguousarray(array, dtype=np.float32))
    while True:
        blocks = blocks_for(values.size, BLOCK)
        sums = cuda.device_array(blocks, dtype=np.float32)
        block_sums_kernel[blocks, BLOCK](values, sums)
        if blocks == 1:
            return float(sums.copy_to_host()[0])
        values = sums


@cuda.reduce
def sum_reduce(a: Any, b: Any) -> Any:
    """The sum of two elements: cuda.reduce builds a tree of these over an array."""
    # Any associative and commutative pair-wise operation: the tree adds in its own order.
    return a + b


@cuda.reduce
def max_reduce(a: Any, b: Any) -> Any:
    """The larger of two elements: cuda.reduce builds a tree of these over an array."""
    return max(a, b)


def largest(x: npt.ArrayLike) -> float:
    """The largest element of x, by cuda.reduce."""
    array = np.asarray(x)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"x must be 1-D with at least one element, not of shape {array.shape}")
    # init takes part in the reduction: an element of x can never be larger than the answer.
    return float(max_reduce(array, init=array[0]))
