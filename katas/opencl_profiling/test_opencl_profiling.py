"""Kata `opencl_profiling`: a kernel's time from its event, and the bandwidth it reaches."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyopencl as cl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from opencl_profiling import (
    LOCAL,
    bandwidth_gbs,
    copy_bandwidth,
    kernel_seconds,
    profile_kernel,
    require_profiling,
    timed_copy,
)

# Two float computations of one quotient differ in the last bits only.
REL = 1e-9
STAMP_NAMES = ("queued", "submit", "start", "end")
NOT_AVAILABLE = "PROFILING_INFO_NOT_AVAILABLE"
EARLY = (
    "the profile was read before the kernel had finished: call event.wait() first (until then "
    "PoCL raises PROFILING_INFO_NOT_AVAILABLE and Oclgrind answers 0)"
)


# -- events with stamps the test chose -------------------------------------------------------


@dataclass
class FakeEvent:
    """A stand-in for a pyopencl.Event of a profiling queue, with chosen stamps (nanoseconds).
    Like Oclgrind's, its start, submit and end read 0 until `wait()` has been called."""

    queued: int
    submit: int
    start: int
    end: int
    waited: bool = False
    early_reads: list[str] = field(default_factory=list)

    def wait(self) -> None:
        self.waited = True

    def stamp(self, name: str) -> int:
        if not self.waited:
            self.early_reads.append(name)
            return self.queued if name == "queued" else 0
        return int(getattr(self, name))

    @property
    def profile(self) -> Any:
        return FakeProfile(self)

    def get_profiling_info(self, which: int) -> int:
        names = {getattr(cl.profiling_info, name.upper()): name for name in STAMP_NAMES}
        return self.stamp(names[which])

    @property
    def seconds(self) -> float:
        return (self.end - self.start) * 1e-9


class FakeProfile:
    def __init__(self, event: FakeEvent) -> None:
        self._event = event

    def __getattr__(self, name: str) -> int:
        if name.lower() not in STAMP_NAMES:
            raise AttributeError(name)
        return self._event.stamp(name.lower())


def fake_event(start: int, run_ns: int) -> FakeEvent:
    """An event queued 0.4 ms (and submitted 0.3 ms) before it started, that ran `run_ns` ns."""
    return FakeEvent(start - 400_017, start - 300_011, start, start + run_ns)


# Stamps the size of a real device clock's (nanoseconds since some epoch), chosen so that each
# usual mistake gives a number of its own.
START = 1_796_387_920_994_636_032


def misreading(got: float, event: Any) -> str:
    """What `got`, a wrong kernel time for `event`, was probably computed from."""
    queued, submit, start, end = (getattr(event.profile, name) for name in STAMP_NAMES)
    guesses = {
        "end - start in nanoseconds: the stamps are ns, multiply by 1e-9": end - start,
        "end - start in milliseconds: a second is 1e9 ns, so multiply by 1e-9, not 1e-6": (
            (end - start) * 1e-6
        ),
        "start - end: the stamps subtracted the wrong way round": (start - end) * 1e-9,
        "end - queued: queued is when the host enqueued the command, so that adds the time it "
        "waited in the queue; a kernel runs from start to end": (end - queued) * 1e-9,
        "end - submit: submit is when the command went to the device, before it started; a "
        "kernel runs from start to end": (end - submit) * 1e-9,
        f"0: {EARLY}": 0.0,
    }
    for meaning, value in guesses.items():
        if math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-15):
            return f"that is {meaning}"
    return (
        "that is none of the event's own differences; a wall-clock time (time.perf_counter "
        "around the launch) adds Python, the queue and the wake-up: use the event's start and "
        "end stamps"
    )


