"""Kata `shared_memory`: worker processes transform one NumPy array in shared memory."""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np
import pytest
import shared_memory as kata
from shared_memory import bounds, explode, parallel_scale, scale_slice, share

JOIN_SECONDS = 10.0
RealProcess = multiprocessing.Process
TOO_SMALL = "buffer is too small"

# Reading an array whose memory was a block that is closed by now can crash the interpreter
# rather than raise: those tests run in a process of their own (plugins/crash_guard.py).
RETURNED_VIEW = (
    "parallel_scale probably returned a view of its shared block instead of a copy, and the "
    "block was closed and unlinked before the caller read it. Return view.copy()"
)


class Interrupted(BaseException):
    """What a Ctrl-C (KeyboardInterrupt) looks like to the code it interrupts."""


def linger(
    name: str, shape: tuple[int, ...], dtype: str, start: int, stop: int, factor: float
) -> None:
    """A worker that takes its time (forked workers need no importable target)."""
    time.sleep(30)


def _sharing(array: np.ndarray) -> tuple[SharedMemory, np.ndarray]:
    """share(array), with a buffer too small for the view explained."""
    __tracebackhide__ = True
    try:
        return share(array)
    except TypeError as error:
        if TOO_SMALL not in str(error):
            raise
        pytest.fail(
            f"share({array.dtype} array of shape {array.shape}) raised TypeError ({error}): "
            f"the block is smaller than the array's {array.nbytes} bytes, or the view was built "
            f"with another dtype than the array's. Size the block with array.nbytes (bytes), not "
            f"array.size or len(array) (elements), and pass dtype=array.dtype."
        )


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


