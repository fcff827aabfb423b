# mypy: disable-error-code="untyped-decorator"
# (pycuda ships no type hints, so context_dependent_memoize would make its functions untyped.)
"""Kata `cuda_reduction`: sums on an NVIDIA GPU with PyCUDA, by a tree in shared memory, then with ReductionKernel and ElementwiseKernel.

A reduction turns n numbers into one. On a GPU it is done in passes: each block of `block`
threads sums its own slice of `block` elements and writes one partial sum, so a pass turns n
numbers into ceil(n / block); the next pass sums those, and so on until one number is left.
Inside a block the sum is a tree in shared memory (`__shared__`, fast and private to the
block): every thread copies its element into the array `scratch`, then at each step the first
half of the still active part adds the second half to itself (`scratch[t] += scratch[t + s]`
for t < s), halving s from block/2 down to 1, until `scratch[0]` holds the block's sum. A step
reads what other threads wrote in the step before, and a block's warps run apart, so every
thread waits at `__syncthreads()` between steps, and a barrier must be reached by every thread
of the block. Floating-point addition is not associative: the order of the additions decides
the last bits of a float32 sum, so this contract fixes the tree, and the tests compare its
result bit for bit. `pycuda.reduction.ReductionKernel` writes such kernels for you from C
expressions (what each element maps to, how two values combine, the neutral value that changes
nothing) and a `dtype_out`, which is also the type it adds in; `pycuda.elementwise.
ElementwiseKernel` writes the one-thread-per-element kind from one C statement. Both take
`GPUArray`s, never NumPy arrays. Building either runs nvcc, so each is built once per
context (`pycuda.tools.context_dependent_memoize`). `_function` compiles `KERNEL` with
`pycuda.compiler.SourceModule` (pycuda keeps the build on disk). The tests make a CUDA context
current before they call anything.

Contract (the tests check each point):

- The float functions take `x`, a 1-D array of n >= 1 numbers.
  §1 `block_sums`, `total`, `sum_of_squares` and `int_total` raise `ValueError`, with `x`'s
  shape in the message (as `(2, 3)` or `(0,)`), when `x` is not 1-D or has no element.
  §2 `block_sums`, `total`, `sum_of_squares` and `linear_combination` accept any real dtype
  and any 1-D view (float64, int64, `x[::2]`): they convert their arrays with
  `np.ascontiguousarray(x, dtype=np.float32)` before copying them to the GPU, because the
  kernels read 4-byte floats one after another, and they leave their inputs unchanged.
- `block_sums(x, block=256)` runs kernel `block_sums` of `KERNEL` on ceil(n / block) blocks.
  §3 `block_sums` raises `ValueError` naming `block` unless `block` is a power of two (1, 2, 4,
  ...) no larger than `MAX_BLOCK` (1024): the tree halves the block at each step, and a block
  holds at most 1,024 threads.
  §4 `block_sums` launches blocks of `(block, 1, 1)` threads on a grid of
  `(ceil(n / block), 1)` blocks with `shared=4 * block`: the bytes of the kernel's
  `extern __shared__ float scratch[]`, one float per thread.
  §5 `block_sums` returns a new float32 NumPy array of ceil(n / block) elements whose element
  g is the sum of `x[g * block:(g + 1) * block]` at float32 tolerance, the last slice being
  shorter when n is not a multiple of `block`.
  §6 In kernel `block_sums`, thread t of a block stores its element `x[i]`
  (`i = blockIdx.x * blockDim.x + t`) in `scratch[t]`, or 0 when `i >= n`, without reading
  `x` there.
  §7 In kernel `block_sums`, the block adds up `scratch` in steps s = blockDim.x / 2,
  blockDim.x / 4, ..., 1, in which each thread t < s sets `scratch[t] = scratch[t] +
  scratch[t + s]`; then thread 0 alone writes `scratch[0]` to `sums[blockIdx.x]`. The sums
  are, bit for bit, the float32 sums added in this order.
  §8 In kernel `block_sums`, every thread calls `__syncthreads()` after storing its element
  and again after each step, so that no thread reads an element of `scratch` before the
  thread that writes it has done so.
  §9 In kernel `block_sums`, every thread of a block reaches every `__syncthreads()`, those
  past the end of `x` and those with t >= s included: none returns early, and no barrier sits
  inside `if (t < s)`.
- `total(x, block=256)`:
  §10 `total` raises `ValueError` naming `block` when `block < 2`: a pass with blocks of one
  thread returns as many numbers as it was given, and the passes would never end.
  §11 `total` returns the sum of `x` as a Python float, computed on the GPU in passes of
  kernel `block_sums`: the first over `x`, each next one over the `GPUArray` of sums the last
  one wrote (never copied back to the host in between), until a pass writes a single number,
  which alone is copied back: ceil(log(n) / log(block)) passes, and one when n <= block.
- `sum_of_squares(x)`:
  §12 `sum_of_squares` returns the sum of the squares of `x` as a Python float at float32
  tolerance, computed by a `pycuda.reduction.ReductionKernel` with `neutral="0"`,
  `reduce_expr="a+b"`, `map_expr="x[i]*x[i]"` and `arguments="const float *x"`, called on
  `gpuarray.to_gpu` of `x` as float32: the pointer type names the dtype of the array passed.
- `int_total(x)`, for a 1-D array of integers:
  §13 `int_total` raises `ValueError` naming the dtype when `x` does not hold integers (a
  float would be cut to an int without a word), and naming the value when one lies outside
  the int32 range.
  §14 `int_total` returns the exact sum of `x` as a Python int, also when it lies far outside
  the int32 range, computed by a `ReductionKernel` with `dtype_out=np.int64` (the type it adds
  in), `neutral="0"`, `reduce_expr="a+b"`, `map_expr="x[i]"` and `arguments="const int *x"`,
  called on `gpuarray.to_gpu` of `x` as int32.
- `linear_combination(a, x, b, y)`, for numbers a and b and arrays x and y:
  §15 `linear_combination` raises `ValueError`, with both shapes in the message, when `x` or
  `y` is not 1-D, when their shapes differ, or when they have no element.
  §16 `linear_combination` returns a new float32 NumPy array equal to `a * x + b * y` at
  float32 tolerance, computed by a `pycuda.elementwise.ElementwiseKernel` with arguments
  `"float a, const float *x, float b, const float *y, float *z"` and operation
  `"z[i] = a * x[i] + b * y[i]"`, called with `np.float32(a)`, `np.float32(b)` and
  `GPUArray`s of x, y and the result z.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pycuda.gpuarray as gpuarray
from pycuda.compiler import SourceModule
from pycuda.elementwise import ElementwiseKernel
from pycuda.reduction import ReductionKernel
from pycuda.tools import context_dependent_memoize

# The most threads a block may hold.
MAX_BLOCK = 1024
INT32 = np.iinfo(np.int32)

KERNEL = r"""
__global__ void block_sums(const float *x, const int n, float *sums)
{
    extern __shared__ float scratch[];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    /* Past the end of x, 0: it adds nothing, and x is never read there. */
    scratch[t] = (i < n) ? x[i] : 0.0f;
    /* Nobody adds a neighbour's element before the neighbour has stored it. */
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (t < s)
            scratch[t] = scratch[t] + scratch[t + s];
        /* Outside the if, so the whole block reaches it: nobody reads this step's sums early. */
        __syncthreads();
    }
    if (t == 0)
        sums[blockIdx.x] = scratch[0];
}
"""

Vector = npt.NDArray[np.float32]


def _function(name: str) -> Any:
    """Kernel `name` of KERNEL, compiled for the current context (pycuda caches the build)."""
    return SourceModule(KERNEL).get_function(name)


def _as_float32(x: npt.ArrayLike) -> Vector:
    """`x` checked (ValueError naming its shape) and made a C-contiguous float32 array."""
    array = np.asarray(x)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"x must be a 1-D array with at least one element, not of shape {array.shape}"
        )
    # The kernels read 4-byte floats one after another: any other dtype or a gap is misread.
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_block(block: int) -> None:
    """ValueError naming `block` unless it is a power of two from 1 to MAX_BLOCK."""
    # A power of two has one bit set: block & (block - 1) clears it.
    if not 1 <= block <= MAX_BLOCK or block & (block - 1):
        raise ValueError(f"block={block} must be a power of two from 1 to {MAX_BLOCK}")


def _pass(x_gpu: Any, block: int) -> Any:
    """One pass of kernel block_sums over the GPUArray `x_gpu`: the GPUArray of its sums."""
    n = x_gpu.size
    # Round up: the last, partial block's threads past the end store 0.
    blocks = (n + block - 1) // block
    sums_gpu = gpuarray.empty(blocks, dtype=np.float32)
    _function("block_sums")(
        x_gpu,
        np.int32(n),
        sums_gpu,
        block=(block, 1, 1),
        grid=(blocks, 1),
        # The bytes of extern __shared__ float scratch[]: one float per thread.
        shared=4 * block,
    )
    return sums_gpu


def block_sums(x: npt.ArrayLike, block: int = 256) -> Vector:
    """One float32 sum per block of `block` elements, each added up by a tree."""
    _check_block(block)
    x32 = _as_float32(x)
    # get() waits for the kernel (same stream) and returns a new host array.
    sums: Vector = _pass(gpuarray.to_gpu(x32), block).get()
    return sums


def total(x: npt.ArrayLike, block: int = 256) -> float:
    """The sum of `x`: passes of block sums on the GPU, until one number is left."""
    if block < 2:
        raise ValueError(f"block={block}: total needs blocks of 2 threads or more to shrink")
    _check_block(block)
    sums_gpu = _pass(gpuarray.to_gpu(_as_float32(x)), block)
    # Each pass reads the last one's GPUArray: no round trip to the host in between.
    while sums_gpu.size > 1:
        sums_gpu = _pass(sums_gpu, block)
    return float(sums_gpu.get()[0])


@context_dependent_memoize
def _squares_kernel() -> Any:
    """sum_of_squares' ReductionKernel, built once per context (each build runs nvcc)."""
    return ReductionKernel(
        np.float32,
        neutral="0",  # every thread starts its own sum from it, so it must change nothing
        reduce_expr="a+b",
        map_expr="x[i]*x[i]",
        arguments="const float *x",  # the dtype of the array passed: float32
    )


