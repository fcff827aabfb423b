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
        if key.startswith("bad"):
            raise LookupError(f"the backend has no {key!r}")
        return key.upper()


async def get_k(backend: Backend) -> object:
    return await backend.cache.get("k")


async def get_k_after_a_round_trip(backend: Backend) -> object:
    await asyncio.sleep(0)  # a client that does something else first
    return await backend.cache.get("k")


@pytest.mark.probe
@pytest.mark.clause(2)
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
@pytest.mark.clause(3)
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
@pytest.mark.clause(1)
def test_a_cached_key_is_not_fetched_again(probe: Prober) -> None:
    async def get_twice(backend: Backend) -> object:
        return [await backend.cache.get("k"), await backend.cache.get("k")]

    def cached(backend: Backend, results: list[object]) -> None:
        assert (results[0], backend.fetches) == (["K", "K"], ["k"]), (
            f"two gets of 'k' one after the other gave {results[0]} and fetched "
            f"{backend.fetches}; the second must come from the cache"
        )

    explore(probe, Backend, [get_twice], cached)


LOCK_LEFT_HELD = (
    "The next caller of the key waits forever for its lock: the caller before it left the "
    "lock held when its fetch ended with an exception (a CancelledError is one too). A lock "
    "taken with `await lock.acquire()` and released by a plain `lock.release()` after the "
    "await is never released then; `async with lock:` releases it on every way out."
)


@pytest.mark.probe
@pytest.mark.clause(4)
def test_a_failed_fetch_is_not_cached_and_the_next_caller_fetches_again(probe: Prober) -> None:
    async def get_bad(backend: Backend) -> object:
        try:
            return await backend.cache.get("bad")
        except LookupError as error:
            return repr(error)

    async def get_bad_a_little_later(backend: Backend) -> object:
        await asyncio.sleep(FETCH_SECONDS / 2)
        return await get_bad(backend)

    def fetched_twice(backend: Backend, results: list[object]) -> None:
        error = repr(LookupError("the backend has no 'bad'"))
        assert results == [error, error], (
            f"two callers of a key whose fetch fails got {results}: each must get the fetch's "
            f"LookupError"
        )
        assert backend.fetches == ["bad", "bad"], (
            f"the backend was asked for {backend.fetches}: a failed fetch must not be cached, "
            f"so the second caller fetches the key again (after the first released its lock); "
            f"a stored task or future that failed hands its old error to everybody"
        )

    explore(
        probe,
        Backend,
        {"first": get_bad, "second": get_bad_a_little_later},
        fetched_twice,
        explain={"deadlock": LOCK_LEFT_HELD},
    )


@pytest.mark.probe
@pytest.mark.clause(4)
def test_a_caller_cancelled_during_its_fetch_leaves_the_key_to_the_next_caller(
    probe: Prober,
) -> None:
    async def gives_up(backend: Backend) -> object:
        asking = asyncio.create_task(backend.cache.get("k"))
        await asyncio.sleep(FETCH_SECONDS / 2)
        asking.cancel()
        await asyncio.wait([asking])
        if asking.cancelled():
            return "cancelled"
        return f"ended with {asking.exception() or asking.result()!r}"

    async def comes_later(backend: Backend) -> object:
        await asyncio.sleep(FETCH_SECONDS)
        try:
            value = await backend.cache.get("k")
        except asyncio.CancelledError:
            return "a CancelledError, though nobody cancelled it"
        return value, now()

    def fetched_again(backend: Backend, results: list[object]) -> None:
        assert results[0] == "cancelled", (
            f"the first caller was cancelled during its fetch, yet its get {results[0]}"
        )
        assert results[1] == ("K", 2 * FETCH_SECONDS), (
            f"the first caller of 'k' gave up at 0.5 s, in the middle of its fetch; the next "
            f"caller came at 1 s and got {results[1]} instead of ('K', 2.0), its own fetch "
            f"done. A cancelled caller must not take the key down with it: a shared fetch task "
            f"stored for the key is cancelled along with the first caller that awaits it"
        )
        assert backend.fetches == ["k", "k"], f"the backend was asked for {backend.fetches}"

    explore(
        probe,
        Backend,
        {"gives-up": gives_up, "comes-later": comes_later},
        fetched_again,
        explain={"deadlock": LOCK_LEFT_HELD},
    )


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
@pytest.mark.clause(5, 6)
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
@pytest.mark.clause(5, 7)
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
@pytest.mark.clause(7)
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


