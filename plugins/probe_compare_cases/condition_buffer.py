"""Bounded buffer (capacity 1) on one `threading.Condition`, 2 producers and 2 consumers of
one item each: `if` around `wait` and `notify` (broken), `while` and `notify_all` (fixed).

Fewest preemptions that break it: 0 (only choices where a worker blocks or ends). Both
consumers wait on the empty buffer; producer-1 puts, notifying consumer-1; producer-2 finds
the buffer full and waits; consumer-1 takes the item and its `notify` wakes consumer-2, which
finds the buffer empty and, having checked with `if`, pops it: IndexError.

With one item per worker the fixed version has 80 distinct interleavings (orders of its
critical sections, every one of which touches `items` or the waiters). With two items per
worker (`condition_buffer_two_each`) it has 288,000: beyond any search that runs each one.
"""

from __future__ import annotations

import threading
from collections import deque

TITLE = "Condition buffer, if + notify, 2P/2C, 1 item each"
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


def produce_1(buffer: Broken) -> None:
    buffer.put(1)


def produce_2(buffer: Broken) -> None:
    buffer.put(2)


def consume_one(buffer: Broken) -> None:
    buffer.get()


WORKERS = (produce_1, produce_2, consume_one, consume_one)
PRODUCED = [1, 2]


def check(buffer: Broken) -> None:
    assert buffer.peak <= CAPACITY, (
        f"the buffer held {buffer.peak} items; its capacity is {CAPACITY}"
    )
    assert sorted(buffer.taken) == PRODUCED, (
        f"consumers took {buffer.taken}, not {', '.join(map(str, PRODUCED))}"
    )