def sum_of_squares(x: npt.ArrayLike) -> float:
    """The sum of x[i] * x[i] in float32, by a pycuda ReductionKernel."""
    x32 = _as_float32(x)
    # A 0-d GPUArray comes back: get() copies its one number to the host.
    return float(_squares_kernel()(gpuarray.to_gpu(x32)).get())


def _as_int32(x: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """`x` checked (1-D, not empty, integers in int32's range) and made C-contiguous int32."""
    array = np.asarray(x)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"x must be a 1-D array with at least one element, not of shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"int_total sums integers; x has dtype {array.dtype}")
    low, high = int(array.min()), int(array.max())
    if low < INT32.min or high > INT32.max:
        outside = low if low < INT32.min else high
        raise ValueError(f"{outside} lies outside the int32 range the kernel reads")
    # The kernel reads 4-byte ints: NumPy's int64 would be read as pairs of halves.
    return np.ascontiguousarray(array, dtype=np.int32)


@context_dependent_memoize
def _int_total_kernel() -> Any:
    """int_total's ReductionKernel, built once per context (each build runs nvcc)."""
    return ReductionKernel(
        np.int64,  # the accumulator: 3,000 numbers near a million already overflow int32
        neutral="0",
        reduce_expr="a+b",
        map_expr="x[i]",
        arguments="const int *x",
    )


def int_total(x: npt.ArrayLike) -> int:
    """The exact sum of int32 numbers, added up in int64 by a pycuda ReductionKernel."""
    x32 = _as_int32(x)
    # The kernel reads int32 and adds in int64: the sum, not just each number, must fit.
    return int(_int_total_kernel()(gpuarray.to_gpu(x32)).get())


@context_dependent_memoize
def _linear_combination_kernel() -> Any:
    """linear_combination's ElementwiseKernel, built once per context (each build runs nvcc)."""
    return ElementwiseKernel(
        "float a, const float *x, float b, const float *y, float *z",
        "z[i] = a * x[i] + b * y[i]",
        "linear_combination",
    )


def linear_combination(a: float, x: npt.ArrayLike, b: float, y: npt.ArrayLike) -> Vector:
    """`a * x + b * y` in float32, one thread per element, by a pycuda ElementwiseKernel."""
    x_host, y_host = np.asarray(x), np.asarray(y)
    if x_host.ndim != 1 or x_host.shape != y_host.shape or x_host.size == 0:
        raise ValueError(
            f"x of shape {x_host.shape} and y of shape {y_host.shape} must be 1-D, non-empty "
            f"and of the same shape"
        )
    # The kernel reads GPUArrays of 4-byte floats: NumPy arrays have no device memory at all.
    x_gpu = gpuarray.to_gpu(np.ascontiguousarray(x_host, dtype=np.float32))
    y_gpu = gpuarray.to_gpu(np.ascontiguousarray(y_host, dtype=np.float32))
    z_gpu = gpuarray.empty_like(x_gpu)
    _linear_combination_kernel()(np.float32(a), x_gpu, np.float32(b), y_gpu, z_gpu)
    result: Vector = z_gpu.get()
    return result
