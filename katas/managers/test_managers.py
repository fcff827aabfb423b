"""Kata `managers`: managed dicts, lists and namespaces, and a custom manager serving an object."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing import context as contexts
from typing import Any

import pytest
from managers import (
    cast_votes,
    collect_lines,
    connect_to_inventory,
    count_votes,
    restock,
    start_inventory_server,
)

# Generous: every scenario below needs well under a second (a spawned one one or two); 5 s
# only runs out when something is really stuck, even on a busy machine.
TIMEOUT = 5.0
# A spawned manager and worker are two fresh interpreters: the self-check, running 8 suites
# at once beside MPI jobs on 2 cores, once saw them take 6.8 s. A stuck one still fails.
SPAWN_TIMEOUT = 15.0
KEY = b"kata-secret"


@pytest.fixture(autouse=True)
def reap_children() -> Iterator[None]:
    """Whatever a test leaves behind is killed, so no process outlives it."""
    yield
    for child in multiprocessing.active_children():
        child.kill()
        child.join(2.0)


@pytest.fixture
def start_methods(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The start method of every process started during the test, in order.

    Every way of starting a process (a context's Process or Manager, multiprocessing.Process)
    ends in the `_Popen` of the fork, spawn or forkserver process class: each is wrapped to
    note its name."""
    used: list[str] = []
    for kind in (contexts.ForkProcess, contexts.SpawnProcess, contexts.ForkServerProcess):
        original = kind._Popen

        def noted(process: Any, original: Any = original, name: str = kind._start_method) -> Any:
            used.append(name)
            return original(process)

        monkeypatch.setattr(kind, "_Popen", staticmethod(noted))
    return used


def assert_no_children_left(after: str = "your function returned") -> None:
    __tracebackhide__ = True
    left = multiprocessing.active_children()
    assert not left, (
        f"{len(left)} process(es) still ran after {after} ({left}): join every worker, and shut "
        f"the manager down (leaving its `with` block does)"
    )


def parent(function: Callable[..., Any], *args: Any, timeout: float = TIMEOUT, **kw: Any) -> Any:
    """function(*args, timeout=timeout, **kw), failing with the reason when it raises
    TimeoutError: long before its timeout, or at it."""
    __tracebackhide__ = True
    started = time.monotonic()
    try:
        return function(*args, timeout=timeout, **kw)
    except TimeoutError:
        elapsed = time.monotonic() - started
    if elapsed < timeout / 2:
        pytest.fail(
            f"{function.__name__} raised TimeoutError after {elapsed:.2f} s, long before its "
            f"timeout of {timeout:g} s: join_all takes a deadline, a moment on the "
            f"time.monotonic() clock (time.monotonic() + timeout), not a number of seconds. "
            f"Given {timeout:g}, it finds that moment long past."
        )
    pytest.fail(
        f"{function.__name__} raised TimeoutError after {elapsed:.1f} s: a worker was still "
        f"running at the deadline. Is a worker waiting at a Barrier for more parties than "
        f"there are workers?"
    )


