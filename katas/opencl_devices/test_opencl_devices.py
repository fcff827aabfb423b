"""Kata `opencl_devices`: platforms, devices, their limits, and choosing a device in code."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyopencl as cl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opencl_devices import (
    KINDS,
    DeviceReport,
    describe,
    fits,
    list_devices,
    open_queue,
    pick_device,
)

PROMPT = (
    "pyopencl.create_some_context was called: it may stop and ask on the terminal which device "
    "to use, and a program (or this test) has nobody to answer. Choose the device in code: walk "
    "cl.get_platforms() and each platform.get_devices(), and raise LookupError when none fits."
)
BIT_FIELD = (
    "device.type is a bit field: a device may set several bits (Oclgrind sets CPU, GPU and "
    "ACCELERATOR; a GPU driver often adds DEFAULT). Test each kind's bit with "
    "`device.type & cl.device_type.GPU`, not `==`; and not cl.device_type.to_string, which "
    "prints ALL for every device"
)
# A GPU as NVIDIA's drivers describe one: 1024 work-items per group, but only 64 along z.
GPU_LIKE = DeviceReport(
    name="Made-up GPU",
    platform="Made-up Platform",
    kinds=("GPU",),
    compute_units=80,
    max_work_group_size=1024,
    max_work_item_sizes=(1024, 1024, 64),
    local_mem_bytes=49_152,
    global_mem_bytes=25_769_803_776,
    opencl_c_version=(3, 0),
)


@pytest.fixture(autouse=True)
def no_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test fails at once, with the reason, if the code under test may prompt."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        pytest.fail(PROMPT, pytrace=False)

    monkeypatch.setattr(cl, "create_some_context", refuse)
    monkeypatch.setattr(cl, "choose_devices", refuse, raising=False)


# -- pyopencl's own answers (the oracle) -----------------------------------------------------


def every_device() -> list[Any]:
    return [device for platform in cl.get_platforms() for device in platform.get_devices()]


def kinds_of(device: Any) -> tuple[str, ...]:
    return tuple(kind for kind in KINDS if device.type & getattr(cl.device_type, kind))


def version_of(text: str) -> tuple[int, int] | None:
    found = re.search(r"(\d+)\.(\d+)", text)
    return None if found is None else (int(found[1]), int(found[2]))


def report_of(device: Any) -> DeviceReport:
    """The report pyopencl's answers give, built without the learner's `describe`."""
    version = version_of(device.opencl_c_version)
    assert version is not None
    return DeviceReport(
        name=device.name,
        platform=device.platform.name,
        kinds=kinds_of(device),
        compute_units=device.max_compute_units,
        max_work_group_size=device.max_work_group_size,
        max_work_item_sizes=tuple(device.max_work_item_sizes),
        local_mem_bytes=device.local_mem_size,
        global_mem_bytes=device.global_mem_size,
        opencl_c_version=version,
    )


def bits(value: int) -> str:
    names = [
        name
        for name in ("DEFAULT", "CPU", "GPU", "ACCELERATOR")
        if value & getattr(cl.device_type, name)
    ]
    return f"{value} = {' | '.join(names) or 'no bit'}"


def unit_slip(got: object, want: int) -> str:
    """Why a memory size may be off: the unit, or rounding."""
    if not isinstance(got, int | float) or got == want:
        return ""
    for unit, size in (("KiB", 2**10), ("MiB", 2**20), ("GiB", 2**30), ("KB", 10**3)):
        if round(got) in (want // size, round(want / size)):
            return f": that is the size in {unit} (the book prints KB and GB), not in bytes"
    return ""


def assert_report(report: object, device: Any, where: str) -> None:
    """Every field of `report` against pyopencl's answer for `device`, wrong ones named."""
    __tracebackhide__ = True
    assert isinstance(report, DeviceReport), (
        f"describe returned {type(report).__name__}, not a DeviceReport ({where})"
    )
    want = report_of(device)
    attribute = {
        "name": "device.name",
        "platform": "device.platform.name",
        "kinds": f"the KINDS bits of device.type ({bits(device.type)})",
        "compute_units": "device.max_compute_units",
        "max_work_group_size": "device.max_work_group_size",
        "max_work_item_sizes": "tuple(device.max_work_item_sizes)",
        "local_mem_bytes": "device.local_mem_size",
        "global_mem_bytes": "device.global_mem_size",
        "opencl_c_version": f"device.opencl_c_version ({device.opencl_c_version!r})",
    }
    wrong = []
    for name, source in attribute.items():
        got, expected = getattr(report, name), getattr(want, name)
        if got != expected:
            line = f"{name} is {got!r}, but {source} gives {expected!r}"
            if name.endswith("_bytes"):
                line += unit_slip(got, expected)
            if name == "kinds":
                line += f": {BIT_FIELD}"
            if name == "opencl_c_version" and got == version_of(device.version):
                line += (
                    f": that is device.version ({device.version!r}), the OpenCL API's version; "
                    "the kernel language's is device.opencl_c_version"
                )
            wrong.append(line)
    assert not wrong, f"describe({device.name!r}) ({where}):\n  " + "\n  ".join(wrong)


