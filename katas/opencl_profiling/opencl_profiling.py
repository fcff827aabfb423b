"""Kata `opencl_profiling`: a kernel's time from its event, and the bandwidth it reaches.

A command queue created with `properties=cl.command_queue_properties.PROFILING_ENABLE` stamps
the event of every command it runs with four times on the device's clock, in nanoseconds:
`queued` (the host enqueued it), `submit` (it went to the device), `start` (it began to run)
and `end` (it finished). Read them as `event.profile.queued` ... `event.profile.end`. They
exist only once the command has finished: read before that, PoCL raises
`PROFILING_INFO_NOT_AVAILABLE` and Oclgrind answers 0. A queue without the property has no
stamps at all. A wall-clock time taken on the host (`time.perf_counter()` around a launch) is
not the kernel's time: it adds Python, the enqueue, the time the command waits in the queue
and the wake-up after it ends. The effective bandwidth of a kernel is the bytes it reads plus
the bytes it writes, divided by its time; here in GB/s, with 1 GB = 1e9 bytes.

Contract (the tests check each point; a test's `[oclgrind]` run also fails on any access
outside a buffer):

- `kernel_seconds(event)` takes an event of a profiling queue (a `pyopencl.Event`).
  §1 `kernel_seconds` calls `event.wait()` before it reads `event.profile`: the stamps exist
  only once the command has finished.
  §2 `kernel_seconds` returns `(event.profile.end - event.profile.start) * 1e-9`, the kernel's
  run time in seconds: the stamps are nanoseconds, and `queued` or `submit` in place of `start`
  would add the time the command waited before it ran.
- `bandwidth_gbs(bytes_moved, seconds)`:
  §3 `bandwidth_gbs` returns `bytes_moved / seconds / 1e9`: gigabytes of 1e9 bytes per second
  (not GiB of 2**30 bytes).
  §4 `bandwidth_gbs` raises `ValueError` when `seconds <= 0` or `bytes_moved < 0`: a time that
  is not positive (stamps subtracted the wrong way round, or read before the kernel ended) has
  no bandwidth.
- `require_profiling(queue)`:
  §5 `require_profiling` raises `ValueError` whose message names `PROFILING_ENABLE` (the fix)
  when that bit is not set in `queue.properties`, a bit field that may hold other bits too;
  otherwise it returns None.
- The host functions below take `queue` (a `pyopencl.CommandQueue`; its context is
  `queue.context`) first; `x` is a 1-D array.
  §6 `timed_copy`, `profile_kernel` and `copy_bandwidth` call `require_profiling(queue)` first,
  so a queue without profiling raises `ValueError` before anything is built or launched.
  §7 `timed_copy` and `copy_bandwidth` raise `ValueError` when `x` has no element: OpenCL has
  no empty buffers.
  §8 `timed_copy` and `copy_bandwidth` put `np.ascontiguousarray(x, dtype=np.float32)` on the
  device: the kernel reads 4-byte floats, and NumPy's float64 and int64 are 8 bytes.
- `timed_copy(queue, x)` copies `x` through kernel `copy` of `KERNEL` and returns
  `(copy, seconds)`.
  §9 `timed_copy` returns as `copy` a new float32 array equal to `x` as float32, for every
  length >= 1, leaving `x` unchanged, read back with the public `cl.enqueue_copy` (never the
  book's private `cl._enqueue_read_buffer`).
  §10 `timed_copy` launches kernel `copy` once, with local size `(LOCAL,)` and global size
  `len(x)` rounded up to a multiple of `LOCAL`.
  §11 In kernel `copy`, work-item `i` sets `dst[i] = src[i]` when `i < n`; the work-items of the
  rounded-up tail (`i >= n`) read and write nothing.
  §12 `timed_copy` returns as `seconds` `kernel_seconds` of its launch's event: the kernel's own
  run time from the device's stamps, never a wall-clock time taken around the launch.
- `profile_kernel(queue, launch, repeats, warmup=1)` times a launch that the caller wrote:
  each `launch()` enqueues one kernel on `queue` and returns its event.
  §13 `profile_kernel` raises `ValueError` when `repeats < 1` or `warmup < 0`, before it calls
  `launch`.
  §14 `profile_kernel` calls `launch()` exactly `warmup + repeats` times and waits for every
  event it got, the warm-up ones included, before it returns.
  §15 `profile_kernel` returns `kernel_seconds` of the last `repeats` events, in launch order:
  the first `warmup` runs are dropped, because a kernel's first run also pays for set-up
  (memory touched for the first time, work done lazily at the first launch).
- `copy_bandwidth(queue, x, repeats=5)` measures the bandwidth of kernel `copy`.
  §16 `copy_bandwidth` times kernel `copy` on `x` with `profile_kernel(queue, launch, repeats)`
  (one warm-up, so `repeats + 1` launches in all), each launch sized as in `timed_copy`.
  §17 `copy_bandwidth` returns `bandwidth_gbs(2 * nbytes, min(times))`, where `nbytes` is the
  size of the float32 copy of `x`: the kernel reads every byte once and writes it once, and the
  fastest run is the one the rest of the machine disturbed least.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pyopencl as cl

# Work-items per work-group of kernel `copy`.
LOCAL = 64

KERNEL = r"""
__kernel void copy(__global const float *src, __global float *dst, const int n)
{
    /* TODO(kata): const int i = get_global_id(0); copy src[i] into dst[i], but only when
       i < n: the global size is rounded up, and the work-items past n have no element. */
}
"""

Floats = npt.NDArray[np.float32]
# A launch: enqueues one kernel and returns its event.
Launch = Callable[[], cl.Event]


def _round_up(size: int, multiple: int) -> int:
    return (size + multiple - 1) // multiple * multiple


def kernel_seconds(event: cl.Event) -> float:
    """The kernel's run time in seconds, from its event's start and end stamps."""
    # TODO(kata): event.wait() first; then (event.profile.end - event.profile.start) * 1e-9.
    raise NotImplementedError


def bandwidth_gbs(bytes_moved: int, seconds: float) -> float:
    """Effective bandwidth in GB/s (1 GB = 1e9 bytes)."""
    # TODO(kata): ValueError unless seconds > 0 and bytes_moved >= 0; else bytes / s / 1e9.
    raise NotImplementedError


def require_profiling(queue: cl.CommandQueue) -> None:
    """ValueError, naming PROFILING_ENABLE, unless `queue` stamps its events."""
    # TODO(kata): test the bit: queue.properties & cl.command_queue_properties.PROFILING_ENABLE;
    # when it is 0, raise ValueError saying to create the queue with that property.
    raise NotImplementedError


def _device_floats(x: npt.ArrayLike) -> Floats:
    """`x` as a C-contiguous float32 array; ValueError when it is empty."""
    # TODO(kata): raise ValueError when np.asarray(x).size == 0; return
    # np.ascontiguousarray(x, dtype=np.float32).
    raise NotImplementedError


def _copy_launch(queue: cl.CommandQueue, x32: Floats) -> tuple[Launch, cl.Buffer]:
    """A launch of kernel `copy` from a buffer holding `x32` into a new one, and that new one."""
    # TODO(kata): build KERNEL in queue.context and take cl.Kernel(program, "copy"); a
    # READ_ONLY | COPY_HOST_PTR buffer of x32 and a WRITE_ONLY one of x32.nbytes; return a
    # function that calls kernel(queue, (global,), (LOCAL,), src, dst, np.int32(len(x32)))
    # with global = len(x32) rounded up to LOCAL and returns its event, and the dst buffer.
    raise NotImplementedError


def timed_copy(queue: cl.CommandQueue, x: npt.ArrayLike) -> tuple[Floats, float]:
    """`x` copied through kernel `copy` as float32, and the kernel's time in seconds."""
    # TODO(kata): require_profiling; x32 = _device_floats(x); launch once through
    # _copy_launch; seconds = kernel_seconds(event); copy = np.empty_like(x32) filled with
    # cl.enqueue_copy(queue, copy, dst); return (copy, seconds).
    raise NotImplementedError


def profile_kernel(
    queue: cl.CommandQueue, launch: Launch, repeats: int, warmup: int = 1
) -> list[float]:
    """The kernel times of `repeats` calls of `launch`, after `warmup` calls left out."""
    # TODO(kata): require_profiling; ValueError if repeats < 1 or warmup < 0; call launch()
    # warmup + repeats times; kernel_seconds of every event; return the last `repeats` times.
    raise NotImplementedError


def copy_bandwidth(queue: cl.CommandQueue, x: npt.ArrayLike, repeats: int = 5) -> float:
    """The effective bandwidth of kernel `copy` on `x`, in GB/s, from its fastest run."""
    # TODO(kata): require_profiling; x32 = _device_floats(x); profile_kernel(queue, launch,
    # repeats) with the launch of _copy_launch; return bandwidth_gbs of the bytes read plus
    # the bytes written over the shortest time.
    raise NotImplementedError
