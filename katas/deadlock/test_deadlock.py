"""Kata `deadlock`: dining philosophers and transfers that back off instead of waiting forever."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import deadlock
import pytest
from deadlock import Account, Table, transfer_patiently, try_transfer

from plugins.probe import Prober

# Under the probe, time.sleep, time.monotonic and every timeout run on a virtual clock: the
# seconds below cost no real time, and the elapsed times the tests measure are exact.
MEAL_SECONDS = 0.1
MEETING_TIMEOUT = 1.0
# The transfer scenarios end the same way in every interleaving (the holder takes the lock
# first, then the clock decides), so a few schedules are enough to see them.
TRANSFER_SCHEDULES = 25
# Three philosophers have few ways to interleave that matter; 150 seeded schedules cover them
# many times over and keep the file fast.
DINING_SCHEDULES = 150


class Dinner:
    """A table plus what the tests record about the meals."""

    def __init__(self, seats: int) -> None:
        self.table = Table(seats)
        self.eating: set[int] = set()
        self.clashes: list[tuple[int, int]] = []
        self.started = [threading.Event() for _ in range(seats)]


def _philosopher(seat: int) -> Callable[[Dinner], object]:
    """A worker that dines at `seat` and notes any neighbour eating at the same time."""

    def dine(dinner: Dinner) -> object:
        def eat() -> str:
            seats = dinner.table.seats
            for neighbour in ((seat - 1) % seats, (seat + 1) % seats):
                if neighbour in dinner.eating:
                    dinner.clashes.append((seat, neighbour))
            dinner.eating.add(seat)
            time.sleep(MEAL_SECONDS)  # the meal takes time: others may run meanwhile
            dinner.eating.discard(seat)
            return "ate"

        return dinner.table.dine(seat, eat)

    return dine


@pytest.mark.probe
@pytest.mark.clause(1, 2)
def test_a_philosopher_eats_holding_both_forks_and_puts_them_down_afterwards(probe: Prober) -> None:
    def dine_at_the_last_seat(table: Table) -> tuple[object, list[bool]]:
        held = table.dine(3, lambda: [fork.locked() for fork in table.forks])
        return held, [fork.locked() for fork in table.forks]

    def both_forks_then_none(_table: Table, results: list[object]) -> None:
        held, after = results[0]  # type: ignore[misc]
        assert held is not None, (
            "dine() returned None instead of what eat() returned: `return eat()` inside the "
            "block that holds the forks"
        )
        assert held == [True, False, False, True], (
            f"while the philosopher at seat 3 of 4 ate, the forks held were {held} (fork 0 to "
            f"3): seat 3 sits between forks 3 and 0, and must hold exactly those two while "
            f"eat() runs"
        )
        assert not any(after), f"forks {after} were still held after dine() returned"

    probe.explore(
        lambda: Table(4),
        [dine_at_the_last_seat],
        both_forks_then_none,
        budget=1,
        explain={
            "exception": (
                "the philosopher at the last seat (3 of a table of 4) could not dine: that seat "
                "sits between fork 3 and fork 0, so its second fork is (seat + 1) % seats, which "
                "wraps round to 0, not seat + 1 (there is no fork 4)."
            )
        },
    )


@pytest.mark.probe
@pytest.mark.clause(4)
def test_neighbours_never_eat_at_the_same_time(probe: Prober) -> None:
    def no_shared_fork_in_two_hands(dinner: Dinner, _results: list[object]) -> None:
        assert not dinner.clashes, (
            f"(philosopher, neighbour) pairs {dinner.clashes} ate at the same time although "
            f"neighbours share a fork: hold both of your forks for the whole of eat()"
        )

    workers = {f"seat-{seat}": _philosopher(seat) for seat in range(3)}
    probe.explore(
        lambda: Dinner(3),
        workers,
        no_shared_fork_in_two_hands,
        budget=min(probe.budget, DINING_SCHEDULES),
    )


@pytest.mark.probe
@pytest.mark.clause(3)
def test_every_philosopher_can_dine_at_once_without_a_deadlock(probe: Prober) -> None:
    def everybody_ate(_dinner: Dinner, results: list[object]) -> None:
        assert results == ["ate"] * 3, f"the three philosophers' meals returned {results}"

    # A circle of philosophers who each hold one fork and wait for the next is reported as a
    # deadlock, and so is any lock-order cycle (fork a before b here, b before a there), even
    # in a schedule that happened to get through.
    workers = {f"seat-{seat}": _philosopher(seat) for seat in range(3)}
    probe.explore(
        lambda: Dinner(3),
        workers,
        everybody_ate,
        budget=min(probe.budget, DINING_SCHEDULES),
        explain={
            "deadlock": (
                "three philosophers dined at once. If each takes the fork on the same side first, "
                "all three can hold one fork and wait for the next one for ever: a circle of "
                "waiting. Take the lower-numbered fork first, so the last philosopher reaches for "
                "fork 0 before fork 2 and the circle cannot close."
            ),
            "lock-order": (
                "this schedule got through, but two philosophers took the same two forks in "
                "opposite orders, so another schedule can close a circle of waiting. Take the "
                "lower-numbered fork first, at every seat."
            ),
        },
    )


@pytest.mark.probe
@pytest.mark.clause(5)
def test_two_philosophers_who_are_not_neighbours_can_eat_at_the_same_time(probe: Prober) -> None:
    def meet_while_eating(seat: int, other: int) -> Callable[[Dinner], object]:
        def dine(dinner: Dinner) -> object:
            def eat() -> bool:
                dinner.started[seat].set()
                return dinner.started[other].wait(MEETING_TIMEOUT)

            return dinner.table.dine(seat, eat)

        return dine

    def they_met(_dinner: Dinner, results: list[object]) -> None:
        assert results == [True, True], (
            f"the philosophers at seats 0 and 2 of 4 share no fork, yet one of them waited "
            f"{MEETING_TIMEOUT:g} s while eating for the other to start eating, in vain "
            f"(results {results}): dine() holds more than the philosopher's two forks. A lock "
            f"around the whole table cannot deadlock, but it turns the dinner into a queue"
        )

    # Whether the two can meet does not depend on the interleaving, only on what dine() holds.
    workers = {"seat-0": meet_while_eating(0, 2), "seat-2": meet_while_eating(2, 0)}
    probe.explore(lambda: Dinner(4), workers, they_met, budget=min(probe.budget, 25))


@pytest.mark.probe
@pytest.mark.clause(2)
def test_a_meal_that_fails_still_puts_both_forks_down(probe: Prober) -> None:
    def spill(dinner: Dinner) -> str:
        def eat() -> str:
            raise RuntimeError("the soup spilled")

        try:
            dinner.table.dine(0, eat)
        except RuntimeError:
            return "spilled"
        return "no error"

    def forks_free(dinner: Dinner, results: list[object]) -> None:
        assert results == ["spilled", "ate"], (
            f"a meal that raised and the neighbour's meal gave {results}, expected the error "
            f"to reach the caller of dine() and the neighbour to eat"
        )
        held = [i for i, fork in enumerate(dinner.table.forks) if fork.locked()]
        assert not held, f"forks {held} were still held after both meals had ended"

    workers = {"clumsy": spill, "neighbour": _philosopher(1)}
    probe.explore(
        lambda: Dinner(3),
        workers,
        forks_free,
        budget=min(probe.budget, 50),
        explain={
            "deadlock": (
                "a philosopher's eat() raised while both forks were in hand. The forks must be put "
                "down on that path too, or the neighbours can never eat again: `with fork:` "
                "releases however the block is left, bare acquire()/release() calls do not."
            )
        },
    )


class Bank:
    """Two accounts, an event that says when the target's lock has been taken, and the calls
    of try_transfer that transfer_patiently made (see `_record_attempts`)."""

    def __init__(self) -> None:
        self.source = Account(1, 100)
        self.target = Account(2, 100)
        self.target_taken = threading.Event()
        self.attempts: list[tuple[float, float, object]] = []  # (started, ended, returned)


def _hold_target_lock(seconds: float) -> Callable[[Bank], None]:
    def hold(bank: Bank) -> None:
        with bank.target.lock:
            bank.target_taken.set()
            time.sleep(seconds)

    return hold


def _timed(call: Callable[[Bank], bool]) -> Callable[[Bank], tuple[bool, float]]:
    """A worker that waits until the target's lock is taken, then times `call`."""

    def worker(bank: Bank) -> tuple[bool, float]:
        bank.target_taken.wait(MEETING_TIMEOUT)
        started = time.monotonic()
        done = call(bank)
        return done, time.monotonic() - started

    return worker


