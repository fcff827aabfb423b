"""Sessions for learners, instructors and maintainers: `nox -l` lists them.

uv creates the virtual environments where it is installed (it is part of the `dev` extra),
plain venv otherwise.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

# The backend registry is pytest-free so that nox's own interpreter can import it from here.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from plugins.backends import BACKENDS

nox.options.default_venv_backend = "uv|venv"
nox.options.sessions = ["verify", "tests", "lint", "typecheck"]
PYTHONS = ["3.11", "3.12", "3.13"]
# pytest's "no tests were collected": never a silent success.
NO_TESTS = 5


def _install(session: nox.Session, *extras: str) -> None:
    session.install("-e", f".[{','.join(('dev', *extras))}]")


@nox.session
def verify(session: nox.Session) -> None:
    """Self-check: every stub fails, every reference passes, every mutant is killed."""
    _install(session)
    session.run("pytest", "--kata-verify", *session.posargs)


@nox.session
def reference(session: nox.Session) -> None:
    """Run every kata suite against the reference solutions."""
    _install(session)
    session.run("pytest", "katas", "--kata-impl=reference", *session.posargs)


@nox.session
def katas(session: nox.Session) -> None:
    """Run the learner's own katas (failures are expected while you work)."""
    _install(session)
    session.run("pytest", "katas", *session.posargs, success_codes=[0, 1])


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The plugins' own tests and the harness's, on every supported Python."""
    _install(session)
    session.run("pytest", "tests", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over everything; actionlint over the GitHub workflows."""
    _install(session)
    session.run("ruff", "check", ".")
    session.run("actionlint")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy, strict on plugins/ and reference/ (configured in pyproject.toml)."""
    _install(session)
    session.run("mypy")


@nox.session
def probe_bench(session: nox.Session) -> None:
    """Measure the controlled scheduler on every probe: schedules, ms per schedule, kills."""
    _install(session)
    session.run("python", "-m", "plugins.probe_bench", *session.posargs)


@nox.session
def mpi_bench(session: nox.Session) -> None:
    """The reference ring allreduce against MPI's Allreduce at 2 and 4 ranks, 1 KB and 8 MB."""
    _install(session, "mpi")
    session.run("python", "-m", "plugins.mpi_bench", *session.posargs)


@nox.session
def opencl_bench(session: nox.Session) -> None:
    """The reference OpenCL tree reduction on the real device against numpy.sum (2**24 floats)."""
    _install(session, "opencl")
    session.run("python", "-m", "plugins.opencl_bench", *session.posargs)


@nox.session
def probe_compare(session: nox.Session) -> None:
    """Our scheduler against frontrun on five bug/fix pairs (plugins/probe_compare.py)."""
    _install(session)
    # frontrun is only the yardstick, never a dependency of the katas.
    session.install("frontrun==0.7.0")
    session.run("python", "-m", "plugins.probe_compare", *session.posargs)


@nox.session
def celery_bench(session: nox.Session) -> None:
    """Tasks per second and latency through the plugins' Redis and a worker, per Celery kata."""
    _install(session, "celery")
    session.run("python", "-m", "plugins.celery_bench", *session.posargs)


def _backend_session(session_name: str, extra: str, marker: str) -> None:
    @nox.session(name=session_name)
    def backend(session: nox.Session) -> None:
        _install(session, extra)
        required = marker in os.environ.get("KATA_REQUIRE", "").split(",")
        probe = f"from plugins.backends import BACKENDS; print(BACKENDS[{marker!r}].detect() or '')"
        absent = str(session.run("python", "-c", probe, silent=True) or "").strip()
        if absent and not required:
            session.skip(f"the {marker} backend is absent here: {absent}")
        selected = ["katas", "-m", marker, "--kata-impl=reference", *session.posargs]
        # session.run gives no exit code (only the output, when silent), so collect first: a
        # backend no kata needs yet is a skip that says so, never a green run of nothing.
        listing = session.run(
            # --verbosity last: one test id per line, whatever -q/-v the posargs hold.
            "pytest",
            *selected,
            "--collect-only",
            "--verbosity=-1",
            silent=True,
            success_codes=[0, NO_TESTS],
        )
        if "::" not in str(listing or ""):
            session.skip(f"no kata needs the {marker} backend yet")
        session.run("pytest", *selected, *([f"--kata-require={marker}"] if required else []))

    backend.__doc__ = (
        f"Kata suites that need the {marker} backend; skipped with the reason when it is "
        f"absent, unless KATA_REQUIRE names it (CI lanes)."
    )


for _backend in BACKENDS.values():
    _backend_session(_backend.session, _backend.extra, _backend.marker)