# -- a made-up machine: two platforms of two devices each ------------------------------------


@dataclass(eq=False)
class FakePlatform:
    """Answers what a pyopencl.Platform answers, for a machine this test makes up."""

    name: str
    devices: list[FakeDevice] = field(default_factory=list)
    vendor: str = "made up by test_opencl_devices"
    version: str = "OpenCL 3.0"

    def get_devices(self, device_type: int = cl.device_type.ALL) -> list[FakeDevice]:
        return [device for device in self.devices if device.type & device_type]

    def get_info(self, param: int) -> Any:
        return getattr(self, cl.platform_info.to_string(param).lower())

    def __repr__(self) -> str:
        return f"<made-up platform {self.name!r}>"


@dataclass(eq=False)
class FakeDevice:
    """Answers what a pyopencl.Device answers, for a machine this test makes up."""

    name: str
    type: int
    max_compute_units: int
    max_work_group_size: int
    max_work_item_sizes: list[int]
    local_mem_size: int
    global_mem_size: int
    opencl_c_version: str
    version: str
    platform: FakePlatform | None = None

    def get_info(self, param: int) -> Any:
        return getattr(self, cl.device_info.to_string(param).lower())

    def __repr__(self) -> str:
        return f"<made-up device {self.name!r}>"


@dataclass
class Machine:
    platforms: list[FakePlatform]

    def device(self, name: str) -> FakeDevice:
        return next(d for p in self.platforms for d in p.devices if d.name == name)

    @property
    def devices(self) -> list[FakeDevice]:
        return [device for platform in self.platforms for device in platform.devices]


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Machine:
    """`cl.get_platforms()` answers two made-up platforms: the first offers a GPU and an
    accelerator, the second a CPU and a GPU (a machine with a CUDA and a CPU driver)."""
    kind = cl.device_type
    acme, zeta = FakePlatform("Acme OpenCL"), FakePlatform("Zeta Runtime")
    specs = [
        # platform, name, type bits, units, group, per-dim sizes, local, global, C, API
        (acme, "Acme Graphics 9000", kind.GPU | kind.DEFAULT, 80, 1024, [1024, 1024, 64],
         49_152, 25_769_803_776, "OpenCL C 1.2 ", "OpenCL 3.0 CUDA 12.4"),
        (acme, "Acme Tensor Engine", kind.ACCELERATOR, 4, 256, [256, 256, 256],
         65_536, 8_589_934_592, "OpenCL C 2.0 acme", "OpenCL 3.0 acme"),
        (zeta, "Zeta Cores", kind.CPU, 16, 8192, [8192, 8192, 8192],
         524_288, 68_719_476_736, "OpenCL C 1.2 zeta", "OpenCL 2.1 zeta"),
        (zeta, "Zeta Graphics", kind.GPU, 32, 512, [512, 512, 512],
         32_768, 4_294_967_296, "OpenCL C 3.0 zeta", "OpenCL 3.0 zeta"),
    ]  # fmt: skip
    for platform, *answers in specs:
        device = FakeDevice(*answers, platform=platform)
        platform.devices.append(device)
    monkeypatch.setattr(cl, "get_platforms", lambda: [acme, zeta])
    return Machine([acme, zeta])