def check_kernel_time(got: Any, event: Any, call: str) -> None:
    """`got` is the kernel time of `event`, whose stamps can be read now."""
    __tracebackhide__ = True
    event.wait()
    want = (event.profile.end - event.profile.start) * 1e-9
    assert isinstance(got, float), f"{call} returned {got!r} as the time, not a float of seconds"
    if not math.isclose(got, want, rel_tol=REL):
        pytest.fail(
            f"{call} returned {got!r} s; the kernel ran (end - start) * 1e-9 = {want!r} s by "
            f"its event's stamps: {misreading(got, event)}.",
            pytrace=False,
        )


# -- launches: what the host code asked the device to run ------------------------------------


@dataclass
class Launch:
    kernel: str
    global_size: tuple[int, ...]
    local_size: tuple[int, ...] | None
    event: Any


@pytest.fixture(autouse=True)
def launches(monkeypatch: pytest.MonkeyPatch) -> list[Launch]:
    """Every kernel launch of the test, with its event (`kernel(queue, ...)` and
    `cl.enqueue_nd_range_kernel` both end in pyopencl's `_cl.enqueue_nd_range_kernel`). A
    launch the device refuses for its sizes fails the test with what the sizes must be."""
    seen: list[Launch] = []
    original = cl._cl.enqueue_nd_range_kernel

    def noted(queue: Any, kernel: Any, global_size: Any, local_size: Any, *rest: Any) -> Any:
        local = None if local_size is None else tuple(local_size)
        try:
            event = original(queue, kernel, global_size, local_size, *rest)
        except cl.Error as error:
            if "WORK_GROUP_SIZE" not in str(error) and "GLOBAL_WORK_SIZE" not in str(error):
                raise
            pytest.fail(
                f"the device refused to launch kernel {kernel.function_name!r} with global "
                f"size {tuple(global_size)} and local size {local} ({error}): a global size "
                f"must be a multiple of the local size, so round len(x) up to a multiple of "
                f"LOCAL = {LOCAL}",
                pytrace=False,
            )
        seen.append(Launch(kernel.function_name, tuple(global_size), local, event))
        return event

    monkeypatch.setattr(cl._cl, "enqueue_nd_range_kernel", noted)
    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", noted)
    return seen


def copy_launches(seen: list[Launch], call: str, n: int, count: int) -> list[Launch]:
    """The launches of `call` on n elements: `count` of kernel `copy`, each sized right."""
    __tracebackhide__ = True
    assert len(seen) == count, f"{call} launched {len(seen)} kernels; it should launch {count}"
    want = math.ceil(n / LOCAL) * LOCAL
    for launch in seen:
        assert launch.kernel == "copy", f"{call} launched kernel {launch.kernel!r}, not 'copy'"
        assert launch.local_size == (LOCAL,), (
            f"{call} launched with local size {launch.local_size}: pass (LOCAL,) = ({LOCAL},) "
            f"explicitly (None lets the device choose the work-group size)"
        )
        rounding = (
            "not rounded up: a global size must be a multiple of the local size"
            if launch.global_size == (n,)
            else f"round {n} up to a multiple of LOCAL = {LOCAL}"
        )
        assert launch.global_size == (want,), (
            f"{call} on {n} elements launched global size {launch.global_size}; expected "
            f"({want},): {rounding}"
        )
    return seen


