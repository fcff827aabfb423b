"""Numba's CUDA simulator for the katas, with a deterministic race checker for its kernels.

At configure time this plugin sets NUMBA_ENABLE_CUDASIM=1 (unless KATA_NUMBA_GPU=1 asks for the
real GPU), so `cuda.jit` kernels run on any laptop: the simulator runs each CUDA thread of a
block as a Python thread (numba/cuda/simulator/kernel.py). The report header says which one.

The checker is on for every test that carries the `numba` marker (the curriculum gives it to
each test of a Numba kata) and for any test that asks for the `cuda_races` fixture; elsewhere
the simulator runs untouched. While it is on, for the test's body only:

- the threads of a block run one at a time, each until it reaches `cuda.syncthreads()` or ends,
  in thread order, round after round. One valid schedule among those a GPU may pick, always the
  same: a racy kernel gives the same numbers on every run, and no thread waits on a busy loop.
- every access to a `cuda.shared.array` and to a kernel's array arguments is recorded with the
  thread (block and thread indices), read, write or atomic, the kernel's source line, and the
  thread's barrier epoch: how many `cuda.syncthreads()` it has passed in this launch.
- two accesses to one element by two threads of one block in one epoch, at least one a write
  (atomics among themselves excepted), are a data race whatever order the threads ran in, so
  the verdict does not depend on the schedule. In global memory, threads of two different
  blocks are never ordered within a launch: one writing an element that the other reads or
  writes is a race too. A read of a shared element that no thread of its block has written is
  reported as well: each block gets shared arrays of its own (the stock simulator shares one
  between blocks), filled with NaN, or 0xA5 bytes for integers, as garbage would be.
- a barrier that only part of a block reaches (inside an `if`, or after an early `return`) is
  undefined behaviour that hangs a real GPU and that the stock simulator lets pass: the launch
  raises DivergentBarrier at once, naming the threads and the lines.

After the test, what the checker found fails it with the kernel, the array, the element, the two
threads and the source lines, the first problem per array (and how many more). An IndexError in
a kernel gets a note about threads past the end of the data. The checker's cost is a few
microseconds per array access; running a block's threads in turn is several times faster than
the stock simulator's busy polling. With KATA_NUMBA_GPU=1 nothing is patched.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import linecache
import operator
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

GPU_VARIABLE = "KATA_NUMBA_GPU"
SIMULATOR_VARIABLE = "NUMBA_ENABLE_CUDASIM"
MARKER = "numba"
FIXTURE = "cuda_races"
SHOWN = 3  # problems explained in full in one test's failure; the rest are counted
JOIN_SECONDS = 5.0  # how long an aborted block's threads get to end
READ, WRITE, ATOMIC = "read", "write", "atomic"
VERBS = {READ: "reads", WRITE: "writes", ATOMIC: "updates atomically"}
BOUNDS_NOTE = (
    "(numba_sim: a thread indexed past the end of an array. When the number of blocks is "
    "rounded up, the last block has threads past the end of the data: guard their loads and "
    "stores with `if i < n`.)"
)
SHARED_NAME = re.compile(r"(\w+)\s*=\s*(?:\w+\.)*shared\.array\(")
SYNC_ADVICE = (
    "Every thread must pass a cuda.syncthreads() between one thread's write and another's "
    "read of the same element: put one after the step that writes{after}, outside any `if`, "
    "so that the whole block reaches it."
)
STEP_ADVICE = (
    "A step of a loop reads what another thread writes in the same step: every thread must "
    "pass a cuda.syncthreads() at the end of each step, outside any `if`, before any thread "
    "starts the next."
)
SHARED_WRITES_ADVICE = (
    "Two threads of one block wrote the same element between two barriers, so which value "
    "stays depends on their order: each element must have one writer per step (check the "
    "index), or a cuda.syncthreads() must separate the writes."
)
GLOBAL_ADVICE = (
    "No barrier orders the threads of different blocks within a launch: each element a kernel "
    "writes must be written by exactly one thread, and read by no other thread of that launch. "
    "Check the index and the stride: a grid-stride loop starts at cuda.grid(1) and steps by "
    "cuda.gridsize(1), the number of threads in the whole grid."
)
UNINITIALIZED_ADVICE = (
    "Shared memory holds garbage when a block starts (left there by another block or kernel; "
    "here NaN, or 0xA5 bytes for integers): every element a thread reads must have been stored by a thread of the same "
    "block before a cuda.syncthreads(). Threads past the end of the input store a neutral "
    "value (0 for a sum) instead of returning."
)
DIVERGENCE_ADVICE = (
    "Every thread of a block must reach every cuda.syncthreads(): one inside an `if` that not "
    "all threads take, or after an early `return`, is undefined behaviour that hangs a real GPU "
    "(the simulator would let it pass). Keep the threads past the end of the data in the kernel "
    "(guard only their loads and stores) and put each barrier where all threads pass."
)

state_key = pytest.StashKey["NumbaSim"]()
checker_key = pytest.StashKey["RaceChecker"]()


class DivergentBarrier(RuntimeError):
    """A cuda.syncthreads() that only part of a block reached (raised by the kernel launch)."""


@dataclass
class NumbaSim:
    """This run's choice: the simulator (the default) or a real GPU (KATA_NUMBA_GPU=1)."""

    on_gpu: bool
    late: bool = False  # numba.cuda was imported, with the other choice, before this plugin ran


