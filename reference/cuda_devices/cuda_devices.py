"""Kata `cuda_devices`: the CUDA devices of this machine, and the limits that decide whether a
kernel launch runs at all.

`pycuda.driver` (imported here as `cuda`) is a thin layer over NVIDIA's driver API. The driver
must be started with `cuda.init()` before any other call; after that `cuda.Device.count()`
says how many GPUs there are and `cuda.Device(i)` opens the i-th (its *ordinal*). A device
answers `name()`, `compute_capability()` (its architecture as `(major, minor)`: 8.0 is an
A100, 9.0 an H100) and `total_memory()` (bytes), and every other question through
`device.get_attribute(cuda.device_attribute.NAME)` (or `device.get_attributes()`, a dict of
all of them). None of this needs a context: contexts are for allocating memory and launching.

A launch asks for a grid of blocks of threads, and the driver refuses it outright (a
`pycuda.driver.LogicError`, "invalid argument") when it breaks one of the device's limits:
too many threads in one block, a block or a grid too long along one axis, or more shared
memory per block than a kernel may have. `launch_problems` checks a launch against a report of
those limits and says, in words, which ones it breaks.

Contract (the tests compare your answers with the driver's own, on this machine's GPUs and on
made-up ones, and launch a kernel at each limit and one past it):

- `describe(device)` takes a `pycuda.driver.Device` and returns its `DeviceReport`.
  §1 `describe` gives `name` as `device.name()`, `compute_capability` as
  `device.compute_capability()`, a tuple of two ints, and `total_memory_bytes` as
  `device.total_memory()` in bytes: not in KB or GB, not rounded.
  §2 `describe` reads the launch limits from the device's attributes: `multiprocessors`
  (`MULTIPROCESSOR_COUNT`), `warp_size` (`WARP_SIZE`), `max_threads_per_block`
  (`MAX_THREADS_PER_BLOCK`), `max_block_dims` (`MAX_BLOCK_DIM_X`, `_Y`, `_Z`) and
  `max_grid_dims` (`MAX_GRID_DIM_X`, `_Y`, `_Z`), each as the device reports it.
  §3 `describe` gives `max_shared_memory_per_block` as `MAX_SHARED_MEMORY_PER_BLOCK` in bytes,
  what any kernel may use: not `MAX_SHARED_MEMORY_PER_BLOCK_OPTIN` (more, but only for a
  kernel that opts in first) and not `MAX_SHARED_MEMORY_PER_MULTIPROCESSOR` (what all the
  blocks on one multiprocessor share).
- `list_devices()`:
  §4 `list_devices` calls `cuda.init()` before any other driver call: a program's first call
  to the driver must be `init` (calling it again later is harmless).
  §5 `list_devices` returns `describe(cuda.Device(i))` for every ordinal `i` from 0 to
  `cuda.Device.count() - 1`, in that order; an empty list when there is no device.
- `warps_per_block(report, block)`, for a block shape `block` of one to three ints:
  §6 `warps_per_block` returns the number of warps the block occupies, the block's thread
  count divided by `report.warp_size` and rounded up: a block runs as whole warps, so a block
  of 100 threads takes 4 warps of 32, and 28 of their lanes idle.
- `launch_problems(report, block, grid=(1, 1, 1), shared_bytes=0)` checks a launch of blocks
  of shape `block` in a grid of shape `grid` (each a tuple of one to three ints; missing axes
  are 1), asking for `shared_bytes` bytes of shared memory per block. It returns a list of
  sentences, one per limit the launch breaks. Every limit is inclusive: a value equal to its
  limit fits.
  §7 `launch_problems` raises `ValueError` when `block` or `grid` has no entry or more than
  three, or an entry below 1, or when `shared_bytes < 0`: that is no launch at all.
  §8 `launch_problems` returns `[]` when the launch breaks no limit.
  §9 `launch_problems` gives one sentence, containing `max_threads_per_block`, when the
  block's thread count (the product of `block`) exceeds `report.max_threads_per_block`.
  §10 `launch_problems` gives one sentence for each axis of `block` above its entry of
  `report.max_block_dims`, containing `max_block_dims` and the axis's name (`x`, `y` or `z`):
  a block of (1, 1, 65) breaks the z limit of 64 although 65 threads are few.
  §11 `launch_problems` gives one sentence for each axis of `grid` above its entry of
  `report.max_grid_dims`, containing `max_grid_dims` and the axis's name.
  §12 `launch_problems` gives one sentence, containing `max_shared_memory_per_block`, when
  `shared_bytes` exceeds `report.max_shared_memory_per_block`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pycuda.driver as cuda

AXES = ("x", "y", "z")


@dataclass(frozen=True)
class DeviceReport:
    """What one CUDA device is and what a launch on it may ask for, as `describe` reads it."""

    name: str  # the device's name, e.g. "NVIDIA H100 80GB HBM3"
    compute_capability: tuple[int, int]  # (major, minor): the architecture's version
    total_memory_bytes: int  # the device's global memory, in bytes
    multiprocessors: int  # streaming multiprocessors (SMs): each runs several blocks at once
    warp_size: int  # threads that execute one instruction together (32 on every NVIDIA GPU)
    max_threads_per_block: int  # most threads in one block, all axes together
    max_block_dims: tuple[int, int, int]  # most threads along x, y and z of a block
    max_grid_dims: tuple[int, int, int]  # most blocks along x, y and z of a grid
    max_shared_memory_per_block: int  # bytes of shared memory any block may use


def describe(device: Any) -> DeviceReport:
    """The report of one `pycuda.driver.Device`: its name, architecture, memory and limits."""
    attribute = cuda.device_attribute

    def limit(name: str) -> int:
        return int(device.get_attribute(getattr(attribute, name)))

    major, minor = device.compute_capability()
    return DeviceReport(
        name=device.name(),
        compute_capability=(int(major), int(minor)),
        # Bytes, as the driver gives them: a check against a limit needs every byte.
        total_memory_bytes=int(device.total_memory()),
        multiprocessors=limit("MULTIPROCESSOR_COUNT"),
        warp_size=limit("WARP_SIZE"),
        max_threads_per_block=limit("MAX_THREADS_PER_BLOCK"),
        max_block_dims=(
            limit("MAX_BLOCK_DIM_X"),
            limit("MAX_BLOCK_DIM_Y"),
            limit("MAX_BLOCK_DIM_Z"),
        ),
        max_grid_dims=(limit("MAX_GRID_DIM_X"), limit("MAX_GRID_DIM_Y"), limit("MAX_GRID_DIM_Z")),
        # The default per-block limit: the _OPTIN one needs cuFuncSetAttribute first.
        max_shared_memory_per_block=limit("MAX_SHARED_MEMORY_PER_BLOCK"),
    )


def list_devices() -> list[DeviceReport]:
    """The report of every CUDA device, in ordinal order."""
    # First: every other driver call fails until the driver is initialised.
    cuda.init()
    return [describe(cuda.Device(ordinal)) for ordinal in range(cuda.Device.count())]


def warps_per_block(report: DeviceReport, block: tuple[int, ...]) -> int:
    """How many warps a block of shape `block` occupies on the device of `report`."""
    # Rounded up: a warp is scheduled whole, even when only some of its lanes have a thread.
    return -(-math.prod(block) // report.warp_size)


def _shape(name: str, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """`shape` padded with 1s to three axes; ValueError when it is no shape of a launch."""
    if not 1 <= len(shape) <= 3 or any(size < 1 for size in shape):
        raise ValueError(f"{name} must be one to three sizes of at least 1, not {shape!r}")
    padded = (*shape, 1, 1)
    return padded[0], padded[1], padded[2]


def launch_problems(
    report: DeviceReport,
    block: tuple[int, ...],
    grid: tuple[int, ...] = (1, 1, 1),
    shared_bytes: int = 0,
) -> list[str]:
    """One sentence per limit of `report` that the launch breaks; [] when it fits."""
    block3, grid3 = _shape("block", block), _shape("grid", grid)
    if shared_bytes < 0:
        raise ValueError(f"shared_bytes cannot be negative, not {shared_bytes}")
    problems = []
    threads = math.prod(block3)
    # Every comparison is >: a value equal to its limit is allowed.
    if threads > report.max_threads_per_block:
        problems.append(
            f"the block has {threads} threads, more than max_threads_per_block = "
            f"{report.max_threads_per_block}"
        )
    for axis, size, most in zip(AXES, block3, report.max_block_dims, strict=True):
        if size > most:
            problems.append(
                f"the block has {size} threads along {axis}, more than max_block_dims "
                f"allows there ({most})"
            )
    for axis, size, most in zip(AXES, grid3, report.max_grid_dims, strict=True):
        if size > most:
            problems.append(
                f"the grid has {size} blocks along {axis}, more than max_grid_dims allows "
                f"there ({most})"
            )
    if shared_bytes > report.max_shared_memory_per_block:
        problems.append(
            f"the launch asks for {shared_bytes} bytes of shared memory per block, more than "
            f"max_shared_memory_per_block = {report.max_shared_memory_per_block}"
        )
    return problems
