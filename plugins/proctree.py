"""The processes below this one, read from Linux's /proc, and the means to end them safely.

A plain library (no pytest), shared by the cleanup plugin and the service helper. Where /proc
or prctl is missing (not Linux), it finds no processes and adopts no orphans: cleanup then
stops nothing it cannot see, rather than guess.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
# prctl options (linux/prctl.h): orphaned descendants are reparented to us, not to init.
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
PR_GET_CHILD_SUBREAPER = 37
POLL_SECONDS = 0.02
COMMAND_LINE_CHARACTERS = 160


@dataclass(frozen=True)
class Proc:
    """One process as /proc/<pid>/stat described it at one moment."""

    pid: int
    ppid: int
    pgid: int
    state: str  # R, S, D, T, Z (exited, not yet reaped), X (dead) ...
    start: int  # clock ticks after boot: (pid, start) names one process even after pid reuse

    @property
    def key(self) -> tuple[int, int]:
        return (self.pid, self.start)

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")


def read(pid: int) -> Proc | None:
    """The process `pid` now, or None when there is none (or no /proc)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
        # The command name (field 2) may hold spaces and parentheses: split after its last ")".
        fields = text.rsplit(")", 1)[1].split()
        return Proc(pid, int(fields[1]), int(fields[2]), fields[0], int(fields[19]))
    except (OSError, IndexError, ValueError):
        return None


def command_line(pid: int) -> str:
    """What `pid` runs, as one line (its name in brackets when the command line is gone)."""
    try:
        words = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
        line = " ".join(word.decode(errors="replace") for word in words if word)
        if not line:
            line = "[" + (PROC / str(pid) / "comm").read_text().strip() + "]"
    except OSError:
        return "[gone]"
    if len(line) > COMMAND_LINE_CHARACTERS:
        return line[: COMMAND_LINE_CHARACTERS - 3] + "..."
    return line


def _children_of(pid: int) -> list[int] | None:
    """Direct children from the kernel's per-thread lists; None where the kernel has none."""
    found: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return found  # the process is gone: no children
    for task in tasks:
        try:
            found += [int(word) for word in (task / "children").read_text().split()]
        except FileNotFoundError:
            if task.exists():
                return None  # a kernel without CONFIG_PROC_CHILDREN
        except (OSError, ValueError):
            continue
    return found


def descendants(root: int | None = None) -> dict[int, Proc]:
    """Every process below `root` (default: this one), zombies included, keyed by pid."""
    root = os.getpid() if root is None else root
    if not PROC.is_dir():
        return {}
    found: dict[int, Proc] = {}
    frontier = [root]
    while frontier:
        children = _children_of(frontier.pop())
        if children is None:
            return _descendants_by_scan(root)
        for child in children:
            proc = read(child)
            if proc is not None and child not in found:
                found[child] = proc
                frontier.append(child)
    return found


def _descendants_by_scan(root: int) -> dict[int, Proc]:
    """The slow way: read every process's parent and walk down from `root`."""
    by_parent: dict[int, list[Proc]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (proc := read(int(entry.name))) is not None:
            by_parent.setdefault(proc.ppid, []).append(proc)
    found: dict[int, Proc] = {}
    frontier = [root]
    while frontier:
        for proc in by_parent.get(frontier.pop(), []):
            if proc.pid not in found:
                found[proc.pid] = proc
                frontier.append(proc.pid)
    return found


# -- adopting orphans ------------------------------------------------------------------------


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()
_PRCTL = _LIBC.prctl if _LIBC is not None else None
_SIGTERM = ctypes.c_ulong(signal.SIGTERM)


def become_subreaper() -> bool | None:
    """Make orphaned descendants this process's children, so they can be found and reaped.

    Returns whether this process already was one (to restore later), None where unsupported."""
    libc = _libc()
    previous = ctypes.c_int(0)
    if libc is None or libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0) != 0:
        return None
    if libc.prctl(PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1), 0, 0, 0) != 0:
        return None
    return bool(previous.value)


