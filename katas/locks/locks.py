"""Kata `locks`: a shared counter and a bank transfer that stay correct under threads.

Contract (the tests check each point, running several threads under a controlled scheduler
that tries many interleavings):

- `Counter()` starts at 0, and `value` reads the current count (both given).
  §1 `increment()` adds 1.
  §2 `increment()` may be called from many threads at once: no increment may ever be lost.
- `Account(number, balance)` (given) keeps its `number` and its integer `balance`, and has a
  lock of its own (`lock`).
- §3 `transfer(source, target, amount)` moves `amount` from `source` to `target`; a source
  holding exactly `amount` may send it all.
  §4 A transfer is atomic: a thread that holds both accounts' locks never sees the money missing from
  both accounts or present in both.
  §5 The total of all balances never changes, even when transfers into or out of the same
  account run at once.
  §6 `transfer` raises `InsufficientFunds`, leaving both balances alone, when `source` holds less than
  `amount`, even when several transfers race for the same money.
  §7 Two transfers in opposite directions between the same two accounts never deadlock: a
  transfer takes the two accounts' locks lower account number first, the order in which every
  other thread that needs both takes them too.
- Use `threading.Lock` (the tests swap in an instrumented version while they probe you).
"""

from __future__ import annotations

import threading


class InsufficientFunds(Exception):
    """The source account holds less than the amount to transfer."""


class Counter:
    """A counter that many threads can increment at once without losing updates."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def increment(self) -> None:
        """Add 1 to the count."""
        # TODO(kata): make the read-add-write one indivisible step for other threads.
        raise NotImplementedError

    @property
    def value(self) -> int:
        """The current count."""
        return self._value


class Account:
    """A bank account with an integer balance and its own lock."""

    def __init__(self, number: int, balance: int) -> None:
        self.number = number
        self.balance = balance
        self.lock = threading.Lock()


def transfer(source: Account, target: Account, amount: int) -> None:
    """Move `amount` from `source` to `target` atomically; raise InsufficientFunds if short."""
    # TODO(kata): hold both accounts' locks, always taken in the same global order, while you
    # check the balance and move the money.
    raise NotImplementedError
