"""Kata `parallel_python`: Parallel Python jobs on local workers and on a cluster of ppservers."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from parallel_python import (
    MEETING_SECONDS,
    connect,
    count_primes,
    count_primes_in_parallel,
    fail_on,
    fibonacci,
    fibonacci_table,
    local_server,
    meet,
    run_all,
)

# A ppserver is listening within a fraction of a second; 10 s only runs out when it is broken.
START_SECONDS = 10.0
STOP_SECONDS = 5.0


def _group_alive(group: int) -> bool:
    """Whether any process of process group `group` still exists."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _children() -> list[int]:
    """The live child processes of this process (Linux /proc; elsewhere nothing is checked)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid() and fields[0] not in ("Z", "X"):
                found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_worker_left_behind() -> Iterator[None]:
    yield
    deadline = time.monotonic() + STOP_SECONDS
    while _children() and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _children()
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, (
        f"worker processes {left} outlived the test: destroy() every pp.Server you make"
    )


@contextlib.contextmanager
def local_pair() -> Iterator[Any]:
    """The learner's local server with two workers, destroyed at the end of the block."""
    server = local_server(2)
    try:
        yield server
    finally:
        server.destroy()


@dataclass
class Cluster:
    """ppserver processes listening on 127.0.0.1, each with one worker, sharing a secret."""

    secret: str
    folder: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)

    def start(self, count: int) -> None:
        for number in range(count):
            log = self.folder / f"ppserver-{number}.log"
            with log.open("wb") as output:
                # -i 127.0.0.1: reachable from this machine only; -p 0: the OS picks a free port.
                process = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "pp.cli",
                        "-i",
                        "127.0.0.1",
                        "-p",
                        "0",
                        "-w",
                        "1",
                        "-s",
                        self.secret,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: stopped with its workers
                )
            self.processes.append(process)
            self.addresses.append(self._address(process, log))

    def _address(self, process: subprocess.Popen[bytes], log: Path) -> str:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            found = re.search(r"Listening on (127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
            if found:
                return found.group(1)
            if process.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"the ppserver did not start:\n{log.read_text(errors='replace')}")

    def stop(self) -> None:
        """Stop every ppserver and its workers (one process group each)."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_SECONDS)
            # Its workers got the SIGTERM too; any straggler in the group gets SIGKILL.
            deadline = time.monotonic() + STOP_SECONDS
            while _group_alive(process.pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Two ppservers on 127.0.0.1, stopped (with their workers) after the test."""
    started = Cluster(secret=secrets.token_hex(16), folder=tmp_path)
    try:
        started.start(2)
        yield started
    finally:
        started.stop()


# -- local workers ----------------------------------------------------------------------------


def test_local_server_has_exactly_the_requested_local_workers() -> None:
    with local_pair() as local:
        nodes = local.get_active_nodes()
        assert nodes == {"local": 2}, (
            f"local_server(2) reports the nodes {nodes}: it must have 2 local workers "
            f"(ncpus=2) and no remote ppservers (ppservers=())"
        )


def test_run_all_runs_the_jobs_on_two_workers_at_once(tmp_path: Path) -> None:
    with local_pair() as local:
        results = run_all(
            local, meet, [(str(tmp_path),), (str(tmp_path),)], modules=("os", "pathlib", "time")
        )
        assert [met for _, _, met in results] == [True, True], (
            f"two jobs that wait for each other did not meet within {MEETING_SECONDS} s (results "
            f"{results}): submit every job before calling any of them, so both workers get one"
        )
        assert os.getpid() not in {pid for pid, _, _ in results}, (
            "the jobs ran in the calling process"
        )


def test_run_all_raises_when_a_job_fails_on_its_worker() -> None:
    with local_pair() as local:
        try:
            results = run_all(local, fail_on, [(1, 3), (3, 3), (5, 3)])
        except RuntimeError:
            return
        pytest.fail(
            f"fail_on(3, 3) raised ValueError on its worker and run_all returned {results}: pp "
            f"prints the worker's traceback and gives None as the job's result; turn that into a "
            f"RuntimeError"
        )


