"""Kata `locks`: a shared counter and bank transfers that stay correct under threads.

The tests marked `probe` run their workers under a controlled scheduler: one thread at a time,
switching at bytecode level and at every lock operation, across hundreds of interleavings
chosen from a fixed seed. A race is found every time, and the failure shows the interleaving.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from locks import Account, Counter, InsufficientFunds, transfer

from plugins.probe import Prober, scenario_settings

# Drawn scenarios: Hypothesis draws the threads, the amounts and the balances, and the probe
# explores each drawn scenario. Each example is a whole exploration, so examples times
# schedules stays small; every known bug was caught within the first 10 schedules of an
# example that can show it.
DRAWN_EXAMPLES = 8
DRAWN_SCHEDULES = 20

Bank = tuple[Account, Account, Account]
Move = tuple[int, int, int]  # (source number, target number, amount)
Ending = tuple[tuple[tuple[str, ...], ...], tuple[int, ...]]  # (outcomes per thread, balances)


@pytest.mark.clause(1, 2)
def test_a_counter_starts_at_zero_and_counts_each_increment() -> None:
    counter = Counter()
    assert counter.value == 0, f"a new counter reads {counter.value}, not 0"
    for _ in range(3):
        counter.increment()
    assert counter.value == 3, f"after 3 increments the counter reads {counter.value}"


@pytest.mark.clause(2)
def test_no_increment_is_lost_when_two_threads_increment_at_once(probe: Prober) -> None:
    def increment_twice(counter: Counter) -> None:
        counter.increment()
        counter.increment()

    def no_update_lost(counter: Counter, _results: list[object]) -> None:
        lost = 4 - counter.value
        assert lost == 0, (
            f"{lost} of 4 increments were lost: both threads read the same count before either "
            f"wrote its new value back; read, add and write must happen under one lock"
        )

    probe.explore(Counter, [increment_twice, increment_twice], no_update_lost)


@pytest.mark.clause(3)
def test_a_transfer_moves_the_amount_between_the_accounts() -> None:
    alice, bob = Account(1, 100), Account(2, 50)
    transfer(alice, bob, 30)
    assert (alice.balance, bob.balance) == (70, 80), (
        f"after moving 30 from 100 to 50 the balances are {alice.balance} and {bob.balance}"
    )


@pytest.mark.clause(3)
def test_a_source_may_send_its_whole_balance() -> None:
    alice, bob = Account(1, 30), Account(2, 5)
    try:
        transfer(alice, bob, 30)
    except InsufficientFunds:
        pytest.fail(
            "a transfer of 30 from an account holding exactly 30 was refused: only a balance "
            "*less than* the amount is too little (`<`, not `<=`)"
        )
    assert (alice.balance, bob.balance) == (0, 35), (
        f"after sending all 30 the balances are {alice.balance} and {bob.balance}, not 0 and 35"
    )


@pytest.mark.clause(6)
def test_a_transfer_larger_than_the_balance_is_refused_and_changes_nothing() -> None:
    alice, bob = Account(1, 20), Account(2, 0)
    with pytest.raises(InsufficientFunds):
        transfer(alice, bob, 30)
    assert (alice.balance, bob.balance) == (20, 0), (
        f"a refused transfer left the balances at {alice.balance} and {bob.balance}, not 20 and "
        f"0: check the balance before you change either account, not after"
    )
    assert not alice.lock.locked() and not bob.lock.locked(), (
        "a refused transfer left an account's lock held: raise inside `with` so it is released"
    )


def _pair() -> tuple[Account, Account]:
    return Account(1, 100), Account(2, 100)


@pytest.mark.clause(5, 7)
def test_opposite_transfers_between_two_accounts_never_deadlock(probe: Prober) -> None:
    def both_done(accounts: tuple[Account, Account], _results: list[object]) -> None:
        first, second = accounts
        assert (first.balance, second.balance) == (110, 90), (
            f"after 10 went one way and 20 the other, the balances are {first.balance} and "
            f"{second.balance}, not 110 and 90: both transfers read a balance before the other "
            f"wrote it back. A transfer must hold both accounts' locks while it reads and writes."
        )

    probe.explore(
        _pair,
        {
            "first-to-second": lambda pair: transfer(pair[0], pair[1], 10),
            "second-to-first": lambda pair: transfer(pair[1], pair[0], 20),
        },
        both_done,
    )


@pytest.mark.clause(6)
def test_two_transfers_racing_for_the_same_money_cannot_overdraw(probe: Prober) -> None:
    def setup() -> tuple[Account, Account, Account]:
        return Account(1, 100), Account(2, 0), Account(3, 0)

    def send_60(to: int):  # type: ignore[no-untyped-def]
        def worker(accounts: tuple[Account, Account, Account]) -> str:
            try:
                transfer(accounts[0], accounts[to], 60)
            except InsufficientFunds:
                return "refused"
            return "done"

        return worker

    def exactly_one_succeeds(
        accounts: tuple[Account, Account, Account], results: list[object]
    ) -> None:
        balances = [a.balance for a in accounts]
        assert balances[0] >= 0 and sorted(results) == ["done", "refused"], (
            f"two transfers of 60 out of 100 gave {results} and balances {balances}: both passed "
            f"the balance check before either took the money; check and withdraw under the lock"
        )

    probe.explore(setup, {"to-2": send_60(1), "to-3": send_60(2)}, exactly_one_succeeds)


@pytest.mark.clause(5)
def test_money_sent_into_one_account_from_two_sides_is_never_lost(probe: Prober) -> None:
    def setup() -> tuple[Account, Account, Account]:
        return Account(1, 100), Account(2, 100), Account(3, 0)

    def no_money_lost(accounts: tuple[Account, Account, Account], _results: list[object]) -> None:
        total = sum(a.balance for a in accounts)
        assert total == 200 and accounts[2].balance == 30, (
            f"after 10 and 20 were sent into the third account it holds {accounts[2].balance} and "
            f"the bank holds {total} of 200: both transfers updated the target at once; lock "
            f"the target too"
        )

    probe.explore(
        setup,
        {
            "first-to-third": lambda a: transfer(a[0], a[2], 10),
            "second-to-third": lambda a: transfer(a[1], a[2], 20),
        },
        no_money_lost,
    )


@pytest.mark.clause(4, 7)
def test_an_auditor_holding_both_locks_always_sees_the_full_total(probe: Prober) -> None:
    def audit(pair: tuple[Account, Account]) -> int:
        first, second = pair
        # Lower account number first, as §7 asks of every thread that needs both locks: an
        # auditor locking in its own order would deadlock with a correct transfer.
        with first.lock, second.lock:
            return first.balance + second.balance

    def total_never_changes(pair: tuple[Account, Account], results: list[object]) -> None:
        seen = results[1]
        assert seen == 200, (
            f"an auditor holding both locks counted {seen} instead of 200: the money was missing "
            f"from both accounts while the transfer still ran; finish the whole move before "
            f"releasing the locks"
        )

    probe.explore(
        _pair,
        {"transfer": lambda pair: transfer(pair[0], pair[1], 50), "auditor": audit},
        total_never_changes,
    )


def _bank(balances: Sequence[int]) -> Callable[[], Bank]:
    """Accounts 1, 2 and 3 holding `balances`, fresh for every schedule."""

    def setup() -> Bank:
        first, second, third = (Account(number, b) for number, b in enumerate(balances, 1))
        return first, second, third

    return setup


def _moves(plan: Sequence[Move]) -> Callable[[Bank], tuple[str, ...]]:
    """A thread that makes the transfers of `plan` in order: 'sent' or 'refused' for each."""

    def worker(bank: Bank) -> tuple[str, ...]:
        outcomes = []
        for source, target, amount in plan:
            try:
                transfer(bank[source - 1], bank[target - 1], amount)
            except InsufficientFunds:
                outcomes.append("refused")
            else:
                outcomes.append("sent")
        return tuple(outcomes)

    return worker


def _one_at_a_time(balances: Sequence[int], plans: Sequence[Sequence[Move]]) -> set[Ending]:
    """Every ending that the threads' transfers can reach when each transfer runs whole, alone,
    in any order that keeps each thread's own transfers in its order."""
    endings: set[Ending] = set()

    def run(
        held: tuple[int, ...], done: tuple[int, ...], seen: tuple[tuple[str, ...], ...]
    ) -> None:
        waiting = [w for w, plan in enumerate(plans) if done[w] < len(plan)]
        if not waiting:
            endings.add((seen, held))
        for w in waiting:
            source, target, amount = plans[w][done[w]]
            after = list(held)
            if held[source - 1] < amount:
                outcome = "refused"
            else:
                outcome = "sent"
                after[source - 1] -= amount
                after[target - 1] += amount
            step = tuple(n + (i == w) for i, n in enumerate(done))
            run(tuple(after), step, (*seen[:w], (*seen[w], outcome), *seen[w + 1 :]))

    run(tuple(balances), (0,) * len(plans), ((),) * len(plans))
    return endings