def _balances(bank: Bank) -> tuple[int, int]:
    return bank.source.balance, bank.target.balance


@pytest.fixture
def banks(monkeypatch: pytest.MonkeyPatch) -> list[Bank]:
    """Every Bank the test builds; transfer_patiently's calls of try_transfer are recorded in
    the Bank whose source they move money from (each call's virtual start and end time)."""
    made: list[Bank] = []
    original = deadlock.try_transfer

    def recorded(source: Account, target: Account, amount: int, timeout: float) -> bool:
        started = time.monotonic()
        returned = original(source, target, amount, timeout)
        for bank in made:
            if source in (bank.source, bank.target):
                bank.attempts.append((started, time.monotonic(), returned))
        return returned

    monkeypatch.setattr(deadlock, "try_transfer", recorded)
    return made


def _new_bank(banks: list[Bank]) -> Callable[[], Bank]:
    def setup() -> Bank:
        banks.clear()
        banks.append(Bank())
        return banks[-1]

    return setup


# -- try_transfer ----------------------------------------------------------------------------


@pytest.mark.probe
@pytest.mark.clause(6)
def test_a_transfer_with_both_locks_free_moves_the_money_and_returns_true(probe: Prober) -> None:
    def moved(bank: Bank, results: list[object]) -> None:
        assert results[0] is True, f"try_transfer with both locks free returned {results[0]}"
        assert _balances(bank) == (70, 130), (
            f"after moving 30 from 100 to 100 the balances are {_balances(bank)}"
        )

    transfer = lambda bank: try_transfer(bank.source, bank.target, 30, timeout=1.0)  # noqa: E731
    probe.explore(
        Bank,
        [transfer],
        moved,
        budget=1,
        explain={
            "misuse": (
                "try_transfer returned while it still held an account's lock: release "
                "target.lock (try/finally) and source.lock (`with source.lock:`) before it "
                "returns, or no other transfer can ever use those accounts again."
            )
        },
    )