def die_with_parent() -> None:
    """In a child between fork and exec: SIGTERM it when the process that started it dies, even
    by SIGKILL, when no cleanup of that process's runs (Linux; elsewhere nothing happens)."""
    if _PRCTL is not None:  # looked up before the fork: the child only makes the call
        _PRCTL(PR_SET_PDEATHSIG, _SIGTERM, 0, 0, 0)


def restore_subreaper(previous: bool | None) -> None:
    libc = _libc()
    if previous is not None and libc is not None:
        libc.prctl(PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(int(previous)), 0, 0, 0)


# -- ending processes ------------------------------------------------------------------------


def send(proc: Proc, signum: int) -> None:
    """Signal `proc` (and the process group it leads) if it is still that very process.

    The start time is checked first, so a pid the system has handed to a newcomer is spared.
    Never this process's own group: a stray that shares it is signalled alone."""
    now = read(proc.pid)
    if now is None or now.start != proc.start or not now.alive:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if proc.pgid == proc.pid and proc.pgid != os.getpgrp():
            os.killpg(proc.pgid, signum)
        else:
            os.kill(proc.pid, signum)


def still_running(procs: Iterable[Proc]) -> list[Proc]:
    """Those of `procs` that are alive now (not exited, not replaced by a newcomer)."""
    running = []
    for proc in procs:
        now = read(proc.pid)
        if now is not None and now.start == proc.start and now.alive:
            running.append(proc)
    return running


def wait_until_ended(procs: Iterable[Proc], seconds: float) -> list[Proc]:
    """Poll until every one of `procs` has ended or `seconds` pass; returns those still alive."""
    deadline = time.monotonic() + seconds
    running = still_running(procs)
    while running and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        running = still_running(running)
    return running


def reap(procs: Iterable[Proc], seconds: float) -> None:
    """Collect the exit status of those of `procs` that are (now) our children and have ended,
    so no zombie is left; waits at most `seconds` for them to end."""
    me = os.getpid()
    waiting = {proc.pid for proc in procs}
    deadline = time.monotonic() + seconds
    while waiting:
        for pid in list(waiting):
            now = read(pid)
            if now is None or now.ppid != me:
                waiting.discard(pid)  # gone, or someone else's to reap
                continue
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                waiting.discard(pid)
        if not waiting or time.monotonic() >= deadline:
            return
        time.sleep(POLL_SECONDS)


def end(procs: list[Proc], grace: float) -> set[Proc]:
    """SIGTERM `procs` (their groups where they lead one), SIGKILL those alive after `grace`
    seconds, then reap the ones that are our children. Returns those that needed SIGKILL."""
    for proc in procs:
        send(proc, signal.SIGTERM)
    stubborn = wait_until_ended(procs, grace)
    for proc in stubborn:
        send(proc, signal.SIGKILL)
    wait_until_ended(stubborn, grace)
    reap(procs, grace)
    return set(stubborn)


def multiprocessing_helpers() -> set[int]:
    """The pids of multiprocessing's forkserver and resource tracker: started once, they serve
    every later test of the run."""
    pids = set()
    for module, instance, attribute in (
        ("multiprocessing.forkserver", "_forkserver", "_forkserver_pid"),
        ("multiprocessing.resource_tracker", "_resource_tracker", "_pid"),
    ):
        pid = getattr(getattr(sys.modules.get(module), instance, None), attribute, None)
        if isinstance(pid, int):
            pids.add(pid)
    return pids


def own_children() -> dict[int, str]:
    """This process's child processes now, pid -> state ("Z": ended, but nobody waited for
    it), less multiprocessing's helpers. For kata tests that check what a call left behind."""
    helpers = multiprocessing_helpers()
    return {
        proc.pid: proc.state
        for proc in descendants().values()
        if proc.ppid == os.getpid() and proc.pid not in helpers
    }
