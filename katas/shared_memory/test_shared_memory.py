"""Kata `shared_memory`: worker processes transform one NumPy array in shared memory."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np
import pytest
import shared_memory as kata
from shared_memory import bounds, explode, parallel_scale, scale_slice, share

JOIN_SECONDS = 10.0
RealProcess = multiprocessing.Process


@pytest.fixture(autouse=True)
def no_worker_left_behind() -> Iterator[None]:
    yield
    left = multiprocessing.active_children()
    for child in left:
        child.kill()
        child.join(JOIN_SECONDS)
    assert not left, (
        f"{len(left)} worker process(es) were still alive after the call: join every worker "
        f"(and kill any that did not finish) before returning"
    )


def _gone(name: str) -> bool:
    try:
        block = SharedMemory(name=name)
    except FileNotFoundError:
        return True
    block.close()
    block.unlink()  # the test cleans up the block the code under test leaked
    return False


class Recorder:
    """Replaces multiprocessing.Process with a real Process that writes down what it was given
    and the order of starts and joins."""

    def __init__(self) -> None:
        self.arguments: list[tuple[Any, ...]] = []
        self.targets: list[Any] = []
        self.events: list[str] = []
        recorder = self

        class RecordingProcess(RealProcess):  # type: ignore[valid-type,misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                recorder.targets.append(kwargs.get("target"))
                recorder.arguments.append(tuple(kwargs.get("args", ())))

            def start(self) -> None:
                recorder.events.append("start")
                super().start()

            def join(self, timeout: float | None = None) -> None:
                recorder.events.append("join")
                super().join(timeout)

        self.process_class = RecordingProcess

    @property
    def block_names(self) -> set[str]:
        return {args[0] for args in self.arguments if args and isinstance(args[0], str)}


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recording = Recorder()
    monkeypatch.setattr(multiprocessing, "Process", recording.process_class)
    monkeypatch.setattr(kata, "Process", recording.process_class, raising=False)
    return recording


@pytest.fixture
def block() -> Iterator[tuple[SharedMemory, np.ndarray]]:
    """A shared block made by the test, holding 0.0 .. 7.0, closed and unlinked afterwards."""
    data = np.arange(8, dtype=np.float64)
    made = SharedMemory(create=True, size=data.nbytes)
    view = np.ndarray(data.shape, dtype=data.dtype, buffer=made.buf)
    view[...] = data
    try:
        yield made, view
    finally:
        del view
        made.close()
        with contextlib.suppress(FileNotFoundError):  # a wrong worker may have unlinked it
            made.unlink()


# -- share ------------------------------------------------------------------------------------


def test_share_returns_a_view_whose_memory_is_the_new_block() -> None:
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    made, view = share(array)
    try:
        assert made.size >= array.nbytes, (
            f"the block holds {made.size} bytes, the array needs {array.nbytes}"
        )
        assert (
            view.shape == array.shape and view.dtype == array.dtype and np.array_equal(view, array)
        ), "the view must have the array's shape, dtype and values"
        view[0, 0] = 99
        seen = np.ndarray(array.shape, dtype=array.dtype, buffer=made.buf)[0, 0]
        assert seen == 99, (
            "writing to the view did not change the block: the view has memory of its own; "
            "build it with np.ndarray(shape, dtype=..., buffer=block.buf)"
        )
        assert array[0, 0] == 0, "share must copy the array into the block, not change the input"
    finally:
        del view
        made.close()
        made.unlink()


# -- scale_slice ------------------------------------------------------------------------------


def test_scale_slice_multiplies_only_its_rows_of_the_named_block(
    block: tuple[SharedMemory, np.ndarray],
) -> None:
    made, view = block
    scale_slice(made.name, view.shape, view.dtype.str, 2, 5, 10.0)
    expected = [0.0, 1.0, 20.0, 30.0, 40.0, 5.0, 6.0, 7.0]
    assert view.tolist() == expected, (
        f"after scale_slice(name, (8,), '<f8', 2, 5, 10.0) the block holds {view.tolist()}, "
        f"expected {expected}: rows 2, 3 and 4 times ten, in place in the block (view[2:5] *= 10)"
    )


def test_a_worker_process_scales_the_block_and_the_creator_sees_it_without_a_copy(
    block: tuple[SharedMemory, np.ndarray],
) -> None:
    made, view = block
    scale_slice(made.name, view.shape, view.dtype.str, 0, 0, 1.0)  # an empty range: a no-op
    worker = RealProcess(
        target=scale_slice, args=(made.name, view.shape, view.dtype.str, 4, 8, -1.0)
    )
    worker.start()
    worker.join(JOIN_SECONDS)
    assert worker.exitcode == 0, (
        f"the worker process failed (exit code {worker.exitcode}); its traceback is printed "
        f"above (pytest shows it under 'Captured stderr')"
    )
    expected = [0.0, 1.0, 2.0, 3.0, -4.0, -5.0, -6.0, -7.0]
    assert view.tolist() == expected, (
        f"the worker was given only the block's name, shape and dtype; afterwards this process "
        f"sees {view.tolist()}, expected {expected}: the worker changed a copy, not the shared "
        f"block (scale it in place, view[start:stop] *= factor)"
    )


def test_a_worker_leaves_the_block_to_its_creator(block: tuple[SharedMemory, np.ndarray]) -> None:
    made, view = block
    scale_slice(made.name, view.shape, view.dtype.str, 0, 0, 1.0)  # an empty range: a no-op
    worker = RealProcess(
        target=scale_slice, args=(made.name, view.shape, view.dtype.str, 0, 1, 2.0)
    )
    worker.start()
    worker.join(JOIN_SECONDS)
    try:
        again = SharedMemory(name=made.name)
    except FileNotFoundError:
        pytest.fail(
            "the block was gone after the worker finished: a worker only close()s its handle; "
            "unlink() destroys the block for everybody and belongs to its creator"
        )
    again.close()


# -- parallel_scale ---------------------------------------------------------------------------


def test_parallel_scale_returns_the_scaled_array_and_leaves_the_input_alone() -> None:
    array = np.linspace(0.0, 1.0, 101)
    original = array.copy()
    result = parallel_scale(array, 3.0, workers=3)
    assert np.allclose(result, original * 3.0), (
        f"parallel_scale(array, 3.0) differs from array * 3.0 at rows "
        f"{np.flatnonzero(~np.isclose(result, original * 3.0)).tolist()[:10]}: every row must be "
        f"scaled exactly once, by the worker whose range holds it"
    )
    assert np.array_equal(array, original), (
        "parallel_scale changed its input array: work on a shared copy"
    )


def test_parallel_scale_sends_the_workers_only_the_block_name_shape_and_dtype(
    recorder: Recorder,
) -> None:
    array = np.arange(10, dtype=np.float64)
    parallel_scale(array, 2.0, workers=2)
    assert len(recorder.arguments) == 2, (
        f"parallel_scale(array, 2.0, workers=2) created {len(recorder.arguments)} "
        f"multiprocessing.Process objects, expected 2"
    )
    heavy = [
        type(a).__name__
        for args in recorder.arguments
        for a in args
        if isinstance(a, (np.ndarray, SharedMemory, memoryview, bytes, list))
    ]
    assert not heavy, (
        f"the workers were given {heavy}: pass only the block's name, the shape, the dtype "
        f"string and the row range. An array argument is pickled (copied) under spawn, and the "
        f"worker's changes never come back"
    )
    ranges = sorted((args[3], args[4]) for args in recorder.arguments)
    assert ranges == bounds(10, 2), (
        f"the workers got the row ranges {ranges}, expected {bounds(10, 2)}: one range of "
        f"bounds(len(array), workers) each, disjoint and together covering every row"
    )


def test_parallel_scale_starts_every_worker_before_joining_any(recorder: Recorder) -> None:
    parallel_scale(np.ones(12), 2.0, workers=3)
    first_join = (
        recorder.events.index("join") if "join" in recorder.events else len(recorder.events)
    )
    assert recorder.events[:first_join].count("start") == 3, (
        f"starts and joins came in the order {recorder.events}: a join() inside the start loop "
        f"makes each worker wait for the previous one; start them all, then join them all"
    )


def test_parallel_scale_unlinks_the_block_when_it_is_done(recorder: Recorder) -> None:
    parallel_scale(np.ones(6), 2.0, workers=2)
    names = recorder.block_names
    assert names, "no worker was given a block name (a str as its first argument)"
    leaked = [name for name in names if not _gone(name)]
    assert not leaked, (
        f"the shared block {leaked} still exists after parallel_scale returned: close() only "
        f"drops this process's handle; unlink() frees the block, or it outlives the program"
    )


def test_parallel_scale_raises_and_still_unlinks_the_block_when_a_worker_fails(
    recorder: Recorder,
) -> None:
    try:
        returned = parallel_scale(np.ones(6), 2.0, workers=2, target=explode)
    except ChildProcessError:
        pass
    else:
        pytest.fail(
            f"both workers failed and parallel_scale returned {returned}: check every worker's "
            f"exitcode after join() and raise ChildProcessError when one is not 0"
        )
    names = recorder.block_names
    leaked = [name for name in names if not _gone(name)]
    assert names and not leaked, (
        f"after a worker failed, the shared block {leaked or '(never shared)'} was not unlinked: "
        f"close and unlink it in a finally block, so a failure cannot skip it"
    )