def named(device: Any) -> str:
    return "nothing" if device is None else repr(getattr(device, "name", device))


# -- describe ----------------------------------------------------------------------------------


@pytest.mark.clause(1, 2, 3, 4)
def test_describe_gives_pyopencls_own_answers_for_this_device(cl_queue: Any) -> None:
    assert_report(describe(cl_queue.device), cl_queue.device, "a real device")


@pytest.mark.clause(2)
def test_memory_sizes_are_in_bytes_as_the_device_reports_them(cl_queue: Any) -> None:
    device = cl_queue.device
    report = describe(device)
    for field_name, want in (
        ("local_mem_bytes", device.local_mem_size),
        ("global_mem_bytes", device.global_mem_size),
    ):
        got = getattr(report, field_name)
        assert got == want, (
            f"{field_name} is {got!r} for {device.name!r}, which has {want} bytes"
            f"{unit_slip(got, want)}"
        )


@pytest.mark.clause(3)
def test_kinds_hold_every_kind_whose_bit_device_type_sets(cl_queue: Any) -> None:
    device = cl_queue.device
    got, want = describe(device).kinds, kinds_of(device)
    assert got == want, (
        f"kinds is {got!r} for {device.name!r}, whose device.type is {bits(device.type)}: "
        f"expected {want!r}. {BIT_FIELD}"
    )


@pytest.mark.clause(3)
def test_the_default_bit_is_not_a_kind_and_one_bit_is_one_kind(machine: Machine) -> None:
    for name, want in (
        ("Acme Graphics 9000", ("GPU",)),
        ("Acme Tensor Engine", ("ACCELERATOR",)),
        ("Zeta Cores", ("CPU",)),
    ):
        device = machine.device(name)
        got = describe(device).kinds
        assert got == want, (
            f"kinds is {got!r} for a made-up device whose device.type is {bits(device.type)}: "
            f"expected {want!r}. {BIT_FIELD}"
        )


@pytest.mark.clause(4)
def test_opencl_c_version_is_the_kernel_languages_not_the_apis(cl_queue: Any) -> None:
    device = cl_queue.device
    got, want = describe(device).opencl_c_version, version_of(device.opencl_c_version)
    why = ""
    if got == version_of(device.version):
        why = (
            f": that is device.version ({device.version!r}), the version of the OpenCL API; "
            "kernels are compiled for device.opencl_c_version"
        )
    assert got == want, (
        f"opencl_c_version is {got!r} for {device.name!r}, but device.opencl_c_version is "
        f"{device.opencl_c_version!r}, which gives {want!r}{why}"
    )


@pytest.mark.clause(1, 2, 3, 4)
def test_describe_reads_each_made_up_device_right(machine: Machine) -> None:
    for device in machine.devices:
        assert_report(describe(device), device, "a made-up device")


# -- list_devices ------------------------------------------------------------------------------


def order_problem(got: list[str], want: list[str], platforms: list[list[str]]) -> str:
    """Names the plausible slip behind a wrong list of device names."""
    if got == platforms[0]:
        return "only the first platform's devices: loop over every platform of cl.get_platforms()"
    if got == [devices[0] for devices in platforms if devices]:
        return "only each platform's first device: loop over every device of platform.get_devices()"
    if sorted(got) == sorted(want):
        return "every device, but not in the order pyopencl gives them"
    return "not the devices pyopencl lists"


@pytest.mark.clause(5)
def test_list_devices_lists_every_device_of_every_platform_here() -> None:
    reports = list_devices()
    platforms = [[d.name for d in p.get_devices()] for p in cl.get_platforms()]
    want = [name for names in platforms for name in names]
    got = [getattr(r, "name", r) for r in reports]
    assert got == want, (
        f"list_devices() named {got}, but this machine's platforms hold {want}: "
        f"{order_problem(got, want, platforms)}"
    )
    for report, device in zip(reports, every_device(), strict=True):
        assert_report(report, device, "in list_devices()")