def _told(balances: Sequence[int], plans: Sequence[Sequence[Move]]) -> str:
    """The scenario in words: who holds what, and which thread sends what to whom."""
    held = ", ".join(f"account {n} holds {b}" for n, b in enumerate(balances, 1))
    threads = "; ".join(
        f"thread {w} sends " + ", then ".join(f"{a} from {s} to {t}" for s, t, a in plan)
        for w, plan in enumerate(plans, 1)
    )
    return f"{held}; {threads}"


def _ending(outcomes: Sequence[Sequence[str]], balances: Sequence[int]) -> str:
    """'thread 1 sent, thread 2 refused, balances [2, 0, 1]'."""
    threads = ", ".join(f"thread {w} {' then '.join(o)}" for w, o in enumerate(outcomes, 1))
    return f"{threads}, balances {list(balances)}"


def _ends_as_if_one_at_a_time(
    balances: Sequence[int], plans: Sequence[Sequence[Move]]
) -> Callable[[Bank, list[object]], None]:
    """The check: the outcomes and balances are those of some order of whole transfers."""
    possible = _one_at_a_time(balances, plans)

    def check(bank: Bank, results: list[object]) -> None:
        __tracebackhide__ = True
        outcomes = tuple(cast(tuple[str, ...], got) for got in results)  # what _moves returns
        ended = tuple(a.balance for a in bank)
        if (outcomes, ended) in possible:
            return
        if min(ended) < 0:
            why = (
                f"Account {ended.index(min(ended)) + 1} ended at {min(ended)}: a transfer went "
                f"through that its source could no longer afford. Either two transfers both "
                f"passed the balance check before either took the money (check and withdraw "
                f"while you hold BOTH locks, whichever account's lock you take first), or the "
                f"check read the wrong account (compare `source.balance`, not the balance of "
                f"the account whose lock comes first)"
            )
        elif sum(ended) != sum(balances):
            why = (
                f"The bank holds {sum(ended)} instead of {sum(balances)}: two transfers "
                f"changed the same account at once. Hold both accounts' locks around the check "
                f"and both updates"
            )
        else:
            why = (
                "A transfer was refused that its source could afford, or sent one it could not: "
                "compare `source.balance` with the amount (not the balance of the account "
                "whose lock you take first), while you hold both locks"
            )
        shown = "; or ".join(_ending(o, b) for o, b in sorted(possible)[:4])
        raise AssertionError(
            f"{_told(balances, plans)}. They ended with {_ending(outcomes, ended)}, which no "
            f"order of whole transfers made one at a time gives (that ends with {shown}). {why}."
        )

    return check


