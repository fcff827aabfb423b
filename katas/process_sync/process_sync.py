"""Kata `process_sync`: locks, barriers, events, semaphores and conditions across processes.

Each child process runs one of the module-level functions on the left; the parent runs the one
on the right, which creates the primitives, starts the children with the given `start_all` and
joins them with the given `join_all`. `join_all` joins every child by a deadline and, when one
is late, kills them all and raises `TimeoutError`.

Contract (the tests check each point):

- Every parent function (`count_together`, `meet`, `crowd`, `wait_for_reports`):
  §1 A parent function raises `TimeoutError`, leaving no child running, when its children are
  not all done `timeout` seconds after it began: it hands `join_all` the deadline
  `time.monotonic() + timeout`, a moment on the clock, not a number of seconds.
- `add_many(counter, times)` / `count_together(workers, times)`:
  §2 `count_together` starts `workers` processes that meet at one `Barrier(workers)` (the given
  `_start_then_add` waits there) and then each add 1 to one shared `Value("i", 0)` `times`
  times with `add_many`; it returns the final value, `workers * times`.
  §3 `add_many` holds the value's own lock (`counter.get_lock()`) around each whole
  read-add-write, so that no increment is lost while other processes add to the same value.
  §4 `count_together` keeps the value's default lock, a re-entrant `RLock`: `counter.value`
  takes that lock again inside `with counter.get_lock():`, where a plain `Lock` would wait for
  itself forever.
- `stamp_at_barrier(barrier, stamps, index, delay, timeout)` / `meet(parties, stagger)`:
  §5 `stamp_at_barrier` sleeps `delay` seconds, writes its arrival time (`time.monotonic()`)
  into `stamps[2 * index]`, waits at `barrier`, then writes its departure time into
  `stamps[2 * index + 1]`.
  §6 `stamp_at_barrier` waits at the barrier at most `timeout` seconds; when the barrier breaks
  (`threading.BrokenBarrierError`: the time ran out, or another party gave up) it returns
  without a departure stamp, leaving that slot 0.
  §7 `meet` starts `parties` children, child `i` with the delay `i * stagger`, all waiting at
  one `Barrier(parties)`, and returns one `(arrival, departure)` pair per child, in child order.
  §8 In `meet`, no child leaves the barrier before the last one has arrived.
- `visit(go, room, visits, index, hold, timeout)` / `crowd(go, visitors, room_size, hold)`:
  §9 `visit` waits for the `go` Event at most `timeout` seconds and, when `go` was not set by
  then, returns without entering the room.
  §10 `visit` enters the room by taking the `room` Semaphore, and holds it while it writes its
  entry time into `visits[2 * index]`, stays `hold` seconds and writes its exit time into
  `visits[2 * index + 1]`.
  §11 `crowd` starts `visitors` children sharing one `Semaphore(room_size)` and returns one
  `(entry, exit)` pair per child, in child order: nobody enters before `go` is set (by the
  caller, maybe later), and the room holds up to `room_size` visitors at once, never more.
- `report_and_stay(condition, reported, release, delay, timeout)` /
  `wait_for_reports(workers, stagger)`:
  §12 `report_and_stay` sleeps `delay` seconds, then, holding `condition`, adds 1 to the shared
  count `reported` and calls `notify_all()`.
  §13 `report_and_stay` then stays alive until the `release` Event is set (at most `timeout`
  seconds): a parent that joins the workers instead of waiting on the condition waits in vain.
  §14 `wait_for_reports` starts worker `i` with the delay `i * stagger` and waits on the
  `Condition` (never by polling, never by joining), re-checking the count after every wake-up,
  until all `workers` have reported; it returns that count as soon as the last report came,
  then sets `release` and joins the workers.
"""

from __future__ import annotations

import multiprocessing  # noqa: F401  (imported for you: your code will need it)
import threading  # noqa: F401  (imported for you: your code will need it)
import time
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from multiprocessing.synchronize import Barrier, Condition, Event, Semaphore
from typing import Any, Literal

# The start methods a caller may choose (`fork` and `forkserver` exist on POSIX only).
StartMethod = Literal["spawn", "fork", "forkserver"]


# -- given: starting and stopping the children --------------------------------------------


