"""Sample learner code: reads of names that nothing rebinds while a run goes on (a field set
only in ``__init__``, a method, a module's constant, an argument a closure keeps) beside reads
of names something does rebind (a field a method stores, a global a function stores), and
reads of fixed names whose value is then looked into (compared, tested, iterated, returned)."""

from __future__ import annotations

import threading

LIMIT = 3
STOP = object()
DEFAULT: object | None = None
seen = 0


class Account:
    def __init__(self, balance: int) -> None:
        self.lock = threading.Lock()
        self.balance = balance
        self.limit = LIMIT

    def deposit(self, amount: int) -> None:
        with self.lock:
            self.balance += amount

    def deposit_unlocked(self, amount: int) -> None:
        self.balance += amount

    def over(self) -> bool:
        return self.balance > self.limit  # `self.limit` is compared right after its read

    def report(self, sink: list[int]) -> None:
        sink.append(self.limit)


def limit_into(sink: list[int]) -> None:
    sink.append(LIMIT)


def count() -> None:
    global seen
    seen += 1


def reader(account: Account) -> object:
    def read() -> None:
        account.deposit(1)

    return read


def broken_into(barrier: threading.Barrier, sink: list[bool]) -> None:
    sink.append(barrier.broken)


class Shelf:
    """``items`` is set only in ``__init__``, but the list it holds changes."""

    def __init__(self) -> None:
        self.items: list[int] = []
        self.count = 0

    def put(self, item: int) -> None:
        self.count += 1
        self.items.append(item)

    def take(self) -> int | None:
        if self.items:  # looked into: a truth test of the list
            return self.items.pop()
        return None

    def total(self) -> int:
        found = 0
        for item in self.items:  # looked into: iterated
            found += item
        return found

    def counted_all(self) -> bool:
        """Unlocked: ``count`` read, then the list tested. A put() between the two makes the
        list hold an item that the count read before it does not show."""
        count = self.count
        if self.items:
            return count > 0
        return True


def file_item(item: object, sink: list[object]) -> None:
    if item is STOP:  # an identity test: it looks into neither object
        sink.append(None)
    else:
        sink.append(item)


def is_stop(item: object) -> bool:
    return item is STOP  # the test's bool goes back to a caller, which may look on


def file_default(sink: list[object]) -> None:
    if DEFAULT is None:  # a jump on whether the value is None: no look into it either
        sink.append(0)
    else:
        sink.append(DEFAULT)


def keyed(sink: list[object]) -> None:
    sink.append({LIMIT: 1})  # a dict's key is hashed: a key's __hash__ may look into it


def paired(sink: list[object]) -> None:
    sink.append((LIMIT, {}))  # an empty dict hashes nothing


class Member:
    def __init__(self, registry: Shelf) -> None:
        registry.latest = self  # type: ignore[attr-defined]  # onto another, shared object


def latest_into(registry: Shelf, sink: list[object]) -> None:
    sink.append(registry.latest)  # type: ignore[attr-defined]
