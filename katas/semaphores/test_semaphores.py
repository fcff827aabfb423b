"""Kata `semaphores`: a bounded connection pool, and a semaphore used as a signal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from semaphores import ConnectionPool, Handoff, PoolTimeout

from plugins.probe import Prober

# Under the probe, time.sleep and every timeout run on a virtual clock: these cost no real time.
USE_SECONDS = 0.1
MEETING_TIMEOUT = 1.0
# The three-thread pool scenario explores fewer schedules than the default to keep the file
# fast; every known bug it looks for shows up within its first 10 schedules for each seed tried.
POOL_SCHEDULES = 150
# Real-time bound of the one test that runs outside the probe: acquiring an idle connection
# returns at once, so only a pool that wrongly blocks ever reaches it.
REAL_TIMEOUT = 1.0


class Office:
    """A pool plus what the tests record about its holders."""

    def __init__(self, size: int) -> None:
        self.pool = ConnectionPool(size)
        self.holding: set[int] = set()
        self.peak = 0
        self.shared: list[int] = []
        self.empty_handed = 0
        self.arrived = [threading.Event() for _ in range(size)]


RETURNED_TOO_LATE = (
    "two threads shared a pool of one connection, so the second had to get the very connection "
    "the first gave back. Put the connection back on the idle list before, or while, freeing "
    "its slot: a slot freed first lets the waiter in to an empty list."
)


def _use(office: Office) -> None:
    """Take a connection, note who holds what, work a little, give it back."""
    try:
        with office.pool.connection() as connection:
            if connection.number in office.holding:
                office.shared.append(connection.number)
            office.holding.add(connection.number)
            office.peak = max(office.peak, len(office.holding))
            time.sleep(USE_SECONDS)
            office.holding.discard(connection.number)
    except IndexError:
        office.empty_handed += 1  # let in, but the idle list was empty


@pytest.mark.probe
def test_connections_are_handed_out_and_taken_back(probe: Prober) -> None:
    def use(pool: ConnectionPool) -> list[int]:
        first = pool.acquire()
        second = pool.acquire()
        pool.release(first)
        with pool.connection() as third:
            numbers = [first.number, second.number, third.number]
        pool.release(second)
        return numbers

    def fine(_pool: ConnectionPool, results: list[object]) -> None:
        numbers = results[0]
        assert isinstance(numbers, list)
        assert sorted(numbers[:2]) == [0, 1], (
            f"two acquire() calls on a pool of 2 gave connections {numbers[:2]}, expected "
            f"Connection(0) and Connection(1) in any order"
        )
        assert numbers[2] == numbers[0], (
            f"after the first connection was released, connection() gave {numbers[2]}: the "
            f"released connection {numbers[0]} is the only idle one"
        )

    probe.explore(lambda: ConnectionPool(2), [use], fine, budget=1)


@pytest.mark.probe
def test_never_more_holders_than_connections_and_never_one_connection_twice(probe: Prober) -> None:
    def within_bounds(office: Office, _results: list[object]) -> None:
        assert office.empty_handed == 0, (
            f"the pool let a holder in while no connection was idle ({office.empty_handed} "
            f"time(s)): the slot count and the idle list disagree. release() must put the "
            f"connection back before (or while) it frees the slot, under the idle lock"
        )
        assert not office.shared, f"connections {office.shared} were held by two threads at once"
        assert office.peak <= 2, f"{office.peak} threads held connections of a pool of 2 at once"

    workers = {f"user-{i}": _use for i in range(3)}
    probe.explore(
        lambda: Office(2), workers, within_bounds, budget=min(probe.budget, POOL_SCHEDULES)
    )


@pytest.mark.probe
def test_as_many_holders_as_connections_can_be_inside_at_once(probe: Prober) -> None:
    def meet(me: int, other: int) -> Callable[[Office], bool]:
        def worker(office: Office) -> bool:
            with office.pool.connection():
                office.arrived[me].set()
                return office.arrived[other].wait(MEETING_TIMEOUT)

        return worker

    def they_met(_office: Office, results: list[object]) -> None:
        assert results == [True, True], (
            f"two threads each holding a connection of a pool of 2 waited {MEETING_TIMEOUT:g} "
            f"s for the other to get one too, in vain (results {results}): the pool lets only "
            f"one holder in. A counting semaphore of `size` admits `size` threads; a lock, or "
            f"a semaphore of 1, admits one"
        )

    # Whether the two can meet does not depend on the interleaving, only on how many the pool
    # admits, so a few schedules are enough.
    workers = {"first": meet(0, 1), "second": meet(1, 0)}
    probe.explore(lambda: Office(2), workers, they_met, budget=min(probe.budget, 25))


@pytest.mark.probe
def test_a_full_pool_hands_a_released_connection_to_the_next_waiter(probe: Prober) -> None:
    def use_once(pool: ConnectionPool) -> int:
        with pool.connection() as connection:
            time.sleep(USE_SECONDS)
            return connection.number

    def both_served(_pool: ConnectionPool, results: list[object]) -> None:
        assert results == [0, 0], (
            f"two threads sharing a pool of one connection got {results}, expected [0, 0]"
        )

    # A thread that waits for a slot while it holds the idle lock keeps every release() out:
    # the probe reports that deadlock, naming the lock and the semaphore.
    probe.explore(
        lambda: ConnectionPool(1),
        [use_once, use_once],
        both_served,
        explain={
            "deadlock": (
                "two threads shared a pool of one connection, so one had to wait until the "
                "other gave it back. Wait for a slot before taking the idle list's lock: a "
                "waiter holding it keeps out every release()."
            ),
            "invariant": RETURNED_TOO_LATE,
            "exception": RETURNED_TOO_LATE,
        },
    )


@pytest.mark.probe
def test_acquire_gives_up_with_pool_timeout_when_no_connection_comes_in_time(probe: Prober) -> None:
    def hold(pool: ConnectionPool) -> None:
        with pool.connection():
            time.sleep(5.0)

    def impatient(pool: ConnectionPool) -> tuple[str, float]:
        time.sleep(USE_SECONDS)  # let the holder take the only connection first
        started = time.monotonic()
        try:
            pool.acquire(timeout=1.0)
        except PoolTimeout:
            return "timed out", time.monotonic() - started
        except IndexError:
            return "was let in with no idle connection", time.monotonic() - started
        return "got a connection", time.monotonic() - started

    def timed_out(_pool: ConnectionPool, results: list[object]) -> None:
        outcome, waited = results[1]  # type: ignore[misc]
        assert (outcome, waited <= 1.5) == ("timed out", True), (
            f"the only connection was busy for 5 s; acquire(timeout=1) {outcome} after "
            f"{waited:g} s. It must raise PoolTimeout after about 1 s: check what the "
            f"semaphore's acquire(timeout=...) returned"
        )

    probe.explore(lambda: ConnectionPool(1), {"holder": hold, "impatient": impatient}, timed_out)


@pytest.mark.probe
def test_a_with_block_that_raises_still_gives_its_connection_back(probe: Prober) -> None:
    def fail_then_retry(pool: ConnectionPool) -> str:
        try:
            with pool.connection():
                raise RuntimeError("the query failed")
        except RuntimeError:
            pass
        try:
            pool.acquire(timeout=1.0)
        except PoolTimeout:
            return "the connection never came back"
        return "got it again"

    def returned(_pool: ConnectionPool, results: list[object]) -> None:
        assert results[0] == "got it again", (
            "after a `with pool.connection():` block raised, the pool's only connection never "
            "came back (acquire timed out): release it in a `finally`"
        )

    probe.explore(lambda: ConnectionPool(1), [fail_then_retry], returned, budget=1)


def test_releasing_more_than_was_acquired_raises_value_error_and_changes_nothing() -> None:
    pool = ConnectionPool(2)
    connection = pool.acquire(timeout=REAL_TIMEOUT)
    pool.release(connection)
    try:
        pool.release(connection)
    except ValueError:
        refused = True
    else:
        refused = False
    assert refused, (
        "release() of a connection when both connections were already idle did not raise "
        "ValueError: a plain Semaphore just counts up, and the pool would later let a third "
        "holder in. A BoundedSemaphore refuses to go above its initial value"
    )
    held = [pool.acquire(timeout=REAL_TIMEOUT) for _ in range(2)]
    assert sorted(c.number for c in held) == [0, 1], (
        f"after the refused release the pool handed out {held}: it must still hold exactly "
        f"Connection(0) and Connection(1)"
    )


class Mail:
    """A handoff, plus the items its consumer received."""

    def __init__(self) -> None:
        self.handoff: Handoff[str] = Handoff()


@pytest.mark.probe
def test_take_waits_for_the_put_that_signals_it(probe: Prober) -> None:
    def received(_mail: Mail, results: list[object]) -> None:
        assert results[0] == "parcel", (
            f"take() returned {results[0]!r} instead of the 'parcel' another thread put: it "
            f"did not wait for the signal. The semaphore that counts ready items must start "
            f"at 0, so a take() before any put() blocks until put() releases it"
        )

    workers: dict[str, Callable[[Mail], object]] = {
        "consumer": lambda mail: mail.handoff.take(),
        "producer": lambda mail: mail.handoff.put("parcel"),
    }
    probe.explore(Mail, workers, received)


@pytest.mark.probe
def test_every_item_is_taken_once_and_in_order(probe: Prober) -> None:
    def produce(mail: Mail) -> None:
        for item in ("a", "b"):
            mail.handoff.put(item)

    def consume(mail: Mail) -> list[str]:
        return [mail.handoff.take() for _ in range(2)]

    def in_order(_mail: Mail, results: list[object]) -> None:
        assert results[1] == ["a", "b"], (
            f"the consumer took {results[1]} after the producer put 'a' and 'b': put() left "
            f"an item before the previous one was taken, and overwrote it. Wait on the "
            f"semaphore of free places (it starts at 1) before storing the item"
        )

    probe.explore(Mail, {"producer": produce, "consumer": consume}, in_order)
