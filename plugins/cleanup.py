"""Process cleanup: every process a test starts, grandchildren included, ends with the test.

pytest becomes a child subreaper (Linux), so a process whose parent exits is adopted by pytest
rather than by init, and stays findable. After each test (its fixtures' teardown included)
every descendant that did not exist before the test gets a moment to finish, then SIGTERM (with
the process group it leads, if any), SIGKILL if it ignores that, and is reaped; each one is
named under "threads and processes left running". multiprocessing's children are stopped
through multiprocessing, which must reap them itself; its forkserver and resource tracker serve
the whole run and are left alone, as are services (plugins/services.py) until they are stopped.

A multiprocessing Pool the test left open is terminated first, by the pool itself. Left alone,
it would be finalized whenever the garbage collector next met it, in some later test: and if
its workers had been killed meanwhile (by the kata's own teardown, or by this sweep), a killed
worker may have held the pool's queue lock, so the finalizer waits for it for ever and takes
the run down with it.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import pytest

from plugins import budgets, isolation, proctree, settings
from plugins.proctree import Proc

# Seconds a test's leftover processes get to end by themselves, then to obey SIGTERM.
PROCESS_GRACE_SECONDS = 1.0
# Processes may start others while being stopped; sweeps after the first one, at most.
EXTRA_SWEEPS = 3
POOL_TERMINATE_SECONDS = 5.0  # a pool's own terminate() needs milliseconds

subreaper_key = pytest.StashKey[bool | None]()
active_key = pytest.StashKey[bool]()


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    # The self-check's parent runs no kata test: its warm workers and runs outlive each verify
    # item by design (each run sweeps its own tests), so a sweep there would kill them.
    config.stash[active_key] = not settings.of(config).verify
    if config.stash[active_key]:
        config.stash[subreaper_key] = proctree.become_subreaper()


# -- run time --------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> object:
    if not item.config.stash[active_key]:
        return (yield)
    before = {proc.key for proc in proctree.descendants().values()}
    multiprocessing_before = _multiprocessing_children()
    try:
        return (yield)
    finally:
        _end_pools_left_open(item)
        _stop_strays(item, before, multiprocessing_before)


def _open_pools() -> list[Any]:
    """The finalizers of the Pools not terminated yet (multiprocessing registers one per pool)."""
    pool_module, util = (
        sys.modules.get("multiprocessing.pool"),
        sys.modules.get("multiprocessing.util"),
    )
    if pool_module is None or util is None:
        return []
    terminate = pool_module.Pool._terminate_pool.__func__  # a classmethod: compare functions
    registry = getattr(util, "_finalizer_registry", {})
    return [
        finalizer
        for finalizer in list(registry.values())
        if getattr(getattr(finalizer, "_callback", None), "__func__", None) is terminate
    ]


def _end_pools_left_open(item: pytest.Item) -> None:
    open_pools = _open_pools()
    if not open_pools:
        return
    strays = item.config.stash.setdefault(budgets.strays_key, [])
    for finalizer in open_pools:
        inqueue, outqueue, workers = finalizer._args[1], finalizer._args[2], finalizer._args[3]
        # A killed worker may have died holding a queue's lock, which would then stay held for
        # ever (the pool replaces killed workers, so live ones prove nothing); terminate() ends
        # every worker anyway, so the pool gets fresh locks to end with.
        inqueue._rlock = threading.Lock()
        outqueue._wlock = threading.Lock()
        ender = threading.Thread(target=finalizer, name="kata-pool-terminate", daemon=True)
        ender.start()
        ender.join(POOL_TERMINATE_SECONDS)
        how = "terminated it" if not ender.is_alive() else "could not terminate it"
        strays.append(
            f"{item.nodeid}: a multiprocessing Pool of {len(workers)} workers was left open "
            f"(never closed and joined, nor used in a with-block); {how}"
        )


def _multiprocessing_children() -> set[Any]:
    # Only when the run uses multiprocessing at all: importing it costs time. active_children()
    # also reaps the children that have ended.
    if "multiprocessing" not in sys.modules:
        return set()
    return set(sys.modules["multiprocessing"].active_children())


def _running_new_processes(item: pytest.Item, before: set[tuple[int, int]]) -> list[Proc]:
    """Live descendants started since `before`, less those multiprocessing or a service owns.
    Reaps the new ones that have ended: children the test never waited for, and adopted
    orphans that ended by themselves (nobody else would)."""
    found = proctree.descendants()
    if not found:  # the common case, answered in a fraction of a millisecond
        return []
    owned = proctree.multiprocessing_helpers() | {
        child.pid for child in _multiprocessing_children()
    }
    namespace = item.config.stash.get(isolation.namespace_key, None)
    spared_groups = namespace.service_groups() if namespace is not None else set()
    new = [
        proc
        for proc in found.values()
        if proc.key not in before and proc.pid not in owned and proc.pgid not in spared_groups
    ]
    proctree.reap([proc for proc in new if not proc.alive], 0)
    return [proc for proc in new if proc.alive]


def _stop_strays(
    item: pytest.Item, before: set[tuple[int, int]], multiprocessing_before: set[Any]
) -> None:
    children = list(_multiprocessing_children() - multiprocessing_before)
    running = _running_new_processes(item, before)
    if not running and not children:
        return
    # One moment, shared by all of them, to end by themselves.
    deadline = time.monotonic() + PROCESS_GRACE_SECONDS
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
    while True:
        # Scanned afresh, not just rechecked: a stray may still be starting others.
        running = _running_new_processes(item, before)
        if not running or time.monotonic() >= deadline:
            break
        time.sleep(proctree.POLL_SECONDS)
    children = [child for child in children if child.is_alive()]
    for child in children:
        child.terminate()
    _end_and_report(item, running)
    _stop_multiprocessing_children(item, children)
    for _ in range(EXTRA_SWEEPS):
        # Started while the others were being stopped (a SIGTERM handler that forks, say).
        running = _running_new_processes(item, before)
        if not running:
            return
        _end_and_report(item, running)


def _end_and_report(item: pytest.Item, running: list[Proc]) -> None:
    strays = item.config.stash.setdefault(budgets.strays_key, [])
    commands = {proc.pid: proctree.command_line(proc.pid) for proc in running}
    killed = proctree.end(running, PROCESS_GRACE_SECONDS)
    for proc in running:
        how = "killed it: it ignored SIGTERM" if proc in killed else "stopped it"
        strays.append(
            f"{item.nodeid}: process {proc.pid} ({commands[proc.pid]}) was still running; {how}"
        )


def _stop_multiprocessing_children(item: pytest.Item, children: list[Any]) -> None:
    strays = item.config.stash.setdefault(budgets.strays_key, [])
    for child in children:
        child.join(PROCESS_GRACE_SECONDS)
        if child.is_alive():
            child.kill()
            child.join(PROCESS_GRACE_SECONDS)
        strays.append(
            f"{item.nodeid}: child process {child.name!r} (pid {child.pid}) was still running; "
            "stopped it"
        )


# -- summary ---------------------------------------------------------------------------------


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    proctree.restore_subreaper(config.stash.get(subreaper_key, None))