# -- configure -------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before any test module imports numba.cuda, which reads the variable once."""
    on_gpu = os.environ.get(GPU_VARIABLE, "").strip() == "1"
    # Too late when numba.cuda is imported already with the other choice.
    imported = sys.modules.get("numba.cuda.core.config")
    late = imported is not None and bool(getattr(imported, "ENABLE_CUDASIM", 0)) == on_gpu
    config.stash[state_key] = NumbaSim(on_gpu=on_gpu, late=late)
    os.environ[SIMULATOR_VARIABLE] = "0" if on_gpu else "1"


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(state_key, None)
    if state is None or _missing("numba_cuda"):
        return None
    if state.on_gpu:
        line = (
            f"numba: CUDA kernels run on the real GPU ({GPU_VARIABLE}=1); the simulator's race "
            f"checks are off"
        )
    else:
        line = (
            f"numba: CUDA kernels run on Numba's CUDA simulator ({SIMULATOR_VARIABLE}=1), "
            f"shared and global memory races and divergent barriers checked; "
            f"{GPU_VARIABLE}=1 uses a real GPU"
        )
    if state.late:
        line += " (but numba.cuda was imported before this plugin ran, with the other choice)"
    return line


def _missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


# -- what the checker records ----------------------------------------------------------------

Dim = tuple[int, int, int]


@dataclass(slots=True)
class Access:
    """One thread's access to one element."""

    block: Dim
    thread: Dim
    kind: str  # READ, WRITE or ATOMIC
    epoch: int  # the barriers this thread had passed
    file: str
    line: int
    array: str
    index: tuple[int, ...]

    def who(self) -> str:
        return f"thread {_dim(self.thread)} of block {_dim(self.block)}"

    def element(self) -> str:
        return f"{self.array}[{', '.join(map(str, self.index))}]"

    def where(self) -> str:
        return _where(self.file, self.line)


def _dim(values: Dim) -> str:
    return "(" + ",".join(map(str, values)) + ")"


def _where(file: str, line: int) -> str:
    source = linecache.getline(file, line).strip()
    return f"{Path(file).name}:{line}" + (f" (`{source}`)" if source else "")


def _conflicting(kind: str, other: str) -> bool:
    """Whether two accesses of these kinds by two unordered threads are a race."""
    if kind == READ:
        return other != READ
    if kind == ATOMIC:
        return other != ATOMIC
    return True


@dataclass(slots=True)
class Slot:
    """The accesses to one element that no barrier orders: up to two of each kind, from
    different owners (threads, or blocks), which is enough to find one from another owner."""

    seen: dict[str, list[Access]] = field(default_factory=dict)

    def check_and_add(self, access: Access, owner: Callable[[Access], Any]) -> Access | None:
        mine = owner(access)
        clash = None
        for kind, accesses in self.seen.items():
            if _conflicting(access.kind, kind):
                clash = next((a for a in accesses if owner(a) != mine), None)
                if clash is not None:
                    break
        kept = self.seen.setdefault(access.kind, [])
        if len(kept) < 2 and all(owner(a) != mine for a in kept):
            kept.append(access)
        return clash