def test_count_primes_in_parallel_ships_what_the_job_needs() -> None:
    with local_pair() as local:
        expected = count_primes(0, 20_000)
        try:
            got = count_primes_in_parallel(local, 20_000, 4)
        except RuntimeError as error:
            pytest.fail(
                f"a count_primes job failed on its worker ({error}): a worker knows only the source "
                f"it is sent. count_primes calls is_prime (depfuncs=(is_prime,)) and is_prime uses "
                f"math (modules=('math',)); the traceback above names what was missing"
            )
        assert got == expected, (
            f"count_primes_in_parallel(server, 20000, 4) = {got}, expected {expected}"
        )


def test_fibonacci_table_is_complete_when_it_returns() -> None:
    with local_pair() as local:
        numbers = [18, 24, 20, 25, 22]
        expected = {n: fibonacci(n) for n in numbers}
        # A copy at once: callbacks that come late would otherwise still fill the same dict.
        table = dict(fibonacci_table(local, numbers))
        assert table == expected, (
            f"fibonacci_table returned {table}, expected {expected}: each callback must file its "
            f"result under its n (callbackargs=(n,) makes pp call callback(n, result)), and "
            f"server.wait() must run before returning, or jobs still running are missing"
        )


# -- a cluster of ppservers on 127.0.0.1 ------------------------------------------------------


def _connect(cluster: Cluster) -> Any:
    __tracebackhide__ = True
    try:
        return connect(cluster.addresses, cluster.secret, timeout=4.0)
    except TimeoutError as error:
        pytest.fail(
            f"connect({cluster.addresses}, <the right secret>) timed out ({error}): the ppservers "
            f"refused the client or never heard from it. Pass ppservers=tuple(addresses) and "
            f"secret=secret to pp.Server; the log above shows 'Authentication failed' for a "
            f"missing or wrong secret"
        )


def test_connect_runs_the_jobs_on_the_ppservers_workers(cluster: Cluster, tmp_path: Path) -> None:
    server = _connect(cluster)
    try:
        nodes = server.get_active_nodes()
        assert nodes.get("local", 0) == 0, (
            f"the client has {nodes.get('local')} local workers: with ncpus=0 every job goes to "
            f"the ppservers (pp always prefers free local workers)"
        )
        results = run_all(
            server, meet, [(str(tmp_path),), (str(tmp_path),)], modules=("os", "pathlib", "time")
        )
    finally:
        server.destroy()
    parents = {ppid for _, ppid, _ in results}
    servers = {process.pid for process in cluster.processes}
    assert parents == servers, (
        f"the jobs ran in processes whose parents are {parents}, but the two ppservers are "
        f"{servers}: each ppserver should have run one of the two meeting jobs"
    )
    assert all(met for _, _, met in results), (
        f"the two jobs did not run at the same time: {results}"
    )


def test_connect_counts_primes_on_the_cluster(cluster: Cluster) -> None:
    server = _connect(cluster)
    try:
        got = count_primes_in_parallel(server, 30_000, 6)
    finally:
        server.destroy()
    assert got == count_primes(0, 30_000), f"the cluster counted {got} primes below 30000"


def test_connect_gives_up_when_the_ppservers_refuse_the_secret(cluster: Cluster) -> None:
    started = time.monotonic()
    try:
        server = connect(cluster.addresses, "not-the-secret", timeout=1.0)
    except TimeoutError:
        waited = time.monotonic() - started
        assert waited < 5.0, f"connect took {waited:.1f} s to give up after a 1 s timeout"
        return
    server.destroy()
    pytest.fail(
        "connect returned a server although every ppserver refused its secret: wait until "
        "get_active_nodes() lists every address, and raise TimeoutError when it does not"
    )