def run_on_device(call: str, function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)`, with PoCL's error for stamps read too early explained."""
    __tracebackhide__ = True
    try:
        return function(*args)
    except cl.Error as error:
        if NOT_AVAILABLE in str(error):
            pytest.fail(f"{call} raised {error}: {EARLY}", pytrace=False)
        raise


def value_error(call: str, advice: str, function: Callable[..., Any], *args: Any) -> str:
    """The message of the ValueError `function(*args)` raises; the test fails without one."""
    __tracebackhide__ = True
    try:
        function(*args)
    except ValueError as error:
        return str(error)
    except NotImplementedError:
        raise
    except Exception as error:
        pytest.fail(f"{call} raised {type(error).__name__} ({error}): {advice}", pytrace=False)
    pytest.fail(f"{call} returned: {advice}", pytrace=False)


def numbers(n: int) -> str:
    return "1 float" if n == 1 else f"{n} floats"


def floats(n: int, seed: int = 0) -> np.ndarray:
    """n float32 numbers in [1, 2): no element of a right copy is 0, so one never written shows."""
    return np.random.default_rng(seed).uniform(1.0, 2.0, n).astype(np.float32)


# A test's own kernel, always right, for timing real events independently of the learner's.
FILL = r"""
__kernel void fill(__global float *y, const float value)
{
    y[get_global_id(0)] = value;
}
"""


def fill_launch(queue: Any, n: int = 1024, wait_for: list[Any] | None = None) -> Callable[[], Any]:
    context = queue.context
    kernel = cl.Kernel(cl.Program(context, FILL).build(), "fill")
    buffer = cl.Buffer(context, cl.mem_flags.WRITE_ONLY, 4 * n)

    def launch() -> Any:
        return kernel(queue, (n,), None, buffer, np.float32(1.5), wait_for=wait_for)

    return launch


# -- kernel_seconds --------------------------------------------------------------------------


@pytest.mark.clause(1)
def test_kernel_seconds_waits_for_the_event_before_reading_its_stamps() -> None:
    event = fake_event(START, 1_234_567)
    got = kernel_seconds(event)
    assert event.waited, "kernel_seconds never called event.wait(): " + EARLY
    assert not event.early_reads, (
        f"kernel_seconds read event.profile.{event.early_reads[0]} before it called "
        f"event.wait(), and got {0 if event.early_reads[0] != 'queued' else event.queued}: " + EARLY
    )
    assert isinstance(got, float), f"kernel_seconds returned {got!r}, not a float of seconds"


@pytest.mark.clause(1, 2)
def test_kernel_seconds_waits_for_a_real_kernel_to_finish(pocl_queue: Any) -> None:
    # The kernel cannot start before the test opens the gate, 0.1 s after the call: a
    # kernel_seconds that reads the stamps without waiting finds none.
    gate = cl.UserEvent(pocl_queue.context)
    event = fill_launch(pocl_queue, wait_for=[gate])()
    opener = threading.Timer(0.1, gate.set_status, args=(cl.command_execution_status.COMPLETE,))
    opener.start()
    try:
        got = run_on_device(
            "kernel_seconds(event of a kernel still waiting to start)", kernel_seconds, event
        )
    finally:
        opener.join(5)
    check_kernel_time(got, event, "kernel_seconds(event)")


@pytest.mark.clause(2)
@pytest.mark.parametrize("run_ns", [1_234_567, 40_961, 2_500_000_003])
def test_kernel_seconds_is_end_minus_start_in_seconds(run_ns: int) -> None:
    event = fake_event(START + run_ns, run_ns)
    got = kernel_seconds(event)
    check_kernel_time(got, event, f"kernel_seconds(event of a kernel that ran {run_ns} ns)")


# -- bandwidth_gbs ---------------------------------------------------------------------------


@pytest.mark.clause(3)
@pytest.mark.parametrize(
    ("bytes_moved", "seconds", "want"),
    [(3_000_000_000, 1.5, 2.0), (8_000, 2e-6, 4.0), (0, 0.25, 0.0), (2**30, 1.0, 1.073741824)],
)
def test_bandwidth_is_bytes_per_second_in_gigabytes_of_1e9_bytes(
    bytes_moved: int, seconds: float, want: float
) -> None:
    got = bandwidth_gbs(bytes_moved, seconds)
    call = f"bandwidth_gbs({bytes_moved}, {seconds})"
    if isinstance(got, float) and want and math.isclose(got, want * 1e9 / 2**30, rel_tol=REL):
        pytest.fail(
            f"{call} returned {got!r}, in GiB/s: a GB here is 1e9 bytes (as bandwidths are "
            f"quoted), not 2**30 = {2**30}; expected {want}",
            pytrace=False,
        )
    assert isinstance(got, float) and math.isclose(got, want, rel_tol=REL, abs_tol=1e-12), (
        f"{call} returned {got!r}; expected bytes / seconds / 1e9 = {want}"
    )


@pytest.mark.clause(4)
@pytest.mark.parametrize(("bytes_moved", "seconds"), [(4_000, 0.0), (4_000, -1.5e-3), (-8, 1e-3)])
def test_bandwidth_refuses_a_time_that_is_not_positive_and_negative_bytes(
    bytes_moved: int, seconds: float
) -> None:
    call = f"bandwidth_gbs({bytes_moved}, {seconds})"
    why = (
        "no number of bytes is negative"
        if bytes_moved < 0
        else "a kernel time that is not positive comes from a bug (stamps swapped, or read "
        "before the kernel ended), and must not become a bandwidth"
    )
    value_error(call, f"raise ValueError: {why}", bandwidth_gbs, bytes_moved, seconds)


# -- require_profiling -----------------------------------------------------------------------

PROPERTIES = cl.command_queue_properties


@pytest.mark.clause(5)
def test_require_profiling_accepts_a_queue_with_profiling_among_other_bits(
    pocl_queue: Any,
) -> None:
    assert require_profiling(pocl_queue) is None, "require_profiling should return None"
    both = PROPERTIES.PROFILING_ENABLE | PROPERTIES.OUT_OF_ORDER_EXEC_MODE_ENABLE
    queue = cl.CommandQueue(pocl_queue.context, properties=both)
    try:
        require_profiling(queue)
    except ValueError as error:
        pytest.fail(
            f"require_profiling refused a queue whose properties are {queue.properties} "
            f"(PROFILING_ENABLE | OUT_OF_ORDER_EXEC_MODE_ENABLE): {error}. properties is a bit "
            f"field: test the bit with `properties & PROFILING_ENABLE`, not `==`",
            pytrace=False,
        )


@pytest.mark.clause(5)
@pytest.mark.parametrize("properties", [0, PROPERTIES.OUT_OF_ORDER_EXEC_MODE_ENABLE])
def test_require_profiling_names_the_fix_for_a_queue_without_it(
    pocl_queue: Any, properties: int
) -> None:
    queue = cl.CommandQueue(pocl_queue.context, properties=properties)
    call = f"require_profiling(a queue with properties={properties})"
    message = value_error(
        call,
        "raise ValueError: this queue stamps no event, so no kernel time can be read from it",
        require_profiling,
        queue,
    )
    assert "PROFILING_ENABLE" in message, (
        f"{call} raised ValueError({message!r}): name the fix, PROFILING_ENABLE "
        f"(cl.CommandQueue(context, properties=cl.command_queue_properties.PROFILING_ENABLE))"
    )


# -- what every host function refuses --------------------------------------------------------


def with_fill(queue: Any, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` with the arguments of its kind: an array, or a launch of the test's kernel."""
    if function is profile_kernel:
        launch = fill_launch(queue)
        return lambda q: profile_kernel(q, launch, 2)
    return lambda q: function(q, floats(100))