@pytest.mark.probe
@pytest.mark.clause(8)
def test_a_consumer_cancelled_while_it_waits_takes_nothing_and_blocks_nobody(
    probe: Prober,
) -> None:
    async def gives_up(shelf: Shelf) -> object:
        waiting = asyncio.create_task(shelf.buffer.get())
        await asyncio.sleep(0.5)
        waiting.cancel()
        await asyncio.wait([waiting])
        if waiting.cancelled():
            return "cancelled"
        return f"ended with {waiting.exception() or waiting.result()!r}"

    async def consume_one(shelf: Shelf) -> object:
        return await shelf.buffer.get()

    async def produce_one_later(shelf: Shelf) -> object:
        await asyncio.sleep(1)
        await shelf.put(1)
        return None

    def delivered(_shelf: Shelf, results: list[object]) -> None:
        assert results[:2] == ["cancelled", 1], (
            f"a consumer that gave up at 0.5 s ended as {results[0]!r}, and the one that kept "
            f"waiting got {results[1]!r}; expected 'cancelled' and the item 1"
        )

    explore(
        probe,
        Shelf,
        {"gives-up": gives_up, "consumer": consume_one, "producer": produce_one_later},
        delivered,
        explain={
            "deadlock": (
                "A consumer waiting in get() was cancelled at 0.5 s, and then nobody could use "
                "the buffer. Condition.wait() takes the lock back before it raises the "
                "CancelledError, so the lock stays held unless the `async with self._changed:` "
                "block releases it on the way out: a plain acquire() ... release() does not."
            )
        },
    )


# -- RateLimiter ---------------------------------------------------------------------------

BODY_SECONDS = 0.5
# Every call starts at this loop time, not at 0, so that a loop time passed where a delay
# belongs (call_at(period, ...)) shows.
CLOCK_START = 1000.0


class Limited:
    """Setup: a limiter (2 entries per second unless told), and each entry's time from the
    start."""

    def __init__(self, limit: int = 2, period: float = 1.0) -> None:
        self.limiter = RateLimiter(limit, period)
        self.entries: list[float] = []

    async def call(self) -> object:
        await asyncio.sleep(CLOCK_START - now())
        async with self.limiter:
            self.entries.append(now() - CLOCK_START)
            await asyncio.sleep(BODY_SECONDS)
        return None


NO_PERMIT_BACK = (
    "Calls go through the limiter and end up waiting forever: no permit ever came back. "
    "Schedule its release with loop.call_later(period, ...) when you take it."
)


@pytest.mark.probe
@pytest.mark.clause(9, 10)
def test_at_most_limit_entries_start_per_period_counted_from_each_entry(probe: Prober) -> None:
    def paced(limited: Limited, _results: list[object]) -> None:
        assert sorted(limited.entries) == [0.0, 0.0, 1.0, 1.0, 2.0], (
            f"5 calls through a limiter of 2 per 1 s (each body takes 0.5 s) entered at "
            f"{sorted(limited.entries)} s, expected [0, 0, 1, 1, 2]. A permit must come back "
            f"1 s after it was taken: not when the body ends (that limits concurrency, not "
            f"rate), not 1 s after the body ends, and not at the loop time 1.0 (call_at wants "
            f"a time on the loop's clock, which read {CLOCK_START:g} s here; call_later wants "
            f"the delay)"
        )

    explore(probe, Limited, [Limited.call] * 5, paced, explain={"deadlock": NO_PERMIT_BACK})


@pytest.mark.probe
@pytest.mark.clause(9, 10)
def test_the_limit_and_the_period_are_the_ones_given(probe: Prober) -> None:
    def paced(limited: Limited, _results: list[object]) -> None:
        expected = [0.0, 0.0, 0.0, 2.5, 2.5, 2.5, 5.0]
        if set(limited.entries) == {0.0}:
            why = (
                "every call got in at once, so each permit came back at once: is the period "
                "handed to call_at, which wants a time on the loop's clock? call_later wants "
                "the delay"
            )
        else:
            why = "3 permits, each back 2.5 s after it was taken: use self._period, not 1 s"
        assert sorted(limited.entries) == expected, (
            f"7 calls through RateLimiter(3, 2.5) entered at {sorted(limited.entries)} s, "
            f"expected {expected}: {why}"
        )

    explore(
        probe,
        lambda: Limited(3, 2.5),
        [Limited.call] * 7,
        paced,
        explain={"deadlock": NO_PERMIT_BACK},
    )


