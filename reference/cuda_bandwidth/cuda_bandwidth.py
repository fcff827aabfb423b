"""Kata `cuda_bandwidth`: time the GPU with events, measure its copy bandwidth, and write a
sum that runs at the speed of memory.

Summing n floats does one addition per 4 bytes read: far too little arithmetic to keep a GPU
busy, so the time it takes is the time its memory needs to deliver the bytes. Such a kernel is
*memory-bound*, and the question to ask of it is not "how many FLOP/s" but "what fraction of
the memory bandwidth does it reach". The yardstick here is a device-to-device copy
(`cuda.memcpy_dtod`), which the driver does about as fast as the memory allows; a good
reduction reads its bytes at 80 % of that rate or better.

Time on a GPU is measured with *events*: `start = cuda.Event()`, `start.record()` puts a mark
into the GPU's stream of work, and once the GPU has passed a later mark `end`,
`start.time_till(end)` gives the milliseconds between them on the GPU's own clock. The host
does not wait for the GPU (a launch returns at once), so a timer read on the host measures
Python and the launch, not the work; `end.synchronize()` makes the host wait until the GPU has
passed `end`. Bandwidths are in GB/s with 1 GB = 1e9 bytes.

Contract (the tests check each point; some replace `cuda.Event` with events on a clock they
control, others time your code on the GPU itself):

- `bandwidth_gbs(bytes_moved, seconds)`:
  §1 `bandwidth_gbs` returns `bytes_moved / seconds / 1e9`: gigabytes of 1e9 bytes per second
  (not GiB of 2**30 bytes).
  §2 `bandwidth_gbs` raises `ValueError` when `seconds <= 0` or `bytes_moved < 0`.
- `time_runs(launch, repeats, warmup=1)` times `launch`, a function that puts work on the GPU
  (on the default stream) and returns at once.
  §3 `time_runs` raises `ValueError` when `repeats < 1` or `warmup < 0`, before it calls
  `launch`.
  §4 `time_runs` calls `launch()` exactly `warmup + repeats` times, each between
  `start.record()` and `end.record()` of two events made with `cuda.Event()`, and calls
  `end.synchronize()` before it reads `start.time_till(end)`: until the GPU has passed `end`,
  the time is not there to read.
  §5 `time_runs` returns the times of the last `repeats` runs, in run order, in seconds
  (`time_till` answers in milliseconds): the first `warmup` runs are dropped, because a first
  run also pays for loading the kernel's code and touching memory for the first time.
- `copy_bandwidth(nbytes, repeats=5)` measures the device-to-device copy.
  §6 `copy_bandwidth` raises `ValueError` when `nbytes < 1` or `repeats < 1`.
  §7 `copy_bandwidth` allocates two buffers of `nbytes` with `cuda.mem_alloc` and times
  `cuda.memcpy_dtod(dst, src, nbytes)` with `time_runs(launch, repeats)` (one warm-up run).
  §8 `copy_bandwidth` returns `bandwidth_gbs(2 * nbytes, min(times))`: a copy reads every byte
  once and writes it once, and the fastest run is the one the rest of the machine disturbed
  least.
- `sum_grid()`:
  §9 `sum_grid` returns `(blocks, THREADS)` with `blocks = BLOCKS_PER_SM` times the
  `MULTIPROCESSOR_COUNT` of the current context's device: enough threads to keep every
  multiprocessor's memory requests flowing, and a grid that does not grow with the array, so
  that the second pass has few numbers to add.
- `reduce_sum(x_gpu, sums_gpu)` sums a float32 `GPUArray` on the GPU into `sums_gpu[0]`.
  §10 `reduce_sum` raises `ValueError`, before launching anything, unless `x_gpu` is a 1-D
  float32 `GPUArray` of at least one element and `sums_gpu` a float32 `GPUArray` of at least
  `sum_grid()[0]` elements.
  §11 `reduce_sum` launches kernel `block_sums` of `KERNEL`, built with the option
  `-DTHREADS=<THREADS>` once per process (never per call: that would be timed too), twice:
  over `x_gpu` with `grid=(blocks, 1, 1)` and `block=(THREADS, 1, 1)`, writing each block's
  sum to `sums_gpu[:blocks]`; then over those `blocks` sums with one block, writing the total
  to `sums_gpu[0]`. It reads and writes no element of `sums_gpu` past `blocks - 1`, and
  passes `n` as `np.int32`.
  §12 In kernel `block_sums`, each thread adds up its share of `x` in a grid-stride loop in
  which, at every step, the threads of a warp read neighbouring addresses (so that the GPU
  merges their reads); the block then adds its threads' totals in `__shared__` memory, with
  `__syncthreads()` between the steps, and thread 0 writes the block's sum to
  `sums[blockIdx.x]`. Every element of `x` is counted exactly once, for every `n >= 1`.
  §13 `reduce_sum` on 2**28 float32s (1 GiB) reads them at no less than 80 % of the
  device-to-device copy bandwidth, both measured by the test in the same way.
- `gpu_sum(x)`:
  §14 `gpu_sum` returns the sum of a 1-D `x` (any real dtype, a list) as a Python float, equal
  to the exact sum of `x`'s float32 values within float32 rounding: it copies
  `np.ascontiguousarray(x, dtype=np.float32)` with `gpuarray.to_gpu`, makes `sums_gpu` with
  `gpuarray.empty(sum_grid()[0], np.float32)` and runs `reduce_sum`. It returns `0.0` for an
  empty `x` without launching anything, and raises `ValueError` unless `x` is 1-D.
- `sum_bandwidth(x_gpu, repeats=5)`:
  §15 `sum_bandwidth` makes `sums_gpu` once, then returns `bandwidth_gbs(x_gpu.nbytes,
  min(times))` for the times of `time_runs` over `reduce_sum(x_gpu, sums_gpu)`: a reduction
  reads each byte once, and its few KiB of partial sums are left out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pycuda.driver as cuda
import pycuda.gpuarray as gpuarray
from pycuda.compiler import SourceModule

# Threads per block of kernel `block_sums` (a power of two, for the tree in shared memory).
THREADS = 256
# Blocks per multiprocessor: 8 x 256 = 2,048 threads, as many as one SM of a recent GPU holds.
BLOCKS_PER_SM = 8

KERNEL = r"""
__global__ void block_sums(const float *x, float *sums, const int n)
{
    __shared__ float partial[THREADS];
    const int t = threadIdx.x;
    const int stride = gridDim.x * THREADS;
    float total = 0.0f;
    /* Four floats at a time: one 16-byte load per thread, a warp's loads side by side. */
    const int quads = n / 4;
    const float4 *x4 = reinterpret_cast<const float4 *>(x);
    /* Unrolled, so that each thread has several loads on their way at once. */
#pragma unroll 4
    for (int i = blockIdx.x * THREADS + t; i < quads; i += stride) {
        const float4 v = x4[i];
        total += (v.x + v.y) + (v.z + v.w);
    }
    /* The last n % 4 floats, which make no whole float4. */
    for (int i = 4 * quads + blockIdx.x * THREADS + t; i < n; i += stride)
        total += x[i];
    partial[t] = total;
    __syncthreads();
    /* The tree: every thread reaches every barrier, so none may return early. */
    for (int s = THREADS / 2; s > 0; s /= 2) {
        if (t < s)
            partial[t] += partial[t + s];
        __syncthreads();
    }
    if (t == 0)
        sums[blockIdx.x] = partial[0];
}
"""

Launch = Callable[[], None]


def bandwidth_gbs(bytes_moved: int, seconds: float) -> float:
    """Effective bandwidth in GB/s (1 GB = 1e9 bytes)."""
    if seconds <= 0 or bytes_moved < 0:
        raise ValueError(f"no bandwidth for {bytes_moved} bytes in {seconds!r} s")
    return bytes_moved / seconds / 1e9


def time_runs(launch: Launch, repeats: int, warmup: int = 1) -> list[float]:
    """The GPU times, in seconds, of the last `repeats` of `warmup + repeats` runs of `launch`."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, not {repeats} and {warmup}")
    times = []
    for _ in range(warmup + repeats):
        start, end = cuda.Event(), cuda.Event()
        start.record()
        launch()
        end.record()
        # The host ran ahead: wait until the GPU has passed `end` before asking for the time.
        end.synchronize()
        times.append(start.time_till(end) * 1e-3)
    # The first runs also load the kernel's code and touch memory for the first time.
    return times[warmup:]


