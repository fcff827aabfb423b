"""Kata `shared_memory`: worker processes transform one NumPy array in place, without copies.

Contract (the tests check each point):

- `share(array)` (the caller keeps the block alive while it uses the view, then drops the view,
  closes the block and unlinks it):
  §1 `share` creates a new `multiprocessing.shared_memory.SharedMemory` block big enough for
  `array` (at least one byte: a block cannot be empty, and an empty array is shared too) and
  returns `(block, view)`, where `view` is a NumPy array of `array`'s shape and dtype whose
  memory *is* that block.
  §2 `share` copies `array`'s values into the block, leaving `array` itself unchanged.
- `scale_slice(name, shape, dtype, start, stop, factor)` runs in a worker process. It receives
  only the block's name, the array's shape and dtype (NumPy's `dtype.str`, e.g. `'<f8'`) and
  the rows to change.
  §3 `scale_slice` attaches to the existing block by name, views it as an array of `shape` and
  `dtype`, and multiplies rows `start:stop` (along the first axis) by `factor` in place, so
  that every process that maps the block sees the change.
  §4 `scale_slice` closes its handle on the block but never unlinks it: the block belongs to
  its creator. (Drop the NumPy view before closing.)
- `parallel_scale(array, factor, workers=2, target=None)`:
  §5 `parallel_scale` returns `array * factor`, computed in a shared block, and leaves `array`
  unchanged.
  §6 `parallel_scale` starts `workers` processes, one per range of `bounds(len(array),
  workers)` (disjoint rows, together all of them), each as
  `multiprocessing.Process(target=target, args=(name, shape, dtype, start, stop, factor))`
  with the block's name, `array.shape` and `array.dtype.str`; `target` None means
  `scale_slice`.
  §7 `parallel_scale` starts every worker before it joins any.
  §8 `parallel_scale` raises `ChildProcessError` when a worker fails (its exit code is not 0).
  §9 `parallel_scale` closes and unlinks the block before it returns or raises, whatever
  ended it (a failed worker, or an interruption such as `KeyboardInterrupt`).
  §10 `parallel_scale` leaves no worker process running when it returns or raises: it kills
  the ones still alive.

`bounds` and `explode` (a worker that always fails) are given. Worker functions live at module
level because a new process finds the function to run by its module and name.
"""

from __future__ import annotations

import itertools
import multiprocessing  # noqa: F401 (you start the workers as multiprocessing.Process)
from collections.abc import Callable
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np  # noqa: F401 (the arrays you build are np.ndarray)
import numpy.typing as npt

# How long parallel_scale waits for each worker; the work takes milliseconds.
JOIN_SECONDS = 10.0

Worker = Callable[[str, tuple[int, ...], str, int, int, float], None]


def bounds(length: int, parts: int) -> list[tuple[int, int]]:
    """Cut range(length) into `parts` consecutive (start, stop) row ranges of nearly equal size."""
    size, remainder = divmod(length, parts)
    edges = [0]
    for index in range(parts):
        edges.append(edges[-1] + size + (1 if index < remainder else 0))
    return list(itertools.pairwise(edges))


def explode(
    name: str, shape: tuple[int, ...], dtype: str, start: int, stop: int, factor: float
) -> None:
    """A worker that fails at once, the way a real one fails on bad data."""
    raise RuntimeError(f"worker for rows {start}:{stop} of block {name} failed")


def share(array: npt.NDArray[Any]) -> tuple[SharedMemory, npt.NDArray[Any]]:
    """A new shared block holding a copy of `array`, and a NumPy view on the block."""
    # TODO(kata): SharedMemory(create=True, size=array.nbytes, but at least 1);
    # np.ndarray(array.shape, dtype=array.dtype, buffer=block.buf); copy the data in with
    # view[...] = array.
    raise NotImplementedError


def scale_slice(
    name: str, shape: tuple[int, ...], dtype: str, start: int, stop: int, factor: float
) -> None:
    """In a worker: multiply rows start:stop of the shared array called `name` by `factor`."""
    # TODO(kata): attach with SharedMemory(name=name), view the buffer as the array, scale the
    # rows in place (view[start:stop] *= factor), then delete the view and close (not unlink).
    raise NotImplementedError


def parallel_scale(
    array: npt.NDArray[Any], factor: float, workers: int = 2, target: Worker | None = None
) -> npt.NDArray[Any]:
    """array * factor, computed in shared memory by `workers` processes; the block is unlinked."""
    # TODO(kata): share the array; start one multiprocessing.Process(target=target or
    # scale_slice, args=(block name, shape, dtype.str, start, stop, factor)) per range of
    # bounds(); join them all; raise ChildProcessError on a non-zero exit code; return a copy of
    # the view; in a finally, kill any worker still alive, drop the view, close and unlink.
    raise NotImplementedError
