"""The `condition_buffer` pair with two items per worker: 2 producers x 2 items and
2 consumers x 2 items, capacity 1.

Fewest preemptions that break it: 0, as with one item each (the same schedule, then the
second items). Its fixed version has 288,000 distinct interleavings: every critical section
touches `items` or the waiters, so each order of them is its own interleaving (counted on a
model of the sections in `tests/probe/test_probe_exhaustive.py`). No search that runs every
interleaving, ours or frontrun's, can prove it in a useful time; it stays here to show what
sampling then says.
"""

from __future__ import annotations

from .condition_buffer import CAPACITY, Broken, Fixed

__all__ = ["Broken", "Fixed"]

TITLE = "Condition buffer, if + notify, 2P/2C, 2 items each"
MIN_PREEMPTIONS = 0


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