@pytest.mark.probe
@pytest.mark.clause(7)
def test_a_transfer_gets_the_second_lock_when_it_comes_free_just_before_the_timeout(
    probe: Prober,
) -> None:
    def got_it(bank: Bank, results: list[object]) -> None:
        done, waited = results[1]  # type: ignore[misc]
        assert done is True, (
            f"the target's lock came free after 0.9 s, within try_transfer's timeout of 1 s, "
            f"yet it returned {done} after {waited:g} s: wait for the second lock, "
            f"target.lock.acquire(timeout=timeout), instead of trying it once without waiting"
        )
        assert _balances(bank) == (90, 110), (
            f"after moving 10 from 100 to 100 the balances are {_balances(bank)}"
        )

    call = lambda bank: try_transfer(bank.source, bank.target, 10, timeout=1.0)  # noqa: E731
    workers = {"holder": _hold_target_lock(0.9), "transfer": _timed(call)}
    probe.explore(Bank, workers, got_it, budget=min(probe.budget, TRANSFER_SCHEDULES))


@pytest.mark.probe
@pytest.mark.clause(7, 8)
def test_a_transfer_that_cannot_get_the_second_lock_backs_off_after_its_timeout(
    probe: Prober,
) -> None:
    def backed_off(bank: Bank, results: list[object]) -> None:
        done, waited = results[1]  # type: ignore[misc]
        assert not (done and waited >= 1.25), (
            f"try_transfer(timeout=1) waited {waited:g} s, until the other thread let go of "
            f"the target's lock after 1.25 s: the timeout was never applied. "
            f"acquire(timeout) passes the number as `blocking`, which only says 'wait'; "
            f"write acquire(timeout=timeout)"
        )
        assert done is False and 1.0 <= waited <= 1.1, (
            f"the target's lock was busy for 1.25 s; try_transfer(timeout=1) returned {done} "
            f"after {waited:g} s. It must wait the whole 1 s, then give up and return False: "
            f"waiting without a timeout while holding the source's lock is how two opposite "
            f"transfers deadlock"
        )
        assert _balances(bank) == (100, 100), (
            f"a transfer that backed off changed the balances to {_balances(bank)}: move the "
            f"money only once you hold both locks"
        )
        assert not bank.source.lock.locked(), (
            "the source's lock was still held after try_transfer backed off: release it, so "
            "the transfer that holds the other lock can finish"
        )

    call = lambda bank: try_transfer(bank.source, bank.target, 10, timeout=1.0)  # noqa: E731
    # The holder lets go 0.25 s after the timeout: a transfer that waits longer than it should
    # gets the lock and shows it.
    workers = {"holder": _hold_target_lock(1.25), "transfer": _timed(call)}
    probe.explore(
        Bank,
        workers,
        backed_off,
        budget=min(probe.budget, TRANSFER_SCHEDULES),
        explain={
            "invariant": (
                "another thread held the target's lock for 1.25 s, so try_transfer(timeout=1) had "
                "to back off: give up waiting after 1 s, release the source's lock it already "
                "held, and return False."
            )
        },
    )


