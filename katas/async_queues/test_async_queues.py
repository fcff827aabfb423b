"""Kata `async_queues`: workers fed by an asyncio.Queue, and a clean shutdown."""

from __future__ import annotations

import asyncio
import heapq
from collections import Counter
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import pytest
from async_queues import STOP, Stop, consume, process_all, produce, run_pipeline, worker
from hypothesis import given
from hypothesis import strategies as st

from plugins.probe import Prober, scenario_settings

T = TypeVar("T")

# Every handler in these tests finishes in microseconds, so correct code is done within a few
# milliseconds. One second only ever runs out when something waits forever (a join() that
# nobody completes, a consumer that never gets its STOP), and then it always runs out.
HANG_SECONDS = 1.0
# The same patience in the probe's virtual time, where waiting costs nothing.
VIRTUAL_PATIENCE = 100.0
# Schedules for the probes that judge counts and timings, not a rare order: enough to cover
# the orders that matter (a cancellation that overtakes a task's clean-up shows within a few),
# few enough to keep each probe well under half a second.
SCHEDULES = 50
# Drawn scenarios: Hypothesis draws the batch (how long each item's handler takes, which ones
# fail) and the number of workers, or the pipeline's items, consumers and maxsize, and the probe
# explores each drawn scenario. The fixed tests give every item the same length, which hides a
# worker that idles and an error picked by the clock; drawn lengths show them in every
# schedule, so a few schedules per example are plenty. Hypothesis tries tiny scenarios first;
# 16 examples reach batches of three or more items of unequal lengths.
DRAWN_EXAMPLES = 16
DRAWN_SCHEDULES = 4
# How long each item's handler takes, in virtual seconds (0: it only yields once).
LENGTHS = st.lists(st.integers(0, 3), min_size=1, max_size=6)


@st.composite
def failing_batches(draw: st.DrawFn) -> tuple[list[int], set[int]]:
    """The lengths of a batch, and the items among them whose handlers fail (at least one)."""
    lengths = draw(LENGTHS)
    failing = draw(st.sets(st.integers(0, len(lengths) - 1), min_size=1))
    return lengths, failing


async def shout(item: str) -> str:
    await asyncio.sleep(0)
    if item.startswith("bad"):
        raise ValueError(item)
    return item.upper()


def leftover_tasks(before: set[asyncio.Task[Any]]) -> list[str]:
    """The unfinished tasks made since `before` was taken (the current one aside), by name of
    their coroutine."""
    return sorted(
        task.get_coro().__qualname__  # type: ignore[union-attr]
        for task in asyncio.all_tasks() - before
        if not task.done() and task is not asyncio.current_task()
    )


JOIN_NEVER_RETURNS = (
    "queue.join() returns only once task_done() was called for every item put, so a worker "
    "that skips it for an item (or dies on a failing one) leaves join() waiting forever: call "
    "task_done() in a `finally`"
)


async def within_patience(awaitable: Awaitable[T], what: str, why: str) -> T:
    """`await awaitable`, or fail in words if it has not finished after HANG_SECONDS."""
    __tracebackhide__ = True
    try:
        async with asyncio.timeout(HANG_SECONDS):
            return await awaitable
    except TimeoutError:
        pytest.fail(
            f"{what} had not returned {HANG_SECONDS:g} s later, though every handler here takes "
            f"microseconds: {why}"
        )