@pytest.mark.clause(5)
def test_list_devices_walks_both_platforms_and_both_devices_of_each(machine: Machine) -> None:
    platforms = [[d.name for d in p.devices] for p in machine.platforms]
    want = [name for names in platforms for name in names]
    got = [getattr(r, "name", r) for r in list_devices()]
    assert got == want, (
        f"on a machine with two platforms of two devices each, list_devices() named {got}, "
        f"expected {want}: {order_problem(got, want, platforms)}"
    )


# -- pick_device -------------------------------------------------------------------------------


def assert_picks(want: Any, why: str, *args: str, **kwargs: str) -> None:
    """`pick_device(*args, **kwargs)` returns `want` itself; `why` says what it must see."""
    __tracebackhide__ = True
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    call = f"pick_device({', '.join(shown)})"
    refused = None
    try:
        picked = pick_device(*args, **kwargs)
    except LookupError as error:
        refused = f"{call} raised LookupError ({error}), but {named(want)} matches: {why}"
    if refused is not None:  # failed outside the except: the learner's traceback adds nothing
        pytest.fail(refused, pytrace=False)
    if isinstance(picked, DeviceReport):
        pytest.fail(f"{call} returned a DeviceReport: return the pyopencl.Device itself")
    real = not isinstance(want, FakeDevice)
    if real:
        assert isinstance(picked, cl.Device), f"{call} returned {picked!r}, not a pyopencl.Device"
    assert picked is want or (real and picked == want), (
        f"{call} returned {named(picked)}, expected {named(want)}: {why}"
    )


@pytest.mark.clause(6)
def test_pick_device_returns_the_first_device_of_each_kind_here() -> None:
    devices = ", ".join(f"{d.name!r} ({bits(d.type)})" for d in every_device())
    for kind in KINDS:
        want = next((d for d in every_device() if kind in kinds_of(d)), None)
        if want is None:
            with pytest.raises(LookupError):
                pick_device(kind)
            continue
        assert_picks(
            want,
            f"the first device, in platform order, whose device.type has the {kind} bit "
            f"(this machine has {devices})",
            kind,
        )


@pytest.mark.clause(6)
def test_pick_device_looks_past_the_first_platform_and_the_first_device(machine: Machine) -> None:
    why = (
        "the first matching device may sit on the second platform, or be a platform's second "
        "device (made-up machine: Acme OpenCL offers a GPU and an accelerator, Zeta Runtime a "
        "CPU and a GPU)"
    )
    assert_picks(machine.device("Zeta Cores"), f"the default kind is 'CPU'; {why}")
    assert_picks(machine.device("Zeta Cores"), why, "CPU")
    assert_picks(machine.device("Acme Tensor Engine"), why, "ACCELERATOR")
    assert_picks(machine.device("Acme Graphics 9000"), why, "GPU")


@pytest.mark.clause(7)
def test_name_contains_narrows_the_choice(machine: Machine) -> None:
    assert_picks(
        machine.device("Zeta Graphics"),
        "name_contains was ignored: the first GPU is Acme's, whose name lacks 'Zeta Graphics'",
        "GPU",
        name_contains="Zeta Graphics",
    )


@pytest.mark.clause(7)
def test_name_contains_ignores_case(machine: Machine) -> None:
    assert_picks(
        machine.device("Zeta Graphics"),
        "name_contains ignores case: compare the lower-cased texts",
        "GPU",
        name_contains="zeta graphICS",
    )


@pytest.mark.clause(7)
def test_name_contains_also_matches_the_platform_name(machine: Machine) -> None:
    assert_picks(
        machine.device("Zeta Graphics"),
        "'Runtime' is in the platform's name, 'Zeta Runtime': look in the device's name and "
        "in its platform's name",
        "GPU",
        name_contains="RUNTIME",
    )


@pytest.mark.clause(7)
def test_name_contains_picks_this_machines_real_device(pocl_queue: Any) -> None:
    device = pocl_queue.device
    fragment, kind = device.name.upper(), kinds_of(device)[0]
    first = next(
        d for d in every_device() if fragment.lower() in d.name.lower() and kind in kinds_of(d)
    )
    assert_picks(
        first,
        f"the first {kind} device whose name holds {fragment!r}, ignoring case",
        kind,
        name_contains=fragment,
    )