# -- transfer_patiently ----------------------------------------------------------------------


def _attempts_made(bank: Bank, attempts: int) -> list[tuple[float, float, object]]:
    __tracebackhide__ = True
    made = bank.attempts
    assert made, (
        "transfer_patiently never called try_transfer: make each attempt by calling "
        "try_transfer(source, target, amount, timeout)"
    )
    assert len(made) == attempts, (
        f"transfer_patiently(attempts={attempts}) called try_transfer {len(made)} times while "
        f"every call backed off: it must make exactly {attempts} attempts, then return False"
    )
    return made


@pytest.mark.probe
@pytest.mark.clause(9)
def test_a_patient_transfer_with_both_locks_free_moves_the_money_once(
    probe: Prober, banks: list[Bank]
) -> None:
    def once(bank: Bank, results: list[object]) -> None:
        assert results[0] is True, f"transfer_patiently with both locks free returned {results[0]}"
        assert len(bank.attempts) == 1 and _balances(bank) == (90, 110), (
            f"with both locks free, transfer_patiently(attempts=3) called try_transfer "
            f"{len(bank.attempts)} times and left the balances at {_balances(bank)}, not "
            f"(90, 110): return True as soon as one attempt succeeds"
        )

    call = lambda bank: transfer_patiently(bank.source, bank.target, 10, 1.0, 3)  # noqa: E731
    probe.explore(_new_bank(banks), [call], once, budget=1)


@pytest.mark.probe
@pytest.mark.clause(9)
def test_a_patient_transfer_retries_until_the_second_lock_is_free(
    probe: Prober, banks: list[Bank]
) -> None:
    def got_through(bank: Bank, results: list[object]) -> None:
        done, waited = results[1]  # type: ignore[misc]
        assert done is True, (
            f"the target's lock was busy for 2.5 s; transfer_patiently(timeout=1, attempts=5) "
            f"gave up after {waited:g} s and {len(bank.attempts)} calls of try_transfer. Three "
            f"attempts of 1 s each span more than 2.5 s whatever the pauses: retry try_transfer "
            f"until an attempt succeeds or none are left"
        )
        assert _balances(bank) == (90, 110), (
            f"after moving 10 from 100 to 100 the balances are {_balances(bank)}"
        )

    call = lambda bank: transfer_patiently(bank.source, bank.target, 10, 1.0, 5)  # noqa: E731
    workers = {"holder": _hold_target_lock(2.5), "transfer": _timed(call)}
    probe.explore(
        _new_bank(banks), workers, got_through, budget=min(probe.budget, TRANSFER_SCHEDULES)
    )


