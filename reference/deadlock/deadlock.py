"""Kata `deadlock`: dining philosophers who never deadlock, and transfers that back off.

Contract (the tests check each point, running threads under a controlled scheduler that tries
many interleavings, on a virtual clock):

- `Table(seats)` (given) seats `seats` philosophers (at least 2) around a round table, with one
  fork between each pair of neighbours: `forks[i]` is a `threading.Lock`, and the philosopher
  at `seat` needs forks `seat` and `(seat + 1) % seats`.
- §1 `Table.dine(seat, eat)` calls `eat()` while holding that philosopher's two forks, `seat`
  and `(seat + 1) % seats` (the last seat's are fork `seats - 1` and fork 0), and returns what
  `eat()` returned.
  §2 `dine` puts both forks down once `eat()` is over, also when `eat()` raises (the error then
  reaches the caller of `dine`).
  §3 Every philosopher may dine at the same time and no interleaving may deadlock: `dine` takes
  the forks in one global order, the lower-numbered fork first.
  §4 Two neighbours never eat at the same time: they share a fork.
  §5 Two philosophers who are not neighbours can eat at the same time: `dine` holds nothing but
  the philosopher's two forks.
- `Account(number, balance)` (given) holds an integer balance and a lock of its own (`lock`).
- §6 `try_transfer(source, target, amount, timeout)` takes `source.lock`, then `target.lock`;
  with both it moves `amount` from `source` to `target`, releases both locks and returns True.
  §7 `try_transfer` waits up to `timeout` seconds for `target.lock`, and gets it if it comes
  free within that time.
  §8 `try_transfer` backs off when `target.lock` is still taken after `timeout` seconds: it
  releases `source.lock`, changes no balance and returns False.
- §9 `transfer_patiently(source, target, amount, timeout, attempts)` calls
  `try_transfer(source, target, amount, timeout)` up to `attempts` times and returns True as
  soon as one call succeeds.
  §10 `transfer_patiently` returns False after exactly `attempts` calls that all backed off.
  §11 Between two attempts `transfer_patiently` sleeps a random pause of at most `timeout`
  seconds (`random.uniform(0, timeout)`), so two transfers that back off from each other do not
  retry in lockstep.
- Use `threading.Lock` and `time.sleep` (the tests swap in instrumented versions that run on a
  virtual clock, so a timeout costs no real time).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Table:
    """A round table: `seats` philosophers and one fork (a Lock) between each two of them."""

    def __init__(self, seats: int) -> None:
        if seats < 2:
            raise ValueError("a table needs at least 2 seats")
        self.seats = seats
        self.forks = [threading.Lock() for _ in range(seats)]

    def dine(self, seat: int, eat: Callable[[], T]) -> T:
        """Pick up forks `seat` and `(seat + 1) % seats`, call `eat()`, put both forks down."""
        # Resource hierarchy: every philosopher takes the lower-numbered fork first, so the last
        # one reaches for fork 0 before fork seats-1 and a circle of waiting cannot close.
        first, second = sorted((seat, (seat + 1) % self.seats))
        with self.forks[first], self.forks[second]:
            return eat()


class Account:
    """A bank account with an integer balance and its own lock."""

    def __init__(self, number: int, balance: int) -> None:
        self.number = number
        self.balance = balance
        self.lock = threading.Lock()


def try_transfer(source: Account, target: Account, amount: int, timeout: float) -> bool:
    """Move `amount` if `target.lock` comes within `timeout` s of taking `source.lock`."""
    with source.lock:
        # Never wait forever while holding a lock: after `timeout` give up, and leaving the
        # `with` block hands source.lock back to whoever may be waiting for it.
        if not target.lock.acquire(timeout=timeout):
            return False
        try:
            source.balance -= amount
            target.balance += amount
        finally:
            target.lock.release()
    return True


def transfer_patiently(
    source: Account, target: Account, amount: int, timeout: float, attempts: int
) -> bool:
    """Call try_transfer up to `attempts` times, with a random pause between attempts."""
    for attempt in range(attempts):
        if try_transfer(source, target, amount, timeout):
            return True
        if attempt + 1 < attempts:
            # A random pause: two transfers that backed off from each other retry at different
            # moments instead of colliding again and again (a livelock).
            time.sleep(random.uniform(0, timeout))
    return False