HOST = [
    pytest.param(timed_copy, id="timed_copy"),
    pytest.param(profile_kernel, id="profile_kernel"),
    pytest.param(copy_bandwidth, id="copy_bandwidth"),
]


@pytest.mark.clause(6)
@pytest.mark.parametrize("function", HOST)
def test_a_queue_without_profiling_is_refused_before_anything_is_launched(
    pocl_queue: Any, launches: list[Launch], function: Callable[..., Any]
) -> None:
    queue = cl.CommandQueue(pocl_queue.context)
    call = f"{function.__name__}(a queue without PROFILING_ENABLE, ...)"
    message = value_error(
        call,
        "call require_profiling(queue) first: that queue stamps no event",
        with_fill(pocl_queue, function),
        queue,
    )
    assert "PROFILING_ENABLE" in message, (
        f"{call} raised ValueError({message!r}), which does not name the fix, PROFILING_ENABLE"
    )
    assert not launches, (
        f"{call} launched {len(launches)} kernel(s) before refusing the queue: check it first"
    )


@pytest.mark.clause(7)
@pytest.mark.parametrize("function", [timed_copy, copy_bandwidth], ids=lambda f: f.__name__)
def test_an_empty_array_raises_value_error(pocl_queue: Any, function: Callable[..., Any]) -> None:
    call = f"{function.__name__}(queue, np.array([], dtype=np.float32))"
    value_error(
        call,
        "raise ValueError: OpenCL has no buffer of 0 bytes",
        function,
        pocl_queue,
        np.array([], dtype=np.float32),
    )