@pytest.mark.clause(8, 10)
def test_no_match_raises_lookup_error_naming_every_device(machine: Machine) -> None:
    with pytest.raises(LookupError) as raised:
        pick_device("CPU", name_contains="acme")
    message = str(raised.value)
    missing = [
        text
        for text in [d.name for d in machine.devices]
        + ["Acme OpenCL", "Zeta Runtime"]
        + list(KINDS)
        if text not in message
    ]
    assert not missing, (
        f"the LookupError says {message!r}, without {missing}: name every device found, with "
        "its platform and kinds, so that the caller sees what there is to ask for"
    )


@pytest.mark.clause(8, 10)
def test_no_match_here_raises_lookup_error_naming_this_machines_devices() -> None:
    with pytest.raises(LookupError) as raised:
        pick_device("ACCELERATOR", name_contains="no device is called this")
    message = str(raised.value)
    missing = [d.name for d in every_device() if d.name not in message]
    assert not missing, f"the LookupError says {message!r}, without the devices {missing}"


@pytest.mark.clause(9)
@pytest.mark.parametrize("kind", ["gpu", "ALL", "DEFAULT", "FPGA"])
def test_a_kind_outside_kinds_raises_value_error_naming_the_valid_ones(
    machine: Machine, kind: str
) -> None:
    message, wrong = "", None
    try:
        picked = pick_device(kind)
    except ValueError as error:
        message = str(error)
    except LookupError as error:
        wrong = f"raised LookupError ({error})"
    else:
        wrong = f"returned {named(picked)}"
    if wrong is not None:
        pytest.fail(
            f"pick_device({kind!r}) {wrong}: {kind!r} is not a kind at all, and the caller must "
            f"hear that (ValueError naming {', '.join(KINDS)}), not that the machine lacks one",
            pytrace=False,
        )
    assert all(valid in message for valid in KINDS), (
        f"the ValueError for kind={kind!r} says {message!r}: name the valid kinds, {KINDS}"
    )


# -- open_queue --------------------------------------------------------------------------------


@pytest.mark.clause(11)
def test_open_queue_makes_a_context_of_that_device_alone(cl_queue: Any) -> None:
    device = cl_queue.device
    queue = open_queue(device)
    assert isinstance(queue, cl.CommandQueue), f"open_queue returned {queue!r}, not a CommandQueue"
    devices = queue.context.devices
    assert devices == [device] and queue.device == device, (
        f"open_queue({device.name!r}) made a queue on {queue.device.name!r} in a context of "
        f"{[d.name for d in devices]}: build cl.Context(devices=[device]), not a context "
        "chosen by type or by pyopencl"
    )
    assert queue.context != cl_queue.context, "open_queue must make a new context"
    values = np.arange(1, 9, dtype=np.int32)
    buffer = cl.Buffer(queue.context, cl.mem_flags.COPY_HOST_PTR, hostbuf=values)
    back = np.zeros_like(values)
    cl.enqueue_copy(queue, back, buffer)
    queue.finish()
    assert (back == values).all(), "a copy through the queue open_queue made came back wrong"


# -- fits --------------------------------------------------------------------------------------


def real_reports() -> list[DeviceReport]:
    return [report_of(device) for device in every_device()]


def assert_fits(
    report: DeviceReport, local_size: Any, local_mem: int, want: bool, why: str
) -> None:
    __tracebackhide__ = True
    got = fits(report, local_size, local_mem)
    assert got is want, (
        f"fits({report.name!r}, local_size={local_size!r}, local_mem_bytes={local_mem}) is "
        f"{got!r}, expected {want} (max_work_group_size {report.max_work_group_size}, "
        f"max_work_item_sizes {report.max_work_item_sizes}, local_mem_bytes "
        f"{report.local_mem_bytes}): {why}"
    )


@pytest.mark.clause(12)
def test_a_group_of_exactly_the_maximum_size_fits_and_one_more_does_not() -> None:
    for report in [*real_reports(), GPU_LIKE]:
        most = report.max_work_group_size
        assert_fits(report, most, 0, True, "the limit is inclusive: use <=, not <")
        assert_fits(report, (most,), 0, True, "the limit is inclusive: use <=, not <")
        assert_fits(report, most + 1, 0, False, "one work-item past max_work_group_size")


