"""Sample learner code: two opposite transfers that back off for a fixed pause.

Each attempt takes the source's lock, then waits for the target's with a timeout. A transfer
fails an attempt only while the other holds the lock it waits for past its timeout, and both
pause exactly as long, so they retry in lockstep. For one transfer to fail all of its
``attempts``, each attempt but the last needs two preemptions: one between a transfer's two
lock takes (the first to take its source lock would otherwise take the other too), and one
between the first-woken transfer's failed wait and its release of its source lock (that
release would hand the lock to the other, whose attempt would then succeed and end the
dance). The last attempt needs only the first. So the fewest preemptions are
2 * attempts - 1: 3 for two attempts, which the harness's tests check by enumeration, and
5 for three (enumerated with the search's caps raised: 75,465 re-runs, 39 s).
"""

import threading
import time


class Account:
    def __init__(self, balance: int) -> None:
        self.balance = balance
        self.lock = threading.Lock()


class Bank:
    def __init__(self) -> None:
        self.a = Account(100)
        self.b = Account(100)


def try_transfer(source: Account, target: Account, amount: int, timeout: float) -> bool:
    with source.lock:
        if not target.lock.acquire(timeout=timeout):
            return False
        try:
            source.balance -= amount
            target.balance += amount
        finally:
            target.lock.release()
    return True


def transfer_with_fixed_pause(
    source: Account, target: Account, amount: int, timeout: float, attempts: int
) -> bool:
    for _ in range(attempts):
        if try_transfer(source, target, amount, timeout):
            return True
        time.sleep(timeout)
    return False
