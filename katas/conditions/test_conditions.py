"""Kata `conditions`: a bounded buffer with several producers and several consumers."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import cast

import pytest
from conditions import BoundedBuffer, Closed
from hypothesis import given
from hypothesis import strategies as st

from plugins.probe import Prober, scenario_settings

# What a consumer records instead of an item when get() misbehaves.
TOLD_CLOSED_WHILE_OPEN = "<Closed while the buffer was open>"
POPPED_EMPTY = "<popped an empty buffer>"
# The scenarios with the most steps explore fewer schedules to keep the file fast. For each
# seed tried, every known bug was caught by one of them within its first 25 schedules.
BUSY_SCHEDULES = 100
# Drawn scenarios: Hypothesis draws the capacity and the number of threads and items, and the
# probe explores each drawn scenario. The thread that must come last starts after a virtual
# second, so that the others are already waiting in every schedule; examples times schedules
# stays small.
DRAWN_EXAMPLES = 8
DRAWN_SCHEDULES = 20
CLOSE_WITHOUT_LOCK = (
    "close() called notify()/notify_all() without holding the condition: take it first, "
    "`with self.condition:`, then set closed and notify_all() inside that block."
)


class WatchedDeque(deque[object]):
    """A deque that remembers the most items it ever held at once."""

    def __init__(self) -> None:
        super().__init__()
        self.peak = 0

    def append(self, item: object) -> None:
        super().append(item)
        self.peak = max(self.peak, len(self))


def _buffer(capacity: int) -> Callable[[], BoundedBuffer[object]]:
    def setup() -> BoundedBuffer[object]:
        buffer: BoundedBuffer[object] = BoundedBuffer(capacity)
        buffer.items = WatchedDeque()
        return buffer

    return setup


def _consume_until_closed(buffer: BoundedBuffer[object]) -> list[object]:
    got: list[object] = []
    while True:
        try:
            got.append(buffer.get())
        except Closed:
            if not buffer.closed:
                got.append(TOLD_CLOSED_WHILE_OPEN)
            return got
        except IndexError:
            got.append(POPPED_EMPTY)
            return got


def _put_all(*items: object) -> Callable[[BoundedBuffer[object]], None]:
    def produce(buffer: BoundedBuffer[object]) -> None:
        for item in items:
            buffer.put(item)

    return produce


def _later(
    worker: Callable[[BoundedBuffer[object]], object],
) -> Callable[[BoundedBuffer[object]], object]:
    """`worker`, after a (virtual) second: the other threads get there first and wait."""

    def late(buffer: BoundedBuffer[object]) -> object:
        time.sleep(1.0)  # virtual time under the probe: costs nothing
        return worker(buffer)

    return late


def _get(count: int) -> Callable[[BoundedBuffer[object]], list[object]]:
    def consume(buffer: BoundedBuffer[object]) -> list[object]:
        return [buffer.get() for _ in range(count)]

    return consume


@pytest.mark.probe
@pytest.mark.clause(1)
def test_items_come_out_in_the_order_they_went_in(probe: Prober) -> None:
    def fifo(buffer: BoundedBuffer[object]) -> list[object]:
        _put_all("a", "b", "c")(buffer)
        return _get(3)(buffer)

    def in_order(_buffer: BoundedBuffer[object], results: list[object]) -> None:
        assert results[0] == ["a", "b", "c"], (
            f"put 'a', 'b', 'c' into a buffer of 3, then got {results[0]}: get() must return "
            f"the oldest item first (append on the right, popleft on the left)"
        )

    probe.explore(_buffer(3), [fifo], in_order, budget=1)


@pytest.mark.probe
@pytest.mark.clause(5, 6)
def test_a_closed_buffer_refuses_puts_and_hands_out_what_is_left_then_raises_closed(
    probe: Prober,
) -> None:
    def drain(buffer: BoundedBuffer[object]) -> list[object]:
        _put_all(1, 2)(buffer)
        buffer.close()
        seen: list[object] = []
        try:
            buffer.put(3)
            seen.append("put accepted")
        except Closed:
            seen.append("put refused")
        for _ in range(3):
            try:
                seen.append(buffer.get())
            except Closed:
                seen.append("closed")
        return seen

    def drained(_buffer: BoundedBuffer[object], results: list[object]) -> None:
        seen = results[0]
        assert isinstance(seen, list)
        assert seen[0] == "put refused", (
            f"put(3) on a closed buffer was accepted (then get() gave {seen[1:]}): put() must "
            f"raise Closed once the buffer is closed, after its wait and before it appends"
        )
        assert seen[1:3] == [1, 2], (
            f"after put 1 and 2 and close(), get() gave {seen[1:]}: a closed buffer still "
            f"hands out the items left in it; raise Closed only once it is empty too"
        )
        assert seen == ["put refused", 1, 2, "closed"], (
            f"put 1 and 2, close(), put(3), then get() three times gave {seen}; expected "
            f"the put refused with Closed, then 1 and 2, then Closed"
        )

    probe.explore(
        _buffer(3),
        [drain],
        drained,
        budget=1,
        explain={
            "deadlock": (
                "get() on a closed buffer that had been emptied waited for an item that can "
                "never come: its wait must also end when the buffer is closed (`while not "
                "self.items and not self.closed:`), and then it raises Closed."
            ),
            "misuse": CLOSE_WITHOUT_LOCK,
        },
    )


@pytest.mark.probe
@pytest.mark.clause(3, 7)
def test_with_two_consumers_every_item_is_got_exactly_once(probe: Prober) -> None:
    def producer(buffer: BoundedBuffer[object]) -> None:
        buffer.put(1)
        buffer.close()

    def exactly_once(_buffer: BoundedBuffer[object], results: list[object]) -> None:
        got = [*results[1], *results[2]]  # type: ignore[misc]
        assert POPPED_EMPTY not in got, (
            f"the consumers got {results[1:]}: a consumer woke up, did not check again, and "
            f"took from an empty buffer. While it waited for the lock, the other consumer took "
            f"the item: wait in a `while` loop (or wait_for), never under an `if`"
        )
        assert TOLD_CLOSED_WHILE_OPEN not in got, (
            f"the consumers got {results[1:]}: a consumer was told Closed while the buffer was "
            f"still open. It woke up, found the buffer empty (the other consumer had taken the "
            f"item) and gave up instead of waiting again: use a `while` loop"
        )
        assert got == [1], (
            f"one producer put 1 and closed the buffer, and the two consumers got "
            f"{results[1:]} between them: the item must be got exactly once"
        )

    workers = {
        "producer": producer,
        "consumer-1": _consume_until_closed,
        "consumer-2": _consume_until_closed,
    }
    probe.explore(
        _buffer(1),
        workers,
        exactly_once,
        budget=min(probe.budget, BUSY_SCHEDULES),
        explain={
            "deadlock": (
                "one producer put one item and closed the buffer while two consumers waited for "
                "items. Exactly one consumer gets the item; close() must then wake the other (all "
                "waiters, notify_all), which must see the buffer closed and raise Closed."
            ),
            "misuse": CLOSE_WITHOUT_LOCK,
        },
    )


@pytest.mark.probe
@pytest.mark.clause(2)
def test_with_two_producers_the_buffer_never_holds_more_than_its_capacity(probe: Prober) -> None:
    def within_capacity(buffer: BoundedBuffer[object], results: list[object]) -> None:
        peak = buffer.items.peak  # type: ignore[attr-defined]
        assert peak <= 1, (
            f"a buffer of capacity 1 held {peak} items at once: a producer went on without "
            f"checking for room again after it woke up, appended after releasing the "
            f"condition's lock, or counted a full buffer as having room (room means "
            f"len(items) < capacity). Check and append under the lock, in a `while` loop (or "
            f"wait_for)"
        )
        assert sorted(map(str, results[2])) == ["a1", "a2", "b"], (  # type: ignore[call-overload]
            f"the consumer got {results[2]}, expected a1, a2 and b in some order"
        )

    workers = {"producer-a": _put_all("a1", "a2"), "producer-b": _put_all("b"), "consumer": _get(3)}
    probe.explore(
        _buffer(1),
        workers,
        within_capacity,
        budget=min(probe.budget, BUSY_SCHEDULES),
        explain={
            "deadlock": (
                "two producers and a consumer shared a buffer of one item, so the producers had to "
                "wait for room, woken each time the consumer took an item, and the consumer had "
                "to wait for items, woken each time a producer put one. A get() that notifies "
                "nobody leaves the producers waiting for ever; a put() that notifies nobody "
                "leaves the consumer waiting."
            )
        },
    )


@pytest.mark.probe
@pytest.mark.clause(4)
def test_a_consumer_waiting_on_an_empty_buffer_gets_the_item_a_producer_puts(
    probe: Prober,
) -> None:
    def got_it(_buffer: BoundedBuffer[object], results: list[object]) -> None:
        assert results[0] == ["parcel"], f"the waiting consumer got {results[0]}, not ['parcel']"

    probe.explore(
        _buffer(2),
        {"consumer": _get(1), "producer": _put_all("parcel")},
        got_it,
        explain={
            "deadlock": (
                "a consumer waited on an empty buffer, and a producer put an item: put() must "
                "wake the threads waiting for an item (condition.notify_all() after the append, "
                "while it still holds the condition), or the consumer sleeps on."
            )
        },
    )


@pytest.mark.probe
@pytest.mark.clause(4)
def test_a_producer_waiting_on_a_full_buffer_gets_room_when_a_consumer_gets(
    probe: Prober,
) -> None:
    def full() -> BoundedBuffer[object]:
        buffer = _buffer(1)()
        buffer.items.append("old")
        return buffer

    def made_room(buffer: BoundedBuffer[object], results: list[object]) -> None:
        assert results[1] == ["old"] and list(buffer.items) == ["new"], (
            f"the consumer got {results[1]} and the buffer ended with {list(buffer.items)}; "
            f"expected 'old' got and 'new' put"
        )

    probe.explore(
        full,
        {"producer": _put_all("new"), "consumer": _get(1)},
        made_room,
        explain={
            "deadlock": (
                "a producer waited for room in a full buffer, and a consumer got an item: get() "
                "must wake the threads waiting for room (condition.notify_all() after the "
                "popleft), or the producer sleeps on."
            )
        },
    )


@pytest.mark.probe
@pytest.mark.clause(4)
def test_two_producers_and_two_consumers_never_wait_for_each_other_for_ever(probe: Prober) -> None:
    def all_served(_buffer: BoundedBuffer[object], results: list[object]) -> None:
        got = sorted(str(item) for batch in results[2:] for item in batch)  # type: ignore[attr-defined]
        assert got == ["x", "y"], f"the two consumers got {results[2:]}, expected 'x' and 'y'"

    # Producers and consumers wait on the same condition. If notify() wakes one waiter, it may
    # wake a thread of the wrong kind, which goes back to waiting: the probe then reports a
    # deadlock in which every thread waits for a notify that nobody will send.
    workers = {
        "producer-x": _put_all("x"),
        "producer-y": _put_all("y"),
        "consumer-1": _get(1),
        "consumer-2": _get(1),
    }
    probe.explore(
        _buffer(1),
        workers,
        all_served,
        budget=min(probe.budget, BUSY_SCHEDULES),
        explain={
            "deadlock": (
                "two producers and two consumers shared one condition on a buffer of one item. If "
                "they all end up waiting, a put() or get() woke nobody, or a notify() woke a "
                "thread of the wrong kind (a producer when only a consumer could go on), and the "
                "one that could go on was never woken: notify_all() wakes everybody, and each "
                "re-checks what it waits for."
            )
        },
    )


@pytest.mark.probe
@pytest.mark.clause(6, 8)
def test_close_wakes_every_waiting_consumer(probe: Prober) -> None:
    def both_released(_buffer: BoundedBuffer[object], results: list[object]) -> None:
        assert results[:2] == [[], []], (
            f"two consumers of an empty buffer got {results[:2]} when it was closed; expected "
            f"nothing, then Closed"
        )

    # A consumer still waiting after close() is reported by the probe as a deadlock.
    workers = {
        "consumer-1": _consume_until_closed,
        "consumer-2": _consume_until_closed,
        "closer": lambda buffer: buffer.close(),
    }
    probe.explore(
        _buffer(1),
        workers,
        both_released,
        explain={
            "deadlock": (
                "two consumers waited on an empty buffer when it was closed. close() must wake "
                "every waiter (notify_all, not notify), and each consumer's wait must end when "
                "the buffer is closed, not only when an item comes."
            ),
            "misuse": CLOSE_WITHOUT_LOCK,
        },
    )


@pytest.mark.probe
@pytest.mark.clause(5, 8)
def test_close_wakes_a_producer_waiting_for_room(probe: Prober) -> None:
    def fill_and_keep_putting(buffer: BoundedBuffer[object]) -> int:
        accepted = 0
        try:
            for item in range(3):
                buffer.put(item)
                accepted += 1
        except Closed:
            return accepted
        return -1

    def refused(buffer: BoundedBuffer[object], results: list[object]) -> None:
        accepted = results[0]
        assert accepted in (0, 1), (
            f"a producer putting 3 items into a buffer of capacity 1 that nobody empties had "
            f"{accepted} puts accepted before close(); at most 1 fits (room means "
            f"len(items) < capacity), then put() must wait, and raise Closed once the buffer is "
            f"closed"
        )

    # A producer still waiting for room after close() is reported as a deadlock: its wait
    # must also end when the buffer is closed.
    workers = {"producer": fill_and_keep_putting, "closer": lambda buffer: buffer.close()}
    probe.explore(
        _buffer(1),
        workers,
        refused,
        explain={
            "deadlock": (
                "a producer waited for room in a full buffer that nobody empties, and then the "
                "buffer was closed. put()'s wait must also end when the buffer is closed: make "
                "`closed` part of what it waits for, and let close() wake every waiter."
            ),
            "misuse": CLOSE_WITHOUT_LOCK,
        },
    )


@pytest.mark.probe
@pytest.mark.clause(2, 4)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(capacity=st.integers(1, 3), producers=st.integers(1, 2))
def test_producers_waiting_on_a_full_buffer_of_any_capacity_get_room_as_items_are_got(
    probe: Prober, capacity: int, producers: int
) -> None:
    old = [f"old-{n}" for n in range(capacity)]
    new = sorted(f"new-{n}" for n in range(producers))

    def full() -> BoundedBuffer[object]:
        buffer = _buffer(capacity)()
        buffer.items.extend(old)
        return buffer

    def made_room(buffer: BoundedBuffer[object], results: list[object]) -> None:
        got = cast(list[object], results[-1])
        peak = buffer.items.peak  # type: ignore[attr-defined]
        assert peak <= capacity, (
            f"a buffer of capacity {capacity} held {peak} items at once: a producer appended "
            f"to a full buffer. Room means len(items) < capacity, checked again after every wait"
        )
        # Got then left over is the order the buffer handed items out in: the old ones first.
        handed = [*got, *buffer.items]
        assert handed[:capacity] == old and sorted(map(str, handed[capacity:])) == new, (
            f"a consumer got {got} from a full buffer holding {old} while {producers} "
            f"producer(s) each put one new item, and the buffer ended with "
            f"{list(buffer.items)}: expected the old items first, oldest first, then the new "
            f"ones {new}, each once"
        )

    workers: dict[str, Callable[[BoundedBuffer[object]], object]] = {
        f"producer-{n}": _put_all(f"new-{n}") for n in range(producers)
    }
    workers["consumer"] = _later(_get(producers))
    probe.explore(
        full,
        workers,
        made_room,
        budget=min(probe.budget, DRAWN_SCHEDULES),
        explain={
            "deadlock": (
                f"{producers} producer(s) waited for room in a full buffer of capacity "
                f"{capacity}, and a consumer got {producers} item(s). Every get() frees a slot: "
                f"it must wake the threads waiting for room each time (notify_all() after the "
                f"popleft), not only when the buffer becomes empty, or a producer sleeps on "
                f"beside a free slot."
            )
        },
    )


@pytest.mark.probe
@pytest.mark.clause(3, 4)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(capacity=st.integers(1, 3), consumers=st.integers(2, 3), each=st.integers(1, 2))
def test_consumers_waiting_together_are_all_served_whatever_the_capacity(
    probe: Prober, capacity: int, consumers: int, each: int
) -> None:
    items = list(range(consumers * each))

    def all_served(buffer: BoundedBuffer[object], results: list[object]) -> None:
        batches = [cast(list[int], batch) for batch in results[1:]]
        got = sorted(item for batch in batches for item in batch)
        peak = buffer.items.peak  # type: ignore[attr-defined]
        assert peak <= capacity, (
            f"a buffer of capacity {capacity} held {peak} items at once: a producer appended "
            f"to a full buffer"
        )
        assert got == items, (
            f"a producer put {items} and {consumers} consumers getting {each} each got "
            f"{batches} between them: every item must be got exactly once"
        )
        assert all(batch == sorted(batch) for batch in batches), (
            f"one producer put {items} in that order, and the consumers got {batches}: each "
            f"consumer must get them oldest first (popleft)"
        )

    workers: dict[str, Callable[[BoundedBuffer[object]], object]] = {
        "producer": _later(_put_all(*items))
    }
    for n in range(consumers):
        workers[f"consumer-{n + 1}"] = _get(each)
    probe.explore(
        _buffer(capacity),
        workers,
        all_served,
        budget=min(probe.budget, DRAWN_SCHEDULES),
        explain={
            "deadlock": (
                f"{consumers} consumers waited on an empty buffer of capacity {capacity} while "
                f"a producer put {len(items)} item(s), one for each get(). If a consumer sleeps "
                f"on beside an item, a put() woke nobody or only one waiter: when several items "
                f"go in before the woken consumers run, each waiting consumer needs its wakeup. "
                f"Call notify_all() after every append, not only when the buffer was empty."
            )
        },
    )
