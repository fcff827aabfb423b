"""Kata `locks`: a shared counter and bank transfers that stay correct under threads.

The tests marked `probe` run their workers under a controlled scheduler: one thread at a time,
switching at bytecode level and at every lock operation, across hundreds of interleavings
chosen from a fixed seed. A race is found every time, and the failure shows the interleaving.
"""

from __future__ import annotations

import pytest
from locks import Account, Counter, InsufficientFunds, transfer

from plugins.probe import Prober


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


@pytest.mark.clause(4)
def test_an_auditor_holding_both_locks_always_sees_the_full_total(probe: Prober) -> None:
    def audit(pair: tuple[Account, Account]) -> int:
        first, second = pair
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
