"""Warm MPI ranks: a server that has pytest, the plugins, Hypothesis and mpi4py imported, and forks
each rank of a job from there.

A rank that starts as a fresh `python -m pytest` spends about 0.5 s of CPU on imports before its
first test; a job of 4 ranks on 2 cores waits over a second for them, and the self-check starts
hundreds of ranks. The launcher is still the real `mpiexec`: it starts `plugins/mpi_shim.py`
as each rank (about 20 ms), which hands this server its arguments, environment, working folder,
standard descriptors and its PMI descriptor (the launcher's connection, by which MPI_Init finds
the job). The server forks a child that takes all of them over, initialises MPI and runs
`pytest.main`, exactly what the fresh rank would have run, from a process in which no kata
module was imported and no test ran. When the child ends, the server sends its exit status to
the shim, which exits with it; when the shim dies first, the closed connection sends the child
SIGIO, whose default action ends it.

Run as `python -m plugins.mpi_warm ROOT SOCKET MODULE...` (ROOT: the repository root, its cwd, named
so that `ps` tells whose server and ranks these are); the socket appears once the imports are done. The parent's side is `Server` below. KATA_MPI_WARM names a
running server for the ranks (the self-check starts one for all its runs); KATA_MPI_COLD=1 starts
every rank as a fresh Python.

The server's top level imports only the standard library, like plugins/verify_worker.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from plugins import installed_snapshot, pycache, served_cpu, warm_socket
from plugins.mpi_shim import SERVER_VARIABLE as SERVER_VARIABLE  # the ranks find the server by it
from plugins.mpi_shim import STATUS
from plugins.verify_worker import exit_after, run_pytest, take_environment

COLD_VARIABLE = "KATA_MPI_COLD"
SHIM = Path(__file__).with_name("mpi_shim.py")
SOCKET_NAME = "ranks.sock"
MAX_REQUEST = 1 << 20  # the environment and arguments of one rank, as JSON
FD_FLOOR = 64  # received descriptors are moved above the numbers they are put at
# Imported by every rank beside the plugins: what a rank would import itself.
RANK_MODULES = ("mpi4py", "mpi4py.MPI", "plugins.mpi_trace", "plugins.mpi_state")
READY_SECONDS = 30.0  # a server not listening by then is broken; ranks then start cold
STOP_SECONDS = 2.0


def cold() -> bool:
    return os.environ.get(COLD_VARIABLE, "") not in ("", "0")


# -- the server ------------------------------------------------------------------------------


class _Ranks:
    """The ranks running, by the pidfd that says when each ends."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ)
        # pidfd -> (pid, connection, the rank's environment)
        self.running: dict[int, tuple[int, socket.socket, dict[str, str]]] = {}

    def serve_forever(self) -> None:
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.listener:
                    with contextlib.suppress(OSError):
                        connection, _ = self.listener.accept()
                        self.start(connection)
                else:
                    self.ended(int(key.fd))

    def start(self, connection: socket.socket) -> None:
        try:
            message, fds, _, _ = socket.recv_fds(connection, MAX_REQUEST, 8)
        except OSError:
            connection.close()
            return
        try:
            request = json.loads(message)
            if request["argv"][:2] != ["-m", "pytest"] or len(request["fds"]) != len(fds):
                raise ValueError(f"not a rank's request: {request['argv'][:2]}, {len(fds)} fds")
        except (ValueError, KeyError, TypeError):
            traceback.print_exc()
            self.close_all(fds)
            connection.sendall(STATUS.pack(2))
            connection.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self.become_the_rank(request, fds, connection)
        self.close_all(fds)
        pidfd = os.pidfd_open(pid)
        self.running[pidfd] = (pid, connection, request["env"])
        self.selector.register(pidfd, selectors.EVENT_READ)

    def ended(self, pidfd: int) -> None:
        self.selector.unregister(pidfd)
        os.close(pidfd)
        pid, connection, environment = self.running.pop(pidfd)
        _, status, usage = os.wait4(pid, 0)
        served_cpu.record(environment, usage)  # before the run can hear that the rank ended
        with contextlib.suppress(OSError):  # the shim is gone already: nobody to tell
            connection.sendall(STATUS.pack(os.waitstatus_to_exitcode(status)))
        connection.close()

    @staticmethod
    def close_all(fds: list[int]) -> None:
        for fd in fds:
            os.close(fd)

    def become_the_rank(
        self, request: dict[str, Any], fds: list[int], connection: socket.socket
    ) -> None:
        """In the forked child: take over the shim's descriptors, environment and folder, start
        MPI and run the rank's pytest; never returns into the server's loop."""

        def start() -> int:
            self.selector.close()
            self.listener.close()
            for pidfd, (_, other, _) in self.running.items():
                os.close(pidfd)
                other.close()
            for number in (signal.SIGTERM, signal.SIGIO, signal.SIGCHLD):
                signal.signal(number, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            # Everything kept is moved above the numbers the shim's descriptors go to first:
            # putting one there must never close another (the connection included).
            floor = max(FD_FLOOR, *(target + 1 for target in request["fds"]))
            watched = fcntl.fcntl(connection.fileno(), fcntl.F_DUPFD_CLOEXEC, floor)
            connection.close()
            moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor) for fd in fds]
            self.close_all(fds)
            for fd, target in zip(moved, request["fds"], strict=True):
                os.dup2(fd, target)
                os.close(fd)
            # The shim's end closing (the job is over) makes this end readable: SIGIO, and its
            # default action ends this rank wherever it is, MPI calls included.
            fcntl.fcntl(watched, fcntl.F_SETOWN, os.getpid())
            flags = fcntl.fcntl(watched, fcntl.F_GETFL)
            fcntl.fcntl(watched, fcntl.F_SETFL, flags | os.O_ASYNC)
            take_environment(request["env"])
            os.chdir(request["cwd"])
            sys.path[0] = request["cwd"]  # as `python -m` sets it
            from mpi4py import MPI

            MPI.Init_thread(MPI.THREAD_MULTIPLE)  # what importing mpi4py.MPI does by default
            return run_pytest(list(request["argv"][2:]))

        # At exit, also what mpi4py would run: MPICH unlinks its shared-memory files there.
        exit_after(start, _finalize)


