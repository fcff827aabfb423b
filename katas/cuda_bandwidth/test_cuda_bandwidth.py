"""Kata `cuda_bandwidth`: time the GPU with events, measure its copy bandwidth, and write a sum that runs at the speed of memory."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cuda_bandwidth
import numpy as np
import pycuda.driver as drv
import pycuda.gpuarray as gpuarray
import pytest
from cuda_bandwidth import (
    BLOCKS_PER_SM,
    THREADS,
    bandwidth_gbs,
    copy_bandwidth,
    gpu_sum,
    reduce_sum,
    sum_bandwidth,
    sum_grid,
    time_runs,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

# Two float computations of one quotient differ in the last bits only.
REL = 1e-9
# The benchmark: 2**28 float32s, 1 GiB. One pass over it takes about 0.25 ms on an H200 and
# several ms on a laptop GPU: long enough that the launch's own latency (a few microseconds)
# weighs under 2 %.
BENCH_FLOATS = 1 << 28
# Each measurement is BATCH runs enqueued back to back between two events (the host stays
# ahead of the GPU, so the GPU never waits for Python between runs), after one warm-up run,
# and the best of ROUNDS such batches: the generous way to measure, the same for both sides.
BATCH = 10
ROUNDS = 3
BAR = 0.8  # the reduction must read at >= 80 % of the copy's bandwidth


@pytest.fixture(scope="module", autouse=True)
def cuda_context() -> Iterator[None]:
    """The GPU's primary context, current while this file's tests run (what
    pycuda.autoprimaryctx sets up), and no longer current afterwards."""
    drv.init()
    context = drv.Device(0).retain_primary_context()
    context.push()
    try:
        yield
    finally:
        gc.collect()  # free this file's device arrays while their context is current
        drv.Context.pop()


# -- events on a clock the test moves --------------------------------------------------------


@dataclass
class FakeGPU:
    """A GPU whose clock (in ms) moves only when a run happens, by that run's chosen time;
    `events` are the FakeEvents made while it is installed, in order."""

    runs_ms: list[float]
    now: float = 86_400_000.0  # a clock that does not start at 0
    done: int = 0  # runs finished
    events: list[FakeEvent] = field(default_factory=list)

    def run(self) -> None:
        if self.done >= len(self.runs_ms):
            pytest.fail(f"more than {len(self.runs_ms)} runs were made", pytrace=False)
        self.now += self.runs_ms[self.done]
        self.done += 1


class FakeEvent:
    """A stand-in for pycuda.driver.Event on a FakeGPU: record() stamps the GPU's clock, and
    time_till() fails unless the later event was synchronized after it was recorded (the real
    driver raises, or the time is not there yet)."""

    def __init__(self, gpu: FakeGPU, flags: int = 0) -> None:
        self.gpu = gpu
        self.stamp: float | None = None
        self.synchronized = False
        gpu.events.append(self)

    def record(self, stream: Any = None) -> FakeEvent:
        self.stamp = self.gpu.now
        self.synchronized = False
        return self

    def synchronize(self) -> FakeEvent:
        self.synchronized = True
        return self

    def query(self) -> bool:
        return True

    def time_till(self, end: FakeEvent) -> float:
        if self.stamp is None or end.stamp is None:
            pytest.fail(
                "start.time_till(end) was read from an event that was never recorded: call "
                "start.record() before the launch and end.record() after it",
                pytrace=False,
            )
        if not end.synchronized:
            pytest.fail(
                "start.time_till(end) was read before end.synchronize(): the host runs ahead "
                "of the GPU, and until the GPU has passed `end` there is no time to read (the "
                "real driver raises 'device not ready', or worse, answers for a mark the GPU "
                "passed earlier)",
                pytrace=False,
            )
        return end.stamp - self.stamp

    def time_since(self, start: FakeEvent) -> float:
        return start.time_till(self)


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[float]], FakeGPU]:
    """Install FakeEvents on a FakeGPU whose runs take the given milliseconds."""

    def install(runs_ms: list[float]) -> FakeGPU:
        gpu = FakeGPU(list(runs_ms))
        monkeypatch.setattr(drv, "Event", lambda flags=0: FakeEvent(gpu, flags))
        return gpu

    return install


# The first run is slow, as first runs are; the others each differ (milliseconds, all sums of
# powers of two, so that the clock adds and subtracts them exactly).
RUNS_MS = [9.0, 1.25, 1.125, 1.375, 1.1875, 1.3125, 1.28125]


def misreading(got: Any, want: list[float], everyone: list[float], warmup: int) -> str:
    """What a wrong list of times probably is."""
    if not isinstance(got, list) or not all(isinstance(t, float) for t in got):
        return "return a list of floats, one per timed run"
    in_ms = [w * 1e3 for w in want]
    if len(got) == len(want) and all(
        math.isclose(g, w, rel_tol=1e-6) for g, w in zip(got, in_ms, strict=True)
    ):
        return "these are milliseconds: start.time_till(end) answers in ms, multiply by 1e-3"
    if len(got) == len(want) and warmup and math.isclose(got[0], everyone[0], rel_tol=1e-6):
        return (
            f"the first time is the warm-up run's: drop the first {warmup} run(s), which also "
            f"pay for loading the kernel, and return the last ones"
        )
    if warmup and len(got) == len(everyone):
        return f"that is every run, the {warmup} warm-up run(s) included"
    if got and all(g < 1e-3 * min(want) for g in got):
        return (
            "these are far shorter than the runs: a timer read on the host around launch() "
            "measures Python and the enqueue; time the GPU with events"
        )
    return "expected the events' times of the runs after the warm-up, in run order"


def check_times(got: Any, gpu: FakeGPU, warmup: int, repeats: int, call: str) -> None:
    __tracebackhide__ = True
    everyone = [ms * 1e-3 for ms in gpu.runs_ms[: warmup + repeats]]
    want = everyone[warmup:]
    assert gpu.done == warmup + repeats, (
        f"{call} made {gpu.done} runs; expected warmup + repeats = {warmup + repeats}"
    )
    ok = (
        isinstance(got, list)
        and len(got) == repeats
        and all(
            isinstance(t, float) and math.isclose(t, w, rel_tol=REL)
            for t, w in zip(got, want, strict=True)
        )
    )
    if not ok:
        pytest.fail(
            f"{call} returned {got!r}; expected {want} (seconds): "
            f"{misreading(got, want, everyone, warmup)}",
            pytrace=False,
        )


# -- bandwidth_gbs ---------------------------------------------------------------------------


@pytest.mark.clause(1)
@pytest.mark.parametrize(
    ("bytes_moved", "seconds", "want"),
    [(2_000_000_000, 0.5, 4.0), (1 << 30, 0.000_25, 4294.967296), (0, 1.0, 0.0)],
)
def test_bandwidth_is_bytes_over_seconds_in_gb_of_1e9(
    bytes_moved: int, seconds: float, want: float
) -> None:
    got = bandwidth_gbs(bytes_moved, seconds)
    call = f"bandwidth_gbs({bytes_moved}, {seconds})"
    if bytes_moved and math.isclose(got, bytes_moved / seconds / 2**30, rel_tol=REL):
        pytest.fail(f"{call} returned {got} GiB/s; a GB here is 1e9 bytes", pytrace=False)
    assert isinstance(got, float) and math.isclose(got, want, rel_tol=REL, abs_tol=0.0), (
        f"{call} returned {got!r}; expected {want} GB/s (bytes / seconds / 1e9)"
    )


@pytest.mark.clause(2)
@pytest.mark.parametrize(("bytes_moved", "seconds"), [(100, 0.0), (100, -0.001), (-1, 1.0)])
def test_bandwidth_refuses_a_time_that_is_not_positive(bytes_moved: int, seconds: float) -> None:
    try:
        got = bandwidth_gbs(bytes_moved, seconds)
    except ValueError:
        return
    pytest.fail(
        f"bandwidth_gbs({bytes_moved}, {seconds}) returned {got!r} instead of raising "
        f"ValueError: a time that is not positive (events read the wrong way round, or before "
        f"the GPU got there) has no bandwidth",
        pytrace=False,
    )


# -- time_runs -------------------------------------------------------------------------------


@pytest.mark.clause(3)
@pytest.mark.parametrize(("repeats", "warmup"), [(0, 1), (-2, 0), (3, -1)])
def test_time_runs_refuses_bad_counts_before_running(
    fake_gpu: Callable[[list[float]], FakeGPU], repeats: int, warmup: int
) -> None:
    gpu = fake_gpu(RUNS_MS)
    call = f"time_runs(launch, repeats={repeats}, warmup={warmup})"
    try:
        got = time_runs(gpu.run, repeats, warmup)
    except ValueError:
        assert gpu.done == 0, f"{call} ran launch() {gpu.done} time(s) before refusing"
        return
    pytest.fail(
        f"{call} returned {got!r} instead of raising ValueError: at least one timed run, and "
        f"no negative number of warm-ups",
        pytrace=False,
    )


@pytest.mark.clause(4, 5)
@pytest.mark.parametrize(("repeats", "warmup"), [(3, 2), (4, 0), (1, 3)])
def test_time_runs_times_each_run_with_events_and_drops_the_warm_up(
    fake_gpu: Callable[[list[float]], FakeGPU], repeats: int, warmup: int
) -> None:
    gpu = fake_gpu(RUNS_MS)
    call = f"time_runs(launch, repeats={repeats}, warmup={warmup})"
    got = time_runs(gpu.run, repeats, warmup)
    assert gpu.events, (
        f"{call} made no cuda.Event(): the GPU's time comes from two events recorded around "
        f"the launch, start.time_till(end); a timer on the host measures the enqueue"
    )
    check_times(got, gpu, warmup, repeats, call)


@pytest.mark.clause(4, 5)
def test_time_runs_does_one_warm_up_run_by_default(
    fake_gpu: Callable[[list[float]], FakeGPU],
) -> None:
    gpu = fake_gpu(RUNS_MS)
    check_times(time_runs(gpu.run, 2), gpu, 1, 2, "time_runs(launch, 2)")


@pytest.mark.clause(4, 5)
def test_time_runs_measures_real_gpu_work_within_the_wall_time() -> None:
    nbytes = 64 << 20
    src, dst = drv.mem_alloc(nbytes), drv.mem_alloc(nbytes)
    begun = time.perf_counter()
    got = time_runs(lambda: drv.memcpy_dtod(dst, src, nbytes), 3)
    wall = time.perf_counter() - begun
    assert isinstance(got, list) and len(got) == 3, f"time_runs(a 64 MiB copy, 3) gave {got!r}"
    # Whatever the load: each copy ran inside the call, so 0 < its time <= the wall time.
    assert all(isinstance(t, float) and 0 < t <= wall for t in got), (
        f"time_runs(a 64 MiB copy, 3) returned {got} s, but the whole call took {wall:.6f} s: "
        f"each time must lie between 0 and that. A time a thousand times too big is in ms "
        f"(time_till answers in ms); a negative one is end.time_till(start)."
    )


# -- copy_bandwidth --------------------------------------------------------------------------


@pytest.mark.clause(6)
@pytest.mark.parametrize(("nbytes", "repeats"), [(0, 5), (-4, 5), (1 << 20, 0)])
def test_copy_bandwidth_refuses_bad_arguments(nbytes: int, repeats: int) -> None:
    try:
        got = copy_bandwidth(nbytes, repeats)
    except ValueError:
        return
    pytest.fail(
        f"copy_bandwidth({nbytes}, {repeats}) returned {got!r} instead of raising ValueError",
        pytrace=False,
    )


def spy_copies(monkeypatch: pytest.MonkeyPatch, gpu: FakeGPU) -> list[tuple[str, int]]:
    """Every mem_alloc and memcpy_dtod, with its size; each copy moves the fake clock."""
    calls: list[tuple[str, int]] = []
    mem_alloc, memcpy_dtod = drv.mem_alloc, drv.memcpy_dtod

    def allocated(nbytes: int) -> Any:
        calls.append(("mem_alloc", int(nbytes)))
        return mem_alloc(nbytes)

    def copied(dest: Any, src: Any, size: int, *rest: Any) -> Any:
        calls.append(("memcpy_dtod", int(size)))
        result = memcpy_dtod(dest, src, size, *rest)
        gpu.run()
        return result

    monkeypatch.setattr(drv, "mem_alloc", allocated)
    monkeypatch.setattr(drv, "memcpy_dtod", copied)
    return calls


@pytest.mark.clause(7, 8)
@pytest.mark.parametrize("repeats", [3, 5])
def test_copy_bandwidth_is_twice_the_bytes_over_the_fastest_timed_copy(
    fake_gpu: Callable[[list[float]], FakeGPU], monkeypatch: pytest.MonkeyPatch, repeats: int
) -> None:
    gpu = fake_gpu(RUNS_MS)
    calls = spy_copies(monkeypatch, gpu)
    nbytes = (32 << 20) + 4096
    call = f"copy_bandwidth({nbytes}, {repeats})"
    got = copy_bandwidth(nbytes, repeats)
    copies = [size for name, size in calls if name == "memcpy_dtod"]
    allocations = [size for name, size in calls if name == "mem_alloc"]
    assert allocations == [nbytes, nbytes], (
        f"{call} allocated {allocations}; expected two buffers of {nbytes} bytes"
    )
    assert copies == [nbytes] * (repeats + 1), (
        f"{call} made {len(copies)} copies of sizes {set(copies)}; expected 1 warm-up + "
        f"{repeats} timed copies of {nbytes} bytes, through time_runs(launch, repeats)"
    )
    timed = [ms * 1e-3 for ms in RUNS_MS[1 : repeats + 1]]
    want = 2 * nbytes / min(timed) / 1e9
    guesses = {
        "only the bytes read (or written): a copy reads every byte and writes it again, 2 * "
        "nbytes": nbytes / min(timed) / 1e9,
        "over the mean time: take the fastest run, min(times)": 2 * nbytes / np.mean(timed) / 1e9,
        "over the slowest run: take min(times), not max": 2 * nbytes / max(timed) / 1e9,
        "with the warm-up copy among the runs: it is the slowest, and it pays for set-up": 2
        * nbytes
        / min([RUNS_MS[0] * 1e-3, *timed])
        / 1e9,
        "in GiB/s: a GB is 1e9 bytes": 2 * nbytes / min(timed) / 2**30,
        "a thousand times too small: the times were ms": 2 * nbytes / (min(timed) * 1e3) / 1e9,
    }
    if isinstance(got, float) and math.isclose(got, want, rel_tol=REL):
        return
    for meaning, value in guesses.items():
        if isinstance(got, float) and math.isclose(got, value, rel_tol=1e-6):
            pytest.fail(
                f"{call} returned {got} GB/s, expected {want}: that is {meaning}", pytrace=False
            )
    pytest.fail(
        f"{call} returned {got!r} GB/s; expected bandwidth_gbs(2 * {nbytes}, min(times)) = "
        f"{want} for timed copies of {timed} s",
        pytrace=False,
    )


def batched_seconds(launch: Callable[[], None]) -> float:
    """The GPU time of one run of `launch`: one warm-up run, then the best of ROUNDS batches
    of BATCH runs enqueued back to back between two events."""
    launch()
    drv.Context.synchronize()
    best = math.inf
    for _ in range(ROUNDS):
        start, end = drv.Event(), drv.Event()
        start.record()
        for _ in range(BATCH):
            launch()
        end.record()
        end.synchronize()
        best = min(best, start.time_till(end) * 1e-3 / BATCH)
    return best


@pytest.mark.timing
@pytest.mark.clause(7, 8)
def test_copy_bandwidth_on_this_gpu_agrees_with_the_tests_own_measurement(
    record_property: Callable[[str, object], None],
) -> None:
    nbytes = 256 << 20
    begun = time.perf_counter()
    got = copy_bandwidth(nbytes, 5)
    wall = time.perf_counter() - begun
    src, dst = drv.mem_alloc(nbytes), drv.mem_alloc(nbytes)
    ours = 2 * nbytes / batched_seconds(lambda: drv.memcpy_dtod(dst, src, nbytes)) / 1e9
    record_property("copy_bandwidth_gbs", round(float(got), 1))
    print(f"copy_bandwidth(256 MiB): {got:.0f} GB/s; the test's own measurement: {ours:.0f} GB/s")
    # Whatever the load: the fastest copy took no longer than the whole call.
    assert isinstance(got, float) and got >= 2 * nbytes / wall / 1e9, (
        f"copy_bandwidth({nbytes}) returned {got!r} GB/s, less than 2 * nbytes over the whole "
        f"call's {wall:.4f} s: its times are too long (ms taken for s?)"
    )
    # Generous: single runs pay a few microseconds of launch latency that the batches do not,
    # and bytes counted once or twice too often land at 0.5 or 2 times.
    assert 0.6 * ours <= got <= 1.5 * ours, (
        f"copy_bandwidth({nbytes}) returned {got:.1f} GB/s; the test measured {ours:.1f} GB/s "
        f"for the same copy: count 2 * nbytes (read and written) over the fastest timed run"
    )


# -- sum_grid and reduce_sum -----------------------------------------------------------------


@pytest.mark.clause(9)
def test_sum_grid_is_blocks_per_sm_times_the_multiprocessors() -> None:
    device = drv.Context.get_device()
    sms = int(device.get_attribute(drv.device_attribute.MULTIPROCESSOR_COUNT))
    got = sum_grid()
    assert got == (BLOCKS_PER_SM * sms, THREADS), (
        f"sum_grid() returned {got!r}; this GPU has {sms} multiprocessors, so expected "
        f"(BLOCKS_PER_SM * {sms}, THREADS) = {(BLOCKS_PER_SM * sms, THREADS)}"
    )


@dataclass
class Launch:
    grid: tuple[int, ...]
    block: tuple[int, ...]
    argument_bytes: int


@pytest.fixture
def launches(monkeypatch: pytest.MonkeyPatch) -> list[Launch]:
    """Every kernel launch of the test (all of them end in `Function._launch_kernel`)."""
    seen: list[Launch] = []
    launch_kernel = drv.Function._launch_kernel

    def noted(function: Any, grid: Any, block: Any, arguments: Any, *rest: Any) -> Any:
        seen.append(Launch(tuple(grid), tuple(block), len(bytes(arguments))))
        return launch_kernel(function, grid, block, arguments, *rest)

    monkeypatch.setattr(drv.Function, "_launch_kernel", noted)
    return seen


def floats(n: int, seed: int) -> np.ndarray:
    """n float32s in [0.5, 1.5): no cancellation, so the float32 sum is close to the exact one,
    and an element counted twice or never moves the sum by at least 0.5."""
    return np.random.default_rng(seed).uniform(0.5, 1.5, n).astype(np.float32)


def exact(x: Any) -> float:
    return math.fsum(np.asarray(x, dtype=np.float32).astype(np.float64).tolist())


def check_sum(got: Any, x: Any, call: str) -> None:
    __tracebackhide__ = True
    want = exact(x)
    n = len(np.asarray(x))
    assert isinstance(got, float), f"{call} returned {got!r}, not a Python float"
    # float32 partial sums of numbers near 1: a relative error of a few 1e-7 at most here.
    if not math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6):
        hint = (
            "every element must be counted exactly once: the grid-stride loop starts at "
            "blockIdx.x * THREADS + threadIdx.x and steps by gridDim.x * THREADS; the last "
            "n % 4 floats, if you read float4s, are added one by one; and the second launch "
            "adds the blocks' sums into sums[0]"
        )
        if math.isnan(got):
            hint = "NaN: an element of sums that no block wrote was added (sums was NaN before)"
        pytest.fail(
            f"{call} returned {got!r}; the exact sum of the {n} float32s is {want!r} (off by "
            f"{got - want:+.4g}): {hint}",
            pytrace=False,
        )


@pytest.mark.clause(10)
@pytest.mark.parametrize(
    "wrong", ["x float64", "x 2-D", "x empty", "sums float64", "sums too short"]
)
def test_reduce_sum_refuses_wrong_arrays_before_launching(
    launches: list[Launch], wrong: str
) -> None:
    blocks, _ = sum_grid()
    x_gpu = gpuarray.to_gpu(floats(1000, 1))
    sums_gpu = gpuarray.empty(blocks, np.float32)
    if wrong == "x float64":
        x_gpu = gpuarray.to_gpu(floats(1000, 1).astype(np.float64))
    elif wrong == "x 2-D":
        x_gpu = gpuarray.to_gpu(floats(1000, 1).reshape(20, 50))
    elif wrong == "x empty":
        x_gpu = gpuarray.empty(0, np.float32)
    elif wrong == "sums float64":
        sums_gpu = gpuarray.empty(blocks, np.float64)
    else:
        sums_gpu = gpuarray.empty(blocks - 1, np.float32)
    call = f"reduce_sum with {wrong}"
    try:
        reduce_sum(x_gpu, sums_gpu)
    except ValueError:
        assert not launches, f"{call} launched {len(launches)} kernel(s) before refusing"
        return
    pytest.fail(
        f"{call} returned without raising ValueError: check x_gpu (1-D, float32, not empty) "
        f"and sums_gpu (float32, at least sum_grid()[0] = {blocks} elements) before launching",
        pytrace=False,
    )


@pytest.mark.clause(11)
def test_reduce_sum_launches_the_grid_then_one_block_within_sums(
    launches: list[Launch],
) -> None:
    blocks, threads = sum_grid()
    n = 3 * blocks * threads + 5
    x = floats(n, 2)
    # sums has 64 spare elements after the first `blocks`, all NaN: the second pass must read
    # only the blocks' sums, and nothing may write there.
    sums_gpu = gpuarray.to_gpu(np.full(blocks + 64, np.nan, dtype=np.float32))
    call = f"reduce_sum(x_gpu of {n} floats, sums_gpu of {blocks} + 64 NaNs)"
    reduce_sum(gpuarray.to_gpu(x), sums_gpu)
    want = [
        Launch((blocks, 1, 1), (threads, 1, 1), 20),
        Launch((1, 1, 1), (threads, 1, 1), 20),
    ]
    got = [
        Launch((*launch.grid, 1, 1)[:3], (*launch.block, 1, 1)[:3], launch.argument_bytes)
        for launch in launches
    ]
    assert got == want, (
        f"{call} launched {got}; expected {want}: first over x on grid (blocks, 1, 1), then "
        f"over the blocks' sums on one block, each block (THREADS, 1, 1), with arguments x, "
        f"sums and np.int32(n): 8 + 8 + 4 = 20 bytes"
    )
    after = sums_gpu.get()
    spare = after[blocks:]
    assert np.isnan(spare).all(), (
        f"{call} wrote {int((~np.isnan(spare)).sum())} of the 64 elements of sums past the "
        f"first {blocks}: each block writes sums[blockIdx.x] and nothing else"
    )
    check_sum(float(after[0]), x, call + ", sums[0]")


@pytest.mark.clause(12, 14)
@pytest.mark.parametrize("n", [1, 3, 4, 5, 255, 256, 257, 1023, 4099, 65_537, 1_000_003])
def test_gpu_sum_counts_every_element_once_for_any_length(n: int) -> None:
    x = floats(n, n)
    check_sum(gpu_sum(x), x, f"gpu_sum({n} float32s)")


@pytest.mark.clause(12, 14)
def test_gpu_sum_covers_arrays_longer_than_the_grid(launches: list[Launch]) -> None:
    blocks, threads = sum_grid()
    n = 4 * 2 * blocks * threads + 4 * 3 + 2  # two float4s per thread, and a ragged tail
    x = floats(n, 17)
    check_sum(gpu_sum(x), x, f"gpu_sum({n} float32s, more than one per thread)")
    assert launches and launches[0].grid[0] == blocks, (
        f"gpu_sum of {n} floats launched grid {launches[0].grid if launches else None}: the "
        f"grid is sum_grid()'s {blocks} blocks whatever n is; the grid-stride loop covers the rest"
    )


@pytest.mark.clause(12)
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(n=st.integers(1, 300_000))
def test_gpu_sum_is_right_for_drawn_lengths(n: int) -> None:
    x = floats(n, n + 1)
    check_sum(gpu_sum(x), x, f"gpu_sum({n} float32s)")


@pytest.mark.clause(14)
@pytest.mark.parametrize("kind", ["float64", "int64", "a list"])
def test_gpu_sum_converts_any_real_input_to_float32(kind: str) -> None:
    x: Any
    if kind == "float64":
        x = np.random.default_rng(3).uniform(0.5, 1.5, 10_001)
    elif kind == "int64":
        x = np.arange(1, 5_002, dtype=np.int64)
    else:
        x = [0.5, 1.25, 2.0, 3.5, 7.0]
    check_sum(gpu_sum(x), x, f"gpu_sum({kind})")


@pytest.mark.clause(14)
def test_gpu_sum_of_nothing_is_zero_without_a_launch(launches: list[Launch]) -> None:
    got = gpu_sum(np.zeros(0, dtype=np.float32))
    assert got == 0.0 and isinstance(got, float), f"gpu_sum(an empty array) returned {got!r}"
    assert not launches, "gpu_sum(an empty array) launched a kernel: there is nothing to add"


@pytest.mark.clause(14)
def test_gpu_sum_refuses_an_array_that_is_not_1_d() -> None:
    try:
        got = gpu_sum(np.ones((3, 4), dtype=np.float32))
    except ValueError:
        return
    pytest.fail(
        f"gpu_sum(a 3 x 4 array) returned {got!r} instead of raising ValueError: x must be 1-D",
        pytrace=False,
    )


# -- sum_bandwidth ---------------------------------------------------------------------------


@pytest.mark.clause(15)
def test_sum_bandwidth_is_the_bytes_read_once_over_the_fastest_timed_run(
    fake_gpu: Callable[[list[float]], FakeGPU], monkeypatch: pytest.MonkeyPatch
) -> None:
    gpu = fake_gpu(RUNS_MS)
    reduce = cuda_bandwidth.reduce_sum

    def timed(x_gpu: Any, sums_gpu: Any) -> None:
        reduce(x_gpu, sums_gpu)
        gpu.run()

    n = 100_003
    x_gpu = gpuarray.to_gpu(floats(n, 5))
    monkeypatch.setattr(cuda_bandwidth, "reduce_sum", timed)
    got = sum_bandwidth(x_gpu, 4)
    timed_s = [ms * 1e-3 for ms in RUNS_MS[1:5]]
    want = 4 * n / min(timed_s) / 1e9
    call = f"sum_bandwidth(x_gpu of {n} float32s, 4)"
    if isinstance(got, float) and math.isclose(got, 2 * want, rel_tol=1e-6):
        pytest.fail(
            f"{call} returned {got} GB/s, twice the {want} expected: a reduction reads each "
            f"byte once and writes next to nothing; 2 * nbytes is a copy's count",
            pytrace=False,
        )
    assert gpu.done == 5, (
        f"{call} ran reduce_sum {gpu.done} times; expected 1 warm-up + 4 timed runs, through "
        f"time_runs(lambda: reduce_sum(x_gpu, sums_gpu), repeats)"
    )
    assert isinstance(got, float) and math.isclose(got, want, rel_tol=REL), (
        f"{call} returned {got!r} GB/s; expected bandwidth_gbs(x_gpu.nbytes = {4 * n}, "
        f"min(times)) = {want} for timed runs of {timed_s} s after one warm-up"
    )


# -- the benchmark ---------------------------------------------------------------------------


@pytest.mark.timing
@pytest.mark.clause(13)
def test_the_reduction_reads_at_80_percent_of_the_copy_bandwidth(
    record_property: Callable[[str, object], None],
) -> None:
    nbytes = 4 * BENCH_FLOATS
    src, dst = drv.mem_alloc(nbytes), drv.mem_alloc(nbytes)
    copy_gbs = 2 * nbytes / batched_seconds(lambda: drv.memcpy_dtod(dst, src, nbytes)) / 1e9
    src.free()
    dst.free()
    x_gpu = gpuarray.empty(BENCH_FLOATS, np.float32)
    drv.memset_d32(x_gpu.gpudata, int(np.float32(0.5).view(np.uint32)), BENCH_FLOATS)
    sums_gpu = gpuarray.empty(sum_grid()[0], np.float32)
    sum_gbs = nbytes / batched_seconds(lambda: reduce_sum(x_gpu, sums_gpu)) / 1e9
    total = float(sums_gpu[:1].get()[0])
    ratio = sum_gbs / copy_gbs
    for name, value in (("copy_gbs", copy_gbs), ("sum_gbs", sum_gbs), ("ratio", ratio)):
        record_property(name, round(value, 3))
    print(
        f"\n{drv.Context.get_device().name()}: device-to-device copy {copy_gbs:.0f} GB/s, "
        f"reduction of 1 GiB {sum_gbs:.0f} GB/s, {ratio:.0%} of the copy"
    )
    assert math.isclose(total, BENCH_FLOATS * 0.5, rel_tol=1e-5), (
        f"reduce_sum of 2**28 halves left {total} in sums[0]; expected {BENCH_FLOATS * 0.5}"
    )
    assert ratio >= BAR, (
        f"reduce_sum read 1 GiB at {sum_gbs:.0f} GB/s, {ratio:.0%} of the {copy_gbs:.0f} GB/s "
        f"a device-to-device copy reaches (both the best of {ROUNDS} batches of {BATCH} runs): "
        f"below the {BAR:.0%} a memory-bound kernel should reach. Usual causes: reads that are "
        f"not coalesced (each thread must step by the whole grid, so that a warp reads 32 "
        f"neighbours at once, never walk a chunk of its own), an atomicAdd per element, a grid "
        f"of one thread per element (thousands of blocks, then a long second pass), or too few "
        f"loads in flight (read float4s, or several floats per step)."
    )
