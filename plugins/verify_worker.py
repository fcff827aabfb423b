"""The self-check's warm worker: imports pytest and the plugins once, forks a fresh child per run.

`pytest --kata-verify` runs every kata's suite hundreds of times (stub, reference, each mutant).
Starting Python, pytest, its plugins and Hypothesis costs about a second per run, more than most
suites take. The verify parent therefore starts one worker per job slot
(`python -m plugins.verify_worker MODULE...`, cwd = the repository root, the parent's
environment), which imports those modules once and never runs a test itself. For each request it
forks a child that calls `pytest.main(argv)` and exits: every run still starts from a process in
which no kata module was imported and no test ran, exactly as a fresh `python -m pytest` would.

Protocol, one JSON object per line. The worker says {"ready": true} once its imports are done.
Request on stdin: {"argv": [...], "env": {...}, "output": PATH, "timeout": SECONDS}. Answers on
stdout: {"pid": N} when the child has started, then {"returncode": N, "timed_out": BOOL, "cpu": S}
when it has ended (killed, with its whole process group, after `timeout`); S is the CPU seconds
the run used, its reaped descendants included, and those of the MPI ranks and Celery workers warm
servers forked for it (plugins/served_cpu.py). EOF on stdin ends the worker.

This module is also `__main__` for the children's own `spawn`ed processes, so its top level
imports only the standard library.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import importlib.util
import json
import os
import select
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from plugins import installed_snapshot, pycache, served_cpu  # standard library only, like this

# Imported by every child run: the worker pays for them once.
# pdb: pytest's debugging plugin imports it (and readline) in every session.
ALWAYS_PRELOADED = (
    *("pytest", "_pytest._argcomplete", "hypothesis", "hypothesis.strategies"),
    *("pdb", "packaging.version"),
)
OPTIONAL_PRELOADED = ("mpi4py", "xdist.newhooks", "readline")  # where installed
POLL_SECONDS = 0.02  # only where pidfd_open is missing (not Linux)


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # its package is missing
        return False


def preload(modules: list[str]) -> None:
    """Import what every run imports. Not numpy: its BLAS starts threads, and a process with
    threads must not fork; the one kata that uses numpy imports it itself."""
    # mpi4py's package only (not mpi4py.MPI, which loads MPI): every run's MPI plugin imports it
    # to keep MPI from starting in the runs themselves.
    optional = [name for name in OPTIONAL_PRELOADED if _installed(name)]
    # pytest's own plugins: a session imports those not imported yet, each a search of sys.path.
    from _pytest.config import default_plugins

    builtin = [f"_pytest.{name}" for name in default_plugins]
    for name in (*ALWAYS_PRELOADED, *builtin, *optional, *modules):
        try:
            importlib.import_module(name)
        except Exception:  # a plugin the child will fail to load anyway, with its own report
            traceback.print_exc()
    try:
        from importlib.metadata import entry_points

        for entry in entry_points(group="pytest11"):
            try:
                importlib.import_module(entry.module)
            except Exception:
                traceback.print_exc()
    except Exception:
        traceback.print_exc()


def plugin_modules(plugins: Iterable[object]) -> list[str]:
    """The names of the plugin modules among pytest's `plugins`: what every child run loads too
    (not conftest files, which belong to the tree a run collects)."""
    return sorted(
        plugin.__name__
        for plugin in plugins
        if isinstance(plugin, ModuleType)
        and plugin.__name__ not in ("__main__", "conftest")
        and os.path.basename(plugin.__file__ or "") != "conftest.py"
    )


def answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def warm_the_curriculum() -> None:
    """Parse the curriculum's manifest here, once: each run finds it parsed (cached by the file's
    modification time, so an edited manifest is parsed again)."""
    try:
        from plugins import curriculum

        curriculum.load(Path.cwd())
    except Exception:  # the runs will report it themselves
        traceback.print_exc()


def warm_hypothesis_constants() -> None:
    """Let Hypothesis read the preloaded modules' constants here, once. Its pytest plugin scans
    every module in sys.modules it has not scanned yet, at the collection of any run with a
    @given test: the worker's hundreds of preloaded modules were 55 ms of a 170 ms run. The
    children inherit what it found and scan only the modules their run imports (the same
    constants in the end). A private function of Hypothesis's: where it is missing or fails,
    each run scans for itself, as before."""
    try:
        from hypothesis.internal.conjecture.providers import _get_local_constants

        _get_local_constants()
    except Exception:
        traceback.print_exc()


def warm_the_probe() -> None:
    """Run the probe harness once on its own small scenario (plugins/probe/warmup.py): each
    run's first schedule then finds the harness's code specialized and its caches filled."""
    _with_the_probes_warmup(lambda warmup: warmup.warm())


def _with_the_probes_warmup(use: Callable[[ModuleType], None]) -> None:
    """``use(plugins.probe.warmup)``; a failure is printed, never raised: the runs report the
    harness's problems themselves, and a worker or a run must not die of its warm-up."""
    try:
        from plugins.probe import warmup

        use(warmup)
    except Exception:
        traceback.print_exc()


