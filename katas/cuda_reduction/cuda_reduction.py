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
import pycuda.gpuarray as gpuarray  # noqa: F401  # you use it
from pycuda.compiler import SourceModule
from pycuda.elementwise import ElementwiseKernel  # noqa: F401
from pycuda.reduction import ReductionKernel  # noqa: F401
from pycuda.tools import context_dependent_memoize

# The most threads a block may hold.
MAX_BLOCK = 1024
INT32 = np.iinfo(np.int32)

KERNEL = r"""
__global__ void block_sums(const float *x, const int n, float *sums)
{
    /* TODO(kata): extern __shared__ float scratch[]; with t = threadIdx.x and
       i = blockIdx.x * blockDim.x + t: scratch[t] = x[i], or 0.0f when i >= n (without
       reading x); __syncthreads(); then for s from blockDim.x / 2 down to 1, halving: if t < s,
       scratch[t] = scratch[t] + scratch[t + s]; and a __syncthreads() after each step, outside
       the if. At the end, thread 0 alone writes scratch[0] to sums[blockIdx.x]. */
}
"""

Vector = npt.NDArray[np.float32]


def _function(name: str) -> Any:
    """Kernel `name` of KERNEL, compiled for the current context (pycuda caches the build)."""
    return SourceModule(KERNEL).get_function(name)


def _as_float32(x: npt.ArrayLike) -> Vector:
    """`x` checked (ValueError naming its shape) and made a C-contiguous float32 array."""
    # TODO(kata): array = np.asarray(x); raise ValueError (with array.shape in the message)
    # unless array.ndim == 1 and array.size > 0; return np.ascontiguousarray(array,
    # dtype=np.float32).
    raise NotImplementedError


def _check_block(block: int) -> None:
    """ValueError naming `block` unless it is a power of two from 1 to MAX_BLOCK."""
    # TODO(kata): raise ValueError naming block unless 1 <= block <= MAX_BLOCK and
    # block & (block - 1) == 0 (one bit set: a power of two).
    raise NotImplementedError


def _pass(x_gpu: Any, block: int) -> Any:
    """One pass of kernel block_sums over the GPUArray `x_gpu`: the GPUArray of its sums."""
    # TODO(kata): blocks = ceil(n / block) with n = x_gpu.size; sums_gpu = gpuarray.empty(blocks,
    # dtype=np.float32); _function("block_sums")(x_gpu, np.int32(n), sums_gpu, block=(block, 1, 1),
    # grid=(blocks, 1), shared=4 * block); return sums_gpu (still on the GPU).
    raise NotImplementedError


def block_sums(x: npt.ArrayLike, block: int = 256) -> Vector:
    """One float32 sum per block of `block` elements, each added up by a tree."""
    # TODO(kata): _check_block; x32 = _as_float32(x); return _pass(gpuarray.to_gpu(x32),
    # block).get().
    raise NotImplementedError


def total(x: npt.ArrayLike, block: int = 256) -> float:
    """The sum of `x`: passes of block sums on the GPU, until one number is left."""
    # TODO(kata): raise ValueError naming block if block < 2; _check_block; sums_gpu = _pass
    # over gpuarray.to_gpu of x as float32; while sums_gpu.size > 1: sums_gpu = _pass(sums_gpu,
    # block); return float(sums_gpu.get()[0]).
    raise NotImplementedError


@context_dependent_memoize
def _squares_kernel() -> Any:
    """sum_of_squares' ReductionKernel, built once per context (each build runs nvcc)."""
    # TODO(kata): return ReductionKernel(np.float32, neutral="0", reduce_expr="a+b",
    # map_expr="x[i]*x[i]", arguments="const float *x").
    raise NotImplementedError


def sum_of_squares(x: npt.ArrayLike) -> float:
    """The sum of x[i] * x[i] in float32, by a pycuda ReductionKernel."""
    # TODO(kata): x32 = _as_float32(x); return float(_squares_kernel()(gpuarray.to_gpu(x32)).get()).
    raise NotImplementedError


def _as_int32(x: npt.ArrayLike) -> npt.NDArray[np.int32]:
    """`x` checked (1-D, not empty, integers in int32's range) and made C-contiguous int32."""
    # TODO(kata): as _as_float32 for the shape; then raise ValueError naming array.dtype unless
    # np.issubdtype(array.dtype, np.integer), and naming the value if array.min() or array.max()
    # lies outside INT32 (np.iinfo(np.int32)); return np.ascontiguousarray(array, dtype=np.int32).
    raise NotImplementedError


@context_dependent_memoize
def _int_total_kernel() -> Any:
    """int_total's ReductionKernel, built once per context (each build runs nvcc)."""
    # TODO(kata): return ReductionKernel(np.int64, neutral="0", reduce_expr="a+b",
    # map_expr="x[i]", arguments="const int *x"): dtype_out is the type it adds in.
    raise NotImplementedError


def int_total(x: npt.ArrayLike) -> int:
    """The exact sum of int32 numbers, added up in int64 by a pycuda ReductionKernel."""
    # TODO(kata): x32 = _as_int32(x); return int(_int_total_kernel()(gpuarray.to_gpu(x32)).get()).
    raise NotImplementedError


@context_dependent_memoize
def _linear_combination_kernel() -> Any:
    """linear_combination's ElementwiseKernel, built once per context (each build runs nvcc)."""
    # TODO(kata): return ElementwiseKernel("float a, const float *x, float b, const float *y,
    # float *z", "z[i] = a * x[i] + b * y[i]", "linear_combination").
    raise NotImplementedError


def linear_combination(a: float, x: npt.ArrayLike, b: float, y: npt.ArrayLike) -> Vector:
    """`a * x + b * y` in float32, one thread per element, by a pycuda ElementwiseKernel."""
    # TODO(kata): raise ValueError naming both shapes unless x and y are 1-D, non-empty and of one
    # shape; x_gpu and y_gpu = gpuarray.to_gpu of each as C-contiguous float32; z_gpu =
    # gpuarray.empty_like(x_gpu); _linear_combination_kernel()(np.float32(a), x_gpu,
    # np.float32(b), y_gpu, z_gpu); return z_gpu.get().
    raise NotImplementedError