@pytest.mark.probe
@pytest.mark.clause(10)
def test_a_patient_transfer_gives_up_after_its_last_attempt(
    probe: Prober, banks: list[Bank]
) -> None:
    def gave_up(bank: Bank, results: list[object]) -> None:
        done, waited = results[1]  # type: ignore[misc]
        _attempts_made(bank, 3)
        assert done is False, (
            f"the target's lock was busy for 10 s; transfer_patiently(timeout=1, attempts=3) "
            f"returned {done} after {waited:g} s: after its third attempt it must return False"
        )
        # Three timeouts of 1 s, plus at most 1 s of pause between (or after) each attempt.
        assert 3.0 <= waited <= 6.0, (
            f"transfer_patiently(timeout=1, attempts=3) gave up after {waited:g} s; three "
            f"attempts of 1 s each and short pauses take between 3 and 6 s"
        )
        assert _balances(bank) == (100, 100), (
            f"a transfer that gave up changed the balances to {_balances(bank)}"
        )

    call = lambda bank: transfer_patiently(bank.source, bank.target, 10, 1.0, 3)  # noqa: E731
    workers = {"holder": _hold_target_lock(10.0), "transfer": _timed(call)}
    probe.explore(_new_bank(banks), workers, gave_up, budget=min(probe.budget, TRANSFER_SCHEDULES))


@pytest.mark.probe
@pytest.mark.clause(11)
def test_a_patient_transfer_pauses_a_random_time_of_at_most_its_timeout_between_attempts(
    probe: Prober, banks: list[Bank]
) -> None:
    def random_pauses(bank: Bank, _results: list[object]) -> None:
        made = _attempts_made(bank, 4)
        pauses = [round(nxt[0] - prev[1], 6) for prev, nxt in itertools.pairwise(made)]
        assert all(0.0 <= pause <= 0.5 for pause in pauses), (
            f"transfer_patiently(timeout=0.5, attempts=4) paused {pauses} s between its "
            f"attempts: each pause must be at most the timeout, random.uniform(0, timeout)"
        )
        assert len(set(pauses)) > 1, (
            f"transfer_patiently paused exactly {pauses[0]:g} s between every two attempts. A "
            f"fixed pause (or none) makes two transfers that backed off from each other retry "
            f"at the same moment, collide again and again (a livelock): draw each pause with "
            f"random.uniform(0, timeout)"
        )

    call = lambda bank: transfer_patiently(bank.source, bank.target, 10, 0.5, 4)  # noqa: E731
    workers = {"holder": _hold_target_lock(10.0), "transfer": _timed(call)}
    probe.explore(_new_bank(banks), workers, random_pauses, budget=min(probe.budget, 10))


@pytest.mark.probe
@pytest.mark.clause(8, 11)
def test_two_opposite_patient_transfers_both_get_through(probe: Prober) -> None:
    def both_done(bank: Bank, results: list[Any]) -> None:
        assert results == [True, True] and _balances(bank) == (110, 90), (
            f"two opposite transfers, of 10 one way and 20 the other, with 4 attempts each "
            f"returned {results} and left the balances at {_balances(bank)}, not (110, 90): "
            f"each held its own source lock and timed out waiting for the other's, again and "
            f"again. After backing off, sleep a random pause so one of them retries first"
        )

    probe.explore(
        Bank,
        {
            "first-to-second": lambda b: transfer_patiently(b.source, b.target, 10, 1.0, 4),
            "second-to-first": lambda b: transfer_patiently(b.target, b.source, 20, 1.0, 4),
        },
        both_done,
        budget=min(probe.budget, 50),
        explain={
            "deadlock": (
                "two opposite transfers each took their own source lock and then waited for the "
                "other's lock for ever: wait for the second lock with a timeout, "
                "acquire(timeout=timeout), and release the first one when it runs out."
            )
        },
    )
