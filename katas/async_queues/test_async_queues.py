"""Kata `async_queues`: workers fed by an asyncio.Queue, and a clean shutdown."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest
from async_queues import STOP, Stop, consume, process_all, produce, run_pipeline, worker

from plugins.probe import Prober

# Every handler in these tests finishes in microseconds, so correct code is done within a few
# milliseconds. One second only ever runs out when something waits forever (a join() that
# nobody completes, a consumer that never gets its STOP), and then it always runs out.
HANG_SECONDS = 1.0
# The same patience in the probe's virtual time, where waiting costs nothing.
VIRTUAL_PATIENCE = 100.0


async def shout(item: str) -> str:
    await asyncio.sleep(0)
    if item.startswith("bad"):
        raise ValueError(item)
    return item.upper()


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
async def test_process_all_returns_every_result_in_the_order_of_the_items() -> None:
    items = ["d", "a", "c", "b", "e"]
    async with asyncio.timeout(HANG_SECONDS):
        results = await process_all(items, shout, workers=2)
    assert results == ["D", "A", "C", "B", "E"], (
        f"process_all returned {results}: result i must be handle(items[i]), whatever the order "
        f"the workers finished in"
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

    probe.explore_async(Tracker, [run], two_at_a_time)


@pytest.mark.asyncio
async def test_process_all_leaves_no_worker_task_running_when_it_returns() -> None:
    workers_seen: set[asyncio.Task[object]] = set()

    async def remember_worker(item: str) -> str:
        task = asyncio.current_task()
        assert task is not None
        workers_seen.add(task)
        return await shout(item)

    try:
        async with asyncio.timeout(HANG_SECONDS):
            await process_all(["a", "b", "c", "d", "e", "f"], remember_worker, workers=3)
        running = [task.get_name() for task in workers_seen if not task.done()]
        assert not running, (
            f"process_all returned while its worker tasks {running} were still alive: after "
            f"join() the workers wait forever on the empty queue. Cancel each one and await them "
            f"(cancel() alone only asks; the task ends when it next runs)"
        )
    finally:
        await stop_tasks(workers_seen)


@pytest.mark.asyncio
async def test_process_all_raises_a_handlers_exception_after_handling_the_other_items() -> None:
    handled: list[str] = []

    async def record(item: str) -> str:
        result = await shout(item)
        handled.append(item)
        return result

    outcome: object
    try:
        async with asyncio.timeout(HANG_SECONDS):
            outcome = await process_all(["a", "bad-1", "c", "bad-2", "e"], record, workers=2)
    except ValueError as error:
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
async def test_produce_puts_every_item_then_one_stop_per_consumer() -> None:
    queue: asyncio.Queue[int | Stop] = asyncio.Queue()
    async with asyncio.timeout(HANG_SECONDS):
        await produce(Source(3), queue, 3)
    put = [queue.get_nowait() for _ in range(queue.qsize())]
    assert put == [0, 1, 2, STOP, STOP, STOP], (
        f"produce put {put} on the queue: first every item in order, then one STOP for each of "
        f"the 3 consumers, since each consumer leaves after taking a single STOP"
    )


@pytest.mark.asyncio
async def test_consume_handles_items_until_it_takes_stop() -> None:
    queue: asyncio.Queue[str | Stop] = asyncio.Queue()
    for item in ["a", "b", STOP, "after-stop"]:
        queue.put_nowait(item)
    results: list[str] = []
    async with asyncio.timeout(HANG_SECONDS):
        await consume(queue, shout, results)
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

    def __init__(self) -> None:
        self.made = 0
        self.exhausted = False
        self.started = 0
        self.most_ahead = 0
        self.handlers: set[asyncio.Task[object]] = set()

    def produced(self, item: int) -> None:
        self.made += 1
        self.most_ahead = max(self.most_ahead, self.made - self.started)

    async def handle(self, item: int) -> int:
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.started += 1
        await asyncio.sleep(1)
        return item * 10


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


def pipeline_run(count: int, *, consumers: int, delay: float = 0.0):  # type: ignore[no-untyped-def]
    async def run(flow: Flow) -> object:
        try:
            async with asyncio.timeout(VIRTUAL_PATIENCE):
                results = await run_pipeline(
                    Source(count, delay, flow), flow.handle, consumers=consumers, maxsize=2
                )
        except TimeoutError:
            return "hung"
        alive = [task.get_name() for task in flow.handlers if not task.done()]
        return sorted(results), alive

    return run


@pytest.mark.probe
def test_run_pipeline_handles_every_item_once_and_stops_every_consumer(probe: Prober) -> None:
    def all_done(flow: Flow, outcome: list[object]) -> None:
        assert outcome[0] != "hung", why_it_hung(flow)
        results, alive = outcome[0]  # type: ignore[misc]
        assert results == [0, 10, 20, 30, 40], (
            f"5 items gave the results {results}: each item must be handled exactly once"
        )
        assert not alive, f"run_pipeline returned while consumers {alive} were still running"

    probe.explore_async(Flow, [pipeline_run(5, consumers=3)], all_done)


@pytest.mark.probe
def test_a_fast_producer_waits_while_the_queue_is_full(probe: Prober) -> None:
    def bounded(flow: Flow, outcome: list[object]) -> None:
        assert outcome[0] != "hung", why_it_hung(flow)
        assert flow.most_ahead <= 3, (
            f"the producer got {flow.most_ahead} items ahead of the consumers with maxsize=2: the "
            f"queue is not bounded. Make it asyncio.Queue(maxsize) and `await queue.put(...)`, "
            f"so a fast producer waits while the queue is full instead of piling up work"
        )

    probe.explore_async(Flow, [pipeline_run(6, consumers=2)], bounded)


@pytest.mark.probe
def test_consumers_keep_waiting_while_a_slow_producer_is_still_producing(probe: Prober) -> None:
    def nothing_lost(flow: Flow, outcome: list[object]) -> None:
        assert outcome[0] != "hung", why_it_hung(flow)
        results, _alive = outcome[0]  # type: ignore[misc]
        assert results == [0, 10, 20, 30], f"4 items gave the results {results}"

    probe.explore_async(Flow, [pipeline_run(4, consumers=2, delay=1.0)], nothing_lost)