class Call:
    """`function(*args)` in a daemon thread of the test's process, waited for with a bound."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.outcome: list[Any] = []

        def run() -> None:
            try:
                self.outcome.append(function(*args))
            except BaseException as error:  # judged by the test, in its own thread
                self.outcome.append(error)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def finished_within(self, seconds: float) -> bool:
        self._thread.join(seconds)
        return not self._thread.is_alive()

    def error(self) -> BaseException | None:
        """The exception the call raised (NotImplementedError is raised again), or None."""
        __tracebackhide__ = True
        raised = self.outcome[0] if self.outcome else None
        if isinstance(raised, NotImplementedError):
            raise raised
        return raised if isinstance(raised, BaseException) else None


@contextlib.contextmanager
def inventory_server() -> Iterator[Any]:
    """A started inventory server, shut down at the end of the `with` block."""
    server = start_inventory_server(KEY, start_method="fork")
    try:
        yield server
    finally:
        server.shutdown()


# -- 1. a managed dict ------------------------------------------------------------------------


def assert_a_plain_tally_of(tally: Any, candidates: set[str]) -> None:
    __tracebackhide__ = True
    plain = type(tally) is dict
    assert plain, (
        f"count_votes returned a {type(tally).__name__}, not a dict: the manager shuts down at "
        f"the end of its `with` block, and its proxies with it. Return a plain copy, "
        f"dict(tally)."
    )
    missing = sorted(candidates - set(tally))
    assert not missing, (
        f"count_votes returned {tally}, without {missing}: a candidate that is not in the managed "
        f"dict from the start makes `tally[name] += 1` raise KeyError in the worker (see "
        f"'Captured stderr'). Start every candidate at 0: manager.dict({{name: 0 for ...}})."
    )


@pytest.mark.clause(4)
def test_a_voter_waits_at_the_start_line_before_voting() -> None:
    # cast_votes runs in a thread here, with a plain dict, a threading.Lock and a Barrier of two:
    # the test itself is the other party.
    tally, lock, start = {"bob": 0}, threading.Lock(), threading.Barrier(2)
    call = Call(cast_votes, tally, lock, start, ["bob"])
    voted_alone = call.finished_within(0.2)
    before = tally["bob"]
    if not voted_alone:
        with contextlib.suppress(threading.BrokenBarrierError):
            start.wait(2.0)
    call.finished_within(2.0)
    error = call.error()
    assert error is None, f"cast_votes raised {error!r}"
    assert before == 0 and not voted_alone, (
        "cast_votes voted before the other workers had reached the start line: wait at the "
        "start Barrier (start.wait(timeout)) before the first vote"
    )
    assert tally == {"bob": 1}, f"a ballot ['bob'] left the tally at {tally}"


@pytest.mark.clause(5)
def test_a_voter_holds_the_shared_lock_for_every_vote() -> None:
    # The test holds the shared lock, as another worker in the middle of its vote would.
    tally, lock, start = {"alice": 0}, threading.Lock(), threading.Barrier(1)
    lock.acquire()
    call = Call(cast_votes, tally, lock, start, ["alice", "alice"])
    ran_past_the_lock = call.finished_within(0.2)
    during = tally["alice"]
    lock.release()
    call.finished_within(2.0)
    error = call.error()
    assert error is None, f"cast_votes raised {error!r}"
    assert during == 0 and not ran_past_the_lock, (
        f"cast_votes changed the tally to {during} while another worker held the shared lock: "
        f"hold the `lock` it is given (one manager.Lock() for all workers) around each "
        f"`tally[name] += 1`; a lock made inside cast_votes is each worker's own and guards "
        f"nothing"
    )
    assert tally == {"alice": 2}, f"a ballot ['alice', 'alice'] left the tally at {tally}"


@pytest.mark.clause(2, 5, 6)
def test_no_vote_is_lost_when_four_processes_update_one_managed_dict() -> None:
    # Measured on a busy 2-core machine: 4 x 150 votes lost at least 330 in each of 20 runs
    # without the lock (78 with a lock around the read only): a loss shows up every time.
    ballots = [["alice"] * 150 for _ in range(4)]
    tally = parent(count_votes, ballots, start_method="fork")
    assert_a_plain_tally_of(tally, {"alice"})
    lost = 600 - tally["alice"]
    assert lost == 0, (
        f"{lost} of 600 votes were lost (tally: {tally}). `tally[name] += 1` on a proxy is two "
        f"requests to the manager, a read and then a write; another worker's write can land in "
        f"between and be overwritten. Hold one manager.Lock(), shared by all workers, around "
        f"each `+=`."
    )
    assert_no_children_left()


@pytest.mark.clause(6)
def test_every_candidate_is_counted_separately_into_a_plain_dict() -> None:
    ballots = [["alice", "bob", "bob"], ["carol", "bob"], ["carol"]]
    tally = parent(count_votes, ballots, start_method="fork")
    assert_a_plain_tally_of(tally, {"alice", "bob", "carol"})
    assert tally == {"alice": 1, "bob": 3, "carol": 2}, (
        f"count_votes({ballots}) returned {tally}: one vote per name on each ballot"
    )
    assert_no_children_left()


# -- 2. a Namespace ---------------------------------------------------------------------------


@pytest.mark.clause(2, 7, 8, 9)
def test_lines_appended_by_every_worker_all_reach_the_board() -> None:
    lines = parent(collect_lines, 3, 4, start_method="fork")
    expected = sorted(f"{worker}:{index}" for worker in range(3) for index in range(4))
    assert isinstance(lines, list), f"collect_lines returned a {type(lines).__name__}, not a list"
    assert sorted(lines) == expected, (
        f"the board holds {sorted(lines)} instead of the 12 lines the 3 workers appended. "
        f"Reading board.lines through the Namespace proxy returns a copy of a plain list, so "
        f"appending to it changes only that copy. Store a managed list there: "
        f"board.lines = manager.list()."
    )
    assert_no_children_left()


@pytest.mark.clause(3)
@pytest.mark.budget(25)  # SPAWN_TIMEOUT, and the test's own start and checks
def test_the_manager_and_the_workers_start_with_the_chosen_start_method(
    start_methods: list[str],
) -> None:
    lines = parent(collect_lines, 1, 2, start_method="spawn", timeout=SPAWN_TIMEOUT)
    assert lines == ["0:0", "0:1"], f"collect_lines(1, 2) returned {lines}"
    assert start_methods == ["spawn", "spawn"], (
        f"collect_lines(1, 2, start_method='spawn') started its manager and its worker by "
        f"{start_methods}, not both by spawn: take context = "
        f"multiprocessing.get_context(start_method), then context.Manager() and "
        f"context.Process"
    )
    assert_no_children_left()


@pytest.mark.clause(1, 2)
def test_workers_still_busy_at_the_timeout_are_stopped_with_timeout_error() -> None:
    # 2 x 5000 appends take the workers seconds (each is a request); the timeout is 0.3 s.
    started = time.monotonic()
    try:
        lines = collect_lines(2, 5000, start_method="fork", timeout=0.3)
    except TimeoutError:
        lines = None  # what should happen
    elapsed = time.monotonic() - started
    assert lines is None, (
        f"collect_lines(2, 5000, timeout=0.3) returned {len(lines)} lines after {elapsed:.1f} s "
        f"instead of raising TimeoutError at its deadline: join_all(children, "
        f"time.monotonic() + timeout)"
    )
    assert elapsed < 2.0, f"collect_lines took {elapsed:.1f} s to give up after 0.3 s"
    assert_no_children_left("collect_lines raised TimeoutError")


# -- 3. a custom manager ----------------------------------------------------------------------


@pytest.mark.clause(10)
def test_the_inventory_server_listens_on_localhost_only() -> None:
    with inventory_server() as server:
        host, port = server.address
        assert host == "127.0.0.1", (
            f"the server listens on {host!r}: every machine that can reach this one could talk to "
            f"it. Bind ('127.0.0.1', 0)."
        )
        assert port > 0, (
            f"the server reports port {port}: it was never started. Call start() on it before "
            f"returning it; then its address holds the port the system chose."
        )


@pytest.mark.clause(11, 12)
def test_only_a_client_that_knows_the_authkey_is_served() -> None:
    with inventory_server() as server:
        with pytest.raises(multiprocessing.AuthenticationError):
            connect_to_inventory(server.address, b"wrong key")
        try:
            inventory = connect_to_inventory(server.address, KEY)
        except multiprocessing.AuthenticationError:
            inventory = None  # reported below, outside the `except`, without the traceback
        assert inventory is not None, (
            "a client with the right key was refused: the server was not started with that key. "
            "Pass authkey= to InventoryManager when you create the server (otherwise it uses this "
            "process's own random key)."
        )
        inventory.add("pears", 2)
        assert inventory.snapshot() == {"pears": 2}, f"the inventory holds {inventory.snapshot()}"


@pytest.mark.clause(13)
def test_restocking_from_three_client_processes_loses_no_unit() -> None:
    # Measured on a busy 2-core machine: a read-then-write restock lost at least 129 of 450
    # units in each of 20 runs, so a lost update shows up every time.
    with inventory_server() as server:
        context = multiprocessing.get_context("fork")
        clients, times = 3, 150
        start = context.Barrier(clients)
        arguments = (server.address, KEY, "apples", times, start)
        children = [context.Process(target=restock, args=arguments) for _ in range(clients)]
        for child in children:
            child.start()
        deadline = time.monotonic() + TIMEOUT
        for child in children:
            child.join(max(deadline - time.monotonic(), 0.0))
        codes = [child.exitcode for child in children]
        assert codes == [0] * clients, (
            f"the restocking clients ended with exit codes {codes} (None: still running after "
            f"{TIMEOUT:g} s): a client that fails prints its traceback under 'Captured stderr'"
        )
        stock = connect_to_inventory(server.address, KEY).count("apples")
        lost = clients * times - stock
        assert lost == 0, (
            f"{lost} of {clients * times} units were lost: a client read the count and wrote it "
            f"back plus one, while another client's addition landed in between. Let the server do "
            f"the whole addition in one request: inventory.add(item, 1)."
        )
