"""Service isolation: each pytest run gets a namespace (names, ports, a scratch folder, services)
that no other run on this machine shares, so that side-by-side runs never collide.

`pytest --kata-verify` runs a kata's suite against the stub, the reference and every mutant at
once; with real servers (MPI, Redis, Celery, Pyro) those runs would otherwise fight over ports,
queue names and name-server entries. The run id is exported as KATA_RUN_ID, so a launcher or
worker a test starts shares the test's namespace; a pytest started below (verify's children,
xdist's workers) derives a fresh id of its own from it.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from plugins import budgets, services
from plugins.services import Service

RUN_ID_VARIABLE = "KATA_RUN_ID"
# Shared by every run of this user on this machine: one lock file per port handed out. Named in
# the environment, because the processes a run starts get a temporary folder of their own.
PORT_LOCK_VARIABLE = "KATA_PORT_LOCKS"
PORT_LOCK_DIR = Path(
    os.environ.get(PORT_LOCK_VARIABLE) or Path(tempfile.gettempdir()) / f"kata-ports-{os.getuid()}"
)
# Below Linux's default ephemeral range (32768-60999), which the kernel draws from for bind(0)
# and outgoing connections, so no client socket can take a reserved port before its server.
PORT_RANGE = range(20000, 32768)
PORT_ATTEMPTS = 200

namespace_key = pytest.StashKey["Namespace"]()
inherited_run_id_key = pytest.StashKey[str | None]()


class Namespace:
    """What one pytest run may use without colliding with another run on the same machine."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.services: list[Service] = []
        self._counter = itertools.count(1)
        self._port_locks: list[int] = []  # open lock-file descriptors, one per port held
        self._scratch: Path | None = None

    def name(self, prefix: str) -> str:
        """A name no other run (and no other call in this run) gets: for queues, name-server
        entries, channels. It adds only digits, letters and dashes to `prefix`."""
        return f"{prefix}-{self.run_id}-{next(self._counter)}"

    def port(self) -> int:
        """A free TCP port on 127.0.0.1, held for this run alone until the run ends.

        Binding port 0 and closing the socket would race: a run side by side could be handed
        the same number before our server binds it. So each candidate is claimed with an
        exclusive, non-blocking flock on a file named after it in one lock folder all runs
        share, then checked free with a plain bind (no SO_REUSEADDR, so a port still in
        TIME_WAIT is passed over too). The kernel drops the lock when this process ends, so a
        crashed run leaves nothing stale; candidates lie below the ephemeral range, so only an
        explicit bind, which every kata run makes only after taking the lock, can take one."""
        PORT_LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        draw = secrets.SystemRandom()
        for _ in range(PORT_ATTEMPTS):
            port = draw.choice(PORT_RANGE)
            lock = os.open(PORT_LOCK_DIR / f"{port}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                    probe.bind(("127.0.0.1", port))
            except OSError:  # held by another run, or bound by some other program
                os.close(lock)
                continue
            self._port_locks.append(lock)
            return port
        raise RuntimeError(f"no free port in {PORT_RANGE} after {PORT_ATTEMPTS} tries")

    @property
    def scratch(self) -> Path:
        """A folder private to this run, removed when the run ends."""
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix=f"kata-{self.run_id}-"))
        return self._scratch

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """This process's environment with the run id, plus `extra`: for a child to inherit.
        Its temporary folder is the run's scratch, removed when the run ends: a server or rank
        the run kills never removes what it made there itself (a Celery worker's pool folder,
        a rank's OpenCL loader folder)."""
        return {
            **os.environ,
            RUN_ID_VARIABLE: self.run_id,
            PORT_LOCK_VARIABLE: str(PORT_LOCK_DIR),
            "TMPDIR": str(self.scratch),
            **(extra or {}),
        }

    def start_service(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        ready: Callable[[], bool] | None = None,
        ready_timeout: float = services.START_SECONDS,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> Service:
        """Start a server in its own process group, logged under `scratch`; see
        services.start_service. The per-test cleanup spares it until stop() (which a fixture
        calls in its teardown); one still running when the run ends is stopped and reported."""
        label = name or Path(argv[0]).name
        service = services.start_service(
            argv,
            log=self.scratch / f"{self.name(label)}.log",
            name=label,
            ready=ready,
            ready_timeout=ready_timeout,
            env=self.environment(env),
        )
        self.services.append(service)
        return service

    def service_groups(self) -> set[int]:
        """The process groups of the services not yet stopped (the cleanup leaves them be)."""
        return {service.pid for service in self.services if not service.stopped}

    def close(self) -> None:
        for lock in self._port_locks:
            with contextlib.suppress(OSError):
                os.close(lock)
        self._port_locks.clear()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)


def new_run_id(inherited: str | None) -> str:
    """Unique among live processes: the pid, plus the parent run's id where one started us (so
    verify's children, which inherit it, each get their own), else a random token (so a pid
    reused after a crash never reuses a name a stale server may still hold)."""
    return f"{inherited}-{os.getpid()}" if inherited else f"{os.getpid()}-{secrets.token_hex(3)}"


def of(config: pytest.Config) -> Namespace:
    """This run's namespace."""
    return config.stash[namespace_key]


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    inherited = os.environ.get(RUN_ID_VARIABLE)
    config.stash[inherited_run_id_key] = inherited
    namespace = Namespace(new_run_id(inherited))
    config.stash[namespace_key] = namespace
    os.environ[RUN_ID_VARIABLE] = namespace.run_id  # every child process inherits it


# -- summary ---------------------------------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Before the terminal summary is written, so the report lands in it.
    strays = session.config.stash.setdefault(budgets.strays_key, [])
    for service in of(session.config).services:
        if service.running():
            strays.append(
                f"end of run: service {service.name!r} (pid {service.pid}: {service.command}) "
                "was still running; stopped it and its process group"
            )
        service.stop()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if namespace_key not in config.stash:
        return
    of(config).close()
    inherited = config.stash[inherited_run_id_key]
    if inherited is None:
        os.environ.pop(RUN_ID_VARIABLE, None)
    else:
        os.environ[RUN_ID_VARIABLE] = inherited


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kata_namespace(pytestconfig: pytest.Config) -> Namespace:
    """This run's namespace: `name(prefix)`, `port()`, `scratch`, `start_service(argv, ...)`,
    `run_id` (also in the environment as KATA_RUN_ID, for the processes a test starts)."""
    return of(pytestconfig)
