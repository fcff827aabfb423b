"""Kata `managers`: shared dicts, lists and namespaces through a manager, and a served object.

A manager is a server process that owns Python objects; other processes reach them through
*proxies*, and every proxy operation is one request to the server. `start_all` and `join_all`
are given: `join_all` joins every worker by a deadline and, when one is late, kills them all
and raises `TimeoutError`.

Contract (the tests check each point):

- `count_votes` and `collect_lines` (the parents):
  §1 `count_votes` and `collect_lines` raise `TimeoutError`, leaving no worker running, when
  the workers are not all done `timeout` seconds after the call began: they hand `join_all` the
  deadline `time.monotonic() + timeout`, a moment on the clock, not a number of seconds.
  §2 `count_votes` and `collect_lines` shut down the manager they start before they return or
  raise (leaving `with context.Manager() as manager:` does).
  §3 `count_votes` and `collect_lines` start the manager and the workers from the context of
  their `start_method`.
- `cast_votes(tally, lock, start, ballot)` / `count_votes(ballots)`:
  §4 `cast_votes` waits at `start` (a `Barrier` of all the workers, with a timeout) before its
  first vote, so that the workers really do vote at the same time.
  §5 `cast_votes` adds 1 to `tally[name]` for each name on its ballot, holding the shared
  `lock` around each `tally[name] += 1`: on a proxy that is two requests (a read, then a
  write), and another worker's write can land in between.
  §6 `count_votes` starts one worker process per ballot, sharing a `manager.dict()` that starts
  with 0 for every candidate, one `manager.Lock()` and one `Barrier(len(ballots))`; it returns
  the final tally, with no vote lost, as a plain `dict` (a proxy dies with its manager).
- `write_lines(board, worker, count)` / `collect_lines(workers, lines_per_worker)`:
  §7 `write_lines` appends `f"{worker}:{i}"` to `board.lines` for `i` in `range(count)`.
  §8 `collect_lines` stores a managed list in the Namespace, `board.lines = manager.list()`: a
  plain list comes back from the proxy as a *copy*, so appending to it changes nothing shared.
  §9 `collect_lines` starts `workers` worker processes, worker `w` writing `lines_per_worker`
  lines, and returns every line that reached the board, as a plain list.
- `InventoryManager` (given) is a `BaseManager` that serves one `Inventory` (given) under the
  name `inventory`.
  §10 `start_inventory_server(authkey)` returns an `InventoryManager`, already started, that
  listens on 127.0.0.1 only, at a port the system chose.
  §11 `start_inventory_server(authkey)` serves only clients that know `authkey`.
  §12 `connect_to_inventory(address, authkey)` returns a proxy to the inventory served at
  `address`; a wrong key makes it raise `multiprocessing.AuthenticationError`.
  §13 `restock(address, authkey, item, times, start)` runs in a client process: it connects,
  waits at `start` (a `Barrier` of all the clients), then adds one unit of `item`, `times`
  times, with `inventory.add(item, 1)`. A method call on the served object runs whole inside
  the server, so no unit is lost; a read followed by a write from the client would lose some.
"""

from __future__ import annotations

import multiprocessing  # noqa: F401  (imported for you: your code will need it)
import threading
import time
from collections.abc import Sequence
from multiprocessing.managers import BaseManager, DictProxy
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from typing import Any, Literal

# The start methods a caller may choose (`fork` and `forkserver` exist on POSIX only).
StartMethod = Literal["spawn", "fork", "forkserver"]


# -- given: starting and stopping the workers ------------------------------------------------


def start_all(
    context: Any, target: Any, argument_lists: Sequence[tuple[Any, ...]]
) -> list[BaseProcess]:
    """Start one child per argument tuple, each running `target(*arguments)`."""
    children: list[BaseProcess] = [
        context.Process(target=target, args=arguments) for arguments in argument_lists
    ]
    for child in children:
        child.start()
    return children


def join_all(children: list[BaseProcess], deadline: float) -> None:
    """Join every child by `deadline` (a time.monotonic() value); kill them all if one is late."""
    try:
        for child in children:
            child.join(timeout=max(deadline - time.monotonic(), 0.0))
            if child.is_alive():
                raise TimeoutError(f"{child.name} was still running at the deadline")
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
                child.join()


