"""Kata `parallel_python`: Parallel Python jobs on local workers and on a cluster of ppservers."""

from __future__ import annotations

import contextlib
import gc
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from parallel_python import (
    MEETING_SECONDS,
    chunks,
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

from plugins import proctree

# A ppserver is listening within a fraction of a second; 10 s only runs out when it is broken.
START_SECONDS = 10.0
STOP_SECONDS = 5.0
# How long after its timeout connect may still take to give up: it polls every few milliseconds.
GIVE_UP_SECONDS = 2.5


def _group_alive(group: int) -> bool:
    """Whether any process of process group `group` still exists."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _children() -> list[int]:
    """The live child processes of this process (Linux /proc; elsewhere nothing is checked),
    less multiprocessing's resource tracker and forkserver, which serve the whole run."""
    return [pid for pid, state in proctree.own_children().items() if state not in ("Z", "X")]


@pytest.fixture(autouse=True)
def no_worker_left_behind() -> Iterator[None]:
    before = set(_children())  # whatever earlier tests of the run left is not this test's
    yield
    deadline = time.monotonic() + STOP_SECONDS
    while set(_children()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    left = sorted(set(_children()) - before)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not left, (
        f"worker processes {left} outlived the test: destroy() every pp.Server you make"
    )


# Workers of a local server: three, more than this machine's two cores, so that pp's own
# default (one worker per core) cannot pass for the number asked for.
WORKERS = 3


@contextlib.contextmanager
def local_trio() -> Iterator[Any]:
    """The learner's local server with WORKERS workers, destroyed at the end of the block."""
    server = local_server(WORKERS)
    try:
        yield server
    finally:
        server.destroy()


class RecordingServer:
    """A pp.Server that writes down every job submitted to it, then submits it for real."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.jobs: list[tuple[Any, tuple[Any, ...]]] = []

    def submit(self, func: Any, args: tuple[Any, ...] = (), *rest: Any, **kwargs: Any) -> Any:
        self.jobs.append((func, tuple(args)))
        return self.server.submit(func, args, *rest, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)


def _run_all(*args: Any, **kwargs: Any) -> Any:
    """run_all(...), with a failed job explained: the meeting jobs need three modules."""
    __tracebackhide__ = True
    try:
        return run_all(*args, **kwargs)
    except RuntimeError as error:
        failure = str(error)
    pytest.fail(
        f"run_all raised RuntimeError ({failure}) for jobs that work when the worker gets what "
        f"they need: pass depfuncs=depfuncs and modules=modules on to every server.submit, or "
        f"the worker lacks the modules (the traceback printed above names what was missing)"
    )


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


@pytest.mark.clause(1)
def test_local_server_has_exactly_the_requested_local_workers() -> None:
    with local_trio() as local:
        nodes = local.get_active_nodes()
        assert nodes == {"local": WORKERS}, (
            f"local_server({WORKERS}) reports the nodes {nodes}: it must have {WORKERS} local "
            f"workers (ncpus=ncpus; pp's own default is one per core, {os.cpu_count()} here) "
            f"and no remote ppservers (ppservers=())"
        )


@pytest.mark.clause(2, 3)
def test_run_all_runs_the_jobs_on_two_workers_at_once(tmp_path: Path) -> None:
    with local_trio() as local:
        results = _run_all(
            local, meet, [(str(tmp_path),), (str(tmp_path),)], modules=("os", "pathlib", "time")
        )
        assert [met for _, _, met in results] == [True, True], (
            f"two jobs that wait for each other did not meet within {MEETING_SECONDS} s (results "
            f"{results}): submit every job before calling any of them, so both workers get one"
        )
        assert os.getpid() not in {pid for pid, _, _ in results}, (
            "the jobs ran in the calling process"
        )


@pytest.mark.clause(4)
def test_run_all_returns_the_results_in_the_order_of_the_tuples() -> None:
    numbers = [24, 2, 21, 1, 18]  # the quick ones finish long before the slow ones
    with local_trio() as local:
        results = run_all(local, fibonacci, [(n,) for n in numbers])
    expected = [fibonacci(n) for n in numbers]
    assert results == expected, (
        f"run_all(server, fibonacci, {[(n,) for n in numbers]}) returned {results}, expected "
        f"{expected}: result i belongs to tuple i, whatever order the jobs finish in; keep the "
        f"jobs in a list in submit order and call each one (job()) in that order"
    )


@pytest.mark.clause(5)
def test_run_all_raises_when_a_job_fails_on_its_worker() -> None:
    with local_trio() as local:
        try:
            results = run_all(local, fail_on, [(1, 3), (3, 3), (5, 3)])
        except RuntimeError as error:
            message = str(error)
        else:
            pytest.fail(
                f"fail_on(3, 3) raised ValueError on its worker and run_all returned {results}: "
                f"pp prints the worker's traceback and gives None as the job's result; turn that "
                f"into a RuntimeError"
            )
    assert "(3, 3)" in message, (
        f"run_all raised RuntimeError({message!r}), which does not say which job failed: name "
        f"its arguments, e.g. f'the job {{function.__name__}}{{arguments!r}} failed', so that "
        f"the caller can find the traceback pp printed for (3, 3)"
    )


@pytest.mark.clause(5)
def test_run_all_takes_a_zero_result_for_a_result() -> None:
    with local_trio() as local:
        try:
            results = run_all(local, fail_on, [(0, 9), (1, 9)])
        except RuntimeError as error:
            pytest.fail(
                f"run_all raised RuntimeError ({error}) although fail_on(0, 9) returned 0 without "
                f"any error: only None means a failed job; test `result is None`, not `not result`"
            )
    assert results == [0, 2], f"run_all(server, fail_on, [(0, 9), (1, 9)]) gave {results}"


@pytest.mark.clause(6, 7)
def test_count_primes_in_parallel_ships_what_the_job_needs() -> None:
    with local_trio() as local:
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


@pytest.mark.clause(6)
def test_count_primes_in_parallel_sends_one_job_per_range() -> None:
    with local_trio() as local:
        recording = RecordingServer(local)
        got = count_primes_in_parallel(recording, 10_000, 5)
    jobs = [args for function, args in recording.jobs if function.__name__ == "count_primes"]
    assert sorted(jobs) == chunks(10_000, 5), (
        f"count_primes_in_parallel(server, 10000, 5) submitted the count_primes jobs {jobs}, "
        f"expected one per range of chunks(10000, 5) = {chunks(10_000, 5)}: parts decides how "
        f"the work is cut, so that every worker gets some"
    )
    assert got == count_primes(0, 10_000), f"it counted {got} primes below 10000"


@pytest.mark.clause(8, 9)
def test_fibonacci_table_is_complete_when_it_returns() -> None:
    with local_trio() as local:
        numbers = [18, 24, 20, 25, 22]
        expected = {n: fibonacci(n) for n in numbers}
        # A copy at once: callbacks that come late would otherwise still fill the same dict.
        table = dict(fibonacci_table(local, numbers))
    swapped = {value: n for n, value in expected.items()}
    assert table != swapped, (
        f"fibonacci_table returned {table}: each n is filed under its result. pp calls "
        f"callback(*callbackargs, result): with callbackargs=(n,) the n comes first, so "
        f"define the callback as def store(n, result)"
    )
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


@pytest.mark.clause(10, 11)
def test_connect_runs_the_jobs_on_the_ppservers_workers(cluster: Cluster, tmp_path: Path) -> None:
    server = _connect(cluster)
    try:
        # Read at the moment connect returned: every ppserver must have joined by then.
        nodes = dict(server.get_active_nodes())
        missing = [address for address in cluster.addresses if address not in nodes]
        assert not missing, (
            f"connect returned while {missing} had not joined yet (active nodes {nodes}): poll "
            f"get_active_nodes() until it lists every address, and only then return"
        )
        assert nodes.get("local", 0) == 0, (
            f"the client has {nodes.get('local')} local workers: with ncpus=0 every job goes to "
            f"the ppservers (pp always prefers free local workers)"
        )
        results = _run_all(
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


@pytest.mark.clause(6, 10)
def test_connect_counts_primes_on_the_cluster(cluster: Cluster) -> None:
    server = _connect(cluster)
    try:
        got = count_primes_in_parallel(server, 30_000, 6)
    finally:
        server.destroy()
    assert got == count_primes(0, 30_000), f"the cluster counted {got} primes below 30000"


def _servers_not_destroyed() -> list[Any]:
    """Every pp.Server of this process that nobody has destroyed yet (pp keeps each one alive
    for its atexit clean-up until destroy() is called)."""
    pp = pytest.importorskip("pp")
    gc.collect()
    # type(), not isinstance(): isinstance asks an object for its __class__, and a lazy proxy
    # (Celery's, of another kata's app in the same run) would evaluate itself to answer.
    return [
        obj
        for obj in gc.get_objects()
        if issubclass(type(obj), pp.Server) and not getattr(obj, "_exiting", True)
    ]


@pytest.mark.clause(11, 12, 13)
def test_connect_gives_up_when_the_ppservers_refuse_the_secret(cluster: Cluster) -> None:
    timeout = 0.5
    before = {id(server) for server in _servers_not_destroyed()}
    outcome: dict[str, Any] = {}

    def call() -> None:
        started = time.monotonic()
        try:
            outcome["server"] = connect(cluster.addresses, "not-the-secret", timeout=timeout)
        except BaseException as error:  # handed to the test's thread below
            outcome["error"] = error
        outcome["waited"] = time.monotonic() - started

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(timeout + GIVE_UP_SECONDS)
    still_waiting = caller.is_alive()
    assert not still_waiting, (
        f"connect(..., timeout={timeout}) was still waiting {timeout + GIVE_UP_SECONDS} s later "
        f"for ppservers that refuse its secret: compute the deadline from the `timeout` "
        f"argument (time.monotonic() + timeout), not from a number of your own"
    )
    if "server" in outcome:
        outcome["server"].destroy()
        pytest.fail(
            "connect returned a server although every ppserver refused its secret: wait until "
            "get_active_nodes() lists every address, and raise TimeoutError when it does not"
        )
    if not isinstance(outcome.get("error"), TimeoutError):
        raise outcome["error"]
    waited = outcome["waited"]
    left = [server for server in _servers_not_destroyed() if id(server) not in before]
    for server in left:
        server.destroy()
    assert waited >= timeout * 0.9, (
        f"connect gave up after {waited:.2f} s although its timeout was {timeout} s: keep "
        f"polling until time.monotonic() passes a deadline of start + timeout"
    )
    assert not left, (
        "connect raised TimeoutError and left the pp.Server it made alive (not destroyed): "
        "call server.destroy() before raising, so that its threads and sockets go too"
    )
