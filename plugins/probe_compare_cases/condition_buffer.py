"""Bounded buffer (capacity 1) on one `threading.Condition`, 2 producers x 2 items and
2 consumers x 2 items: `if` around `wait` and `notify` (broken), `while` and `notify_all` (fixed).

Fewest preemptions that break it: 0 (only choices where a worker blocks or ends). Both
consumers wait on the empty buffer; producer-1 puts, notifying consumer-1, and then waits on
the full buffer; producer-2 waits too; consumer-1 takes the item and its `notify` wakes
consumer-2, which finds the buffer empty and, having checked with `if`, pops it: IndexError.
"""

from __future__ import annotations

import threading
from collections import deque

TITLE = "Condition buffer, if + notify, 2P/2C"
MIN_PREEMPTIONS = 0
CAPACITY = 1


class Broken:
    def __init__(self) -> None:
        self.items: deque[int] = deque()
        self.taken: list[int] = []
        self.peak = 0
        self.cond = threading.Condition()

    def put(self, item: int) -> None:
        with self.cond:
            if len(self.items) >= CAPACITY:
                self.cond.wait()
            self.items.append(item)
            self.peak = max(self.peak, len(self.items))
            self.cond.notify()

    def get(self) -> int:
        with self.cond:
            if not self.items:
                self.cond.wait()
            item = self.items.popleft()
            self.taken.append(item)
            self.cond.notify()
            return item


class Fixed(Broken):
    def put(self, item: int) -> None:
        with self.cond:
            while len(self.items) >= CAPACITY:
                self.cond.wait()
            self.items.append(item)
            self.peak = max(self.peak, len(self.items))
            self.cond.notify_all()

    def get(self) -> int:
        with self.cond:
            while not self.items:
                self.cond.wait()
            item = self.items.popleft()
            self.taken.append(item)
            self.cond.notify_all()
            return item


def produce_1_2(buffer: Broken) -> None:
    buffer.put(1)
    buffer.put(2)


def produce_3_4(buffer: Broken) -> None:
    buffer.put(3)
    buffer.put(4)


def consume_two(buffer: Broken) -> None:
    buffer.get()
    buffer.get()


WORKERS = (produce_1_2, produce_3_4, consume_two, consume_two)


def check(buffer: Broken) -> None:
    assert buffer.peak <= CAPACITY, (
        f"the buffer held {buffer.peak} items; its capacity is {CAPACITY}"
    )
    assert sorted(buffer.taken) == [1, 2, 3, 4], f"consumers took {buffer.taken}, not 1, 2, 3, 4"
