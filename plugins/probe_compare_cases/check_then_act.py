"""Check-then-act: two workers withdraw 80 from 100; the balance check and the debit are
separate steps (broken) or one step under a lock (fixed).

Fewest preemptions that break it: 1. Worker-1 passes the check and is preempted before it
debits; worker-2 passes the same check and debits; worker-1 debits too: the balance is -60.
"""

from __future__ import annotations

import threading

TITLE = "check-then-act"
MIN_PREEMPTIONS = 1


class Broken:
    def __init__(self) -> None:
        self.balance = 100

    def withdraw(self, amount: int) -> bool:
        if self.balance >= amount:
            self.balance -= amount
            return True
        return False


class Fixed(Broken):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def withdraw(self, amount: int) -> bool:
        with self.lock:
            return super().withdraw(amount)


def withdraw_80(account: Broken) -> None:
    account.withdraw(80)


WORKERS = (withdraw_80, withdraw_80)


def check(account: Broken) -> None:
    assert account.balance >= 0, (
        f"overdrawn: balance is {account.balance} after two checked withdrawals"
    )
