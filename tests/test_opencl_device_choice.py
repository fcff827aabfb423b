"""Which OpenCL device the results are checked on, where a PoCL cannot build kernels.

The PoCL inside pyopencl's wheels (3.0, LLVM 14) builds nothing on a CPU its LLVM does not
know (seen on an AMD Zen 5: "error: unknown target CPU 'generic'"). Such a device must be passed
over for one that builds, and where none builds the backend reads as absent, saying why, so that
a learner sees a skip with the compiler's words and how to get a PoCL that works, not dozens of
failures in clBuildProgram. These tests stand fake pyopencl platforms in for real ones, so they
run on any machine, whatever its OpenCL.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from plugins import backends, opencl_devices

UNKNOWN_CPU = (
    "clBuildProgram failed: BUILD_PROGRAM_FAILURE - clBuildProgram failed\n\n"
    "Build on <pyopencl.Device 'pthread-AMD EPYC' on 'Portable Computing Language'>:\n\n"
    "error: unknown target CPU 'generic'\n"
    "Device pthread-AMD EPYC failed to build the program\n\n(options: -I /x/pyopencl/cl)"
)


@dataclass
class FakeDevice:
    name: str
    builds: bool
    platform: Any = None


@dataclass
class FakePlatform:
    name: str
    version: str
    devices: list[FakeDevice] = field(default_factory=list)

    def __post_init__(self) -> None:
        for device in self.devices:
            device.platform = self

    def get_devices(self) -> list[FakeDevice]:
        return self.devices


def fake_pyopencl(platforms: list[FakePlatform]) -> types.ModuleType:
    """A pyopencl whose Program builds only on the devices marked `builds`."""
    module = types.ModuleType("pyopencl")
    module.__spec__ = importlib.machinery.ModuleSpec("pyopencl", None)

    class Context:
        def __init__(self, devices: list[FakeDevice]) -> None:
            self.devices = devices

    class Program:
        def __init__(self, context: Context, source: str) -> None:
            self.context = context

        def build(self) -> Program:
            if not self.context.devices[0].builds:
                raise RuntimeError(UNKNOWN_CPU)
            return self

    module.get_platforms = lambda: platforms  # type: ignore[attr-defined]
    module.Context = Context  # type: ignore[attr-defined]
    module.Program = Program  # type: ignore[attr-defined]
    return module


def wheel_pocl(builds: bool) -> FakePlatform:
    return FakePlatform(
        "Portable Computing Language",
        "OpenCL 3.0 PoCL 3.0-rc2  Linux, LLVM 14.0.6",
        [FakeDevice("pthread-AMD EPYC", builds)],
    )


def debian_pocl() -> FakePlatform:
    return FakePlatform(
        "Portable Computing Language",
        "OpenCL 3.0 PoCL 3.1+debian  Linux, LLVM 15.0.6",
        [FakeDevice("pthread-skylake-avx512-AMD EPYC", True)],
    )


def oclgrind() -> FakePlatform:
    return FakePlatform("Oclgrind", "OpenCL 1.2 (Oclgrind 21.10)", [FakeDevice("Oclgrind", True)])


@pytest.fixture
def platforms(monkeypatch: pytest.MonkeyPatch) -> list[FakePlatform]:
    """The fake platforms, in the order the ICD loader lists them; tests fill it in."""
    listed: list[FakePlatform] = []
    monkeypatch.setitem(sys.modules, "pyopencl", fake_pyopencl(listed))
    return listed


def test_a_device_that_cannot_build_is_passed_over_for_the_next_that_can(
    platforms: list[FakePlatform],
) -> None:
    platforms += [oclgrind(), wheel_pocl(builds=False), debian_pocl()]
    chosen = opencl_devices.find_real_device("")
    assert chosen.name == "pthread-skylake-avx512-AMD EPYC", (
        f"the results would be checked on {chosen.name}, whose PoCL cannot build a kernel: "
        "the first device that builds must be chosen"
    )


def test_the_first_device_that_builds_is_chosen_even_when_a_later_one_builds_too(
    platforms: list[FakePlatform],
) -> None:
    platforms += [oclgrind(), wheel_pocl(builds=True), debian_pocl()]
    chosen = opencl_devices.find_real_device("")
    assert chosen.name == "pthread-AMD EPYC", (
        f"{chosen.name} was chosen over the first device listed that builds"
    )


def test_when_no_device_builds_the_error_quotes_the_compiler_and_says_how_to_get_one(
    platforms: list[FakePlatform],
) -> None:
    platforms += [oclgrind(), wheel_pocl(builds=False)]
    with pytest.raises(pytest.UsageError) as raised:
        opencl_devices.find_real_device("")
    message = str(raised.value)
    assert "unknown target CPU 'generic'" in message, f"the compiler's words are missing: {message}"
    assert "apt-get install pocl-opencl-icd" in message, f"no way out is given: {message}"


def test_a_device_the_user_names_is_taken_as_named_without_a_build(
    platforms: list[FakePlatform],
) -> None:
    platforms += [oclgrind(), wheel_pocl(builds=False), debian_pocl()]
    chosen = opencl_devices.find_real_device("1:0")
    assert chosen.name == "pthread-AMD EPYC", (
        f"--kata-opencl-device=1:0 gave {chosen.name}: the user's choice must stand"
    )


def test_the_backend_reads_as_absent_with_the_compiler_s_words_when_no_device_builds(
    platforms: list[FakePlatform],
) -> None:
    platforms += [oclgrind(), wheel_pocl(builds=False)]
    why = backends.BACKENDS["opencl"].detect()
    assert why is not None, (
        "the opencl backend read as usable although no device but Oclgrind can build a kernel: "
        "every OpenCL test would fail in clBuildProgram instead of being skipped with the reason"
    )
    assert "unknown target CPU 'generic'" in why and "PoCL 3.0-rc2" in why, why


def test_the_backend_is_usable_when_one_device_besides_oclgrind_builds(
    platforms: list[FakePlatform],
) -> None:
    platforms += [oclgrind(), wheel_pocl(builds=False), debian_pocl()]
    why = backends.BACKENDS["opencl"].detect()
    assert why is None, f"the opencl backend read as absent ({why}) although Debian's PoCL builds"


def test_the_build_problem_is_the_compiler_s_error_line(platforms: list[FakePlatform]) -> None:
    problem = backends.opencl_build_problem(FakeDevice("pthread-AMD EPYC", builds=False))
    assert problem == "error: unknown target CPU 'generic'", problem
    assert backends.opencl_build_problem(FakeDevice("pthread-AMD EPYC", builds=True)) is None