def run_child(request: dict[str, Any]) -> None:
    """In the forked child: become a process group of its own, take the request's environment and
    output file, run pytest, and exit without ever returning into the worker's loop."""

    def start() -> int:
        os.setsid()  # so a timeout can kill the run together with everything it started
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)  # never the worker's request pipe
        output = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(devnull)
        os.close(output)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        take_environment(request["env"])
        os.environ[served_cpu.VARIABLE] = served_file(request)
        return run_pytest(list(request["argv"]))

    exit_after(start)


def touch_the_probe() -> None:
    """Before a run's probe tests: write once to the harness's pages this child shares with the
    worker (plugins/probe/warmup.touch)."""
    _with_the_probes_warmup(lambda warmup: warmup.touch())


def take_environment(env: dict[str, str]) -> None:
    """In a forked child: `env` in place of the server's environment. tempfile keeps the folder
    it chose first (the server's); reset, it chooses again from the new TMPDIR, which the
    parent removes once the child has ended, with whatever a killed process left there."""
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None


def served_file(request: dict[str, Any]) -> str:
    """Where warm servers record the CPU seconds of the processes they forked for this run."""
    return f"{request['output']}.served-cpu"


class FreezeAfterCollection:
    """A run's plugin: once its tests are collected, what pytest made so far (the config, the
    plugins, the test modules and items: tens of thousands of objects) is moved out of the
    collector's reach too, as the worker's preload is. A full collection during a test then
    scans only what the tests made: it had cost a one-schedule probe test 0.5-0.9 ms."""

    @staticmethod
    def pytest_collection_finish(session: Any) -> None:
        if any("probe" in getattr(item, "fixturenames", ()) for item in session.items):
            touch_the_probe()
        gc.freeze()


# pytest marks each plugin for assertion rewriting as it loads it, and warns for each that is
# already imported: here, every one (preload). Nothing reads a run's warnings, and the 29 of
# them cost a run about 11 million instructions (3 ms), measured.
QUIET_PRELOADED = ("-W", "ignore::pytest.PytestAssertRewriteWarning")


def run_pytest(arguments: list[str]) -> int:
    """pytest.main(arguments), with sys.argv as `python -m pytest` would set it."""
    import pytest

    sys.argv = [os.path.join(os.path.dirname(pytest.__file__), "__main__.py"), *arguments]
    return int(pytest.main([*arguments, *QUIET_PRELOADED], plugins=[FreezeAfterCollection()]))


def exit_after(start: Callable[[], int], *at_exit: Callable[[], None]) -> NoReturn:
    """In a forked child: run `start` (its result is the exit code), then what a normal
    interpreter exit would run (and `at_exit`), then end the process: it never returns into
    the loop of the process it was forked from."""
    code = 1
    try:
        code = start()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()
            for function in at_exit:
                function()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)


def wait_for(pid: int, timeout: float) -> tuple[int, bool, float]:
    """The child's exit code (negative: killed by that signal), whether it timed out, and the CPU
    seconds it used (its own and those of the descendants it reaped)."""
    timed_out = False
    try:
        handle = os.pidfd_open(pid)
    except (AttributeError, OSError):
        handle = None
    if handle is not None:
        ready, _, _ = select.select([handle], [], [], timeout)
        os.close(handle)
        timed_out = not ready
    else:
        deadline = time.monotonic() + timeout
        while not timed_out:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                kill_group(pid)
                return os.waitstatus_to_exitcode(status), False, usage.ru_utime + usage.ru_stime
            timed_out = time.monotonic() > deadline
            time.sleep(POLL_SECONDS)
    # Before reaping, while the child's pid still names its group: a timed-out run dies with all
    # it started, and whatever a finished run left behind must not eat the next run's CPU.
    kill_group(pid)
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), timed_out, usage.ru_utime + usage.ru_stime


def kill_group(pid: int) -> None:
    """Kill the process group `pid` leads, if any of it is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def main() -> None:
    # Ctrl-C reaches the verify parent, which stops the workers; a worker must not die mid-answer.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Each run rewrites and compiles the kata's test module (~30 ms); cached, it only reads it.
    pycache.enable_here()
    preload(sys.argv[1:])
    installed_snapshot.take()  # each run's plugin lookups read package metadata from memory
    warm_the_curriculum()
    warm_hypothesis_constants()
    warm_the_probe()
    # Everything imported so far lives as long as the worker: moved out of the collector's
    # reach, so that each child's collections (pytest runs several per session) scan only
    # what the run itself made. About a quarter of a short run's CPU time, measured.
    gc.freeze()
    answer({"ready": True})
    for line in sys.stdin.buffer:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run_child(request)
        answer({"pid": pid})
        returncode, timed_out, cpu = wait_for(pid, float(request["timeout"]))
        cpu += served_cpu.collect(Path(served_file(request)))  # its MPI ranks, Celery workers
        answer({"returncode": returncode, "timed_out": timed_out, "cpu": round(cpu, 3)})


if __name__ == "__main__":
    main()
