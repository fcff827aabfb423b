"""Kata `opencl_devices`: the OpenCL platforms and devices of this machine, their limits, and
choosing a device in code.

A *platform* is one vendor's OpenCL driver (PoCL, Oclgrind, a GPU vendor's); each platform
offers one or more *devices*. pyopencl answers every question about them:
`pyopencl.get_platforms()`, then `platform.get_devices()`, then attributes of each device
(`device.max_compute_units`, `device.local_mem_size`, ...). The tests compare your answers with
pyopencl's own, on this machine's devices and on made-up ones (a machine with two platforms of
two devices each, a GPU whose third dimension stops at 64 work-items).

Contract (the tests check each point):

- `describe(device)` takes a `pyopencl.Device` and returns its `DeviceReport`.
  §1 `describe` copies pyopencl's own answers: `name` is `device.name`, `platform` is
  `device.platform.name`, `compute_units` is `device.max_compute_units`,
  `max_work_group_size` is `device.max_work_group_size` and `max_work_item_sizes` is
  `tuple(device.max_work_item_sizes)`.
  §2 `describe` gives `local_mem_bytes` (`device.local_mem_size`) and `global_mem_bytes`
  (`device.global_mem_size`) in bytes, exactly as the device reports them: not in KiB or GiB,
  not rounded.
  §3 `describe` decodes `device.type`, a bit field, into `kinds`: every name of `KINDS` whose
  bit (`pyopencl.device_type.CPU`, `.GPU`, `.ACCELERATOR`) is set, in `KINDS` order. A device
  may set several bits (Oclgrind sets all three; a GPU driver may add the DEFAULT bit, which
  is not a kind).
  §4 `describe` reads `opencl_c_version` as `(major, minor)` from `device.opencl_c_version`
  ("OpenCL C 1.2 PoCL" gives `(1, 2)`): the version of the kernel language, not
  `device.version` (the API's version: "OpenCL 3.0 PoCL" on PoCL).
- `list_devices()`:
  §5 `list_devices` returns `describe(d)` for every device `d` of every platform: the
  platforms in `pyopencl.get_platforms()` order, each platform's devices in
  `platform.get_devices()` order.
- `pick_device(kind="CPU", name_contains=None)` chooses a device in code.
  §6 `pick_device` returns the first device (the `pyopencl.Device`, not its report), in
  `list_devices` order, whose `kinds` hold `kind`.
  §7 `pick_device` given `name_contains` also requires that text, ignoring case, in the
  device's name or in its platform's name.
  §8 `pick_device` raises `LookupError` when no device matches, naming every device it found
  with its platform and kinds, so that the caller sees what there is to ask for.
  §9 `pick_device` raises `ValueError` naming the valid kinds when `kind` is not in `KINDS`.
  §10 `pick_device` never calls `pyopencl.create_some_context`, which may stop and ask on the
  terminal which device to use: a program (or a test) has nobody to answer it.
- `open_queue(device)`:
  §11 `open_queue` returns a `pyopencl.CommandQueue` on a new context that holds `device` and
  no other device.
- `fits(report, local_size, local_mem_bytes=0)` says whether the device of `report` accepts a
  launch whose work-groups have the shape `local_size` (an int for one dimension, or a tuple
  of ints) and use `local_mem_bytes` bytes of local memory. Every limit is inclusive: a value
  equal to the limit fits.
  §12 `fits` is False when a work-group's work-item count, the product of `local_size`,
  exceeds `report.max_work_group_size`.
  §13 `fits` is False when a dimension of `local_size` exceeds its entry of
  `report.max_work_item_sizes` (a GPU may allow 1024 work-items along x but only 64 along z),
  when a dimension is below 1, or when `local_size` has more dimensions than
  `report.max_work_item_sizes` has entries.
  §14 `fits` is False when `local_mem_bytes` exceeds `report.local_mem_bytes`.
"""

from __future__ import annotations

import math  # noqa: F401  (imported for you: your code will need it)
import re  # noqa: F401  (imported for you: your code will need it)
from dataclasses import dataclass
from typing import Any

import pyopencl as cl  # noqa: F401  (imported for you: your code will need it)

# The kinds of device a report names, in this order (each is a bit of `device.type`).
KINDS = ("CPU", "GPU", "ACCELERATOR")


@dataclass(frozen=True)
class DeviceReport:
    """What one device is and what it allows, as `describe` reads it from pyopencl."""

    name: str  # the device's name
    platform: str  # the name of the platform (the driver) that offers it
    kinds: tuple[str, ...]  # the names of KINDS whose bit device.type sets, in KINDS order
    compute_units: int  # cores (CPU) or multiprocessors (GPU) that run work-groups
    max_work_group_size: int  # most work-items in one work-group, all dimensions together
    max_work_item_sizes: tuple[int, ...]  # most work-items along each dimension of a group
    local_mem_bytes: int  # local memory one work-group may use, in bytes
    global_mem_bytes: int  # the device's global memory, in bytes
    opencl_c_version: tuple[int, int]  # the kernel language's (major, minor)


def describe(device: Any) -> DeviceReport:
    """The report of one `pyopencl.Device`: its names, kinds, limits and language version."""
    # TODO(kata): read the device's attributes; test each KINDS bit of device.type with &;
    # parse (major, minor) out of device.opencl_c_version.
    raise NotImplementedError


def list_devices() -> list[DeviceReport]:
    """The report of every device of every platform, in the order pyopencl gives them."""
    # TODO(kata): loop over cl.get_platforms() and, inside, over platform.get_devices().
    raise NotImplementedError


def pick_device(kind: str = "CPU", name_contains: str | None = None) -> Any:
    """The first `pyopencl.Device` of `kind` whose device or platform name contains
    `name_contains` (ignoring case); LookupError naming every device when none does."""
    # TODO(kata): check kind; walk the platforms' devices in order, return the first match;
    # otherwise raise LookupError listing every device with its platform and kinds.
    raise NotImplementedError


def open_queue(device: Any) -> Any:
    """A `pyopencl.CommandQueue` on a new context holding `device` alone."""
    # TODO(kata): make a cl.Context of exactly [device] and a cl.CommandQueue on it.
    raise NotImplementedError


def fits(report: DeviceReport, local_size: int | tuple[int, ...], local_mem_bytes: int = 0) -> bool:
    """Whether the device accepts work-groups of shape `local_size` using `local_mem_bytes`
    of local memory (every limit inclusive)."""
    # TODO(kata): compare the dimension count, each dimension, their product and the local
    # memory with the report's limits.
    raise NotImplementedError