@pytest.fixture(autouse=True)
def no_block_left_behind(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Unlinks, after each test, every block created during it that still exists: a wrong
    implementation (or a test that failed half-way) must not leave blocks in /dev/shm for good.
    The names go to a file, because crash-guarded tests run in a forked child."""
    created = tmp_path / "blocks-created"
    real_init = SharedMemory.__init__

    def recording_init(self: SharedMemory, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        if kwargs.get("create") or (len(args) > 1 and args[1]):
            with created.open("a") as names:
                names.write(self.name + "\n")

    monkeypatch.setattr(SharedMemory, "__init__", recording_init)
    yield
    names = created.read_text().split() if created.exists() else []
    for name in names:
        _gone(name)


def assert_no_worker_left(after: str) -> None:
    __tracebackhide__ = True
    left = multiprocessing.active_children()
    for child in left:  # killed here, so that the test's own teardown does not report them again
        child.kill()
        child.join(JOIN_SECONDS)
    assert not left, (
        f"{len(left)} worker process(es) still ran after {after}: join every worker, and kill "
        f"the ones still alive, before returning or raising"
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
        self.interrupt_first_join = False
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
                if recorder.interrupt_first_join and recorder.events.count("join") == 1:
                    raise Interrupted("Ctrl-C while parallel_scale was joining its workers")
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


@pytest.mark.clause(1)
def test_share_returns_a_view_whose_memory_is_the_new_block() -> None:
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    made, view = _sharing(array)
    try:
        assert made.size >= array.nbytes, (
            f"the block holds {made.size} bytes, the array needs {array.nbytes}"
        )
        assert view.shape == array.shape and view.dtype == array.dtype, (
            f"the view has shape {view.shape} and dtype {view.dtype}, the array {array.shape} and "
            f"{array.dtype}: np.ndarray(array.shape, dtype=array.dtype, buffer=block.buf)"
        )
        view[0, 0] = 99
        seen = np.ndarray(array.shape, dtype=array.dtype, buffer=made.buf)[0, 0]
        assert seen == 99, (
            "writing to the view did not change the block: the view has memory of its own; "
            "build it with np.ndarray(shape, dtype=..., buffer=block.buf)"
        )
    finally:
        del view
        made.close()
        made.unlink()


@pytest.mark.clause(2)
def test_share_copies_the_values_and_leaves_the_input_alone() -> None:
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    made, view = _sharing(array)
    try:
        copied = np.array_equal(view, array)
        view[...] = -1
        assert copied, (
            "the view does not hold the array's values: copy them into the block, view[...] = array"
        )
        assert array[0, 0] == 0, (
            "writing to the view changed the input array: share must copy the array into the "
            "block, not view the input's own memory"
        )
    finally:
        del view
        made.close()
        made.unlink()


@pytest.mark.clause(1)
def test_share_shares_an_empty_array_too() -> None:
    array = np.empty((0, 3))
    try:
        made, view = share(array)
    except ValueError as error:
        pytest.fail(
            f"share(an empty array) raised ValueError ({error}): a shared block cannot have 0 "
            f"bytes; make it at least 1 byte, size=max(1, array.nbytes)"
        )
    try:
        assert view.shape == (0, 3), f"the view of an empty (0, 3) array has shape {view.shape}"
    finally:
        del view
        made.close()
        made.unlink()


# -- scale_slice ------------------------------------------------------------------------------


@pytest.mark.clause(3)
def test_scale_slice_multiplies_only_its_rows_of_the_named_block() -> None:
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    made = SharedMemory(create=True, size=data.nbytes)
    view = np.ndarray(data.shape, dtype=data.dtype, buffer=made.buf)
    view[...] = data
    try:
        try:
            scale_slice(made.name, data.shape, data.dtype.str, 1, 3, 2.5)
        except TypeError as error:
            if TOO_SMALL not in str(error):
                raise
            pytest.fail(
                f"scale_slice(name, (4, 3), '<f4', 1, 3, 2.5) raised TypeError ({error}): it "
                f"viewed the 48-byte block with another dtype than the '<f4' it was given. "
                f"Use np.ndarray(shape, dtype=dtype, buffer=block.buf)."
            )
        expected = data.copy()
        expected[1:3] *= 2.5
        scaled_rows = np.array_equal(view, expected)
        assert scaled_rows, (
            f"after scale_slice(name, (4, 3), '<f4', 1, 3, 2.5) the block holds {view.tolist()}, "
            f"expected {expected.tolist()}: rows 1 and 2 (whole rows of the (4, 3) array) times "
            f"2.5, in place in the block. View the block with the given shape and dtype, "
            f"np.ndarray(shape, dtype=dtype, buffer=block.buf), then view[start:stop] *= factor."
        )
    finally:
        del view
        made.close()
        with contextlib.suppress(FileNotFoundError):  # a wrong worker may have unlinked it
            made.unlink()


@pytest.mark.clause(3)
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


@pytest.mark.clause(4)
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


@pytest.mark.crash_guard(RETURNED_VIEW)
@pytest.mark.clause(5)
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
    assert_no_worker_left("parallel_scale returned")


@pytest.mark.crash_guard(RETURNED_VIEW)
@pytest.mark.clause(5, 6)
def test_parallel_scale_scales_whole_rows_of_a_two_dimensional_array() -> None:
    array = np.arange(12, dtype=np.float32).reshape(6, 2)
    result = parallel_scale(array, -2.0, workers=3)
    expected = array * -2.0
    right = result.shape == expected.shape and np.array_equal(result, expected)
    assert right, (
        f"parallel_scale(a (6, 2) array, -2.0, workers=3) returned {result.tolist()}, expected "
        f"{expected.tolist()}: each worker scales its rows of the (6, 2) array, so it must "
        f"rebuild that very shape. Send array.shape (not len(array) or array.size) and "
        f"array.dtype.str."
    )


@pytest.mark.clause(6)
def test_parallel_scale_sends_the_workers_only_the_block_name_shape_and_dtype(
    recorder: Recorder,
) -> None:
    array = np.arange(20, dtype=np.float32).reshape(10, 2)
    parallel_scale(array, 2.0)
    assert len(recorder.arguments) == 2, (
        f"parallel_scale(array, 2.0) created {len(recorder.arguments)} "
        f"multiprocessing.Process objects, expected 2 (workers=2 when the caller does not say)"
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
    sent = {(args[1], args[2]) for args in recorder.arguments if len(args) == 6}
    assert sent == {((10, 2), "<f4")}, (
        f"the workers got (shape, dtype) {sorted(sent, key=str)}, expected ((10, 2), '<f4'): "
        f"send array.shape and array.dtype.str, the dtype as a string"
    )
    ranges = sorted((args[3], args[4]) for args in recorder.arguments)
    assert ranges == bounds(10, 2), (
        f"the workers got the row ranges {ranges}, expected {bounds(10, 2)}: one range of "
        f"bounds(len(array), workers) each, disjoint and together covering every row"
    )
    ran = [getattr(target, "__name__", repr(target)) for target in recorder.targets]
    assert ran == ["scale_slice", "scale_slice"], (
        f"the workers ran {ran}: with target=None they run scale_slice"
    )


@pytest.mark.clause(7)
def test_parallel_scale_starts_every_worker_before_joining_any(recorder: Recorder) -> None:
    parallel_scale(np.ones(12), 2.0, workers=3)
    first_join = (
        recorder.events.index("join") if "join" in recorder.events else len(recorder.events)
    )
    assert recorder.events[:first_join].count("start") == 3, (
        f"starts and joins came in the order {recorder.events}: a join() inside the start loop "
        f"makes each worker wait for the previous one; start them all, then join them all"
    )


@pytest.mark.clause(9)
def test_parallel_scale_unlinks_the_block_when_it_is_done(recorder: Recorder) -> None:
    parallel_scale(np.ones(6), 2.0, workers=2)
    names = recorder.block_names
    assert names, "no worker was given a block name (a str as its first argument)"
    leaked = [name for name in names if not _gone(name)]
    assert not leaked, (
        f"the shared block {leaked} still exists after parallel_scale returned: close() only "
        f"drops this process's handle; unlink() frees the block, or it outlives the program"
    )


@pytest.mark.clause(8, 9)
def test_parallel_scale_raises_and_still_unlinks_the_block_when_a_worker_fails(
    recorder: Recorder,
) -> None:
    try:
        returned = parallel_scale(np.ones(6), 2.0, workers=3, target=explode)
    except ChildProcessError:
        returned = None
    ran = [getattr(target, "__name__", repr(target)) for target in recorder.targets]
    assert ran and set(ran) == {"explode"}, (
        f"parallel_scale(..., target=explode) started workers running {ran}: run the given "
        f"target (scale_slice only when target is None)"
    )
    assert returned is None, (
        f"all three workers failed and parallel_scale returned {returned}: check every worker's "
        f"exitcode after join() and raise ChildProcessError when one is not 0"
    )
    names = recorder.block_names
    leaked = [name for name in names if not _gone(name)]
    assert names and not leaked, (
        f"after a worker failed, the shared block {leaked or '(never shared)'} was not unlinked: "
        f"close and unlink it in a finally block, so a failure cannot skip it"
    )
    assert_no_worker_left("parallel_scale raised ChildProcessError")


@pytest.mark.clause(9, 10)
def test_an_interrupted_parallel_scale_stops_its_workers_and_unlinks_the_block(
    recorder: Recorder,
) -> None:
    recorder.interrupt_first_join = True  # as if Ctrl-C came while it waited for the workers
    try:
        parallel_scale(np.ones(6), 2.0, workers=3, target=linger)
    except Interrupted:
        pass  # what should happen: the test judges what it left behind
    else:
        pytest.fail("parallel_scale returned although joining its workers was interrupted")
    assert_no_worker_left(
        "an interruption (a KeyboardInterrupt-like exception from join()) ended parallel_scale "
        "(kill them in a `finally`, which runs for every exception)"
    )
    names = recorder.block_names
    leaked = [name for name in names if not _gone(name)]
    assert names and not leaked, (
        f"after an interruption, the shared block {leaked or '(never shared)'} was not "
        f"unlinked: close and unlink it in a `finally`, which runs for every exception, "
        f"KeyboardInterrupt included (an `except Exception` does not)"
    )
