"""Kata `semaphores`: a bounded connection pool, and a semaphore used as a signal."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from semaphores import ConnectionPool, Handoff, PoolTimeout

from plugins.probe import Prober, scenario_settings

# Under the probe, time.sleep and every timeout run on a virtual clock: these cost no real time.
USE_SECONDS = 0.1
MEETING_TIMEOUT = 1.0
# The three-thread pool scenario explores fewer schedules than the default to keep the file
# fast; every known bug it looks for shows up within its first 10 schedules for each seed tried.
POOL_SCHEDULES = 150
# Drawn scenarios: Hypothesis draws the pool's size, how many whole virtual seconds its holders
# keep every connection, and the waiter's timeout and way in (acquire or connection); the probe
# explores each. The waiter comes USE_SECONDS after the holders, so its wait (a whole number of
# seconds minus 0.1) never ties with a whole-second timeout. The outcome hardly depends on the
# interleaving, so each drawn scenario explores few schedules.
DRAWN_EXAMPLES = 10
DRAWN_SCHEDULES = 8
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


EMPTY_LIST = (
    "acquire() popped from an empty idle list: it took a connection that was not there. Take a "
    "slot first (the semaphore says a connection is idle), then pop under the idle lock; and "
    "release() must put the connection back on the list before, or while, it frees the slot: a "
    "slot freed first lets a waiter in to an empty list"
)


def _acquire_timed(
    pool: ConnectionPool, timeout: float | None, *, through: str = "acquire"
) -> tuple[str, float]:
    """What pool.acquire(timeout) (or entering pool.connection(timeout), when `through` says so)
    did, in words, and the virtual seconds it took."""
    started = time.monotonic()
    try:
        if through == "connection":
            with pool.connection() if timeout is None else pool.connection(timeout=timeout):
                pass
        else:
            pool.acquire() if timeout is None else pool.acquire(timeout=timeout)
    except PoolTimeout:
        outcome = "raised PoolTimeout"
    except TimeoutError as error:
        outcome = f"raised {type(error).__name__}, not PoolTimeout"
    except IndexError:
        outcome = "was let in with no idle connection (IndexError)"
    else:
        outcome = "got a connection"
    return outcome, round(time.monotonic() - started, 6)


def _never_empty_handed(outcome: str, waited: float, timeout: float | None = None) -> None:
    __tracebackhide__ = True
    if timeout is not None and waited >= timeout:
        assert "IndexError" not in outcome, (
            f"acquire(timeout={timeout:g}) waited {waited:g} s, got no slot, and then popped from "
            f"the empty idle list anyway: look at what self._slots.acquire(timeout=timeout) "
            f"returned. False means no slot came in time: raise PoolTimeout"
        )
    assert "IndexError" not in outcome, EMPTY_LIST


WAITS_HOLDING_THE_LIST = (
    "a thread waited for the pool's only connection while another held it. Wait for a slot "
    "before taking the idle list's lock: a waiter holding that lock keeps out every release() "
    "that could wake it."
)


def _hold_a_connection(seconds: float) -> Callable[[ConnectionPool], None]:
    def hold(pool: ConnectionPool) -> None:
        with pool.connection():
            time.sleep(seconds)

    return hold


def _after_the_holders(
    call: Callable[[ConnectionPool], object],
) -> Callable[[ConnectionPool], object]:
    def worker(pool: ConnectionPool) -> object:
        time.sleep(USE_SECONDS)  # let the holders take every connection first
        return call(pool)

    return worker


@pytest.mark.probe
@pytest.mark.clause(1, 7)
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
@pytest.mark.clause(2)
def test_acquire_without_a_timeout_waits_as_long_as_it_takes(probe: Prober) -> None:
    def served_late(_pool: ConnectionPool, results: list[object]) -> None:
        outcome, waited = results[1]  # type: ignore[misc]
        _never_empty_handed(outcome, waited)
        assert (outcome, waited) == ("got a connection", 4.9), (
            f"the only connection was busy for 5 s; acquire() with no timeout {outcome} after "
            f"{waited:g} s instead of getting it after 4.9 s. Without a timeout it must wait "
            f"for as long as it takes: pass the timeout by name, "
            f"self._slots.acquire(timeout=timeout) (acquire(timeout) puts it in `blocking`, "
            f"and None there means 'do not wait')"
        )

    workers = {
        "holder": _hold_a_connection(5.0),
        "waiter": _after_the_holders(lambda pool: _acquire_timed(pool, None)),
    }
    probe.explore(
        lambda: ConnectionPool(1),
        workers,
        served_late,
        budget=min(probe.budget, 25),
        explain={"deadlock": WAITS_HOLDING_THE_LIST},
    )


@pytest.mark.probe
@pytest.mark.clause(4)
def test_never_more_holders_than_connections_and_never_one_connection_twice(probe: Prober) -> None:
    def within_bounds(office: Office, _results: list[object]) -> None:
        assert office.empty_handed == 0, (
            f"the pool let a holder in while no connection was idle ({office.empty_handed} "
            f"time(s)): the slot count and the idle list disagree. release() must put the "
            f"connection back before (or while) it frees the slot, under the idle lock"
        )
        assert not office.shared, f"connections {office.shared} were held by two threads at once"
        assert office.peak <= 2, (
            f"{office.peak} threads held connections of a pool of 2 at once: the semaphore "
            f"must start at `size` and be taken before a connection is handed out"
        )

    workers = {f"user-{i}": _use for i in range(3)}
    probe.explore(
        lambda: Office(2), workers, within_bounds, budget=min(probe.budget, POOL_SCHEDULES)
    )


@pytest.mark.probe
@pytest.mark.clause(5)
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
@pytest.mark.clause(1, 2)
def test_a_full_pool_hands_a_released_connection_to_the_next_waiter(probe: Prober) -> None:
    def use_once(pool: ConnectionPool) -> object:
        try:
            with pool.connection() as connection:
                time.sleep(USE_SECONDS)
                return connection.number
        except IndexError:
            return "empty list"
        except TimeoutError as error:
            return f"{type(error).__name__} without a timeout"

    def both_served(_pool: ConnectionPool, results: list[object]) -> None:
        assert "empty list" not in results, EMPTY_LIST
        assert results == [0, 0], (
            f"two threads sharing a pool of one connection got {results}, expected [0, 0]: "
            f"the second must wait for the first to give the connection back. connection() "
            f"without a timeout waits as long as it takes (self._slots.acquire(timeout=None) "
            f"does; acquire(None) puts None in `blocking`, which means 'do not wait')"
        )

    # A thread that waits for a slot while it holds the idle lock keeps every release() out:
    # the probe reports that deadlock, naming the lock and the semaphore.
    probe.explore(
        lambda: ConnectionPool(1),
        [use_once, use_once],
        both_served,
        explain={
            "deadlock": WAITS_HOLDING_THE_LIST,
        },
    )


@pytest.mark.probe
@pytest.mark.clause(3)
def test_acquire_gives_up_with_pool_timeout_once_its_timeout_has_passed(probe: Prober) -> None:
    def timed_out(_pool: ConnectionPool, results: list[object]) -> None:
        outcome, waited = results[1]  # type: ignore[misc]
        _never_empty_handed(outcome, waited, 1.0)
        assert (outcome, waited) == ("raised PoolTimeout", 1.0), (
            f"the only connection was busy for 1.25 s; acquire(timeout=1) {outcome} after "
            f"{waited:g} s. It must wait the whole 1 s, then raise PoolTimeout: check what the "
            f"semaphore's acquire(timeout=timeout) returned (False: no slot came in time)"
            + (" and raise PoolTimeout itself" if "not PoolTimeout" in outcome else "")
        )

    workers = {
        "holder": _hold_a_connection(1.25),
        "impatient": _after_the_holders(lambda pool: _acquire_timed(pool, 1.0)),
    }
    probe.explore(lambda: ConnectionPool(1), workers, timed_out, budget=min(probe.budget, 25))


@pytest.mark.probe
@pytest.mark.clause(3)
def test_acquire_gets_a_connection_that_comes_back_just_before_its_timeout(
    probe: Prober,
) -> None:
    def served(_pool: ConnectionPool, results: list[object]) -> None:
        outcome, waited = results[1]  # type: ignore[misc]
        _never_empty_handed(outcome, waited, 1.0)
        assert (outcome, waited) == ("got a connection", 0.9), (
            f"the only connection came back 0.9 s into acquire(timeout=1), yet acquire "
            f"{outcome} after {waited:g} s: wait for a slot up to the timeout, "
            f"self._slots.acquire(timeout=timeout), and take the connection it announces"
        )

    workers = {
        "holder": _hold_a_connection(1.0),
        "patient": _after_the_holders(lambda pool: _acquire_timed(pool, 1.0)),
    }
    probe.explore(lambda: ConnectionPool(1), workers, served, budget=min(probe.budget, 25))


@pytest.mark.probe
@pytest.mark.clause(7)
def test_connection_passes_its_timeout_to_acquire(probe: Prober) -> None:
    def within_the_block(pool: ConnectionPool) -> tuple[str, float]:
        started = time.monotonic()
        try:
            with pool.connection(timeout=1.0):
                outcome = "got a connection"
        except PoolTimeout:
            outcome = "raised PoolTimeout"
        return outcome, round(time.monotonic() - started, 6)

    def timed_out(_pool: ConnectionPool, results: list[object]) -> None:
        outcome, waited = results[1]  # type: ignore[misc]
        _never_empty_handed(outcome, waited, 1.0)
        assert (outcome, waited) == ("raised PoolTimeout", 1.0), (
            f"the only connection was busy for 5 s; `with pool.connection(timeout=1):` "
            f"{outcome} after {waited:g} s instead of raising PoolTimeout after 1 s: pass "
            f"connection()'s timeout on to acquire(timeout)"
        )

    workers = {
        "holder": _hold_a_connection(5.0),
        "impatient": _after_the_holders(within_the_block),
    }
    probe.explore(lambda: ConnectionPool(1), workers, timed_out, budget=min(probe.budget, 25))


def _asked(through: str, timeout: float | None) -> str:
    """The waiter's call, as the learner would write it."""
    argument = "" if timeout is None else f"timeout={timeout:g}"
    if through == "connection":
        return f"`with pool.connection({argument}):`"
    return f"pool.acquire({argument})"