async def stop_tasks(tasks: Iterable[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def join_or_fail(queue: asyncio.Queue[tuple[int, str]], task: asyncio.Task[None]) -> None:
    """Wait until `queue.join()` returns; fail in words if it hangs or the worker ends first."""
    __tracebackhide__ = True
    joiner = asyncio.create_task(queue.join())
    try:
        done, _ = await asyncio.wait(
            [joiner, task], timeout=HANG_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        joiner.cancel()
    if task in done:
        problem = task.exception()
        if isinstance(problem, NotImplementedError):
            raise problem
        pytest.fail(
            f"the worker task ended ({problem!r}) while items still waited on the queue: a worker "
            f"runs until it is cancelled, and a handler's exception belongs in errors[index], "
            f"not out of the worker, where it kills the worker and strands the other items"
        )
    assert joiner in done, (
        f"queue.join() had not returned {HANG_SECONDS} s after the worker got its items: join() "
        f"returns only once task_done() was called for every item taken; without it, join() "
        f"waits forever"
    )


@pytest.mark.asyncio
@pytest.mark.clause(1, 3)
async def test_a_worker_handles_each_item_and_marks_it_done() -> None:
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for pair in [(0, "a"), (1, "b"), (2, "c")]:
        queue.put_nowait(pair)
    results: dict[int, str] = {}
    errors: dict[int, Exception] = {}
    task = asyncio.create_task(worker(queue, shout, results, errors))
    try:
        await join_or_fail(queue, task)
    finally:
        await stop_tasks([task])
    assert results == {0: "A", 1: "B", 2: "C"}, (
        f"results are {results}: results[index] must hold await handle(item) for every pair"
    )


@pytest.mark.asyncio
@pytest.mark.clause(2, 3)
async def test_a_worker_records_a_failing_item_and_goes_on_with_the_next() -> None:
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for pair in [(0, "bad"), (1, "ok")]:
        queue.put_nowait(pair)
    results: dict[int, str] = {}
    errors: dict[int, Exception] = {}
    task = asyncio.create_task(worker(queue, shout, results, errors))
    try:
        await join_or_fail(queue, task)
    finally:
        await stop_tasks([task])
    assert isinstance(errors.get(0), ValueError), (
        f"the handler raised ValueError('bad') for item 0, yet errors is {errors}: the worker "
        f"swallowed the exception, and nobody will ever learn that item 0 failed. Store it in "
        f"errors[index]"
    )
    assert results == {1: "OK"}, f"results are {results}; after the failing item 0 came item 1"


@pytest.mark.asyncio
@pytest.mark.clause(4)
async def test_a_worker_waits_for_more_pairs_when_the_queue_runs_empty() -> None:
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    queue.put_nowait((0, "a"))
    results: dict[int, str] = {}
    errors: dict[int, Exception] = {}
    task = asyncio.create_task(worker(queue, shout, results, errors))
    try:
        await join_or_fail(queue, task)  # the queue is empty now, and the worker must wait on
        for _ in range(3):
            await asyncio.sleep(0)
        queue.put_nowait((1, "b"))
        await join_or_fail(queue, task)
    finally:
        await stop_tasks([task])
    assert results == {0: "A", 1: "B"}, (
        f"a pair put after the queue had run empty gave the results {results}: a worker runs "
        f"until it is cancelled, `while True: ... await queue.get()`, not while the queue has "
        f"items"
    )


@pytest.mark.asyncio
@pytest.mark.clause(7)
async def test_process_all_returns_every_result_in_the_order_of_the_items() -> None:
    items = ["d", "a", "c", "b", "e"]
    results = await within_patience(
        process_all(items, shout, workers=2), "process_all", JOIN_NEVER_RETURNS
    )
    assert results == ["D", "A", "C", "B", "E"], (
        f"process_all returned {results}: result i must be handle(items[i]), whatever the order "
        f"the workers finished in"
    )


JOIN_NEVER_RETURNS_PROBE = (
    "process_all waits in queue.join() while every worker waits for another item: "
    + JOIN_NEVER_RETURNS
    + "."
)


class Tracker:
    """Counts handler calls and how many run at once, on the probe's virtual clock."""

    def __init__(self) -> None:
        self.calls: Counter[int] = Counter()
        self.in_flight = 0
        self.most_at_once = 0

    async def handle(self, item: int) -> int:
        self.calls[item] += 1
        self.in_flight += 1
        self.most_at_once = max(self.most_at_once, self.in_flight)
        await asyncio.sleep(1)
        self.in_flight -= 1
        return item * 10


@pytest.mark.probe
@pytest.mark.clause(5)
def test_process_all_runs_up_to_workers_handlers_at_the_same_time(probe: Prober) -> None:
    async def run(tracker: Tracker) -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await process_all(range(4), tracker.handle, workers=2)
        return results, loop.time() - started

    def two_at_a_time(tracker: Tracker, outcome: list[object]) -> None:
        results, seconds = outcome[0]  # type: ignore[misc]
        twice = sorted(item for item, calls in tracker.calls.items() if calls != 1)
        assert results == [0, 10, 20, 30], f"process_all returned {results}, not [0, 10, 20, 30]"
        assert not twice, f"items {twice} were handled more than once"
        assert (tracker.most_at_once, seconds) == (2, 2), (
            f"4 handlers of 1 s each with workers=2 ran at most {tracker.most_at_once} at once "
            f"and took {seconds:g} s instead of 2: start all `workers` tasks before you wait on "
            f"the queue, so that they take items side by side"
        )

    probe.explore_async(
        Tracker, [run], two_at_a_time, explain={"deadlock": JOIN_NEVER_RETURNS_PROBE}
    )


@pytest.mark.probe
@pytest.mark.clause(6)
def test_process_all_starts_three_workers_by_default(probe: Prober) -> None:
    async def run(tracker: Tracker) -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        results = await process_all(range(6), tracker.handle)
        return results, loop.time() - started

    def three_at_a_time(tracker: Tracker, outcome: list[object]) -> None:
        results, seconds = outcome[0]  # type: ignore[misc]
        assert results == [0, 10, 20, 30, 40, 50], f"process_all returned {results}"
        assert (tracker.most_at_once, seconds) == (3, 2), (
            f"6 handlers of 1 s each with the default number of workers ran at most "
            f"{tracker.most_at_once} at once and took {seconds:g} s; expected 3 at once and 2 s: "
            f"`workers` is 3 unless the caller says otherwise, so start range(workers) tasks"
        )

    probe.explore_async(
        Tracker,
        [run],
        three_at_a_time,
        explain={"deadlock": JOIN_NEVER_RETURNS_PROBE},
        budget=SCHEDULES,
    )


class Batch:
    """Items 0..n-1: item i's handler takes `lengths[i]` virtual seconds, then raises if i is
    in `failing`, else gives i * 10. Counts the calls of each item."""

    def __init__(self, lengths: list[int], failing: set[int] | None = None) -> None:
        self.lengths = lengths
        self.failing = failing or set()
        self.calls: Counter[int] = Counter()

    async def handle(self, item: int) -> int:
        self.calls[item] += 1
        await asyncio.sleep(self.lengths[item])
        if item in self.failing:
            raise Boom(f"item {item} failed")
        return item * 10

    def described(self) -> str:
        return ", ".join(f"item {item}: {length} s" for item, length in enumerate(self.lengths))

    def handled_once(self) -> None:
        __tracebackhide__ = True
        twice = sorted(item for item, calls in self.calls.items() if calls != 1)
        missed = sorted(set(range(len(self.lengths))) - set(self.calls))
        wrong = [f"items {twice} were handled more than once"] if twice else []
        wrong += [f"items {missed} were never handled"] if missed else []
        assert not wrong, f"{' and '.join(wrong)}: every item must be handled exactly once"


def batch_run(count: int, workers: int):  # type: ignore[no-untyped-def]
    """A probe worker: process_all over items 0..count-1 with `workers`; gives what it returned
    or raised (a Boom), and the seconds of loop time it took."""

    async def run(batch: Batch) -> tuple[object, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome: object
        try:
            outcome = await process_all(list(range(count)), batch.handle, workers=workers)
        except Boom as error:
            outcome = error
        return outcome, loop.time() - started

    return run


def shared_queue_seconds(lengths: list[int], workers: int) -> int:
    """How long `workers` tasks on one shared queue take: each free worker takes the next item."""
    free_at = [0] * workers
    for length in lengths:
        heapq.heappush(free_at, heapq.heappop(free_at) + length)
    return max(free_at)


@pytest.mark.probe
@pytest.mark.clause(5, 7)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(lengths=LENGTHS, workers=st.integers(1, 4))
def test_process_all_keeps_every_worker_busy_and_the_results_in_order_whatever_the_lengths(
    probe: Prober, lengths: list[int], workers: int
) -> None:
    def as_promised(batch: Batch, results: list[object]) -> None:
        outcome, seconds = results[0]  # type: ignore[misc]
        batch.handled_once()
        expected = [item * 10 for item in range(len(lengths))]
        assert outcome == expected, (
            f"process_all returned {outcome} for handlers that take ({batch.described()}): "
            f"result i belongs to items[i], {expected}, whatever the order the handlers "
            f"finished in"
        )
        best = shared_queue_seconds(lengths, workers)
        assert seconds == best, (
            f"items whose handlers take ({batch.described()}) with workers={workers} took "
            f"{seconds:g} s instead of {best} s: with one shared queue a worker that is done "
            f"takes the next item at once, so no worker idles while items wait. Start "
            f"`workers` tasks on ONE queue; do not deal the items out to them in advance"
        )

    probe.explore_async(
        lambda: Batch(lengths),
        [batch_run(len(lengths), workers)],
        as_promised,
        explain={"deadlock": JOIN_NEVER_RETURNS_PROBE},
        budget=DRAWN_SCHEDULES,
    )


@pytest.mark.probe
@pytest.mark.clause(9)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(batch=failing_batches(), workers=st.integers(1, 4))
def test_process_all_raises_the_first_items_error_whichever_fails_first(
    probe: Prober, batch: tuple[list[int], set[int]], workers: int
) -> None:
    lengths, failing = batch
    first = min(failing)

    def first_item_raised(state: Batch, results: list[object]) -> None:
        outcome, _seconds = results[0]  # type: ignore[misc]
        state.handled_once()
        assert repr(outcome) == repr(Boom(f"item {first} failed")), (
            f"the handlers of items {sorted(failing)} failed (they take {state.described()}; "
            f"workers={workers}) and process_all ended with {outcome!r}: it must raise the "
            f"exception of the first failing item in the order of the items, item {first}, "
            f"whichever failed first in time. Pick it by index (`errors[min(errors)]`), not by "
            f"the order the errors were recorded in"
        )

    probe.explore_async(
        lambda: Batch(lengths, failing),
        [batch_run(len(lengths), workers)],
        first_item_raised,
        explain={"deadlock": JOIN_NEVER_RETURNS_PROBE},
        budget=DRAWN_SCHEDULES,
    )


@pytest.mark.probe
@pytest.mark.clause(10)
def test_process_all_cancelled_from_outside_leaves_no_worker_running(probe: Prober) -> None:
    async def cancel_midway(tracker: Tracker) -> tuple[bool, list[str]]:
        before = asyncio.all_tasks()
        leftover: list[str] = []

        async def watched() -> object:
            try:
                return await process_all(range(6), tracker.handle, workers=2)
            finally:
                leftover.extend(leftover_tasks(before))

        running = asyncio.create_task(watched())
        await asyncio.sleep(1.5)  # two workers are in the middle of their second items
        running.cancel()
        await asyncio.wait([running])
        if not running.cancelled() and isinstance(running.exception(), NotImplementedError):
            running.result()  # raises it: the stub is not written yet
        return running.cancelled(), leftover

    def stopped(_tracker: Tracker, outcome: list[object]) -> None:
        cancelled, leftover = outcome[0]  # type: ignore[misc]
        assert not leftover, (
            f"process_all was cancelled at 1.5 s, during queue.join(), and passed the "
            f"CancelledError on while the tasks {leftover} were still running: the cancel and "
            f"the await of the workers belong in a `finally` around the join, so they run on "
            f"this way out too"
        )
        assert cancelled, "process_all was cancelled at 1.5 s, yet its task was not cancelled"

    probe.explore_async(Tracker, [cancel_midway], stopped, budget=SCHEDULES)


@pytest.mark.asyncio
@pytest.mark.clause(8)
async def test_process_all_leaves_no_worker_task_running_when_it_returns() -> None:
    workers_seen: set[asyncio.Task[object]] = set()

    async def remember_worker(item: str) -> str:
        task = asyncio.current_task()
        assert task is not None
        workers_seen.add(task)
        return await shout(item)

    try:
        await within_patience(
            process_all(["a", "b", "c", "d", "e", "f"], remember_worker, workers=3),
            "process_all",
            JOIN_NEVER_RETURNS,
        )
        running = [task.get_name() for task in workers_seen if not task.done()]
        assert not running, (
            f"process_all returned while its worker tasks {running} were still alive: after "
            f"join() the workers wait forever on the empty queue. Cancel each one and await them "
            f"(cancel() alone only asks; the task ends when it next runs)"
        )
    finally:
        await stop_tasks(workers_seen)


@pytest.mark.asyncio
@pytest.mark.clause(9)
async def test_process_all_raises_a_handlers_exception_after_handling_the_other_items() -> None:
    handled: list[str] = []

    async def record(item: str) -> str:
        result = await shout(item)
        handled.append(item)
        return result

    outcome: object
    try:
        outcome = await within_patience(
            process_all(["a", "bad-1", "c", "bad-2", "e"], record, workers=2),
            "process_all",
            JOIN_NEVER_RETURNS,
        )
    except NotImplementedError:
        raise
    except Exception as error:  # the assertion below names what came out
        outcome = error
    assert repr(outcome) == repr(ValueError("bad-1")), (
        f"the handler raised ValueError for 'bad-1' and 'bad-2', and process_all ended with "
        f"{outcome!r}: an exception must not vanish inside a worker. Record it, and raise the "
        f"first item's exception once join() is over"
    )
    assert sorted(handled) == ["a", "c", "e"], (
        f"only {sorted(handled)} of a, c, e were handled: one failing item must not stop the rest"
    )


@pytest.mark.asyncio
@pytest.mark.clause(11)
async def test_produce_puts_every_item_then_one_stop_per_consumer() -> None:
    queue: asyncio.Queue[int | Stop] = asyncio.Queue()
    await within_patience(
        produce(Source(3), queue, 3),
        "produce",
        "on an unbounded queue, put() never waits; does produce wait for something else?",
    )
    put = [queue.get_nowait() for _ in range(queue.qsize())]
    assert put == [0, 1, 2, STOP, STOP, STOP], (
        f"produce put {put} on the queue: first every item in order, then one STOP for each of "
        f"the 3 consumers, since each consumer leaves after taking a single STOP"
    )


@pytest.mark.asyncio
@pytest.mark.clause(12)
async def test_consume_handles_items_until_it_takes_stop() -> None:
    queue: asyncio.Queue[str | Stop] = asyncio.Queue()
    for item in ["a", "b", STOP, "after-stop"]:
        queue.put_nowait(item)
    results: list[str] = []
    await within_patience(
        consume(queue, shout, results),
        "consume",
        "STOP was the third item on the queue; consume must return as soon as it takes STOP "
        "(isinstance(item, Stop))",
    )
    assert (results, queue.qsize()) == (["A", "B"], 1), (
        f"consume made {results} and left {queue.qsize()} item(s) on the queue: it must handle "
        f"items up to STOP, then return without taking anything more"
    )


class Source:
    """An async iterable of 0..count-1 that waits `delay` (virtual) seconds before each item."""

    def __init__(self, count: int, delay: float = 0.0, flow: Flow | None = None) -> None:
        self.count, self.delay, self.flow, self.next = count, delay, flow, 0

    def __aiter__(self) -> Source:
        return self

    async def __anext__(self) -> int:
        if self.next == self.count:
            if self.flow is not None:
                self.flow.exhausted = True
            raise StopAsyncIteration
        if self.delay:
            await asyncio.sleep(self.delay)
        item, self.next = self.next, self.next + 1
        if self.flow is not None:
            self.flow.produced(item)
        return item


class Flow:
    """How far the producer runs ahead of the consumers, and who handled what."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.made = 0
        self.exhausted = False
        self.started = 0
        self.most_ahead = 0
        self.handlers: set[asyncio.Task[object]] = set()
        self.in_flight = 0
        self.most_at_once = 0
        self.fail_on = fail_on

    def produced(self, item: int) -> None:
        self.made += 1
        self.most_ahead = max(self.most_ahead, self.made - self.started)

    async def handle(self, item: int) -> int:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.started += 1
        self.in_flight += 1
        self.most_at_once = max(self.most_at_once, self.in_flight)
        try:
            await asyncio.sleep(1)
        finally:
            self.in_flight -= 1
        if item == self.fail_on:
            raise Boom(f"item {item} failed")
        return item * 10


class Boom(Exception):
    """A handler's failure."""


def why_it_hung(flow: Flow) -> str:
    """Explain a run_pipeline that never returned, from how far the producer got."""
    if not flow.exhausted:
        return (
            f"run_pipeline never returned: the producer is stuck after {flow.made} items, waiting "
            f"for room on a full queue that nobody empties any more. The consumers quit while the "
            f"queue was momentarily empty; an empty queue does not mean the work is over, only "
            f"STOP does"
        )
    return (
        "run_pipeline never returned: every item was produced, but some consumers still wait "
        "for another item. A consumer leaves after taking one STOP, so the producer must put "
        "one STOP per consumer"
    )


def pipeline_run(count: int, delay: float = 0.0, **sizes: int):  # type: ignore[no-untyped-def]
    """A probe worker: run_pipeline over `count` items (`sizes`: consumers, maxsize); gives
    "hung", or (sorted results, handlers still alive, seconds of loop time)."""

    async def run(flow: Flow) -> object:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(VIRTUAL_PATIENCE):
                results = await run_pipeline(Source(count, delay, flow), flow.handle, **sizes)
        except TimeoutError:
            return "hung"
        alive = [task.get_name() for task in flow.handlers if not task.done()]
        return sorted(results), alive, loop.time() - started

    return run


@pytest.mark.probe
@pytest.mark.clause(11, 12, 14)
def test_run_pipeline_handles_every_item_once_and_stops_every_consumer(probe: Prober) -> None:
    def all_done(flow: Flow, outcome: list[object]) -> None:
        assert outcome[0] != "hung", why_it_hung(flow)
        results, alive, _ = outcome[0]  # type: ignore[misc]
        assert results == [0, 10, 20, 30, 40], (
            f"5 items gave the results {results}: each item must be handled exactly once"
        )
        assert not alive, f"run_pipeline returned while consumers {alive} were still running"

    probe.explore_async(Flow, [pipeline_run(5, consumers=3, maxsize=2)], all_done)


@pytest.mark.probe
@pytest.mark.clause(15)
def test_a_fast_producer_waits_while_the_queue_is_full(probe: Prober) -> None:
    def bounded(flow: Flow, outcome: list[object]) -> None:
        assert outcome[0] != "hung", why_it_hung(flow)
        assert flow.most_ahead == 4, (
            f"the producer got {flow.most_ahead} items ahead of the consumers with maxsize=3, "
            f"not 4 (maxsize + 1). More: the queue is not bounded by maxsize; make it "
            f"asyncio.Queue(maxsize) and `await queue.put(...)`, so a fast producer waits while "
            f"the queue is full. Fewer: the queue is smaller than maxsize"
        )

    probe.explore_async(Flow, [pipeline_run(8, consumers=2, maxsize=3)], bounded)


@pytest.mark.probe
@pytest.mark.clause(13)
def test_consumers_keep_waiting_while_a_slow_producer_is_still_producing(probe: Prober) -> None:
    def nothing_lost(flow: Flow, outcome: list[object]) -> None:
        assert outcome[0] != "hung", why_it_hung(flow)
        results, _alive, _ = outcome[0]  # type: ignore[misc]
        assert results == [0, 10, 20, 30], f"4 items gave the results {results}"

    probe.explore_async(Flow, [pipeline_run(4, delay=1.0, consumers=2, maxsize=2)], nothing_lost)


@pytest.mark.probe
@pytest.mark.clause(14)
def test_run_pipeline_runs_up_to_consumers_handlers_at_the_same_time(probe: Prober) -> None:
    def three_at_a_time(flow: Flow, outcome: list[object]) -> None:
        assert outcome[0] != "hung", why_it_hung(flow)
        results, _alive, seconds = outcome[0]  # type: ignore[misc]
        assert results == [0, 10, 20, 30, 40, 50], f"6 items gave the results {results}"
        assert (flow.most_at_once, seconds) == (3, 2), (
            f"6 items of 1 s with consumers=3 ran at most {flow.most_at_once} handlers at once "
            f"and took {seconds:g} s; expected 3 at once and 2 s: start `consumers` consume "
            f"tasks (and put one STOP for each)"
        )

    probe.explore_async(
        Flow, [pipeline_run(6, consumers=3, maxsize=4)], three_at_a_time, budget=SCHEDULES
    )


@pytest.mark.probe
@pytest.mark.clause(16)
def test_run_pipeline_runs_two_consumers_and_a_queue_of_two_by_default(probe: Prober) -> None:
    def defaults(flow: Flow, outcome: list[object]) -> None:
        assert outcome[0] != "hung", why_it_hung(flow)
        results, _alive, seconds = outcome[0]  # type: ignore[misc]
        assert results == [0, 10, 20, 30, 40, 50], f"6 items gave the results {results}"
        assert (flow.most_at_once, seconds, flow.most_ahead) == (2, 3, 3), (
            f"run_pipeline over 6 items of 1 s with its defaults ran at most "
            f"{flow.most_at_once} handlers at once, took {seconds:g} s and let the producer get "
            f"{flow.most_ahead} items ahead; expected 2 at once, 3 s and 3 ahead (2 consumers, "
            f"a queue of 2)"
        )

    probe.explore_async(Flow, [pipeline_run(6)], defaults, budget=SCHEDULES)


@pytest.mark.probe
@pytest.mark.clause(14, 15)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(count=st.integers(0, 7), consumers=st.integers(1, 4), maxsize=st.integers(1, 4))
def test_run_pipeline_keeps_its_promises_whatever_the_numbers(
    probe: Prober, count: int, consumers: int, maxsize: int
) -> None:
    def as_promised(flow: Flow, outcome: list[object]) -> None:
        assert outcome[0] != "hung", why_it_hung(flow)
        results, alive, seconds = outcome[0]  # type: ignore[misc]
        expected = [item * 10 for item in range(count)]
        assert results == expected, (
            f"{count} items with consumers={consumers}, maxsize={maxsize} gave the results "
            f"{results}, not {expected}: each item must be handled exactly once"
        )
        assert not alive, f"run_pipeline returned while consumers {alive} were still running"
        ahead, rounds = min(count, maxsize + 1), -(-count // consumers)
        assert flow.most_ahead == ahead, (
            f"{count} items, consumers={consumers}, maxsize={maxsize}: the producer got "
            f"{flow.most_ahead} items ahead of the consumers, not {ahead} (the queue's maxsize "
            f"items and one in the producer's hand, at most all of them). Make the queue "
            f"asyncio.Queue(maxsize), of exactly the size asked for, and `await queue.put(...)`"
        )
        assert seconds == rounds, (
            f"{count} items of 1 s with consumers={consumers} took {seconds:g} s, not {rounds}: "
            f"start `consumers` consume tasks, and put one STOP for each"
        )

    probe.explore_async(
        Flow,
        [pipeline_run(count, consumers=consumers, maxsize=maxsize)],
        as_promised,
        budget=DRAWN_SCHEDULES,
    )


def pipeline_until_it_ends(count: int, cancel_at: float | None = None):  # type: ignore[no-untyped-def]
    """A probe worker: run_pipeline over `count` items, cancelled at `cancel_at` if given; gives
    how it ended, when, and the tasks still running at that moment."""

    async def run(flow: Flow) -> object:
        loop = asyncio.get_running_loop()
        before = asyncio.all_tasks()
        leftover: list[str] = []
        ended_at: list[float] = []

        async def watched() -> object:
            try:
                return await run_pipeline(Source(count, 0.0, flow), flow.handle, consumers=3)
            finally:
                leftover.extend(leftover_tasks(before))
                ended_at.append(loop.time())

        running = asyncio.create_task(watched())
        if cancel_at is not None:
            await asyncio.sleep(cancel_at)
            running.cancel()
        await asyncio.wait([running], timeout=VIRTUAL_PATIENCE)
        if not running.done():
            return "hung", None, []
        if running.cancelled():
            return "cancelled", ended_at[0], leftover
        error = running.exception()
        if isinstance(error, NotImplementedError):
            running.result()  # raises it: the stub is not written yet
        return error or running.result(), ended_at[0], leftover

    return run


@pytest.mark.probe
@pytest.mark.clause(17)
def test_a_failing_handler_stops_the_whole_pipeline_and_is_raised(probe: Prober) -> None:
    def stopped(flow: Flow, outcome: list[object]) -> None:
        ended, ended_at, leftover = outcome[0]  # type: ignore[misc]
        assert ended != "hung", (
            "run_pipeline never ended after a handler raised: the producer waits on a full "
            "queue, or the other consumers for items, that nobody deals with any more"
        )
        assert not leftover, (
            f"run_pipeline ended at {ended_at:g} s with {ended!r} while the tasks {leftover} were "
            f"still running: with gather, the first failure comes out and the producer and the "
            f"other consumers stay behind. A TaskGroup cancels them and waits"
        )
        assert isinstance(ended, BaseExceptionGroup) and ended_at == 1.0, (
            f"item 1's handler failed at 1 s, and run_pipeline ended at {ended_at:g} s with "
            f"{ended!r}: it must raise at once, an ExceptionGroup holding the failure, as a "
            f"TaskGroup does"
        )

    probe.explore_async(
        lambda: Flow(fail_on=1), [pipeline_until_it_ends(8)], stopped, budget=SCHEDULES
    )


@pytest.mark.probe
@pytest.mark.clause(18)
def test_run_pipeline_cancelled_from_outside_leaves_no_task_running(probe: Prober) -> None:
    def stopped(flow: Flow, outcome: list[object]) -> None:
        ended, _ended_at, leftover = outcome[0]  # type: ignore[misc]
        assert not leftover, (
            f"run_pipeline was cancelled at 1.5 s and passed the CancelledError on while the "
            f"tasks {leftover} were still running: plain asyncio.gather passes it on as soon as "
            f"the first task has stopped. A TaskGroup cancels the producer and every consumer "
            f"and waits until each has stopped"
        )
        assert ended == "cancelled", f"run_pipeline was cancelled at 1.5 s, yet it ended {ended!r}"

    probe.explore_async(Flow, [pipeline_until_it_ends(8, cancel_at=1.5)], stopped, budget=SCHEDULES)