def _thread_of(access: Access) -> Dim:
    return access.thread


def _block_of(access: Access) -> Dim:
    return access.block


@dataclass
class Problem:
    kind: str  # "race", "uninitialized" or "divergence"
    kernel: str
    launch: int
    array: str
    space: str  # "shared" or "global"
    first: Access | None = None
    second: Access | None = None
    text: str = ""  # the divergence's own explanation
    more: int = 0

    def explain(self) -> str:
        head = f"kernel `{self.kernel}` (launch {self.launch} in this test)"
        if self.kind == "divergence":
            return f"{head}: {self.text}\n  {DIVERGENCE_ADVICE}"
        assert self.first is not None
        more = f" (and {self.more} more like it on `{self.array}`)" if self.more else ""
        if self.kind == "uninitialized":
            return (
                f"{head}: {self.first.who()} reads {self.first.element()} at "
                f"{self.first.where()}, which no thread of its block had written: a read of "
                f"uninitialized shared memory{more}.\n  {UNINITIALIZED_ADVICE}"
            )
        assert self.second is not None
        one, other = self.first, self.second
        if one.kind != READ and other.kind == READ:  # the reader first, as one reads it
            one, other = other, one
        space = f"shared array `{self.array}`" if self.space == "shared" else f"`{self.array}`"
        sentence = f"{head}: data race on {space} ({self.space} memory): {one.who()} "
        sentence += f"{VERBS[one.kind]} {one.element()} at {one.where()} while "
        if one.block != other.block:
            return (
                f"{sentence}{other.who()} {VERBS[other.kind]} it at {other.where()}, and "
                f"nothing orders two blocks{more}.\n  {GLOBAL_ADVICE}"
            )
        sentence += (
            f"thread {_dim(other.thread)} of the same block {VERBS[other.kind]} it at "
            f"{other.where()}, with no cuda.syncthreads() between them"
        )
        if one.kind != READ and other.kind != READ:
            return f"{sentence}{more}.\n  {SHARED_WRITES_ADVICE}"
        if one.epoch:  # which step of a loop
            sentence += f" (both after the block's cuda.syncthreads() number {one.epoch})"
        if one.line == other.line:  # one statement of a loop, in one step
            return f"{sentence}: add one after each step{more}.\n  {STEP_ADVICE}"
        source = linecache.getline(other.file, other.line).strip()
        after = f" (`{source}`, line {other.line})" if source else ""
        return f"{sentence}: add one after the stores{more}.\n  {SYNC_ADVICE.format(after=after)}"


@dataclass
class Launch:
    """One kernel launch: its global memory accesses, and the block that runs now."""

    kernel: str
    number: int
    global_slots: dict[tuple[Any, ...], Slot] = field(default_factory=dict)
    cross_block: dict[int, Slot] = field(default_factory=dict)
    # id of an array argument (or part of one) -> (it, its name or "", its NumPy array)
    names: dict[int, tuple[Any, str, Any]] = field(default_factory=dict)
    shared: dict[tuple[Any, ...], Any] = field(default_factory=dict)  # (block, site) -> proxy
    # The block running now: its shared memory accesses, per element and epoch.
    shared_slots: dict[tuple[int, int], Slot] = field(default_factory=dict)
    written: dict[int, int] = field(default_factory=dict)  # shared address -> first epoch
    unwritten_reads: list[Access] = field(default_factory=list)
    unwritten_addresses: list[int] = field(default_factory=list)


