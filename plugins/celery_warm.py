"""Warm Celery workers: a server that has Celery, kombu, billiard and the Redis client imported,
and forks each worker of a run from there.

A worker started as a fresh `python -m plugins.celery_worker_main` spends 0.6 to 1.2 s importing
Python, Celery and its transport before it reads the learner's app; a Celery kata starts one to
four of them per test file, and the self-check runs each file a hundred times. So each run
starts one server (`python -m plugins.celery_warm SOCKET`, a service of the run's namespace, as
its Redis is) while pytest still collects, and `launch` asks it for each worker. The server forks
a child that makes itself the leader of a new session (so the plugin stops it, its pool and
anything they start, with one killpg), dies with the server, takes the request's environment,
working folder, arguments and log, and runs celery's own command line: the same code a fresh
worker runs, from a process in which no app was imported and no task ran. It is still a real
process of its own, with its own pid, started by the plugin and killed by it.

Protocol, SOCK_SEQPACKET: the request is one JSON object {"argv", "env", "cwd", "log"}; the
server answers the child's pid, then its exit status when it ends (STATUS each). The socket's
name appears once the imports are done. The self-check starts one server for all its runs and
names it in KATA_CELERY_WARM (`PID:SOCKET`), which the runs inherit; each run's workers still get
that run's environment, broker and queues. KATA_CELERY_COLD=1 starts every worker as a fresh
Python instead, for comparison.

The server's top level imports only the standard library and plugins that do the same.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from plugins import proctree, pycache, served_cpu, services, warm_socket
from plugins.verify_worker import take_environment

if TYPE_CHECKING:
    from plugins.isolation import Namespace

COLD_VARIABLE = "KATA_CELERY_COLD"
SERVER_VARIABLE = "KATA_CELERY_WARM"  # PID:SOCKET of a server shared by the runs (verify's)
SOCKET_NAME = "celery-warm.sock"
STATUS = struct.Struct("!i")
MAX_REQUEST = 1 << 20  # a worker's environment and arguments, as JSON
# What every worker imports before it reads the app: the command line, the worker and its
# prefork pool, the Redis transport and result backend, and the plugin's worker_init hook.
WORKER_MODULES = (
    "plugins.celery_worker_main",
    "celery.apps.worker",
    "celery.worker.consumer",
    "celery.concurrency.prefork",
    "celery.concurrency.asynpool",
    "celery.backends.redis",
    "kombu.transport.redis",
)
# A server not listening by then is broken; its workers then start cold. Importing the modules
# above takes about 0.5 s of CPU.
READY_SECONDS = 20.0


def cold() -> bool:
    return os.environ.get(COLD_VARIABLE, "") not in ("", "0")


# -- the server ------------------------------------------------------------------------------


class _Workers:
    """The workers running, by pid, with the connection that waits for each one's end.

    The server is a child subreaper: when a worker dies, its pool processes become the
    server's children, and it reaps them at once (SIGCHLD wakes its loop). Left to init, which
    in a container may never reap, their zombies would keep the worker's process group alive,
    and the plugin would wait seconds for it to end."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        # The folders this server's own PYTHONPATH put on sys.path (the implementation its
        # starter chose): a worker gets those of its request instead.
        self.own_path = set(filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)))
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ)
        self.wakeup, self.wakeup_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.selector.register(self.wakeup, selectors.EVENT_READ)
        signal.set_wakeup_fd(self.wakeup_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that it writes there
        proctree.become_subreaper()
        self.running: dict[int, socket.socket] = {}  # pid -> connection
        self.environments: dict[int, dict[str, str]] = {}  # pid -> the worker's environment

    def serve_forever(self) -> None:
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.listener:
                    with contextlib.suppress(OSError):
                        connection, _ = self.listener.accept()
                        self.start(connection)
                else:
                    with contextlib.suppress(OSError):
                        os.read(self.wakeup, 4096)
                    self.reap()

    def start(self, connection: socket.socket) -> None:
        try:
            request = json.loads(connection.recv(MAX_REQUEST))
            argv, log = list(request["argv"]), Path(request["log"])
        except (OSError, ValueError, KeyError, TypeError):
            traceback.print_exc()
            connection.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self.become_the_worker(argv, dict(request["env"]), str(request["cwd"]), log)
        self.running[pid] = connection
        self.environments[pid] = dict(request["env"])
        with contextlib.suppress(OSError):  # the client is gone: the worker ends unwatched
            connection.sendall(STATUS.pack(pid))
        self.reap()  # one that ended before it was recorded

    def reap(self) -> None:
        """Every child that has ended: a worker's status goes to its connection."""
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self.running.pop(pid, None)
            # Before the run hears of the end: its self-check counts the worker's CPU as its own.
            served_cpu.record(self.environments.pop(pid, {}), usage)
            if connection is not None:
                with contextlib.suppress(OSError):
                    connection.sendall(STATUS.pack(os.waitstatus_to_exitcode(status)))
                connection.close()

    def become_the_worker(self, argv: list[str], env: dict[str, str], cwd: str, log: Path) -> None:
        """In the forked child: a new session, the request's environment, folder and log, then
        celery's command line; never returns into the server's loop."""
        code = 1
        try:
            os.setsid()
            proctree.die_with_parent()  # the server's end is the worker's end
            signal.set_wakeup_fd(-1)
            for number in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
                signal.signal(number, signal.SIG_DFL)
            self.selector.close()
            self.listener.close()
            os.close(self.wakeup)
            os.close(self.wakeup_write)
            for other in self.running.values():
                other.close()
            output = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            stdin = os.open(os.devnull, os.O_RDONLY)
            for fd, target in ((stdin, 0), (output, 1), (output, 2)):
                os.dup2(fd, target)
            os.close(stdin)
            os.close(output)
            take_environment(env)
            os.chdir(cwd)
            # As a fresh `python -m` would have it: the folder first, then PYTHONPATH (where the
            # implementation plugin puts the kata's folder).
            extra = [cwd, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
            kept = [entry for entry in sys.path[1:] if entry not in self.own_path]
            sys.path[:] = [*extra, *(entry for entry in kept if entry not in extra)]
            import importlib

            importlib.invalidate_caches()  # files written since the server started
            from celery.bin.celery import main

            sys.argv = ["celery", *argv]
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)


def serve(path: Path) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the server
    pycache.enable_here()
    import importlib

    for name in WORKER_MODULES:
        importlib.import_module(name)
    gc.freeze()  # each worker's collections skip what is preloaded
    _Workers(warm_socket.listen_when_ready(path, 64)).serve_forever()


# -- the parent's side -----------------------------------------------------------------------


class ForkedProcess:
    """A worker the server forked, as the plugin's Service sees a process: `args`, `pid`,
    `returncode`, `poll()`. The server (its parent) reaps it and reports its exit status."""

    def __init__(self, connection: socket.socket, pid: int, args: list[str]) -> None:
        self.connection = connection
        self.pid = pid
        self.args = args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                message = self.connection.recv(STATUS.size, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return None
            except OSError:
                message = b""
            # An empty read: the server is gone, and the worker died with it.
            self.returncode = STATUS.unpack(message)[0] if message else -signal.SIGKILL
            self.connection.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"worker {self.pid} still runs after {timeout} s")
            time.sleep(proctree.POLL_SECONDS)
        return code


class Server:
    """A warm server: `launch` forks a worker from it. `service` is there when this process
    started it (and stops it); `pid` is the server's."""

    def __init__(self, path: Path, pid: int, service: services.Service | None = None) -> None:
        self.path = path
        self.pid = pid
        self.service = service

    @classmethod
    def shared(cls) -> Server | None:
        """The server named in KATA_CELERY_WARM, if any."""
        pid, _, path = os.environ.get(SERVER_VARIABLE, "").partition(":")
        return cls(Path(path), int(pid)) if pid.isdigit() and path else None

    def running(self) -> bool:
        if self.service is not None:
            return self.service.running()
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def ready(self, timeout: float = READY_SECONDS) -> bool:
        """Whether it listens (waiting up to `timeout` for its imports)."""
        deadline = time.monotonic() + timeout
        while not self.path.exists():
            if not self.running() or time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def share(self) -> None:
        """Name it in KATA_CELERY_WARM, for the pytest runs this process starts."""
        os.environ[SERVER_VARIABLE] = f"{self.pid}:{self.path}"

    def stop(self) -> None:
        """Stop it, if this process started it (its workers die with it)."""
        if os.environ.get(SERVER_VARIABLE) == f"{self.pid}:{self.path}":
            del os.environ[SERVER_VARIABLE]
        if self.service is not None:
            self.service.stop()

    def launch(self, argv: list[str], env: dict[str, str], log: Path) -> ForkedProcess:
        """Fork `celery *argv` with `env` (cwd: this one's), its output to `log`."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            connection.settimeout(services.START_SECONDS)
            connection.connect(str(self.path))
            request = {"argv": argv, "env": env, "cwd": os.getcwd(), "log": str(log)}
            connection.sendall(json.dumps(request).encode())
            message = connection.recv(STATUS.size)
            if not message:
                raise OSError("the warm server closed the connection")
            connection.setblocking(False)
        except OSError:
            connection.close()
            raise
        pid = STATUS.unpack(message)[0]
        return ForkedProcess(connection, pid, ["celery", *argv])


def start_server(namespace: Namespace) -> Server:
    """Start the server as a service of `namespace` and return at once (see Server.ready)."""
    # A short path: a unix socket's name must fit in 108 bytes.
    path = namespace.scratch / SOCKET_NAME
    root = Path(__file__).resolve().parent.parent
    service = namespace.start_service(
        [sys.executable, "-m", "plugins.celery_warm", str(path)],
        name="celery-warm",
        env={
            "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
        },
    )
    return Server(path, service.pid, service)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
    sys.exit(0)  # not reached: the server runs until it is killed