# -- timed_copy ------------------------------------------------------------------------------

# 1 element; one short of a group; one past it (a group of 1 in the tail); two groups and 2.
SIZES = [1, LOCAL - 1, LOCAL + 1, 2 * LOCAL + 2]


def check_copy(got: Any, x: np.ndarray, call: str) -> None:
    __tracebackhide__ = True
    want = np.asarray(x).astype(np.float32)
    assert isinstance(got, np.ndarray), f"{call} returned {type(got).__name__} as the copy"
    assert got.dtype == np.float32 and got.shape == want.shape, (
        f"{call} returned a {got.dtype} array of shape {got.shape}; expected float32 of shape "
        f"{want.shape}"
    )
    wrong = np.flatnonzero(got != want)
    if wrong.size:
        first = int(wrong[0])
        pytest.fail(
            f"{call}: {wrong.size} of {want.size} elements differ from x, the first at [{first}] "
            f"(got {got[first]!r}, expected {want[first]!r}). On [oclgrind], an access outside "
            f"a buffer reported below comes first. Otherwise each work-item i < n must set "
            f"dst[i] = src[i], and the result must be read back into a new float32 array.",
            pytrace=False,
        )
    assert not np.shares_memory(got, x), f"{call} returned x itself, not a copy from the device"


@pytest.mark.clause(9, 11)
def test_timed_copy_copies_every_element_when_the_size_is_not_a_multiple_of_the_group(
    cl_queue: Any,
) -> None:
    for n in SIZES:
        x = floats(n, seed=n)
        kept = x.copy()
        got, _ = run_on_device(f"timed_copy(queue, {numbers(n)})", timed_copy, cl_queue, x)
        check_copy(got, x, f"timed_copy(queue, {numbers(n)})")
        assert np.array_equal(x, kept), f"timed_copy(queue, {numbers(n)}) changed x"


@pytest.mark.clause(8, 9)
@pytest.mark.parametrize("dtype", [np.float64, np.int64], ids=["float64", "int64"])
def test_float64_and_int64_inputs_are_copied_as_float32(pocl_queue: Any, dtype: Any) -> None:
    x = (floats(LOCAL + 5, seed=7) * 8).astype(dtype)  # 8 .. 16: whole numbers for int64
    call = f"timed_copy(queue, {x.dtype} x)"
    got, _ = run_on_device(call, timed_copy, pocl_queue, x)
    want = x.astype(np.float32)
    if isinstance(got, np.ndarray) and got.shape == want.shape and got.dtype == np.float32:
        assert np.array_equal(got, want), (
            f"{call} is wrong (first {got[:3]}, expected {want[:3]}): the kernel reads "
            f"4-byte floats, so {x.dtype} (8 bytes a number) copied as it is gets misread. "
            f"Convert with np.ascontiguousarray(x, dtype=np.float32) before making the buffer."
        )
    check_copy(got, x, call)