# -- 1. a managed dict, and why `d[k] += 1` needs a lock -----------------------------------


def cast_votes(
    tally: DictProxy[str, int], lock: Any, start: Barrier, ballot: Sequence[str]
) -> None:
    """Runs in each worker: add 1 to tally[name] for every name on the ballot."""
    # TODO(kata): wait at `start` (with a timeout); then for each name, `tally[name] += 1`
    # while holding `lock`.
    raise NotImplementedError


def count_votes(
    ballots: Sequence[Sequence[str]],
    *,
    start_method: StartMethod = "fork",
    timeout: float = 10.0,
) -> dict[str, int]:
    """Count the ballots with one worker process each; the final tally as a plain dict."""
    # TODO(kata): deadline = time.monotonic() + timeout; `with context.Manager() as manager:` a
    # dict with 0 per candidate, a manager.Lock(), a Barrier(len(ballots)); start_all cast_votes;
    # join_all(children, deadline); return a plain dict.
    raise NotImplementedError


# -- 2. a Namespace, and a nested mutable that must be managed too ---------------------------


def write_lines(board: Any, worker: int, count: int) -> None:
    """Runs in each worker: append `count` lines to board.lines."""
    # TODO(kata): append f"{worker}:{index}" to board.lines for index in range(count).
    raise NotImplementedError


def collect_lines(
    workers: int,
    lines_per_worker: int,
    *,
    start_method: StartMethod = "fork",
    timeout: float = 10.0,
) -> list[str]:
    """Let `workers` processes append lines to a shared board; every line that arrived."""
    # TODO(kata): `with context.Manager() as manager:` board = manager.Namespace(); board.lines
    # = manager.list() (not []); start_all write_lines; join_all; return list(board.lines).
    raise NotImplementedError


# -- 3. a custom manager serving one object ---------------------------------------------------


class Inventory:
    """Stock counts per item; served by InventoryManager, one instance for all clients."""

    def __init__(self) -> None:
        self._stock: dict[str, int] = {}
        # The server runs each client's requests in its own thread.
        self._lock = threading.Lock()

    def add(self, item: str, count: int) -> None:
        """Add `count` units of `item` (one request: the addition happens here, whole)."""
        with self._lock:
            self._stock[item] = self._stock.get(item, 0) + count

    def count(self, item: str) -> int:
        """How many units of `item` are in stock."""
        with self._lock:
            return self._stock.get(item, 0)

    def set_count(self, item: str, count: int) -> None:
        """Overwrite the stock of `item`."""
        with self._lock:
            self._stock[item] = count

    def snapshot(self) -> dict[str, int]:
        """A copy of every stock count."""
        with self._lock:
            return dict(self._stock)


_INVENTORY = Inventory()


def the_inventory() -> Inventory:
    """The one Inventory of this (server) process."""
    return _INVENTORY


class InventoryManager(BaseManager):
    """Serves the_inventory() to every client as `manager.inventory()`."""


InventoryManager.register("inventory", callable=the_inventory)


def start_inventory_server(
    authkey: bytes, *, start_method: StartMethod = "fork"
) -> InventoryManager:
    """Start an InventoryManager server on 127.0.0.1 (any free port) that requires `authkey`."""
    # TODO(kata): InventoryManager(address=("127.0.0.1", 0), authkey=authkey,
    # ctx=multiprocessing.get_context(start_method)); start() it and return it.
    raise NotImplementedError


def connect_to_inventory(address: tuple[str, int], authkey: bytes) -> Any:
    """A proxy to the inventory served at `address`; AuthenticationError for a wrong key."""
    # TODO(kata): InventoryManager(address=address, authkey=authkey); connect(); return its
    # inventory().
    raise NotImplementedError


def restock(
    address: tuple[str, int], authkey: bytes, item: str, times: int, start: Barrier
) -> None:
    """Runs in a client process: connect, wait at `start`, add one unit of `item` `times` times."""
    # TODO(kata): connect_to_inventory; start.wait(timeout); then `times` calls of
    # inventory.add(item, 1) (one request each, done whole in the server).
    raise NotImplementedError
