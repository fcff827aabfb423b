"""Sample learner code: bank transfers taking two locks, in opposite or in global order."""

import threading


class Account:
    def __init__(self, number: int, balance: int) -> None:
        self.number = number
        self.balance = balance
        self.lock = threading.Lock()


def transfer(src: Account, dst: Account, amount: int) -> None:
    with src.lock:  # noqa: SIM117 - two steps on purpose: the lock order is the lesson
        with dst.lock:
            src.balance -= amount
            dst.balance += amount


def transfer_ordered(src: Account, dst: Account, amount: int) -> None:
    first, second = sorted((src, dst), key=lambda a: a.number)
    with first.lock:  # noqa: SIM117 - same shape as transfer(), only the order differs
        with second.lock:
            src.balance -= amount
            dst.balance += amount
