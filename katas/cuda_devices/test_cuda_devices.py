"""Kata `cuda_devices`: the CUDA devices of this machine, and the limits that decide whether a launch runs."""

from __future__ import annotations

import gc
import math
import re
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import numpy as np
import pycuda.driver as drv
import pycuda.gpuarray as gpuarray
import pytest
from cuda_devices import DeviceReport, describe, launch_problems, list_devices, warps_per_block
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from pycuda.compiler import SourceModule

# The kernel the driver is asked to launch at each limit and one past it: it only marks that it
# ran. The shared memory it asks for at launch is never touched (a kernel that wrote past a
# small allocation would break the context for every later test).
TOUCH = r"""
__global__ void touch(float *out)
{
    extern __shared__ float scratch[];
    if (threadIdx.x + threadIdx.y + threadIdx.z + blockIdx.x + blockIdx.y + blockIdx.z == 0)
        out[0] = 1.0f;
}
"""


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


# -- what the driver says --------------------------------------------------------------------


def attribute(device: Any, name: str) -> int:
    return int(device.get_attribute(getattr(drv.device_attribute, name)))


def drivers_report(device: Any) -> DeviceReport:
    """The report of `device` as this test file reads it from the driver."""
    major, minor = device.compute_capability()
    return DeviceReport(
        name=device.name(),
        compute_capability=(int(major), int(minor)),
        total_memory_bytes=int(device.total_memory()),
        multiprocessors=attribute(device, "MULTIPROCESSOR_COUNT"),
        warp_size=attribute(device, "WARP_SIZE"),
        max_threads_per_block=attribute(device, "MAX_THREADS_PER_BLOCK"),
        max_block_dims=(
            attribute(device, "MAX_BLOCK_DIM_X"),
            attribute(device, "MAX_BLOCK_DIM_Y"),
            attribute(device, "MAX_BLOCK_DIM_Z"),
        ),
        max_grid_dims=(
            attribute(device, "MAX_GRID_DIM_X"),
            attribute(device, "MAX_GRID_DIM_Y"),
            attribute(device, "MAX_GRID_DIM_Z"),
        ),
        max_shared_memory_per_block=attribute(device, "MAX_SHARED_MEMORY_PER_BLOCK"),
    )


