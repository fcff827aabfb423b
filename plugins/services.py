"""Servers for fixtures: each in its own session, logged to a file, ready-checked, and stopped
together with every process it started (its whole process group).

A plain library (no pytest). Fixtures reach it through the `kata_namespace` fixture
(plugins/isolation.py), which names the log after the run and spares a running service from
the per-test process cleanup (plugins/cleanup.py) until the service is stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from plugins import proctree

# A local server listens within a second or two; 10 s runs out only when it is broken.
START_SECONDS = 10.0
# How long the group gets to end on SIGTERM before SIGKILL, and to vanish after SIGKILL.
STOP_SECONDS = 5.0
LOG_TAIL_CHARACTERS = 2000


class ServiceError(RuntimeError):
    """A service exited, or never became ready, while it was starting; the message holds its log."""


def listening(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    """A ready check: true once something accepts TCP connections on host:port."""

    def accepts() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.2)
            return probe.connect_ex((host, port)) == 0

    return accepts


class Service:
    """One started server: the leader of its own process group, with a log file."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log
        self.command = " ".join(str(word) for word in process.args)  # type: ignore[union-attr]
        self.stopped = False

    @property
    def pid(self) -> int:
        """The leader's pid, which is also the process group's id."""
        return self.process.pid

    def running(self) -> bool:
        """Whether the leader still runs (its group may outlive it; stop() ends both)."""
        return not self.stopped and self.process.poll() is None

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-LOG_TAIL_CHARACTERS:]
        return ""

    def stop(self, grace: float = STOP_SECONDS) -> None:
        """SIGTERM the whole group, SIGKILL it after `grace` seconds, and wait until it is gone."""
        if self.stopped:
            return
        self._signal_group(signal.SIGTERM)
        if not self._wait_until_group_ends(grace):
            self._signal_group(signal.SIGKILL)
            self._wait_until_group_ends(grace)
        self.stopped = True

    def kill(self, wait: float = STOP_SECONDS) -> None:
        """SIGKILL the whole group at once and wait until it is gone: for a group with nothing
        left to save (an MPI job whose ranks have all reported)."""
        if self.stopped:
            return
        self._signal_group(signal.SIGKILL)
        self._wait_until_group_ends(wait)
        self.stopped = True

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def _wait_until_group_ends(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            self.process.poll()  # reaps the leader
            # Members orphaned by the leader's exit are adopted by this process (cleanup makes
            # it a subreaper); their zombies would keep the group in existence until reaped.
            members = [p for p in proctree.descendants().values() if p.pgid == self.pid]
            proctree.reap([p for p in members if not p.alive and p.pid != self.pid], 0)
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(proctree.POLL_SECONDS)

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_service(
    argv: Sequence[str | os.PathLike[str]],
    *,
    log: Path,
    name: str,
    ready: Callable[[], bool] | None = None,
    ready_timeout: float = START_SECONDS,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Service:
    """Start `argv` in a new session (so it leads its own process group), its stdout and stderr
    going to `log`, and return once `ready()` is true. Raises ServiceError, with the log, when it
    exits first or is not ready within `ready_timeout` seconds (and then stops it)."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            # A pytest killed outright (SIGKILL, or SIGTERM, which skips its cleanup) must not
            # leave its servers running.
            preexec_fn=proctree.die_with_parent,
        )
    service = Service(name, process, log)
    deadline = time.monotonic() + ready_timeout
    while ready is not None and not ready():
        problem = None
        if process.poll() is not None:
            problem = f"exited with status {process.returncode} before it was ready"
        elif time.monotonic() >= deadline:
            problem = f"was not ready within {ready_timeout:g} s"
        if problem is not None:
            service.stop()
            raise ServiceError(
                f"service {name!r} ({service.command}) {problem}; the end of its log "
                f"({log}):\n{service.log_tail()}"
            )
        time.sleep(proctree.POLL_SECONDS)
    return service