def _full_pool(
    size: int, hold: int, waiter: Callable[[ConnectionPool], object]
) -> dict[str, Callable[[ConnectionPool], object]]:
    """`size` holders keep every connection of the pool for `hold` s; then `waiter` asks."""
    workers: dict[str, Callable[[ConnectionPool], object]] = {
        f"holder-{n + 1}": _hold_a_connection(hold) for n in range(size)
    }
    workers["waiter"] = _after_the_holders(waiter)
    return workers


@pytest.mark.probe
@pytest.mark.clause(3, 7)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(
    size=st.integers(1, 3),
    hold=st.integers(1, 8),
    timeout=st.integers(0, 8),
    through=st.sampled_from(["acquire", "connection"]),
)
def test_a_waiter_on_a_full_pool_is_served_or_gives_up_exactly_at_its_timeout(
    probe: Prober, size: int, hold: int, timeout: int, through: str
) -> None:
    back_after = round(hold - USE_SECONDS, 6)  # when, for the waiter, a connection comes back
    expected = (
        ("got a connection", back_after)
        if back_after < timeout
        else ("raised PoolTimeout", timeout)
    )
    asked = _asked(through, timeout)

    def judged(_pool: ConnectionPool, results: list[object]) -> None:
        outcome, waited = results[-1]  # type: ignore[misc]
        _never_empty_handed(outcome, waited, timeout)
        if expected[0] == "raised PoolTimeout" and timeout == 0:
            hint = (
                "a timeout of 0 means 'do not wait at all', not 'no timeout': pass it on as it "
                "is (`timeout or None` turns 0 into 'wait for ever')"
            )
        elif expected[0] == "raised PoolTimeout":
            hint = (
                "wait for a slot with self._slots.acquire(timeout=timeout); False means none "
                "came in time: raise PoolTimeout"
            )
        else:
            hint = "wait for a slot up to the timeout, and take the connection it announces"
        assert (outcome, waited) == expected, (
            f"every connection of a pool of {size} was busy for another {back_after:g} s; "
            f"{asked} {outcome} after {waited:g} s, expected: {expected[0]} after "
            f"{expected[1]:g} s. {hint}"
        )

    probe.explore(
        lambda: ConnectionPool(size),
        _full_pool(size, hold, lambda pool: _acquire_timed(pool, timeout, through=through)),
        judged,
        budget=min(probe.budget, DRAWN_SCHEDULES),
        explain={"deadlock": WAITS_HOLDING_THE_LIST},
    )


