"""Kata `cuda_kernels`: your first CUDA kernels from Python, on a grid that covers any matrix.

A kernel is a C++ function marked `__global__` that the GPU runs once per *thread*. Threads
come in *blocks* of up to three dimensions (`blockDim`), blocks in a *grid* (`gridDim`); each
thread finds its place from `threadIdx` (inside its block) and `blockIdx` (its block in the
grid). PyCUDA compiles the source with `pycuda.compiler.SourceModule(KERNEL)` (nvcc runs behind
it, and the result is cached on disk) and `module.get_function("name")` gives a function you
call like Python, with `block=(x, y, z)` and `grid=(x, y, z)` as keywords. Its arguments are
passed as raw bytes: a `cuda.mem_alloc` buffer or a `GPUArray` becomes a pointer, and a
NumPy scalar is copied as its own bytes, so `np.int32(n)` is the 4 bytes a C `int` expects.

Here a matrix of `rows` x `cols` float32 numbers is one buffer holding its rows one after
another, so element (row, col) is at `row * cols + col`. Every kernel runs one thread per
element on a 2-D grid whose x axis counts columns and y axis rows (neighbouring threads of a
warp differ in `threadIdx.x`, so they touch neighbouring addresses, which the GPU reads and
writes in one go). A grid is made of whole blocks, so it is rounded up, and the threads past
the last row or column exist and must touch nothing.

Contract (the tests check each point; they run the kernels on buffers with guard zones before
and after the matrix, so a write outside the matrix is seen, and on outputs filled with NaN,
so an element never written is seen):

- `grid_for(rows, cols, block=BLOCK)` is the grid that covers a `rows` x `cols` matrix with
  blocks of shape `block` (x, y, z).
  §1 `grid_for` returns `(ceil(cols / block[0]), ceil(rows / block[1]), 1)`: x counts
  columns, y counts rows, and the counts are rounded up (never down: a block that would stick
  out past the edge is still needed for the elements it does cover).
  §2 `grid_for` raises `ValueError` when `rows < 1` or `cols < 1`.
- `launch_double(a_gpu, rows, cols)` doubles, in place, the `rows` x `cols` float32 matrix
  whose device memory `a_gpu` points to (a `cuda.mem_alloc` buffer or a `GPUArray`).
  §3 `launch_double` launches kernel `double_matrix` of `KERNEL` once, with `block=BLOCK` and
  `grid=grid_for(rows, cols)`, passing `rows` and `cols` as `np.int32`: the kernel's `int` is
  4 bytes, where NumPy's default integer (and `np.int64`) is 8.
  §4 In kernel `double_matrix`, the thread at `col = blockIdx.x * blockDim.x + threadIdx.x`,
  `row = blockIdx.y * blockDim.y + threadIdx.y` doubles `a[row * cols + col]` when
  `row < rows` and `col < cols`, and touches nothing otherwise: the row stride is `cols`, the
  real row length, never a number written into the kernel (the book's `threadIdx.y*4` on a
  5 x 5 block).
- `double_matrix(a)` is the book's recipe done right, with the driver's own calls.
  §5 `double_matrix` raises `ValueError`, naming the shape, unless `a` is 2-D with at least one
  row and one column.
  §6 `double_matrix` converts `a` with `np.ascontiguousarray(a, dtype=np.float32)`, copies it
  into a `cuda.mem_alloc` buffer of its `nbytes` with `cuda.memcpy_htod`, runs
  `launch_double` on that buffer, and copies it back with `cuda.memcpy_dtoh` into a new
  float32 array, which it returns: `2 * a` as float32, for any shape, dtype and layout, with
  `a` left unchanged.
- `launch_scale_rows(a_gpu, weights_gpu, out_gpu)` takes three `GPUArray`s: `a_gpu` of shape
  (rows, cols), `weights_gpu` of shape (rows,) and `out_gpu` of shape (rows, cols).
  §7 `launch_scale_rows` raises `ValueError` before launching anything: naming the dtype when
  one of the three is not float32 (the kernel reads 4-byte floats, and a float64 array would
  be read as garbage), and naming the shapes when `a_gpu` is not 2-D, `weights_gpu` is not
  `(rows,)` or `out_gpu` is not `a_gpu.shape`.
  §8 `launch_scale_rows` launches kernel `scale_rows` of `KERNEL` once, with `block=BLOCK` and
  `grid=grid_for(rows, cols)`, passing `rows` and `cols` as `np.int32`.
  §9 In kernel `scale_rows`, the thread at (row, col), found as in `double_matrix`, sets
  `out[row * cols + col] = a[row * cols + col] * weights[row]` when `row < rows` and
  `col < cols`, and reads and writes nothing otherwise.
- `scale_rows(a, weights)` multiplies each row of `a` by its weight, with `pycuda.gpuarray`.
  §10 `scale_rows` raises `ValueError`, naming the shapes, unless `a` is 2-D with at least one
  row and one column and `weights` is 1-D with one weight per row.
  §11 `scale_rows` copies `np.ascontiguousarray(x, dtype=np.float32)` of `a` and of `weights`
  to the GPU with `gpuarray.to_gpu`, makes the output with `gpuarray.empty((rows, cols),
  np.float32)`, runs `launch_scale_rows` and returns `out_gpu.get()`: `a * weights[:, None]`
  as float32, with `a` and `weights` left unchanged.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pycuda.driver as cuda
import pycuda.gpuarray as gpuarray
from pycuda.compiler import SourceModule

# Threads per block along x (columns), y (rows) and z: 128 threads, four warps. Not square, so
# that x and y taken for each other show.
BLOCK = (16, 8, 1)

KERNEL = r"""
__global__ void double_matrix(float *a, const int rows, const int cols)
{
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    const int row = blockIdx.y * blockDim.y + threadIdx.y;
    /* The grid was rounded up: a thread past the last row or column has no element. */
    if (row < rows && col < cols)
        a[row * cols + col] *= 2.0f;
}