def start_all(
    context: BaseContext, target: Any, argument_lists: list[tuple[Any, ...]]
) -> list[BaseProcess]:
    """Start one child per argument tuple, each running `target(*arguments)`."""
    # (typeshed's BaseContext lacks `Process`, which every real context has: hence the ignore)
    children: list[BaseProcess] = [
        context.Process(target=target, args=arguments)  # type: ignore[attr-defined]
        for arguments in argument_lists
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


# -- 1. a shared counter: Value, get_lock() and why it is an RLock ---------------------------


def add_many(counter: Synchronized[int], times: int) -> None:
    """Runs in each child: add 1 to `counter`, `times` times, losing none."""
    # TODO(kata): add 1, `times` times; hold counter.get_lock() around each read-add-write.
    raise NotImplementedError


def _start_then_add(start: Barrier, counter: Synchronized[int], times: int) -> None:
    start.wait(10.0)
    add_many(counter, times)


def count_together(
    workers: int, times: int, *, start_method: StartMethod = "fork", timeout: float = 10.0
) -> int:
    """Let `workers` processes add 1 to one shared value `times` times each; the final value."""
    # TODO(kata): a context; Value("i", 0) (keep its default lock); a Barrier(workers) as the
    # start line; start_all(context, _start_then_add, ...); join_all by the deadline; the value.
    raise NotImplementedError


# -- 2. a barrier, and an Array for the results ------------------------------------------------


def stamp_at_barrier(
    barrier: Barrier, stamps: SynchronizedArray[float], index: int, delay: float, timeout: float
) -> None:
    """Runs in child `index`: sleep, stamp the arrival, wait for all, stamp the departure."""
    # TODO(kata): sleep `delay`; stamps[2 * index] = monotonic(); barrier.wait(timeout) (on
    # BrokenBarrierError just return); stamps[2 * index + 1] = monotonic().
    raise NotImplementedError


def meet(
    parties: int,
    *,
    stagger: float = 0.3,
    start_method: StartMethod = "fork",
    timeout: float = 10.0,
) -> list[tuple[float, float]]:
    """Child i arrives after i * stagger s and waits for all; [(arrival, departure)] per child."""
    # TODO(kata): an Array("d", 2 * parties) and a Barrier(parties); start child i with delay
    # i * stagger; join_all by the deadline; return the (arrival, departure) pairs.
    raise NotImplementedError


# -- 3. an Event to start, a Semaphore to limit ------------------------------------------------


def visit(
    go: Event,
    room: Semaphore,
    visits: SynchronizedArray[float],
    index: int,
    hold: float,
    timeout: float,
) -> None:
    """Runs in visitor `index`: wait for go, then enter the room, stay `hold` s, leave."""
    # TODO(kata): return unless go.wait(timeout); then `with room:` stamp the entry, sleep
    # `hold`, stamp the exit (visits[2 * index], visits[2 * index + 1]).
    raise NotImplementedError


def crowd(
    go: Event,
    visitors: int,
    room_size: int,
    *,
    hold: float = 0.3,
    start_method: StartMethod = "fork",
    timeout: float = 10.0,
) -> list[tuple[float, float]]:
    """`visitors` children wait for `go`, then share a room of `room_size`; [(entry, exit)]."""
    # TODO(kata): an Array("d", 2 * visitors) and a Semaphore(room_size); start the visitors;
    # join_all by the deadline; return the (entry, exit) pairs.
    raise NotImplementedError


# -- 4. a Condition: wait until every worker has reported --------------------------------------


def report_and_stay(
    condition: Condition, reported: Synchronized[int], release: Event, delay: float, timeout: float
) -> None:
    """Runs in each worker: sleep `delay`, report under the condition, stay until released."""
    # TODO(kata): sleep `delay`; `with condition:` add 1 to reported.value and notify_all();
    # then release.wait(timeout).
    raise NotImplementedError


def wait_for_reports(
    workers: int,
    *,
    stagger: float = 0.1,
    start_method: StartMethod = "fork",
    timeout: float = 10.0,
) -> int:
    """Wait (on a Condition) until all workers have reported; return the count seen."""
    # TODO(kata): a Condition, a Value("i", 0, lock=False) and a release Event; start worker i
    # with delay i * stagger; `with condition:` wait_for(all reported, timeout) and read the
    # count; in a `finally`, set release and join_all; return the count.
    raise NotImplementedError