@pytest.mark.probe
@pytest.mark.clause(2, 7)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(
    size=st.integers(1, 3),
    hold=st.integers(1, 120),
    through=st.sampled_from(["acquire", "connection"]),
)
def test_a_waiter_without_a_timeout_waits_however_long_the_pool_stays_full(
    probe: Prober, size: int, hold: int, through: str
) -> None:
    back_after = round(hold - USE_SECONDS, 6)
    asked = _asked(through, None)

    def served(_pool: ConnectionPool, results: list[object]) -> None:
        outcome, waited = results[-1]  # type: ignore[misc]
        _never_empty_handed(outcome, waited)
        assert (outcome, waited) == ("got a connection", back_after), (
            f"every connection of a pool of {size} was busy for another {back_after:g} s; "
            f"{asked} {outcome} after {waited:g} s instead of getting one after "
            f"{back_after:g} s. Without a timeout it must wait for as long as it takes: no "
            f"default timeout, however generous, and self._slots.acquire(timeout=None)"
        )

    probe.explore(
        lambda: ConnectionPool(size),
        _full_pool(size, hold, lambda pool: _acquire_timed(pool, None, through=through)),
        served,
        budget=min(probe.budget, DRAWN_SCHEDULES),
        explain={"deadlock": WAITS_HOLDING_THE_LIST},
    )


