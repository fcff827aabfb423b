"""Kata `async_sync`: asyncio Lock, Condition, Semaphore, Event and Barrier across `await`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
from async_sync import AsyncCache, BoundedBuffer, RateLimiter, StartingGate, run_rounds

from plugins.probe import Prober

Worker = Callable[[Any], Awaitable[object]]


# Schedules each probe tries. Where the verdict depends only on timing, a few suffice; the
# races (a consumer overtaken while it waits) get more, so they are found under any seed.
FEW_SCHEDULES = 10
RACE_SCHEDULES = 100


def explore(
    probe: Prober,
    setup: Callable[[], Any],
    workers: list[Worker] | dict[str, Worker],
    check: Callable[[Any, list[object]], None],
    budget: int = FEW_SCHEDULES,
    explain: Mapping[str, str] | None = None,
) -> None:
    """probe.explore_async with a schedule budget that fits the test."""
    __tracebackhide__ = True
    probe.explore_async(setup, workers, check, budget=budget, explain=explain)


def now() -> float:
    return asyncio.get_running_loop().time()


# -- AsyncCache ----------------------------------------------------------------------------

FETCH_SECONDS = 1.0


class Backend:
    """Setup: a slow backend that counts its fetches, and a cache in front of it."""

    def __init__(self) -> None:
        self.fetches: list[str] = []
        self.cache: AsyncCache[str] = AsyncCache(self.fetch)

    async def fetch(self, key: str) -> str:
        self.fetches.append(key)
        await asyncio.sleep(FETCH_SECONDS)  # the round trip to the backend
        return key.upper()


async def get_k(backend: Backend) -> object:
    return await backend.cache.get("k")


async def get_k_after_a_round_trip(backend: Backend) -> object:
    await asyncio.sleep(0)  # a client that does something else first
    return await backend.cache.get("k")


@pytest.mark.probe
def test_two_callers_of_the_same_missing_key_cause_one_fetch(probe: Prober) -> None:
    def one_fetch(backend: Backend, results: list[object]) -> None:
        assert backend.fetches == ["k"], (
            f"two callers asked for 'k' at about the same time and the backend was asked "
            f"{len(backend.fetches)} times: both saw 'k' missing before either stored it "
            f"(check-then-act across an await). Check and fetch under the key's lock."
        )
        assert results == ["K", "K"], f"the callers got {results}, expected 'K' twice"

    explore(
        probe,
        Backend,
        {"first": get_k, "second": get_k_after_a_round_trip},
        one_fetch,
        budget=RACE_SCHEDULES,
    )


@pytest.mark.probe
def test_fetches_of_different_keys_run_at_the_same_time(probe: Prober) -> None:
    async def get_a(backend: Backend) -> object:
        await backend.cache.get("a")
        return now()

    async def get_b(backend: Backend) -> object:
        await backend.cache.get("b")
        return now()

    def side_by_side(backend: Backend, results: list[object]) -> None:
        assert results == [FETCH_SECONDS, FETCH_SECONDS], (
            f"'a' and 'b' (1 s fetches each) were ready at {results} s: the fetch of one key "
            f"waited for the other's. One lock for the whole cache serializes every key; give "
            f"each key its own lock"
        )

    explore(probe, Backend, {"get-a": get_a, "get-b": get_b}, side_by_side)


@pytest.mark.probe
def test_a_cached_key_is_not_fetched_again(probe: Prober) -> None:
    async def get_twice(backend: Backend) -> object:
        return [await backend.cache.get("k"), await backend.cache.get("k")]

    def cached(backend: Backend, results: list[object]) -> None:
        assert (results[0], backend.fetches) == (["K", "K"], ["k"]), (
            f"two gets of 'k' one after the other gave {results[0]} and fetched "
            f"{backend.fetches}; the second must come from the cache"
        )

    explore(probe, Backend, [get_twice], cached)


# -- BoundedBuffer -------------------------------------------------------------------------


class Shelf:
    """Setup: a buffer of capacity 2 and the largest size anyone saw it at."""

    def __init__(self, capacity: int = 2) -> None:
        self.buffer: BoundedBuffer[int] = BoundedBuffer(capacity)
        self.capacity = capacity
        self.largest = 0

    async def put(self, item: int) -> None:
        await self.buffer.put(item)
        self.largest = max(self.largest, len(self.buffer))


@pytest.mark.probe
def test_the_buffer_is_first_in_first_out_and_never_holds_more_than_its_capacity(
    probe: Prober,
) -> None:
    async def produce(shelf: Shelf) -> object:
        for item in range(1, 6):
            await shelf.put(item)
        return None

    async def consume(shelf: Shelf) -> object:
        return [await shelf.buffer.get() for _ in range(5)]

    def in_order_and_bounded(shelf: Shelf, results: list[object]) -> None:
        assert results[1] == [1, 2, 3, 4, 5], f"the consumer got {results[1]}, not 1..5 in order"
        assert shelf.largest <= shelf.capacity, (
            f"the buffer held {shelf.largest} items with capacity {shelf.capacity}: put must "
            f"wait while len(items) >= capacity"
        )

    explore(probe, Shelf, {"producer": produce, "consumer": consume}, in_order_and_bounded)


@pytest.mark.probe
def test_two_consumers_each_get_one_item_and_neither_finds_the_buffer_empty(probe: Prober) -> None:
    async def produce_two(shelf: Shelf) -> object:
        await shelf.put(1)
        await asyncio.sleep(1)
        await shelf.put(2)
        return None

    async def consume_one(shelf: Shelf) -> object:
        return await shelf.buffer.get()

    def each_once(_shelf: Shelf, results: list[object]) -> None:
        got = sorted(r for r in results[1:] if isinstance(r, int))
        assert got == [1, 2], f"the two consumers got {results[1:]}, expected 1 and 2 once each"

    explore(
        probe,
        Shelf,
        {"producer": produce_two, "consumer-1": consume_one, "consumer-2": consume_one},
        each_once,
        budget=RACE_SCHEDULES,
    )


@pytest.mark.probe
def test_producers_and_consumers_sharing_one_condition_never_all_wait_at_once(
    probe: Prober,
) -> None:
    async def produce_two_later(shelf: Shelf) -> object:
        await asyncio.sleep(1)  # the consumers are already waiting when the producers come
        await shelf.put(1)
        await shelf.put(2)
        return None

    async def consume_two(shelf: Shelf) -> object:
        return [await shelf.buffer.get(), await shelf.buffer.get()]

    def all_delivered(_shelf: Shelf, results: list[object]) -> None:
        got = sorted(results[2] + results[3])  # type: ignore[operator]
        assert got == [1, 1, 2, 2], f"the consumers got {results[2:]}"

    explore(
        probe,
        lambda: Shelf(capacity=1),
        {
            "producer-1": produce_two_later,
            "producer-2": produce_two_later,
            "consumer-1": consume_two,
            "consumer-2": consume_two,
        },
        all_delivered,
        budget=RACE_SCHEDULES,
        explain={
            "deadlock": (
                "Two producers and two consumers share one condition on a buffer of one slot. If "
                "they all end up waiting, a notify() woke a coroutine of the wrong kind (a producer "
                "when only a consumer could go on) and the one that could go on was never woken: "
                "notify_all() wakes everybody, and each re-checks its own predicate."
            )
        },
    )


# -- RateLimiter ---------------------------------------------------------------------------

BODY_SECONDS = 0.5


class Limited:
    """Setup: a limiter of 2 entries per second, and the loop time of each entry."""

    def __init__(self) -> None:
        self.limiter = RateLimiter(2, 1.0)
        self.entries: list[float] = []

    async def call(self) -> object:
        async with self.limiter:
            self.entries.append(now())
            await asyncio.sleep(BODY_SECONDS)
        return None


@pytest.mark.probe
def test_at_most_limit_entries_start_per_period_counted_from_each_entry(probe: Prober) -> None:
    def paced(limited: Limited, _results: list[object]) -> None:
        assert sorted(limited.entries) == [0.0, 0.0, 1.0, 1.0, 2.0], (
            f"5 calls through a limiter of 2 per 1 s (each body takes 0.5 s) entered at "
            f"{sorted(limited.entries)} s, expected [0, 0, 1, 1, 2]. A permit must come back "
            f"1 s after it was taken: not when the body ends (that limits concurrency, not "
            f"rate), and not 1 s after the body ends"
        )

    explore(
        probe,
        Limited,
        [Limited.call] * 5,
        paced,
        explain={
            "deadlock": (
                "Five calls go through a limiter of 2 per second. If they end up waiting forever, "
                "no permit ever came back: schedule its release with loop.call_later(period, ...) "
                "when you take it."
            )
        },
    )


@pytest.mark.asyncio
async def test_an_exception_in_a_limited_body_reaches_the_caller() -> None:
    limiter = RateLimiter(1, 1.0)
    try:
        async with limiter:
            raise KeyError("from the body")
    except KeyError:
        return
    pytest.fail(
        "a KeyError raised inside `async with limiter:` never reached the caller: __aexit__ "
        "returned a true value, which tells Python the exception was handled. Return None."
    )


# -- StartingGate --------------------------------------------------------------------------


class Race:
    """Setup: a gate for three runners and the loop time each one was let go."""

    def __init__(self) -> None:
        self.gate = StartingGate(3)
        self.released: dict[str, float] = {}


def runner(name: str, arrives_at: float) -> Worker:
    async def run(race: Race) -> object:
        await asyncio.sleep(arrives_at)
        await race.gate.ready()
        race.released[name] = now()
        return None

    return run


@pytest.mark.probe
def test_no_runner_is_let_go_before_all_three_are_ready(probe: Prober) -> None:
    def together(race: Race, _results: list[object]) -> None:
        assert race.released == {"a": 2.0, "b": 2.0, "c": 2.0}, (
            f"runners ready at 0, 1 and 2 s were let go at {race.released}; all of them must "
            f"go at 2 s, when the third is ready: set the event when the count reaches parties"
        )

    explore(
        probe,
        Race,
        {"a": runner("a", 0), "b": runner("b", 1), "c": runner("c", 2)},
        together,
        explain={
            "deadlock": (
                "Three runners call ready() at 0, 1 and 2 s. If they all wait forever, the event was "
                "never set: each runner must count itself in before it waits, and the last one sets "
                "the event."
            )
        },
    )


# -- run_rounds ----------------------------------------------------------------------------


class Rounds:
    """Setup: records when each (round, worker) step starts and ends; worker w takes w + 1 s."""

    def __init__(self) -> None:
        self.spans: dict[tuple[int, int], tuple[float, float]] = {}

    async def step(self, worker: int, round_: int) -> None:
        started = now()
        await asyncio.sleep(worker + 1)
        self.spans[(round_, worker)] = (started, now())


ROUNDS_EXPLAINED = (
    "Three workers run two rounds in lockstep. If a worker waits at the barrier forever, it "
    "waited alone: the workers must run at the same time (in one TaskGroup), and the barrier "
    "must be made for all of them."
)


async def three_workers_two_rounds(rounds: Rounds) -> object:
    await run_rounds(3, 2, rounds.step)
    return now()


@pytest.mark.probe
def test_no_worker_starts_a_round_before_every_worker_finished_the_last(probe: Prober) -> None:
    def lockstep(rounds: Rounds, _results: list[object]) -> None:
        assert len(rounds.spans) == 6, f"the steps that ran were {sorted(rounds.spans)}"
        last_end = max(end for (r, _), (_, end) in rounds.spans.items() if r == 0)
        early = {
            w: start for (r, w), (start, _) in rounds.spans.items() if r == 1 and start < last_end
        }
        assert not early, (
            f"round 0 ended at {last_end:g} s (its slowest worker), but workers {early} "
            f"(worker: start) began round 1 before that: every worker must wait at the barrier "
            f"after each round"
        )

    explore(
        probe, Rounds, [three_workers_two_rounds], lockstep, explain={"deadlock": ROUNDS_EXPLAINED}
    )


@pytest.mark.probe
def test_the_workers_of_a_round_run_at_the_same_time(probe: Prober) -> None:
    def concurrent(_rounds: Rounds, results: list[object]) -> None:
        assert results == [6.0], (
            f"two rounds of steps taking 1, 2 and 3 s ended at {results[0]} s, expected 6 s "
            f"(3 s per round): the workers of a round must run side by side"
        )

    explore(
        probe,
        Rounds,
        [three_workers_two_rounds],
        concurrent,
        explain={"deadlock": ROUNDS_EXPLAINED},
    )