@pytest.mark.clause(9)
def test_timed_copy_reads_back_with_the_public_enqueue_copy(
    pocl_queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    private: list[str] = []
    original = cl._enqueue_read_buffer

    def noted(*args: Any, **kwargs: Any) -> Any:
        private.append("cl._enqueue_read_buffer")
        return original(*args, **kwargs)

    monkeypatch.setattr(cl, "_enqueue_read_buffer", noted)
    x = floats(LOCAL)
    got, _ = run_on_device("timed_copy(queue, x)", timed_copy, pocl_queue, x)
    assert not private, (
        "timed_copy read the result back with cl._enqueue_read_buffer, the book's call: it is "
        "private to pyopencl (the leading _) and may change or go at any release. Use the "
        "public cl.enqueue_copy(queue, copy, dst_buffer)."
    )
    check_copy(got, x, "timed_copy(queue, x)")


@pytest.mark.clause(10)
def test_timed_copy_launches_one_copy_rounded_up_to_the_group(
    pocl_queue: Any, launches: list[Launch]
) -> None:
    n = 3 * LOCAL - 7
    run_on_device(f"timed_copy(queue, {numbers(n)})", timed_copy, pocl_queue, floats(n))
    copy_launches(launches, f"timed_copy(queue, {numbers(n)})", n, 1)


@pytest.mark.clause(1, 2, 12)
def test_timed_copy_returns_the_kernel_time_its_event_stamped(
    cl_queue: Any, launches: list[Launch]
) -> None:
    n = LOCAL + 37
    call = f"timed_copy(queue, {numbers(n)})"
    _, seconds = run_on_device(call, timed_copy, cl_queue, floats(n))
    (launch,) = copy_launches(launches, call, n, 1)
    check_kernel_time(seconds, launch.event, call)


@pytest.mark.clause(2, 12)
def test_timed_copy_time_is_positive_and_within_the_wall_time_of_the_call(
    pocl_queue: Any,
) -> None:
    n = 1 << 18
    x = floats(n)
    begun = time.perf_counter()
    _, seconds = run_on_device(f"timed_copy(queue, {numbers(n)})", timed_copy, pocl_queue, x)
    wall = time.perf_counter() - begun
    # Whatever the load, the kernel ran inside the call: 0 < its time <= the call's wall time.
    assert isinstance(seconds, float) and 0 < seconds <= wall, (
        f"timed_copy(queue, {numbers(n)}) returned {seconds!r} s, but the whole call took "
        f"{wall:.6f} s: the kernel's time must lie between 0 and that. A number a billion "
        f"times too big is nanoseconds (multiply by 1e-9); a negative one is start - end."
    )


@pytest.mark.clause(8, 9, 11, 12)
@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(n=st.integers(1, 5_000))
def test_timed_copy_is_right_for_drawn_sizes(
    pocl_queue: Any, launches: list[Launch], n: int
) -> None:
    launches.clear()
    x = floats(n, seed=n)
    call = f"timed_copy(queue, {numbers(n)})"
    got, seconds = run_on_device(call, timed_copy, pocl_queue, x)
    check_copy(got, x, call)
    (launch,) = copy_launches(launches, call, n, 1)
    check_kernel_time(seconds, launch.event, call)


# -- profile_kernel --------------------------------------------------------------------------


@pytest.mark.clause(13)
@pytest.mark.parametrize(("repeats", "warmup"), [(0, 1), (-2, 0), (3, -1)])
def test_profile_kernel_refuses_bad_counts_before_launching(
    pocl_queue: Any, repeats: int, warmup: int
) -> None:
    calls: list[int] = []

    def launch() -> Any:
        calls.append(1)
        return fake_event(START, 1_000)

    call = f"profile_kernel(queue, launch, repeats={repeats}, warmup={warmup})"
    value_error(
        call,
        "raise ValueError: at least one timed run, and no negative number of warm-ups",
        profile_kernel,
        pocl_queue,
        launch,
        repeats,
        warmup,
    )
    assert not calls, f"{call} called launch() {len(calls)} time(s) before refusing the counts"


class FakeLaunches:
    """A launch whose calls return fake events that ran for the given times, in order."""

    def __init__(self, runs_ns: list[int]) -> None:
        self.events = [fake_event(START + 10_000_000 * i, ns) for i, ns in enumerate(runs_ns)]
        self.calls = 0

    def __call__(self) -> FakeEvent:
        if self.calls >= len(self.events):
            pytest.fail(f"launch() was called more than {len(self.events)} times", pytrace=False)
        self.calls += 1
        return self.events[self.calls - 1]


# The first run is slow, as first runs are; the others each differ.
RUNS_NS = [9_000_001, 1_200_003, 1_100_007, 1_300_011, 1_150_013, 1_250_017]


def check_times(got: Any, launch: FakeLaunches, warmup: int, repeats: int, call: str) -> None:
    __tracebackhide__ = True
    everyone = [event.seconds for event in launch.events[: warmup + repeats]]
    want = everyone[warmup:]
    assert launch.calls == warmup + repeats, (
        f"{call} called launch() {launch.calls} times; expected warmup + repeats = "
        f"{warmup + repeats}"
    )
    assert isinstance(got, list) and len(got) == repeats, (
        f"{call} returned {got!r}; expected a list of {repeats} times, one per timed run"
    )
    if warmup and any(math.isclose(t, everyone[0], rel_tol=REL) for t in got):
        pytest.fail(
            f"{call} returned {got}, which holds the warm-up run's time {everyone[0]}: drop the "
            f"first {warmup} time(s), which pay for set-up, and return the last {repeats}",
            pytrace=False,
        )
    for index, (seconds, expected) in enumerate(zip(got, want, strict=True)):
        if not (isinstance(seconds, float) and math.isclose(seconds, expected, rel_tol=REL)):
            pytest.fail(
                f"{call} returned {got}; expected {want}, the kernel times of launches "
                f"{warmup + 1} to {warmup + repeats} in launch order (time {index} is wrong)",
                pytrace=False,
            )


@pytest.mark.clause(14, 15)
@pytest.mark.parametrize(("repeats", "warmup"), [(3, 2), (4, 0)])
def test_profile_kernel_drops_the_warm_up_runs_and_keeps_launch_order(
    pocl_queue: Any, repeats: int, warmup: int
) -> None:
    launch = FakeLaunches(RUNS_NS)
    call = f"profile_kernel(queue, launch, repeats={repeats}, warmup={warmup})"
    check_times(profile_kernel(pocl_queue, launch, repeats, warmup), launch, warmup, repeats, call)


@pytest.mark.clause(14, 15)
def test_profile_kernel_does_one_warm_up_by_default(pocl_queue: Any) -> None:
    launch = FakeLaunches(RUNS_NS)
    got = profile_kernel(pocl_queue, launch, 2)
    check_times(got, launch, 1, 2, "profile_kernel(queue, launch, 2)")


@pytest.mark.clause(1, 14)
def test_profile_kernel_waits_for_every_event_before_reading_it(pocl_queue: Any) -> None:
    launch = FakeLaunches(RUNS_NS)
    call = "profile_kernel(queue, launch, repeats=3, warmup=2)"
    profile_kernel(pocl_queue, launch, 3, 2)
    for number, event in enumerate(launch.events[: launch.calls], start=1):
        what = "a warm-up" if number <= 2 else "a timed"
        assert event.waited, (
            f"{call} never waited for the event of launch {number} ({what} run): wait for "
            f"every event it launched, so that no kernel is left running when it returns"
        )
        assert not event.early_reads, (
            f"{call} read event.profile.{event.early_reads[0]} of launch {number} before "
            f"event.wait(): " + EARLY
        )


@pytest.mark.clause(14, 15)
def test_profile_kernel_times_real_launches_from_their_events(
    pocl_queue: Any, launches: list[Launch]
) -> None:
    launch = fill_launch(pocl_queue)
    call = "profile_kernel(queue, launch of a kernel, repeats=3)"
    got = run_on_device(call, profile_kernel, pocl_queue, launch, 3)
    assert len(launches) == 4, f"{call} launched {len(launches)} kernels; expected 1 + 3"
    assert isinstance(got, list) and len(got) == 3, f"{call} returned {got!r}, not 3 times"
    for seconds, seen in zip(got, launches[1:], strict=True):
        check_kernel_time(seconds, seen.event, call)


# -- copy_bandwidth --------------------------------------------------------------------------


def check_bandwidth(got: Any, x32_bytes: int, timed: list[float], call: str, wall: float) -> None:
    __tracebackhide__ = True
    fastest = min(timed)
    want = 2 * x32_bytes / fastest / 1e9
    assert isinstance(got, float), f"{call} returned {got!r}, not a float of GB/s"
    if math.isclose(got, want, rel_tol=REL):
        return
    guesses = {
        "only the bytes read (or only those written): the copy reads every byte once and "
        "writes it once, 2 * nbytes": x32_bytes / fastest / 1e9,
        "in GiB/s: a GB here is 1e9 bytes, not 2**30": 2 * x32_bytes / fastest / 2**30,
        "over the mean time: take the fastest run, min(times), the one the rest of the "
        "machine disturbed least": 2 * x32_bytes / (sum(timed) / len(timed)) / 1e9,
        "over the slowest run: take min(times), not max": 2 * x32_bytes / max(timed) / 1e9,
        "from 8-byte numbers: count the bytes of the float32 copy (4 a number), not of the "
        "float64 array passed in": 4 * x32_bytes / fastest / 1e9,
        "a billion times too small: the times were nanoseconds; kernel_seconds must multiply "
        "end - start by 1e-9": 2 * x32_bytes / (fastest * 1e9) / 1e9,
    }
    for meaning, value in guesses.items():
        if math.isclose(got, value, rel_tol=1e-6):
            pytest.fail(
                f"{call} returned {got!r} GB/s, expected {want!r}: that is {meaning}.",
                pytrace=False,
            )
    pytest.fail(
        f"{call} returned {got!r} GB/s; expected bandwidth_gbs(2 * {x32_bytes} bytes, "
        f"min(times)) = {want!r}, from the fastest of the timed runs (times {timed}; the whole "
        f"call took {wall:.6f} s by the wall clock). If a test of kernel_seconds or "
        f"profile_kernel fails too, fix that first.",
        pytrace=False,
    )


@pytest.mark.clause(16, 17)
def test_copy_bandwidth_is_bytes_read_and_written_over_the_fastest_run(
    pocl_queue: Any, launches: list[Launch]
) -> None:
    n = (1 << 16) + 5
    call = f"copy_bandwidth(queue, {numbers(n)}, repeats=3)"
    begun = time.perf_counter()
    got = run_on_device(call, copy_bandwidth, pocl_queue, floats(n), 3)
    wall = time.perf_counter() - begun
    seen = copy_launches(launches, call, n, 3 + 1)
    timed = [(s.event.profile.end - s.event.profile.start) * 1e-9 for s in seen[1:]]
    check_bandwidth(got, 4 * n, timed, call, wall)
    # Whatever the load: the fastest run took no longer than the whole call.
    assert got >= 2 * 4 * n / wall / 1e9


@pytest.mark.clause(8, 16, 17)
def test_copy_bandwidth_counts_the_float32_bytes_of_a_float64_input(
    pocl_queue: Any, launches: list[Launch]
) -> None:
    n = 3 * LOCAL + 1
    x = floats(n).astype(np.float64)
    call = f"copy_bandwidth(queue, {n} float64 numbers)"
    begun = time.perf_counter()
    got = run_on_device(call, copy_bandwidth, pocl_queue, x)
    wall = time.perf_counter() - begun
    seen = copy_launches(launches, call, n, 5 + 1)
    timed = [(s.event.profile.end - s.event.profile.start) * 1e-9 for s in seen[1:]]
    check_bandwidth(got, 4 * n, timed, call, wall)