class RaceChecker:
    """What one test's kernels did to their memory, and what went wrong."""

    def __init__(self, active: bool) -> None:
        self.active = active  # False on a real GPU: nothing is checked there
        self.simulator = "//"  # the simulator's folder, once it is patched: no file is in "//"
        self.problems: list[Problem] = []
        self.launches = 0
        self.launch: Launch | None = None
        self._seen: dict[tuple[str, str, str], Problem] = {}

    # launches and blocks

    def launch_started(self, kernel: str) -> None:
        self.launches += 1
        self.launch = Launch(kernel, self.launches)

    def launch_ended(self) -> None:
        self.launch = None

    def block_started(self) -> None:
        if self.launch is not None:
            self.launch.shared_slots.clear()
            self.launch.written.clear()
            self.launch.unwritten_reads.clear()
            self.launch.unwritten_addresses.clear()

    def block_ended(self) -> None:
        launch = self.launch
        if launch is None:
            return
        for access, address in zip(launch.unwritten_reads, launch.unwritten_addresses, strict=True):
            written = launch.written.get(address)
            if written is None or written > access.epoch:  # else a race, reported as one
                self._add(
                    Problem(
                        "uninitialized",
                        launch.kernel,
                        launch.number,
                        access.array,
                        "shared",
                        access,
                    )
                )

    # accesses

    def record(
        self,
        shared: bool,
        name: str,
        address: int,
        index: tuple[int, ...],
        kind: str,
        frame: FrameType | None,
    ) -> None:
        launch = self.launch
        thread: Any = threading.current_thread()
        who = getattr(thread, "kata_who", None)
        if launch is None or who is None or frame is None:
            return  # not in a simulated kernel run by this checker
        if frame.f_code.co_filename.startswith(self.simulator):  # cuda.atomic.* does these
            kind = ATOMIC
            frame = _kernel_frame(frame, self.simulator)
            if frame is None:
                return
        epoch: int = thread.kata_epoch
        access = Access(
            who[0], who[1], kind, epoch, frame.f_code.co_filename, frame.f_lineno, name, index
        )
        if shared:
            slot = launch.shared_slots.setdefault((address, epoch), Slot())
            clash = slot.check_and_add(access, _thread_of)
            if kind == READ and launch.written.get(address, epoch + 1) > epoch:
                launch.unwritten_reads.append(access)
                launch.unwritten_addresses.append(address)
            elif kind != READ:
                launch.written.setdefault(address, epoch)
        else:
            slot = launch.global_slots.setdefault((address, who[0], epoch), Slot())
            clash = slot.check_and_add(access, _thread_of)
            across = launch.cross_block.setdefault(address, Slot()).check_and_add(access, _block_of)
            clash = clash or across
        if clash is not None:
            self._add(
                Problem(
                    "race",
                    launch.kernel,
                    launch.number,
                    name,
                    "shared" if shared else "global",
                    clash,
                    access,
                )
            )

    def diverged(self, text: str) -> None:
        launch = self.launch
        kernel, number = (launch.kernel, launch.number) if launch else ("?", 0)
        self._add(Problem("divergence", kernel, number, "", "", text=text))

    def _add(self, problem: Problem) -> None:
        key = (problem.kind, problem.kernel, problem.array)
        if key in self._seen:
            self._seen[key].more += 1
            return
        self._seen[key] = problem
        self.problems.append(problem)

    def report(self) -> str:
        shown = self.problems[:SHOWN]
        lines = [
            f"Numba's CUDA simulator (the race checker of plugins/numba_sim.py) found "
            f"{len(self.problems)} problem(s) in this test's kernels, whatever numbers they "
            f"gave: on a GPU they give wrong results on some runs only, or hang."
        ]
        lines += [f"- {problem.explain()}" for problem in shown]
        if len(self.problems) > SHOWN:
            lines.append(f"({len(self.problems) - SHOWN} more not shown: fix these first.)")
        return "\n".join(lines)


# -- the simulator, patched while a checked test runs ----------------------------------------


def _kernel_frame(frame: FrameType | None, simulator: str) -> FrameType | None:
    """The innermost frame outside the simulator's own files (folder `simulator`): the
    kernel's line."""
    while frame is not None and frame.f_code.co_filename.startswith(simulator):
        frame = frame.f_back
    return frame