@pytest.mark.asyncio
@pytest.mark.clause(11)
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
@pytest.mark.clause(12)
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
@pytest.mark.clause(14)
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
@pytest.mark.clause(13)
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


class FailingRounds(Rounds):
    """Setup: like Rounds, but worker 1's step of round 0 raises when it ends (at 2 s)."""

    async def step(self, worker: int, round_: int) -> None:
        await super().step(worker, round_)
        if (worker, round_) == (1, 0):
            raise Boom("worker 1 failed in round 0")


class Boom(Exception):
    """The failure of a step."""


def leftover_tasks(before: set[asyncio.Task[Any]]) -> list[str]:
    """The unfinished tasks made since `before` was taken, by their coroutine's name."""
    return sorted(
        task.get_coro().__qualname__  # type: ignore[union-attr]
        for task in asyncio.all_tasks() - before
        if not task.done() and task is not asyncio.current_task()
    )


@pytest.mark.probe
@pytest.mark.clause(15)
def test_a_failing_step_cancels_the_other_workers_and_is_raised(probe: Prober) -> None:
    async def run(rounds: Rounds) -> object:
        before = asyncio.all_tasks()
        try:
            await run_rounds(3, 2, rounds.step)
        except NotImplementedError:
            raise
        except BaseException as error:  # the check judges what came out
            return error, now(), leftover_tasks(before)
        return "returned", now(), leftover_tasks(before)

    def failed_cleanly(_rounds: Rounds, results: list[object]) -> None:
        error, ended_at, leftover = results[0]  # type: ignore[misc]
        assert not leftover, (
            f"run_rounds ended at {ended_at:g} s ({error!r}) while the tasks {leftover} were "
            f"still running: a worker whose step failed never reaches the barrier, so the others "
            f"wait there forever. asyncio.gather passes the failure on and leaves them there; "
            f"run the workers in an asyncio.TaskGroup, which cancels them and waits"
        )
        assert isinstance(error, BaseExceptionGroup) and ended_at == 2.0, (
            f"worker 1's step failed at 2 s, and run_rounds ended at {ended_at:g} s with "
            f"{error!r}: it must raise at once, an ExceptionGroup holding the failure, as a "
            f"TaskGroup does"
        )

    explore(probe, FailingRounds, [run], failed_cleanly, explain={"deadlock": ROUNDS_EXPLAINED})


@pytest.mark.probe
@pytest.mark.clause(16)
def test_run_rounds_cancelled_from_outside_leaves_no_worker_running(probe: Prober) -> None:
    async def cancel_midway(rounds: Rounds) -> object:
        before = asyncio.all_tasks()
        leftover: list[str] = []

        async def watched() -> None:
            try:
                await run_rounds(3, 2, rounds.step)
            finally:
                leftover.extend(leftover_tasks(before))

        running = asyncio.create_task(watched())
        await asyncio.sleep(1.5)  # worker 0 waits at the barrier; workers 1 and 2 still step
        running.cancel()
        await asyncio.wait([running])
        if not running.cancelled() and isinstance(running.exception(), NotImplementedError):
            running.result()  # raises it: the stub is not written yet
        return running.cancelled(), [name for name in leftover if "watched" not in name]

    def stopped(_rounds: Rounds, results: list[object]) -> None:
        cancelled, leftover = results[0]  # type: ignore[misc]
        assert not leftover, (
            f"run_rounds was cancelled at 1.5 s and passed the CancelledError on while the "
            f"tasks {leftover} were still running: plain asyncio.gather passes it on as soon as "
            f"the first worker has stopped. An asyncio.TaskGroup cancels every worker and "
            f"waits until each has stopped"
        )
        assert cancelled, "run_rounds was cancelled at 1.5 s, yet its task was not cancelled"

    explore(probe, Rounds, [cancel_midway], stopped, explain={"deadlock": ROUNDS_EXPLAINED})