# What a wrong field usually is: (field, a wrong value's source, what that means).
DECOYS = {
    "total_memory_bytes": [
        (lambda d: d.total_memory() // 1024, "in KB, as the book prints it"),
        (lambda d: d.total_memory() // 2**20, "in MB"),
        (lambda d: d.total_memory() // 2**30, "in GiB, rounded down"),
        (lambda d: round(d.total_memory() / 2**30), "in GiB, rounded"),
        (lambda d: round(d.total_memory() / 1e9), "in GB, rounded"),
    ],
    "max_shared_memory_per_block": [
        (
            lambda d: attribute(d, "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN"),
            "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, which a kernel may use only after opting in "
            "with cuFuncSetAttribute; without that, a launch asking for more than "
            "MAX_SHARED_MEMORY_PER_BLOCK is refused",
        ),
        (
            lambda d: attribute(d, "MAX_SHARED_MEMORY_PER_MULTIPROCESSOR"),
            "MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, what all the blocks on one multiprocessor "
            "share, not what one block may have",
        ),
        (lambda d: attribute(d, "MAX_SHARED_MEMORY_PER_BLOCK") // 1024, "in KiB, not bytes"),
    ],
}


def check_report(got: Any, device: Any, want: DeviceReport, call: str) -> None:
    """`got` is `want`, field by field, with a sentence about the usual mistakes."""
    __tracebackhide__ = True
    assert isinstance(got, DeviceReport), f"{call} returned {got!r}, not a DeviceReport"
    for field in fields(DeviceReport):
        value, expected = getattr(got, field.name), getattr(want, field.name)
        if value == expected and type(value) is type(expected):
            continue
        meaning = ""
        for decoy, what in DECOYS.get(field.name, []):
            if value == decoy(device):
                meaning = f": that is {what}"
        if field.name == "compute_capability" and not isinstance(value, tuple):
            meaning = ": return device.compute_capability() as the tuple (major, minor) of ints"
        dims = field.name in ("max_block_dims", "max_grid_dims")
        if dims and isinstance(value, tuple) and sorted(value) == sorted(expected):
            meaning = ": the right limits in the wrong order; the order is (x, y, z)"
        pytest.fail(
            f"{call} gave {field.name} = {value!r} ({type(value).__name__}); the driver says "
            f"{expected!r}{meaning}.",
            pytrace=False,
        )


class FakeDevice:
    """A made-up GPU that answers like a pycuda.driver.Device; each of its numbers differs from
    the others and from the usual defaults, and it has the decoy attributes too."""

    def __init__(self, name: str, attributes: dict[str, int], total_memory: int) -> None:
        self._name = name
        self._total = total_memory
        self._attributes = {getattr(drv.device_attribute, k): v for k, v in attributes.items()}

    def name(self) -> str:
        return self._name

    def compute_capability(self) -> tuple[int, int]:
        return (
            self._attributes[drv.device_attribute.COMPUTE_CAPABILITY_MAJOR],
            self._attributes[drv.device_attribute.COMPUTE_CAPABILITY_MINOR],
        )

    def total_memory(self) -> int:
        return self._total

    def get_attribute(self, which: Any) -> int:
        if which not in self._attributes:
            pytest.fail(f"describe asked for {which}, which a report does not need", pytrace=False)
        return self._attributes[which]

    def get_attributes(self) -> dict[Any, int]:
        return dict(self._attributes)

    def __getattr__(self, name: str) -> int:  # device.max_threads_per_block, as pycuda allows
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get_attribute(getattr(drv.device_attribute, name.upper()))


def fake_gpu(name: str = "Acme Tensor 9000", warp: int = 32, sms: int = 46) -> FakeDevice:
    return FakeDevice(
        name,
        {
            "COMPUTE_CAPABILITY_MAJOR": 7,
            "COMPUTE_CAPABILITY_MINOR": 5,
            "MULTIPROCESSOR_COUNT": sms,
            "WARP_SIZE": warp,
            "MAX_THREADS_PER_BLOCK": 768,
            "MAX_BLOCK_DIM_X": 768,
            "MAX_BLOCK_DIM_Y": 640,
            "MAX_BLOCK_DIM_Z": 48,
            "MAX_GRID_DIM_X": 2147483647,
            "MAX_GRID_DIM_Y": 65535,
            "MAX_GRID_DIM_Z": 32768,
            "MAX_SHARED_MEMORY_PER_BLOCK": 40960,
            "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN": 101376,
            "MAX_SHARED_MEMORY_PER_MULTIPROCESSOR": 102400,
            "MAX_THREADS_PER_MULTIPROCESSOR": 1536,
            "MAX_REGISTERS_PER_BLOCK": 65536,
            "TOTAL_CONSTANT_MEMORY": 65536,
        },
        # 16 GiB and a few odd bytes, so that any rounding or unit shows.
        total_memory=17_179_869_184 + 4_321,
    )


def fake_report(warp: int = 32) -> DeviceReport:
    return drivers_report(fake_gpu(warp=warp))


# -- describe --------------------------------------------------------------------------------


@pytest.mark.clause(1, 2, 3)
def test_describe_gives_the_drivers_own_answers_for_every_gpu_here() -> None:
    for ordinal in range(drv.Device.count()):
        device = drv.Device(ordinal)
        check_report(
            describe(device), device, drivers_report(device), f"describe(Device({ordinal}))"
        )


@pytest.mark.clause(1, 2, 3)
@pytest.mark.parametrize("warp", [32, 64])
def test_describe_reads_a_made_up_gpu_field_by_field(warp: int) -> None:
    device = fake_gpu(warp=warp, sms=46 if warp == 32 else 7)
    check_report(describe(device), device, drivers_report(device), f"describe({device.name()})")


# -- list_devices ----------------------------------------------------------------------------


def fake_machine(monkeypatch: pytest.MonkeyPatch, devices: list[FakeDevice]) -> list[str]:
    """Replace the driver's init and Device with a machine holding `devices`; the calls made
    are listed in order, and a call before init fails as the real driver does."""
    calls: list[str] = []

    def init(flags: int = 0) -> None:
        calls.append("init")

    def started(call: str) -> None:
        calls.append(call)
        if "init" not in calls:
            pytest.fail(
                f"list_devices called {call} before cuda.init(): the driver answers nothing "
                f"until it is initialised (the real one raises 'initialization error' here, "
                f"unless some earlier code of the same process happened to call init)",
                pytrace=False,
            )

    class Device:
        @staticmethod
        def count() -> int:
            started("Device.count()")
            return len(devices)

        def __new__(cls, ordinal: int) -> Any:
            started(f"Device({ordinal})")
            if not 0 <= ordinal < len(devices):
                pytest.fail(
                    f"list_devices asked for Device({ordinal}) on a machine of "
                    f"{len(devices)} devices: ordinals run from 0 to count - 1",
                    pytrace=False,
                )
            return devices[ordinal]

    monkeypatch.setattr(drv, "init", init)
    monkeypatch.setattr(drv, "Device", Device)
    return calls


@pytest.mark.clause(5)
def test_list_devices_reports_every_gpu_here_in_ordinal_order() -> None:
    want = [drivers_report(drv.Device(i)) for i in range(drv.Device.count())]
    got = list_devices()
    assert isinstance(got, list) and len(got) == len(want), (
        f"list_devices() returned {got!r}; this machine has {len(want)} CUDA device(s)"
    )
    for ordinal, report in enumerate(got):
        device = drv.Device(ordinal)
        check_report(report, device, want[ordinal], f"list_devices()[{ordinal}]")


@pytest.mark.clause(4)
def test_list_devices_initialises_the_driver_before_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = fake_machine(monkeypatch, [fake_gpu()])
    list_devices()
    assert calls and calls[0] == "init", (
        f"list_devices made these driver calls: {calls}; cuda.init() must come first"
    )


@pytest.mark.clause(5)
def test_list_devices_lists_all_three_gpus_of_a_machine_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    devices = [fake_gpu(f"Acme Tensor {n}", sms=10 + n) for n in (1, 2, 3)]
    fake_machine(monkeypatch, devices)
    got = list_devices()
    names = [getattr(r, "name", r) for r in got] if isinstance(got, list) else got
    want = [d.name() for d in devices]
    assert names == want, (
        f"list_devices() on a machine of three GPUs gave the devices {names}; expected {want}: "
        f"describe(cuda.Device(i)) for every i in range(cuda.Device.count()), in order"
    )
    for ordinal, (report, device) in enumerate(zip(got, devices, strict=True)):
        check_report(report, device, drivers_report(device), f"list_devices()[{ordinal}]")


@pytest.mark.clause(5)
def test_list_devices_of_a_machine_without_a_gpu_is_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_machine(monkeypatch, [])
    got = list_devices()
    assert got == [], f"list_devices() on a machine without a GPU returned {got!r}, not []"


# -- warps_per_block -------------------------------------------------------------------------


@pytest.mark.clause(6)
@pytest.mark.parametrize(
    ("warp", "block", "want"),
    [
        (32, (1,), 1),
        (32, (32,), 1),
        (32, (33,), 2),
        (32, (100,), 4),
        (32, (16, 8, 1), 4),
        (32, (10, 10, 10), 32),
        (64, (100,), 2),
        (64, (8, 8), 1),
    ],
)
def test_warps_per_block_rounds_the_threads_up_to_whole_warps(
    warp: int, block: tuple[int, ...], want: int
) -> None:
    call = f"warps_per_block(report with warp_size {warp}, {block})"
    got = warps_per_block(fake_report(warp), block)
    threads = math.prod(block)
    if got == threads // warp and got != want:
        pytest.fail(
            f"{call} returned {got}, rounded down; expected {want}: the last {threads % warp} "
            f"threads still take a whole warp of {warp}",
            pytrace=False,
        )
    if got == -(-threads // 32) and got != want:
        pytest.fail(
            f"{call} returned {got}, as if warps were 32 threads; read report.warp_size",
            pytrace=False,
        )
    assert got == want, f"{call} returned {got!r}; {threads} threads take {want} warp(s)"


# -- launch_problems -------------------------------------------------------------------------


def problems_of(report: DeviceReport, call: str, *args: Any) -> list[str]:
    __tracebackhide__ = True
    got = launch_problems(report, *args)
    assert isinstance(got, list) and all(isinstance(p, str) for p in got), (
        f"{call} returned {got!r}, not a list of sentences"
    )
    return got


def check_problems(got: list[str], want: list[tuple[str, str | None]], call: str) -> None:
    """`got` holds exactly one sentence per (field, axis) of `want`, naming both."""
    __tracebackhide__ = True
    if len(got) != len(want):
        pytest.fail(
            f"{call} returned {len(got)} problem(s): {got}; expected {len(want)}, one per "
            f"broken limit: {[f'{f} ({a})' if a else f for f, a in want]}",
            pytrace=False,
        )
    left = list(got)
    for field, axis in want:
        match = next(
            (p for p in left if field in p and (axis is None or re.search(rf"\b{axis}\b", p))),
            None,
        )
        if match is None:
            where = f" and the axis {axis!r}" if axis else ""
            pytest.fail(
                f"{call} returned {got}; no sentence names {field!r}{where}, the limit the "
                f"launch breaks",
                pytrace=False,
            )
        left.remove(match)


@pytest.mark.clause(7)
@pytest.mark.parametrize(
    ("block", "grid", "shared"),
    [
        ((), (1,), 0),
        ((1, 1, 1, 1), (1,), 0),
        ((0, 4), (1,), 0),
        ((8, -1), (1,), 0),
        ((32,), (), 0),
        ((32,), (4, 0), 0),
        ((32,), (1, 1, 1, 2), 0),
        ((32,), (1,), -1),
    ],
)
def test_launch_problems_refuses_what_is_no_launch(
    block: tuple[int, ...], grid: tuple[int, ...], shared: int
) -> None:
    call = f"launch_problems(report, block={block}, grid={grid}, shared_bytes={shared})"
    try:
        got = launch_problems(fake_report(), block, grid, shared)
    except ValueError:
        return
    pytest.fail(
        f"{call} returned {got!r} instead of raising ValueError: a block and a grid have one "
        f"to three sizes of at least 1, and shared memory is never negative",
        pytrace=False,
    )


@pytest.mark.clause(8)
@pytest.mark.parametrize(
    ("block", "grid", "shared"),
    [
        ((768,), (1,), 0),
        ((16, 48), (2147483647,), 40960),
        ((1, 16, 48), (1, 65535, 32768), 0),
        ((32, 24, 1), (7, 3, 2), 40960),
    ],
)
def test_a_launch_at_every_limit_fits(
    block: tuple[int, ...], grid: tuple[int, ...], shared: int
) -> None:
    call = f"launch_problems(report, block={block}, grid={grid}, shared_bytes={shared})"
    got = problems_of(fake_report(), call, block, grid, shared)
    assert got == [], (
        f"{call} returned {got} for a launch that breaks no limit (each is inclusive: a value "
        f"equal to its limit fits; the limits: 768 threads, block (768, 640, 48), grid "
        f"(2147483647, 65535, 32768), 40960 bytes of shared memory)"
    )


@pytest.mark.clause(9)
@pytest.mark.parametrize("block", [(32, 25), (8, 8, 13), (769, 1, 1)])
def test_too_many_threads_in_a_block_is_named(block: tuple[int, ...]) -> None:
    call = f"launch_problems(report of 768 threads a block, block={block})"
    want: list[tuple[str, str | None]] = [("max_threads_per_block", None)]
    if block[0] > 768:
        want.append(("max_block_dims", "x"))
    check_problems(problems_of(fake_report(), call, block), want, call)


@pytest.mark.clause(10)
@pytest.mark.parametrize(
    ("block", "axes"), [((1, 1, 49), "z"), ((1, 641), "y"), ((1, 1, 640), "z")]
)
def test_each_block_axis_past_its_limit_is_named(block: tuple[int, ...], axes: str) -> None:
    call = f"launch_problems(report of blocks up to (768, 640, 48), block={block})"
    want: list[tuple[str, str | None]] = [("max_block_dims", a) for a in axes]
    check_problems(problems_of(fake_report(), call, block), want, call)


@pytest.mark.clause(11)
@pytest.mark.parametrize(
    ("grid", "axes"),
    [((2**31,), "x"), ((1, 65536), "y"), ((1, 1, 32769), "z"), ((2**31, 65536, 32769), "xyz")],
)
def test_each_grid_axis_past_its_limit_is_named(grid: tuple[int, ...], axes: str) -> None:
    call = f"launch_problems(report of grids up to (2147483647, 65535, 32768), (32,), {grid})"
    want: list[tuple[str, str | None]] = [("max_grid_dims", a) for a in axes]
    check_problems(problems_of(fake_report(), call, (32,), grid), want, call)


@pytest.mark.clause(12)
@pytest.mark.parametrize("shared", [40961, 101376])
def test_shared_memory_past_the_limit_is_named(shared: int) -> None:
    call = f"launch_problems(report of 40960 shared bytes, (64,), (1,), shared_bytes={shared})"
    want: list[tuple[str, str | None]] = [("max_shared_memory_per_block", None)]
    check_problems(problems_of(fake_report(), call, (64,), (1,), shared), want, call)


@pytest.mark.clause(9, 10, 11, 12)
def test_a_launch_that_breaks_five_limits_gets_five_sentences() -> None:
    block, grid, shared = (1024, 1, 49), (1, 70000), 10**6
    call = f"launch_problems(report, {block}, {grid}, {shared})"
    want: list[tuple[str, str | None]] = [
        ("max_threads_per_block", None),
        ("max_block_dims", "x"),
        ("max_block_dims", "z"),
        ("max_grid_dims", "y"),
        ("max_shared_memory_per_block", None),
    ]
    check_problems(problems_of(fake_report(), call, block, grid, shared), want, call)


def broken(
    report: DeviceReport, block: tuple[int, ...], grid: tuple[int, ...], shared: int
) -> list[tuple[str, str | None]]:
    """The (field, axis) of every limit the launch breaks."""
    b, g = (*block, 1, 1, 1)[:3], (*grid, 1, 1, 1)[:3]
    found: list[tuple[str, str | None]] = []
    if math.prod(b) > report.max_threads_per_block:
        found.append(("max_threads_per_block", None))
    for axis, size, most in zip("xyz", b, report.max_block_dims, strict=True):
        if size > most:
            found.append(("max_block_dims", axis))
    for axis, size, most in zip("xyz", g, report.max_grid_dims, strict=True):
        if size > most:
            found.append(("max_grid_dims", axis))
    if shared > report.max_shared_memory_per_block:
        found.append(("max_shared_memory_per_block", None))
    return found


near = st.sampled_from([1, 2, 47, 48, 49, 639, 640, 641, 767, 768, 769])


@pytest.mark.clause(8, 9, 10, 11, 12)
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
)
@given(
    block=st.lists(near, min_size=1, max_size=3).map(tuple),
    grid=st.lists(st.sampled_from([1, 65535, 65536, 32768, 32769]), min_size=1, max_size=3).map(
        tuple
    ),
    shared=st.sampled_from([0, 40960, 40961]),
)
def test_launch_problems_names_exactly_the_broken_limits_of_drawn_launches(
    block: tuple[int, ...], grid: tuple[int, ...], shared: int
) -> None:
    report = fake_report()
    call = f"launch_problems(report, {block}, {grid}, {shared})"
    check_problems(
        problems_of(report, call, block, grid, shared), broken(report, block, grid, shared), call
    )


# -- the driver agrees -----------------------------------------------------------------------


def driver_runs(function: Any, block: tuple[int, ...], grid: tuple[int, ...], shared: int) -> str:
    """'' when the driver ran the launch, else why it refused."""
    out = gpuarray.to_gpu(np.zeros(1, dtype=np.float32))
    try:
        function(out, block=block, grid=grid, shared=shared)
        drv.Context.synchronize()
    except drv.Error as error:
        return str(error)
    ran = out.get()[0] == 1.0
    return "" if ran else "the launch returned, but the kernel never ran"


@pytest.mark.clause(8, 9, 10, 11, 12)
def test_launch_problems_agrees_with_the_driver_at_each_limit_and_one_past_it() -> None:
    device = drv.Context.get_device()
    report = drivers_report(device)
    threads, (_, _, z), (_, grid_y, _) = (
        report.max_threads_per_block,
        report.max_block_dims,
        report.max_grid_dims,
    )
    shared = report.max_shared_memory_per_block
    launches = [
        ((threads, 1, 1), (1, 1, 1), 0),
        ((threads + 1, 1, 1), (1, 1, 1), 0),
        ((1, 1, z), (1, 1, 1), 0),
        ((1, 1, z + 1), (1, 1, 1), 0),
        ((1, 1, 1), (1, grid_y, 1), 0),
        ((1, 1, 1), (1, grid_y + 1, 1), 0),
        ((32, 1, 1), (1, 1, 1), shared),
        ((32, 1, 1), (1, 1, 1), shared + 1),
    ]
    touch = SourceModule(TOUCH).get_function("touch")
    for block, grid, shared_bytes in launches:
        call = f"launch_problems(report of this GPU, {block}, {grid}, {shared_bytes})"
        problems = problems_of(report, call, block, grid, shared_bytes)
        refused = driver_runs(touch, block, grid, shared_bytes)
        if problems and not refused:
            pytest.fail(
                f"{call} returned {problems}, but the driver ran that launch: every limit is "
                f"inclusive, a value equal to it fits",
                pytrace=False,
            )
        if refused and not problems:
            pytest.fail(
                f"{call} returned [], but the driver refused that launch ({refused})",
                pytrace=False,
            )
