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
    const int i = get_global_id(0);
    /* The global size is rounded up: the work-items past n have no element. */
    if (i < n)
        dst[i] = src[i];
}
"""

Floats = npt.NDArray[np.float32]
# A launch: enqueues one kernel and returns its event.
Launch = Callable[[], cl.Event]


def _round_up(size: int, multiple: int) -> int:
    return (size + multiple - 1) // multiple * multiple


def kernel_seconds(event: cl.Event) -> float:
    """The kernel's run time in seconds, from its event's start and end stamps."""
    # The stamps exist only once the command has finished.
    event.wait()
    profile = event.profile
    # Nanoseconds from the moment it began to run (not when it was queued) to its end.
    return float((profile.end - profile.start) * 1e-9)


def bandwidth_gbs(bytes_moved: int, seconds: float) -> float:
    """Effective bandwidth in GB/s (1 GB = 1e9 bytes)."""
    # A time that is not positive comes from a bug upstream: refuse it rather than divide.
    if seconds <= 0:
        raise ValueError(f"a kernel time must be positive to give a bandwidth, not {seconds!r} s")
    if bytes_moved < 0:
        raise ValueError(f"bytes_moved must be >= 0, not {bytes_moved!r}")
    # Decimal gigabytes, as bandwidths are quoted on datasheets.
    return bytes_moved / seconds / 1e9


def require_profiling(queue: cl.CommandQueue) -> None:
    """ValueError, naming PROFILING_ENABLE, unless `queue` stamps its events."""
    # properties is a bit field: test the one bit, whatever others are set.
    if not queue.properties & cl.command_queue_properties.PROFILING_ENABLE:
        raise ValueError(
            "this queue does not stamp its events: create it with "
            "cl.CommandQueue(context, properties=cl.command_queue_properties.PROFILING_ENABLE)"
        )


def _device_floats(x: npt.ArrayLike) -> Floats:
    """`x` as a C-contiguous float32 array; ValueError when it is empty."""
    if np.asarray(x).size == 0:
        raise ValueError("x is empty: OpenCL has no empty buffers")
    # The kernel reads 4-byte floats, one after another.
    return np.ascontiguousarray(x, dtype=np.float32)


def _copy_launch(queue: cl.CommandQueue, x32: Floats) -> tuple[Launch, cl.Buffer]:
    """A launch of kernel `copy` from a buffer holding `x32` into a new one, and that new one."""
    context = queue.context
    kernel = cl.Kernel(cl.Program(context, KERNEL).build(), "copy")
    flags = cl.mem_flags
    src = cl.Buffer(context, flags.READ_ONLY | flags.COPY_HOST_PTR, hostbuf=x32)
    dst = cl.Buffer(context, flags.WRITE_ONLY, x32.nbytes)
    n = len(x32)
    # A global size must be a multiple of the local size: round up (the kernel guards the tail).
    global_size = _round_up(n, LOCAL)

    def launch() -> cl.Event:
        return kernel(queue, (global_size,), (LOCAL,), src, dst, np.int32(n))

    return launch, dst


def timed_copy(queue: cl.CommandQueue, x: npt.ArrayLike) -> tuple[Floats, float]:
    """`x` copied through kernel `copy` as float32, and the kernel's time in seconds."""
    # Refuse a queue without stamps before building or launching anything.
    require_profiling(queue)
    x32 = _device_floats(x)
    launch, dst = _copy_launch(queue, x32)
    # The device's own stamps: a host clock around the launch would time Python and the queue.
    seconds = kernel_seconds(launch())
    copy = np.empty_like(x32)
    # The public call; the book's cl._enqueue_read_buffer is private to pyopencl.
    cl.enqueue_copy(queue, copy, dst)
    return copy, seconds


def profile_kernel(
    queue: cl.CommandQueue, launch: Launch, repeats: int, warmup: int = 1
) -> list[float]:
    """The kernel times of `repeats` calls of `launch`, after `warmup` calls left out."""
    require_profiling(queue)
    # Checked before the first launch, so that a bad call runs nothing.
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, not {repeats} and {warmup}")
    events = [launch() for _ in range(warmup + repeats)]
    # kernel_seconds waits for each one, the warm-ups too, so nothing is left running.
    times = [kernel_seconds(event) for event in events]
    return times[warmup:]


def copy_bandwidth(queue: cl.CommandQueue, x: npt.ArrayLike, repeats: int = 5) -> float:
    """The effective bandwidth of kernel `copy` on `x`, in GB/s, from its fastest run."""
    require_profiling(queue)
    x32 = _device_floats(x)
    launch, _ = _copy_launch(queue, x32)
    times = profile_kernel(queue, launch, repeats)
    # Every byte is read once and written once; the fastest run was disturbed least.
    return bandwidth_gbs(2 * x32.nbytes, min(times))