def copy_bandwidth(nbytes: int, repeats: int = 5) -> float:
    """The device-to-device copy bandwidth in GB/s, from the fastest of `repeats` copies."""
    if nbytes < 1 or repeats < 1:
        raise ValueError(f"need nbytes >= 1 and repeats >= 1, not {nbytes} and {repeats}")
    src, dst = cuda.mem_alloc(nbytes), cuda.mem_alloc(nbytes)
    times = time_runs(lambda: cuda.memcpy_dtod(dst, src, nbytes), repeats)
    # Read once and written once: a copy moves every byte twice.
    return bandwidth_gbs(2 * nbytes, min(times))


def sum_grid() -> tuple[int, int]:
    """`(blocks, threads)` of the first pass of `reduce_sum` on the current device."""
    device = cuda.Context.get_device()
    multiprocessors = int(device.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT))
    # Fixed by the device, not by n: the grid-stride loop covers any n with this many threads.
    return BLOCKS_PER_SM * multiprocessors, THREADS


@functools.cache
def _block_sums() -> cuda.Function:
    """Kernel `block_sums`, built once: building it inside a timed run would be timed too."""
    return SourceModule(KERNEL, options=[f"-DTHREADS={THREADS}"]).get_function("block_sums")


def reduce_sum(x_gpu: gpuarray.GPUArray, sums_gpu: gpuarray.GPUArray) -> None:
    """The sum of the float32 GPUArray `x_gpu`, left in `sums_gpu[0]` (two launches)."""
    blocks, threads = sum_grid()
    if x_gpu.dtype != np.float32 or len(x_gpu.shape) != 1 or x_gpu.size < 1:
        raise ValueError(f"x_gpu must be 1-D float32 and not empty: {x_gpu.dtype} {x_gpu.shape}")
    if sums_gpu.dtype != np.float32 or sums_gpu.size < blocks:
        raise ValueError(
            f"sums_gpu must be float32 with at least {blocks} elements: "
            f"{sums_gpu.dtype} {sums_gpu.shape}"
        )
    function = _block_sums()
    function(x_gpu, sums_gpu, np.int32(x_gpu.size), block=(threads, 1, 1), grid=(blocks, 1, 1))
    # In place: the one block reads all `blocks` sums before its thread 0 writes sums[0].
    function(sums_gpu, sums_gpu, np.int32(blocks), block=(threads, 1, 1), grid=(1, 1, 1))


def gpu_sum(x: npt.ArrayLike) -> float:
    """The sum of the 1-D `x`, added on the GPU in float32."""
    array = np.asarray(x)
    if array.ndim != 1:
        raise ValueError(f"x must be 1-D, not of shape {array.shape}")
    if array.size == 0:
        return 0.0
    # The kernel reads 4-byte floats: float64 or int64 would be read as garbage.
    x_gpu = gpuarray.to_gpu(np.ascontiguousarray(array, dtype=np.float32))
    sums_gpu = gpuarray.empty(sum_grid()[0], np.float32)
    reduce_sum(x_gpu, sums_gpu)
    return float(sums_gpu[:1].get()[0])


def sum_bandwidth(x_gpu: gpuarray.GPUArray, repeats: int = 5) -> float:
    """The effective bandwidth of `reduce_sum` on `x_gpu` in GB/s, from its fastest run."""
    sums_gpu = gpuarray.empty(sum_grid()[0], np.float32)
    times = time_runs(lambda: reduce_sum(x_gpu, sums_gpu), repeats)
    # Each byte of x is read once; the partial sums are a few KiB, left out.
    return bandwidth_gbs(x_gpu.nbytes, min(times))