def _element(index: Any, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """`index` as one non-negative integer per axis, or None when it is not one element."""
    parts = index if isinstance(index, tuple) else (index,)
    if len(parts) != len(shape):
        return None
    try:
        numbers = [operator.index(part) for part in parts]
    except TypeError:
        return None
    return tuple(i + n if i < 0 else i for i, n in zip(numbers, shape, strict=True))


def _address(array: Any, element: tuple[int, ...]) -> int:
    base = int(array.__array_interface__["data"][0])
    return base + sum(i * int(s) for i, s in zip(element, array.strides, strict=True))


class SharedArray:
    """A `cuda.shared.array` as kernels see it while the checker is on: the NumPy array the
    simulator would give, whose element reads and writes are recorded (a row of a 2-D one,
    `tile[r]`, is such an array too, recorded as elements of the whole)."""

    __slots__ = ("_array", "_base", "_checker", "_name", "_root", "_shape", "_strides")

    def __init__(
        self, array: Any, name: str, checker: RaceChecker, root: SharedArray | None = None
    ) -> None:
        self._array = array
        self._name = name
        self._checker = checker
        self._root = root  # the whole array, when this is a part of it
        self._shape: tuple[int, ...] = tuple(array.shape)
        self._strides: tuple[int, ...] = tuple(array.strides)
        self._base = int(array.__array_interface__["data"][0])

    def _touch(self, index: Any, kind: str, frame: FrameType | None) -> None:
        element = _element(index, self._shape)
        if element is None:  # a slice written as a whole: its elements one by one
            import numpy as np

            view = self._array[index]
            for position in np.ndindex(*view.shape):
                self._record(_address(view, position), None, kind, frame)
            return
        address = self._base + sum(i * s for i, s in zip(element, self._strides, strict=True))
        self._record(address, element, kind, frame)

    def _record(
        self, address: int, element: tuple[int, ...] | None, kind: str, frame: FrameType | None
    ) -> None:
        whole = self._root or self
        if element is None or whole is not self:  # the element's index in the whole array
            element = _unravel(address - whole._base, whole._array.itemsize, whole._shape)
        self._checker.record(True, self._name, address, element, kind, frame)

    def __getitem__(self, index: Any) -> Any:
        value = self._array[index]
        if getattr(value, "ndim", 0):  # a row, or a slice: recorded when indexed
            return SharedArray(value, self._name, self._checker, self._root or self)
        self._touch(index, READ, sys._getframe(1))
        return value

    def __setitem__(self, index: Any, value: Any) -> None:
        self._array[index] = value
        self._touch(index, WRITE, sys._getframe(1))

    def __len__(self) -> int:
        return len(self._array)

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self._array)):
            yield self[i]

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        return self._array.__array__(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # shape, size, dtype, ndim...
        return getattr(self._array, name)

    def __repr__(self) -> str:
        return f"SharedArray({self._name}, {self._array!r})"


def _unravel(offset: int, itemsize: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The index of the element `offset` bytes into a C-contiguous array."""
    index = []
    flat = offset // itemsize
    for size in reversed(shape):
        flat, position = divmod(flat, size)
        index.append(position)
    return tuple(reversed(index))


def _poisoned(shape: Any, dtype: Any) -> Any:
    """A fresh array for one block's shared memory: NaN for floats, 0xA5 bytes otherwise, as
    garbage would be on a GPU (the simulator reuses one array for every block)."""
    import numpy as np

    array = np.empty(shape, dtype)
    if array.dtype.kind in "fc":
        array.fill(np.nan)
    else:
        array.view(np.uint8).fill(0xA5)
    return array


def _shared_name(frame: FrameType) -> str:
    source = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    match = SHARED_NAME.search(source)
    return match.group(1) if match else f"shared array of line {frame.f_lineno}"


def _global_label(
    launch: Launch, array: Any, data: Any, element: tuple[int, ...], frame: FrameType
) -> tuple[str, tuple[int, ...]]:
    """The kernel's name for the array argument `array` and the element's index in it; for a
    part of one (`a[i]` of a 2-D `a`), the whole array's name and index."""
    known = launch.names.get(id(array))
    if known is None or known[0] is not array:
        name = next((local for local, value in frame.f_locals.items() if value is array), "")
        # The array is kept, so that its id is not reused for another during the launch.
        known = launch.names[id(array)] = (array, name, data)
    if known[1]:
        return known[1], element
    address = _address(data, element)
    for _, name, whole in launch.names.values():
        start = int(whole.__array_interface__["data"][0])
        if name and whole.flags.c_contiguous and start <= address < start + whole.nbytes:
            return name, _unravel(address - start, whole.itemsize, tuple(whole.shape))
    return "an array", element


def _divergence(threads: list[Any], waiting: list[Any]) -> str | None:
    """What is wrong when a round of a block ends with `waiting` at barriers, or None."""
    sites: dict[tuple[str, int], list[Any]] = {}
    for thread in waiting:
        sites.setdefault(thread.kata_site, []).append(thread)
    finished = [thread for thread in threads if thread.kata_done]
    if len(sites) <= 1 and not finished:
        return None
    block = _dim(threads[0].kata_who[0])
    parts = [
        f"threads {_threads(group)} wait at cuda.syncthreads() at {_where(*site)}"
        for site, group in sites.items()
    ]
    if finished:
        parts.append(
            f"threads {_threads(finished)} ended (returned) without reaching "
            f"{'it' if len(sites) == 1 else 'either'}"
        )
    return f"in block {block}, " + ", while ".join(parts) + "."


def _threads(threads: list[Any]) -> str:
    names = [_dim(thread.kata_who[1]) for thread in threads]
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def _module(name: str) -> Any:
    return importlib.import_module(name)


@contextlib.contextmanager
def patched_simulator(checker: RaceChecker) -> Iterator[None]:
    """The simulator's classes patched for `checker`, and restored afterwards."""
    import numpy as np

    # As Any: numba's own annotations are partial, and these are the simulator's internals.
    cuda_types = _module("numba.cuda.types")
    numpy_support = _module("numba.cuda.np.numpy_support")
    sim = _module("numba.cuda.simulator.kernel")
    kernelapi = _module("numba.cuda.simulator.kernelapi")
    devicearray = _module("numba.cuda.simulator.cudadrv.devicearray")

    checker.simulator = str(Path(sim.__file__).parent) + os.sep
    within = devicearray.FakeWithinKernelCUDAArray
    originals: list[tuple[Any, str, Any]] = [
        (sim.BlockManager, "run", sim.BlockManager.run),
        (sim.FakeCUDAKernel, "__call__", sim.FakeCUDAKernel.__call__),
        (kernelapi.FakeCUDAShared, "array", kernelapi.FakeCUDAShared.array),
        (within, "__getitem__", within.__getitem__),
        (within, "__setitem__", within.__setitem__),
    ]
    launch_kernel, shared_array = sim.FakeCUDAKernel.__call__, kernelapi.FakeCUDAShared.array
    get_item, set_item = within.__getitem__, within.__setitem__
    pool = Pool(_worker_class(sim.BlockThread, checker.simulator))

    def run_block(manager: Any, grid_point: tuple[int, ...], *args: Any) -> None:
        points = list(np.ndindex(*manager._block_dim))
        threads = pool.take(len(points))
        block = _dim3(grid_point)

        def target() -> None:
            manager._f(*args)

        for thread, point in zip(threads, points, strict=True):
            thread.assign(target, manager, block, _dim3(point))
        checker.block_started()
        failed = True
        try:
            runnable = threads
            while runnable:
                waiting = []
                for thread in runnable:  # one at a time, in thread order
                    pool.turn(thread)  # until it reaches a barrier or ends
                    if thread.exception:
                        error, traceback = thread.exception
                        raise error.with_traceback(traceback)
                    if not thread.kata_done:
                        waiting.append(thread)
                if waiting and (text := _divergence(threads, waiting)):
                    checker.diverged(text)
                    raise DivergentBarrier(
                        f"kernel `{_kernel_name(manager)}`: {text} {DIVERGENCE_ADVICE}"
                    )
                runnable = waiting
            failed = False
        finally:
            if failed:  # the others end at their next step, and the workers are free again
                pool.abort(threads)
        checker.block_ended()

    def call_kernel(kernel: Any, *args: Any) -> Any:
        if kernel._device or sim._kernel_context is not None:  # a device function
            return launch_kernel(kernel, *args)
        checker.launch_started(getattr(kernel.fn, "__name__", "kernel"))
        try:
            return launch_kernel(kernel, *args)
        except IndexError as error:
            error.add_note(BOUNDS_NOTE)
            raise
        finally:
            checker.launch_ended()

    def allocate_shared(shared: Any, shape: Any, dtype: Any, alignment: Any = None) -> Any:
        frame = sys._getframe(1)
        launch = checker.launch
        if shape == 0 or alignment is not None or launch is None:  # dynamic: as it was
            return shared_array(shared, shape, dtype, alignment)
        if isinstance(dtype, cuda_types.Type):
            dtype = numpy_support.as_dtype(dtype)
        who = getattr(threading.current_thread(), "kata_who", None)
        # One array per block and line, as the simulator has one per line (see its
        # FakeCUDAShared), but fresh in each block.
        key = (who[0] if who else None, frame.f_code.co_filename, frame.f_lineno)
        proxy = launch.shared.get(key)
        if proxy is None:
            proxy = SharedArray(_poisoned(shape, dtype), _shared_name(frame), checker)
            launch.shared[key] = proxy
        return proxy

    def read_global(array: Any, index: Any) -> Any:
        value = get_item(array, index)
        touch_global(array, index, READ, sys._getframe(1))
        return value

    def write_global(array: Any, index: Any, value: Any) -> None:
        set_item(array, index, value)
        touch_global(array, index, WRITE, sys._getframe(1))

    def touch_global(array: Any, index: Any, kind: str, frame: FrameType) -> None:
        launch = checker.launch
        data = array.__dict__["_item"]._ary
        element = _element(index, data.shape)
        if launch is None or element is None:
            return
        place = _kernel_frame(frame, checker.simulator)
        if place is not None:
            name, index = _global_label(launch, array, data, element, place)
            checker.record(False, name, _address(data, element), index, kind, frame)

    replacements = [run_block, call_kernel, allocate_shared, read_global, write_global]
    try:
        for (owner, name, _), replacement in zip(originals, replacements, strict=True):
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
        pool.close()


def _dim3(point: Any) -> Dim:
    values = [int(p) for p in point] + [0, 0, 0]
    return (values[0], values[1], values[2])


def _worker_class(block_thread: Any, simulator: str) -> Any:
    """A simulator thread (kernelapi finds threadIdx, blockIdx and syncthreads on
    `threading.current_thread()`) that runs one CUDA thread after another: starting a thread
    costs far more than handing one a turn."""

    class Worker(block_thread):  # type: ignore[misc]
        def __init__(self, back: threading.Lock, number: int) -> None:
            threading.Thread.__init__(self, name=f"cuda-simulator-{number}", daemon=True)
            self.kata_back = back  # released when this thread's turn ends
            self.kata_go = threading.Lock()  # released to give this thread a turn
            self.kata_go.acquire()
            self.kata_stop = False
            self.kata_done = True
            self.abort = False

        def assign(self, target: Callable[[], None], manager: Any, block: Dim, thread: Dim) -> None:
            """The CUDA thread `thread` of block `block` is this worker's next job."""
            self._target, self._args, self._kwargs = target, (), dict[str, Any]()
            self._manager, self.debug = manager, manager._debug
            self.blockIdx, self.threadIdx = _dim3_object(block), _dim3_object(thread)
            x, y, _ = manager._block_dim
            self.thread_id = thread[0] + x * (thread[1] + y * thread[2])
            self.exception, self.abort, self.syncthreads_blocked = None, False, False
            self.kata_who, self.kata_epoch, self.kata_done = (block, thread), 0, False
            self.kata_site: tuple[str, int] = ("?", 0)

        def run(self) -> None:
            while True:
                self.kata_go.acquire()
                if self.kata_stop:
                    return
                if not self.abort:
                    if self.debug:
                        np_seterr_raise()
                    block_thread.run(self)  # the simulator's: an exception is kept, with ids
                self.kata_done = True
                if self.closing():  # nobody waits for this turn any more
                    return
                self.kata_back.release()

        def closing(self) -> bool:
            """Whether the pool is being closed (set from the test's thread)."""
            return bool(self.kata_stop)

        def syncthreads(self) -> None:
            if self.abort or self.kata_stop:
                raise RuntimeError("abort flag set on syncthreads call")
            frame = _kernel_frame(sys._getframe(1), simulator)
            self.kata_site = (frame.f_code.co_filename, frame.f_lineno) if frame else ("?", 0)
            self.kata_back.release()
            self.kata_go.acquire()  # the next round
            if self.abort:
                raise RuntimeError("abort flag set on syncthreads clear")
            self.kata_epoch += 1

    return Worker


def np_seterr_raise() -> None:
    import numpy as np

    np.seterr(divide="raise")  # as the simulator's debug mode does


def _dim3_object(values: Dim) -> Any:
    return _module("numba.cuda.simulator.kernelapi").Dim3(*values)


class Pool:
    """The worker threads of one test, reused from block to block, one turn at a time."""

    def __init__(self, worker_class: Any) -> None:
        self.worker_class = worker_class
        self.workers: list[Any] = []
        self.back = threading.Lock()
        self.back.acquire()
        self.broken = False

    def take(self, count: int) -> list[Any]:
        if self.broken:  # a worker may still be running a kernel: start afresh
            self.close()
            self.back = threading.Lock()
            self.back.acquire()
            self.broken = False
        while len(self.workers) < count:
            worker = self.worker_class(self.back, len(self.workers))
            worker.start()
            self.workers.append(worker)
        return self.workers[:count]

    def turn(self, worker: Any) -> None:
        worker.kata_go.release()
        self.broken = True  # until the turn ends: an interrupt here leaves it running
        self.back.acquire()
        self.broken = False

    def abort(self, workers: list[Any]) -> None:
        """Ends the block after an error: each thread's next step raises, in turn."""
        if self.broken:
            return
        for worker in workers:
            worker.abort = True
        for worker in workers:
            if not worker.kata_done:
                worker.kata_go.release()
                if not self.back.acquire(timeout=JOIN_SECONDS):
                    self.broken = True
                    return

    def close(self) -> None:
        """Ends every worker: an idle one at once, one waiting at a barrier by an error there,
        one still running (a kernel that never ends, interrupted by the test's budget) at its
        next barrier, if it reaches one."""
        for worker in self.workers:
            worker.kata_stop = worker.abort = True
            with contextlib.suppress(RuntimeError):  # unlocked: its turn was already given
                worker.kata_go.release()
        for worker in self.workers:
            worker.join(JOIN_SECONDS if not self.broken else 0.1)
        self.workers = []


def _kernel_name(manager: Any) -> str:
    return str(getattr(manager._f, "__name__", "kernel"))


# -- run time --------------------------------------------------------------------------------


def _checked(item: pytest.Item) -> bool:
    return item.get_closest_marker(MARKER) is not None or FIXTURE in getattr(
        item, "fixturenames", ()
    )


def _checker_for(item: pytest.Item) -> RaceChecker:
    checker = item.stash.get(checker_key, None)
    if checker is None:
        state = item.config.stash.get(state_key, None)
        simulated = state is not None and not state.on_gpu
        checker = item.stash[checker_key] = RaceChecker(active=simulated)
    return checker


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """A checked test's body runs on the patched simulator; what the checker found then fails
    it, after its own outcome (a race often gives the right numbers)."""
    if not _checked(item):
        return (yield)
    checker = _checker_for(item)
    # Only where numba.cuda is in use already (a Numba kata without CUDA kernels pays nothing).
    if not checker.active or (
        "numba.cuda" not in sys.modules and FIXTURE not in getattr(item, "fixturenames", ())
    ):
        return (yield)
    try:
        with patched_simulator(checker):
            result = yield
    except DivergentBarrier:
        raise pytest.fail.Exception(checker.report(), pytrace=False) from None  # says it all
    except BaseException as error:
        if not checker.problems or isinstance(error, pytest.skip.Exception):
            raise
        if isinstance(error, (AssertionError, pytest.fail.Exception)):  # its message is enough
            raise pytest.fail.Exception(
                f"{checker.report()}\n\n(the test itself also failed: {error})", pytrace=False
            ) from None
        # Anything else keeps its traceback, shown above the report.
        raise pytest.fail.Exception(checker.report(), pytrace=False) from error
    if checker.problems:
        pytest.fail(checker.report(), pytrace=False)
    return result


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def cuda_races(request: pytest.FixtureRequest) -> RaceChecker:
    """This test's race checker (`.problems`, `.report()`): its kernels run on the patched
    simulator, and what it finds fails the test. Inactive (`.active` False) on a real GPU."""
    if not _checker_for(request.node).active:
        return _checker_for(request.node)
    importlib.import_module("numba.cuda")  # so that the test's body can patch its simulator

    return _checker_for(request.node)
