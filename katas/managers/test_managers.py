"""Kata `managers`: managed dicts, lists and namespaces, and a custom manager serving an object."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator
from typing import Any

import pytest
from managers import (
    collect_lines,
    connect_to_inventory,
    count_votes,
    restock,
    start_inventory_server,
)

# Generous: every scenario below needs well under a second (a spawned one one or two); 5 s
# only runs out when something is really stuck, even on a busy machine.
TIMEOUT = 5.0
KEY = b"kata-secret"


@pytest.fixture(autouse=True)
def reap_children() -> Iterator[None]:
    """Whatever a test leaves behind is killed, so no process outlives it."""
    yield
    for child in multiprocessing.active_children():
        child.kill()
        child.join(2.0)


def assert_no_children_left() -> None:
    __tracebackhide__ = True
    left = multiprocessing.active_children()
    assert not left, (
        f"{len(left)} process(es) still ran after your function returned ({left}): join every "
        f"worker, and shut the manager down (leaving its `with` block does)"
    )


@contextlib.contextmanager
def inventory_server() -> Iterator[Any]:
    """A started inventory server, shut down at the end of the `with` block."""
    server = start_inventory_server(KEY, start_method="fork")
    try:
        yield server
    finally:
        server.shutdown()


def test_no_vote_is_lost_when_four_processes_update_one_managed_dict() -> None:
    # Measured on a busy 2-core machine: 4 x 150 votes lost at least 330 in each of 20 runs
    # without the lock (78 with a lock around the read only): a loss shows up every time.
    ballots = [["alice"] * 150 for _ in range(4)]
    tally = count_votes(ballots, start_method="fork", timeout=TIMEOUT)
    lost = 600 - tally.get("alice", 0)
    assert lost == 0, (
        f"{lost} of 600 votes were lost (tally: {tally}). `tally[name] += 1` on a proxy is two "
        f"requests to the manager, a read and then a write; another worker's write can land in "
        f"between and be overwritten. Hold one manager.Lock() around each `+=`."
    )
    assert_no_children_left()


def test_every_candidate_is_counted_separately() -> None:
    ballots = [["alice", "bob", "bob"], ["carol", "bob"]]
    tally = count_votes(ballots, start_method="fork", timeout=TIMEOUT)
    assert tally == {"alice": 1, "bob": 3, "carol": 1}, (
        f"count_votes({ballots}) returned {tally}: start every candidate at 0 and return a "
        f"plain dict copy of the managed one"
    )
    assert_no_children_left()


def test_lines_appended_by_every_worker_all_reach_the_board() -> None:
    lines = collect_lines(2, 5, start_method="fork", timeout=TIMEOUT)
    expected = sorted(f"{worker}:{index}" for worker in range(2) for index in range(5))
    assert sorted(lines) == expected, (
        f"the board holds {sorted(lines)} instead of the 10 lines the workers appended. "
        f"Reading board.lines through the Namespace proxy returns a copy of a plain list, so "
        f"appending to it changes only that copy. Store a managed list there: "
        f"board.lines = manager.list()."
    )
    assert_no_children_left()


def test_the_inventory_server_listens_on_localhost_only() -> None:
    with inventory_server() as server:
        host, port = server.address
        assert host == "127.0.0.1", (
            f"the server listens on {host!r}: every machine that can reach this one could talk to "
            f"it. Bind ('127.0.0.1', 0)."
        )
        assert port > 0, f"the server reports port {port}"


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
        for child in children:
            child.join(TIMEOUT)
        stock = connect_to_inventory(server.address, KEY).count("apples")
        lost = clients * times - stock
        assert lost == 0, (
            f"{lost} of {clients * times} units were lost: a client read the count and wrote it "
            f"back plus one, while another client's addition landed in between. Let the server do "
            f"the whole addition in one request: inventory.add(item, 1)."
        )
        assert all(child.exitcode == 0 for child in children), (
            f"the restocking clients ended with exit codes {[c.exitcode for c in children]}"
        )