def _finalize() -> None:
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        mpi.Finalize()


def serve(path: Path, modules: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the server
    pycache.enable_here()
    import mpi4py

    # Only the forked ranks start MPI, each with its own launcher connection.
    mpi4py.rc.initialize = False
    mpi4py.rc.finalize = False
    from plugins.verify_worker import preload

    preload([*modules, *RANK_MODULES])
    installed_snapshot.take()  # each rank's plugin lookups read package metadata from memory
    gc.freeze()  # as in the verify worker: the ranks' collections skip what is preloaded
    _Ranks(warm_socket.listen_when_ready(path, 128)).serve_forever()


# -- the parent's side -----------------------------------------------------------------------


class Server:
    """A warm rank server this process started (and stops)."""

    def __init__(self, root: Path, modules: list[str]) -> None:
        # A short path: a unix socket's name must fit in 108 bytes.
        self.folder = Path(tempfile.mkdtemp(prefix="kata-mpi-warm-"))
        self.path = self.folder / SOCKET_NAME
        self.log = self.folder / "server.log"
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "plugins.mpi_warm", str(root), str(self.path), *modules],
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=pycache.environment(dict(os.environ)),
                start_new_session=True,  # its ranks are in its group: stop() ends them all
            )

    def ready(self, timeout: float = READY_SECONDS) -> bool:
        """Whether it listens (waiting up to `timeout` for its imports)."""
        deadline = time.monotonic() + timeout
        while not self.path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def problem(self) -> str:
        try:
            tail = self.log.read_text(errors="replace").strip()[-1500:]
        except OSError:
            tail = ""
        state = (
            f"exited with status {self.process.returncode}"
            if self.process.poll() is not None
            else f"was not listening within {READY_SECONDS:g} s"
        )
        return f"the warm rank server {state}; ranks start as fresh Pythons. Its log:\n{tail}"

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_SECONDS)
        shutil.rmtree(self.folder, ignore_errors=True)


def rank_command(python_arguments: list[str]) -> list[str]:
    """Each rank's command when a warm server is there: the shim, then `python`'s arguments."""
    return [sys.executable, "-I", "-S", str(SHIM), *python_arguments]


if __name__ == "__main__":
    serve(Path(sys.argv[2]), sys.argv[3:])
    sys.exit(0)  # not reached: the server runs until it is killed