@pytest.mark.probe
@pytest.mark.clause(8)
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


@pytest.mark.clause(6)
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
        f"Connection(0) and Connection(1). Free the slot first: the BoundedSemaphore raises "
        f"before the connection is put on the idle list a second time"
    )


class Mail:
    """A handoff, plus the items its consumer received."""

    def __init__(self) -> None:
        self.handoff: Handoff[str] = Handoff()


HANDOFF_STUCK = (
    "the producer and the consumer each waited on a semaphore that nobody would release. The "
    "free-places semaphore starts at 1 (one empty place) and the ready-items one at 0; put() "
    "acquires free places and releases ready items, take() does the reverse."
)


@pytest.mark.probe
@pytest.mark.clause(9)
def test_take_waits_for_the_put_that_signals_it(probe: Prober) -> None:
    def received(_mail: Mail, results: list[object]) -> None:
        assert results[0] == "parcel", (
            f"take() returned {results[0]!r} instead of the 'parcel' another thread put: it "
            f"read the place before the item was there. The semaphore that counts ready items "
            f"must start at 0, so a take() before any put() blocks, and put() must release it "
            f"only after it has stored the item"
        )

    workers: dict[str, Callable[[Mail], object]] = {
        "consumer": lambda mail: mail.handoff.take(),
        "producer": lambda mail: mail.handoff.put("parcel"),
    }
    probe.explore(Mail, workers, received, explain={"deadlock": HANDOFF_STUCK})


@pytest.mark.probe
@pytest.mark.clause(10)
def test_every_item_is_taken_once_and_in_order(probe: Prober) -> None:
    def produce(mail: Mail) -> None:
        for item in ("a", "b"):
            mail.handoff.put(item)

    def consume(mail: Mail) -> list[str]:
        return [mail.handoff.take() for _ in range(2)]

    def in_order(_mail: Mail, results: list[object]) -> None:
        assert results[1] == ["a", "b"], (
            f"the consumer took {results[1]} after the producer put 'a' and 'b': an item was "
            f"overwritten before it was taken. put() must wait on the semaphore of free places "
            f"(it starts at 1) before storing, and take() must read the item before it "
            f"releases that place"
        )

    probe.explore(
        Mail,
        {"producer": produce, "consumer": consume},
        in_order,
        explain={"deadlock": HANDOFF_STUCK},
    )


@pytest.mark.probe
@pytest.mark.clause(10)
def test_two_producers_and_two_consumers_pass_every_item_exactly_once(probe: Prober) -> None:
    def produce(*items: str) -> Callable[[Mail], None]:
        def worker(mail: Mail) -> None:
            for item in items:
                mail.handoff.put(item)

        return worker

    def consume(mail: Mail) -> list[str]:
        return [mail.handoff.take() for _ in range(2)]

    def each_once(_mail: Mail, results: list[object]) -> None:
        taken = sorted(item for got in results[2:] for item in got)  # type: ignore[union-attr]
        assert taken == ["a1", "a2", "b1", "b2"], (
            f"two producers put a1, a2 and b1, b2 and two consumers took {results[2:]}: every "
            f"item must be taken exactly once. One free place (a semaphore of 1) lets only one "
            f"put() at a time fill it, and the ready semaphore lets one take() read it"
        )

    workers = {
        "producer-a": produce("a1", "a2"),
        "producer-b": produce("b1", "b2"),
        "consumer-1": consume,
        "consumer-2": consume,
    }
    probe.explore(
        Mail,
        workers,
        each_once,
        budget=min(probe.budget, POOL_SCHEDULES),
        explain={"deadlock": HANDOFF_STUCK},
    )
