"""Hardware markers: which backends this machine has, and visible skips for those it lacks.

Detection is cached per run and never raises: a broken driver (e.g. `import pycuda.driver`
failing on a missing libcuda.so.1) reads as "absent, because ...". `--kata-require` turns an
absent backend into failures for CI lanes that must exercise it.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from plugins import impl, settings


@dataclass(frozen=True)
class Backend:
    """A piece of hardware or infrastructure a kata can need, and how a learner gets it."""

    marker: str
    package: str  # the import name whose presence the report header shows
    description: str
    how_to_get: str
    detect: Callable[[], str | None]  # None when usable, else the reason it is not

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.package) is not None


def _missing_module(name: str) -> str | None:
    return (
        None
        if importlib.util.find_spec(name) is not None
        else f"the Python package {name} is not installed"
    )


def _detect_mpi() -> str | None:
    missing = _missing_module("mpi4py")
    if missing:
        return missing
    if mpiexec_path() is None:
        return "no mpiexec launcher was found next to this Python or on PATH"
    return None


def mpiexec_path() -> Path | None:
    """The launcher that belongs to this interpreter's environment first (PyPI's mpich puts it
    in the venv's bin/), else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file():
        return beside
    found = shutil.which("mpiexec")
    return Path(found) if found else None


def _detect_opencl() -> str | None:
    missing = _missing_module("pyopencl")
    if missing:
        return missing
    try:
        cl = importlib.import_module("pyopencl")
        devices = [d for p in cl.get_platforms() for d in p.get_devices()]
    except Exception as error:  # any driver/ICD failure means "absent", never a crash
        return f"no OpenCL platform could be opened ({type(error).__name__}: {error})"
    return None if devices else "an OpenCL platform exists but offers no device"


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


def _detect_broker() -> str | None:
    # The default broker is embedded (in-process memory transport), so Celery itself suffices.
    return _missing_module("celery")


def _detect_pyro() -> str | None:
    return _missing_module("Pyro4")


BACKENDS: dict[str, Backend] = {
    b.marker: b
    for b in (
        Backend(
            "mpi",
            "mpi4py",
            "an MPI launcher and mpi4py",
            "pip install -e '.[mpi]' (or: nox -s mpi)",
            _detect_mpi,
        ),
        Backend(
            "opencl",
            "pyopencl",
            "an OpenCL platform (PoCL on the CPU is enough)",
            "pip install -e '.[opencl]' (or: nox -s opencl)",
            _detect_opencl,
        ),
        Backend(
            "cuda",
            "pycuda",
            "an NVIDIA GPU with PyCUDA",
            "a CUDA GPU plus a PyCUDA build: see README, section CUDA (or: nox -s cuda)",
            _detect_cuda,
        ),
        Backend(
            "broker",
            "celery",
            "Celery with its embedded broker",
            "pip install -e '.[celery]' (or: nox -s celery)",
            _detect_broker,
        ),
        Backend(
            "pyro",
            "Pyro4",
            "Pyro4 and its name server",
            "pip install -e '.[pyro]' (or: nox -s pyro)",
            _detect_pyro,
        ),
    )
}
absence_key = pytest.StashKey[dict[str, "str | None"]]()


def absence(config: pytest.Config, marker: str) -> str | None:
    """Why `marker`'s backend is unusable here (None if usable); detected once per run."""
    cache = config.stash.setdefault(absence_key, {})
    if marker not in cache:
        cache[marker] = BACKENDS[marker].detect()
    return cache[marker]


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    for backend in BACKENDS.values():
        config.addinivalue_line(
            "markers",
            f"{backend.marker}: needs {backend.description}; skipped when absent. "
            f"e.g. @pytest.mark.{backend.marker}",
        )


def pytest_report_header(config: pytest.Config) -> str:
    # Only cheap facts here (is the package installed?); opening drivers waits for a test
    # that needs them, so a learner on a laptop never pays for GPU probing.
    parts = [f"{b.marker} {'installed' if b.installed else 'absent'}" for b in BACKENDS.values()]
    required = settings.of(config).require
    suffix = f" (required: {', '.join(sorted(required))})" if required else ""
    return "kata backends: " + ", ".join(parts) + suffix


def skip_or_fail_reason(config: pytest.Config, marker: str) -> tuple[bool, str] | None:
    """(required, message) when `marker`'s backend is absent, else None."""
    why = absence(config, marker)
    if why is None:
        return None
    backend = BACKENDS[marker]
    required = marker in settings.of(config).require
    verdict = "required by --kata-require but absent" if required else "skipped"
    return (
        required,
        f"{verdict}: needs {backend.description}; {why}. To get it: {backend.how_to_get}",
    )


# -- collection ------------------------------------------------------------------------------


def _apply_manifest_markers(items: list[pytest.Item]) -> None:
    """The manifest is where a kata declares what it needs: every test of a kata marked
    `mpi` there carries the `mpi` marker, as if each test were decorated with it."""
    for item, kata in impl.iter_kata_items(items):
        for name in kata.markers:
            if item.get_closest_marker(name) is None:
                # getattr on pytest.mark, so --strict-markers rejects a misspelt manifest marker.
                item.add_marker(getattr(pytest.mark, name))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _apply_manifest_markers(items)
    # A skip marker (not a skip raised here) makes pytest report the test's own location.
    # Backends are probed only when a collected test needs them.
    for item in items:
        for marker in BACKENDS:
            if item.get_closest_marker(marker) is None:
                continue
            verdict = skip_or_fail_reason(config, marker)
            if verdict is not None and not verdict[0]:
                item.add_marker(pytest.mark.skip(reason=verdict[1]))


# -- run time --------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in BACKENDS:
        if item.get_closest_marker(marker) is None:
            continue
        verdict = skip_or_fail_reason(item.config, marker)
        if verdict is not None and verdict[0]:
            pytest.fail(verdict[1], pytrace=False)
