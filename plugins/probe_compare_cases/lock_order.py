"""Lock-order deadlock: transfers a->b and b->a each take the source's lock, then the
destination's (broken), or both locks in account-number order (fixed).

Fewest preemptions that deadlock it: 1. Worker-1 takes a's lock and is preempted; worker-2
takes b's lock and blocks on a's; worker-1 blocks on b's. (A lock-order oracle can flag the
cycle with 0 preemptions, from a schedule that does not deadlock.)
"""

from __future__ import annotations

import threading

TITLE = "lock-order deadlock"
MIN_PREEMPTIONS = 1


class Account:
    def __init__(self, number: int, balance: int) -> None:
        self.number = number
        self.balance = balance
        self.lock = threading.Lock()


class Broken:
    def __init__(self) -> None:
        self.a = Account(1, 100)
        self.b = Account(2, 100)

    def transfer(self, src: Account, dst: Account, amount: int) -> None:
        with src.lock:  # noqa: SIM117 - two steps on purpose: the lock order is the bug
            with dst.lock:
                src.balance -= amount
                dst.balance += amount


class Fixed(Broken):
    def transfer(self, src: Account, dst: Account, amount: int) -> None:
        first, second = sorted((src, dst), key=lambda account: account.number)
        with first.lock:  # noqa: SIM117 - same shape as Broken.transfer, only the order differs
            with second.lock:
                src.balance -= amount
                dst.balance += amount


def a_to_b(bank: Broken) -> None:
    bank.transfer(bank.a, bank.b, 10)


def b_to_a(bank: Broken) -> None:
    bank.transfer(bank.b, bank.a, 20)


WORKERS = (a_to_b, b_to_a)


def check(bank: Broken) -> None:
    total = bank.a.balance + bank.b.balance
    assert total == 200, f"money was created or destroyed: the accounts hold {total}, not 200"