@pytest.mark.clause(12)
def test_the_limit_is_on_the_product_of_the_dimensions() -> None:
    for report in [*real_reports(), GPU_LIKE]:
        half = report.max_work_group_size // 2
        assert_fits(report, (half, 2), 0, True, "exactly max_work_group_size work-items in all")
        assert_fits(
            report,
            (half + 1, 2),
            0,
            False,
            f"{(half + 1) * 2} work-items in all: each dimension is within its own limit, "
            "but the product of the dimensions is over max_work_group_size",
        )


@pytest.mark.clause(13)
def test_each_dimension_has_its_own_limit() -> None:
    assert_fits(GPU_LIKE, (1, 1, 64), 0, True, "64 along z is exactly the limit")
    assert_fits(GPU_LIKE, (4, 4, 64), 0, True, "1024 in all, 64 along z: both limits met")
    assert_fits(
        GPU_LIKE,
        (1, 1, 65),
        0,
        False,
        "65 work-items along z, where max_work_item_sizes allows 64, although 65 in all is "
        "far below max_work_group_size",
    )
    assert_fits(GPU_LIKE, (1, 1025), 0, False, "1025 along y, past its limit of 1024")


@pytest.mark.clause(13)
def test_more_dimensions_than_the_device_has_do_not_fit() -> None:
    for report in [*real_reports(), GPU_LIKE]:
        shape = (1,) * (len(report.max_work_item_sizes) + 1)
        assert_fits(
            report,
            shape,
            0,
            False,
            f"{len(shape)} dimensions on a device with {len(report.max_work_item_sizes)}: a "
            "zip() of the shape with max_work_item_sizes silently drops the extra one",
        )


@pytest.mark.clause(13)
def test_a_dimension_below_one_does_not_fit() -> None:
    for shape in [0, (0,), (4, 0), (8, -1)]:
        assert_fits(
            GPU_LIKE,
            shape,
            0,
            False,
            "a work-group has at least one work-item along each dimension",
        )


@pytest.mark.clause(14)
def test_exactly_all_the_local_memory_fits_and_one_byte_more_does_not() -> None:
    for report in [*real_reports(), GPU_LIKE]:
        most = report.local_mem_bytes
        assert_fits(report, 1, most, True, "the limit is inclusive: use <=, not <")
        assert_fits(report, 1, most + 1, False, "one byte past the device's local memory")


@pytest.mark.clause(12, 13, 14)
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    shape=st.lists(st.integers(1, 1024), min_size=1, max_size=3),
    local_mem=st.integers(0, 2 * GPU_LIKE.local_mem_bytes),
)
def test_fits_agrees_with_the_limits_for_any_shape(shape: list[int], local_mem: int) -> None:
    report = GPU_LIKE
    want = (
        all(size <= most for size, most in zip(shape, report.max_work_item_sizes, strict=False))
        and math.prod(shape) <= report.max_work_group_size
        and local_mem <= report.local_mem_bytes
    )
    assert_fits(report, tuple(shape), local_mem, want, "every limit at once, each inclusive")


MARK = r"""
__kernel void mark(__global uchar *seen) { seen[get_global_id(0)] = 1; }
"""


@pytest.mark.clause(12)
def test_fits_agrees_with_the_device_at_the_work_group_limit(cl_queue: Any) -> None:
    device, context = cl_queue.device, cl_queue.context
    report = report_of(device)
    kernel = cl.Program(context, MARK).build().mark
    most = report.max_work_group_size
    if kernel.get_work_group_info(cl.kernel_work_group_info.WORK_GROUP_SIZE, device) < most:
        pytest.skip(f"{device.name!r} limits this kernel below max_work_group_size")
    seen = cl.Buffer(context, cl.mem_flags.READ_WRITE, most + 1)
    assert fits(report, most) is True, (
        f"fits says no to {most} work-items per group, which {device.name!r} accepts"
    )
    kernel(cl_queue, (most,), (most,), seen)
    cl_queue.finish()
    assert fits(report, most + 1) is False, (
        f"fits says yes to {most + 1} work-items per group, one past max_work_group_size"
    )
    with pytest.raises(cl.Error):
        kernel(cl_queue, (most + 1,), (most + 1,), seen)