@pytest.mark.clause(2)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(threads=st.integers(2, 4), each=st.integers(1, 3))
def test_no_increment_is_lost_whatever_the_number_of_threads_and_increments(
    probe: Prober, threads: int, each: int
) -> None:
    def increment_n(counter: Counter) -> None:
        for _ in range(each):
            counter.increment()

    def none_lost(counter: Counter, _results: list[object]) -> None:
        total = threads * each
        assert counter.value == total, (
            f"{threads} threads each called increment() {each} times and the counter reads "
            f"{counter.value}, not {total}: {total - counter.value} increments were lost. Read, "
            f"add and write must happen under one lock"
        )

    probe.explore(
        Counter, [increment_n] * threads, none_lost, budget=min(probe.budget, DRAWN_SCHEDULES)
    )


@pytest.mark.clause(3, 6)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(
    payer=st.integers(1, 3),
    amounts=st.lists(st.integers(1, 5), min_size=2, max_size=3),
    short_by=st.integers(1, 4),
    payees_hold=st.tuples(st.integers(0, 5), st.integers(0, 5)),
)
def test_transfers_racing_for_one_account_s_money_never_overdraw_it_whatever_its_number(
    probe: Prober, payer: int, amounts: list[int], short_by: int, payees_hold: tuple[int, int]
) -> None:
    # Each amount fits the payer's balance alone, but not all of them together: which transfers
    # go through depends on the order, and a race lets one through too many. The payer may be
    # any account, so its lock is sometimes the first one taken and sometimes the second.
    payees = [n for n in (1, 2, 3) if n != payer]
    balances = list(payees_hold)
    balances.insert(payer - 1, max(max(amounts), sum(amounts) - short_by))
    plans = [[(payer, payees[i % 2], amount)] for i, amount in enumerate(amounts)]
    probe.explore(
        _bank(balances),
        [_moves(plan) for plan in plans],
        _ends_as_if_one_at_a_time(balances, plans),
        budget=min(probe.budget, DRAWN_SCHEDULES),
    )


# A transfer between two different accounts of the three, drawn as (source, step, amount).
MOVES = st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 4)).map(
    lambda drawn: (drawn[0], (drawn[0] + drawn[1] - 1) % 3 + 1, drawn[2])
)


@pytest.mark.clause(5, 7)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(
    plans=st.lists(st.lists(MOVES, min_size=1, max_size=1), min_size=2, max_size=3),
    balances=st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 5)),
)
def test_transfers_in_any_directions_among_three_accounts_end_as_if_made_one_at_a_time(
    probe: Prober, plans: list[list[Move]], balances: tuple[int, int, int]
) -> None:
    probe.explore(
        _bank(balances),
        [_moves(plan) for plan in plans],
        _ends_as_if_one_at_a_time(balances, plans),
        budget=min(probe.budget, DRAWN_SCHEDULES),
        explain={
            "deadlock": (
                "Transfers between three accounts waited for each other in a circle. Take the "
                "two locks of every transfer in one global order (the lower account number "
                "first), whatever the direction of the transfer."
            )
        },
    )
