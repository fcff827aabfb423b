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

import multiprocessing
import threading
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
    for _ in range(times):
        # Read, add and write under the value's own lock: no other process can slip in between.
        with counter.get_lock():
            counter.value += 1


def _start_then_add(start: Barrier, counter: Synchronized[int], times: int) -> None:
    start.wait(10.0)
    add_many(counter, times)


def count_together(
    workers: int, times: int, *, start_method: StartMethod = "fork", timeout: float = 10.0
) -> int:
    """Let `workers` processes add 1 to one shared value `times` times each; the final value."""
    deadline = time.monotonic() + timeout
    context = multiprocessing.get_context(start_method)
    # The default lock of a Value is an RLock: `.value` may take it again inside get_lock().
    counter = context.Value("i", 0)
    # A start line, so that every child really runs at the same time as the others.
    start = context.Barrier(workers)
    children = start_all(context, _start_then_add, [(start, counter, times)] * workers)
    join_all(children, deadline)
    return int(counter.value)


# -- 2. a barrier, and an Array for the results ------------------------------------------------


def stamp_at_barrier(
    barrier: Barrier, stamps: SynchronizedArray[float], index: int, delay: float, timeout: float
) -> None:
    """Runs in child `index`: sleep, stamp the arrival, wait for all, stamp the departure."""
    time.sleep(delay)
    stamps[2 * index] = time.monotonic()
    # Nobody passes until all parties have arrived; a broken barrier leaves the departure at 0.
    try:
        barrier.wait(timeout)
    except threading.BrokenBarrierError:
        return
    stamps[2 * index + 1] = time.monotonic()


def meet(
    parties: int,
    *,
    stagger: float = 0.3,
    start_method: StartMethod = "fork",
    timeout: float = 10.0,
) -> list[tuple[float, float]]:
    """Child i arrives after i * stagger s and waits for all; [(arrival, departure)] per child."""
    deadline = time.monotonic() + timeout
    context = multiprocessing.get_context(start_method)
    # Each child writes only its own two slots, so the Array needs no lock of its own.
    stamps = context.Array("d", 2 * parties, lock=False)
    # One barrier for exactly as many parties as there are children.
    barrier = context.Barrier(parties)
    children = start_all(
        context,
        stamp_at_barrier,
        [(barrier, stamps, index, index * stagger, timeout) for index in range(parties)],
    )
    join_all(children, deadline)
    return [(stamps[2 * index], stamps[2 * index + 1]) for index in range(parties)]


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
    # Nobody moves before the caller says go.
    if not go.wait(timeout):
        return
    # The semaphore admits room_size visitors at a time; the exit stamp is written inside.
    with room:
        visits[2 * index] = time.monotonic()
        time.sleep(hold)
        visits[2 * index + 1] = time.monotonic()


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
    deadline = time.monotonic() + timeout
    context = multiprocessing.get_context(start_method)
    visits = context.Array("d", 2 * visitors, lock=False)
    # At most room_size holders at once: that is exactly what a counting semaphore is.
    room = context.Semaphore(room_size)
    children = start_all(
        context, visit, [(go, room, visits, index, hold, timeout) for index in range(visitors)]
    )
    join_all(children, deadline)
    return [(visits[2 * index], visits[2 * index + 1]) for index in range(visitors)]


# -- 4. a Condition: wait until every worker has reported --------------------------------------


def report_and_stay(
    condition: Condition, reported: Synchronized[int], release: Event, delay: float, timeout: float
) -> None:
    """Runs in each worker: sleep `delay`, report under the condition, stay until released."""
    time.sleep(delay)
    # Change the count and notify under the condition's lock, so no waiter misses the change.
    with condition:
        reported.value += 1
        condition.notify_all()
    release.wait(timeout)


def wait_for_reports(
    workers: int,
    *,
    stagger: float = 0.1,
    start_method: StartMethod = "fork",
    timeout: float = 10.0,
) -> int:
    """Wait (on a Condition) until all workers have reported; return the count seen."""
    deadline = time.monotonic() + timeout
    context = multiprocessing.get_context(start_method)
    condition = context.Condition()
    # The condition's lock guards the count, so the Value needs no lock of its own.
    reported = context.Value("i", 0, lock=False)
    release = context.Event()
    children = start_all(
        context,
        report_and_stay,
        [(condition, reported, release, index * stagger, timeout) for index in range(workers)],
    )
    try:
        # wait_for re-checks the predicate after every wake-up, until it holds or time runs out.
        with condition:
            condition.wait_for(lambda: reported.value >= workers, timeout)
            seen = int(reported.value)
    finally:
        release.set()
        join_all(children, deadline)
    return seen