__global__ void scale_rows(const float *a, const float *weights, float *out,
                           const int rows, const int cols)
{
    const int col = blockIdx.x * blockDim.x + threadIdx.x;
    const int row = blockIdx.y * blockDim.y + threadIdx.y;
    /* The same guard, before any read: a[...] past the end is already outside the buffer. */
    if (row < rows && col < cols)
        out[row * cols + col] = a[row * cols + col] * weights[row];
}
"""

Floats = npt.NDArray[np.float32]


def grid_for(rows: int, cols: int, block: tuple[int, int, int] = BLOCK) -> tuple[int, int, int]:
    """The grid (x, y, z) of `block`-shaped blocks that covers a rows x cols matrix."""
    if rows < 1 or cols < 1:
        raise ValueError(f"a matrix needs at least one row and one column, not {rows} x {cols}")
    # Rounded up: (size + edge - 1) // edge blocks, the last one partly past the edge.
    return (cols + block[0] - 1) // block[0], (rows + block[1] - 1) // block[1], 1


def _function(name: str) -> cuda.Function:
    """Kernel `name` of KERNEL, compiled for the current context's device."""
    # nvcc runs once per source: pycuda keeps the compiled module in its cache on disk.
    return SourceModule(KERNEL).get_function(name)


def launch_double(a_gpu: object, rows: int, cols: int) -> None:
    """Double the rows x cols float32 matrix at `a_gpu` in place, one thread per element."""
    # np.int32: the arguments are packed as bytes, and the kernel's `int` is 4 of them.
    _function("double_matrix")(
        a_gpu, np.int32(rows), np.int32(cols), block=BLOCK, grid=grid_for(rows, cols)
    )


def _matrix(a: npt.ArrayLike) -> Floats:
    """`a` as a C-contiguous float32 matrix; ValueError naming its shape when it is none."""
    array = np.asarray(a)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"a must be a 2-D matrix with rows and columns, not shape {array.shape}")
    # The kernel reads 4-byte floats row after row: a copy of exactly that type and layout.
    return np.ascontiguousarray(array, dtype=np.float32)


def double_matrix(a: npt.ArrayLike) -> Floats:
    """`2 * a` as a new float32 array, doubled on the GPU by kernel `double_matrix`."""
    a32 = _matrix(a)
    rows, cols = a32.shape
    a_gpu = cuda.mem_alloc(a32.nbytes)
    cuda.memcpy_htod(a_gpu, a32)
    launch_double(a_gpu, rows, cols)
    doubled = np.empty_like(a32)
    # Synchronous: the copy waits for the kernel, and `doubled` is complete when it returns.
    cuda.memcpy_dtoh(doubled, a_gpu)
    return doubled


def launch_scale_rows(
    a_gpu: gpuarray.GPUArray, weights_gpu: gpuarray.GPUArray, out_gpu: gpuarray.GPUArray
) -> None:
    """out = a * weights[:, None] on the GPU, for float32 GPUArrays, by kernel `scale_rows`."""
    for name, array in (("a_gpu", a_gpu), ("weights_gpu", weights_gpu), ("out_gpu", out_gpu)):
        if array.dtype != np.float32:
            # Checked here, at the boundary: the kernel cannot tell what bytes it was given.
            raise ValueError(f"{name} holds {array.dtype}; the kernel reads float32 only")
    shapes = f"a_gpu {a_gpu.shape}, weights_gpu {weights_gpu.shape}, out_gpu {out_gpu.shape}"
    if (
        len(a_gpu.shape) != 2
        or weights_gpu.shape != a_gpu.shape[:1]
        or out_gpu.shape != a_gpu.shape
    ):
        raise ValueError(f"need a (rows, cols), weights (rows,) and out (rows, cols): {shapes}")
    rows, cols = a_gpu.shape
    _function("scale_rows")(
        a_gpu,
        weights_gpu,
        out_gpu,
        np.int32(rows),
        np.int32(cols),
        block=BLOCK,
        grid=grid_for(rows, cols),
    )


def scale_rows(a: npt.ArrayLike, weights: npt.ArrayLike) -> Floats:
    """`a * weights[:, None]` as a new float32 array, computed on the GPU with GPUArrays."""
    matrix, w = np.asarray(a), np.asarray(weights)
    if matrix.ndim != 2 or 0 in matrix.shape or w.shape != matrix.shape[:1]:
        raise ValueError(
            f"need a 2-D a and one weight per row: a has shape {matrix.shape}, "
            f"weights has shape {w.shape}"
        )
    # float32 on both sides, as the kernel declares them.
    a_gpu = gpuarray.to_gpu(np.ascontiguousarray(matrix, dtype=np.float32))
    weights_gpu = gpuarray.to_gpu(np.ascontiguousarray(w, dtype=np.float32))
    out_gpu = gpuarray.empty(matrix.shape, np.float32)
    launch_scale_rows(a_gpu, weights_gpu, out_gpu)
    # get() copies back synchronously, after the kernel has finished.
    result: Floats = out_gpu.get()
    return result
