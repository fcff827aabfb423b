"""Kata `queues`: a producer, worker threads and a collector connected by queue.Queue."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from queues import STOP, collect, produce, run_pipeline, work_loop

from plugins.probe import Prober

# A single worker has only one possible schedule: one run under the probe is enough, and the
# probe turns a get() that would wait forever into a report instead of a hung test.
ALONE = 1
# Schedules per multi-thread probe. These scenarios are small (two or three threads, a few
# items), and every known bug of this kata shows within the first handful of schedules; 60
# leaves a wide margin and keeps the file fast.
SCHEDULES = 60
# Virtual seconds each piece of work takes in the overlap test; the probe's clock makes them free.
WORK_SECONDS = 1.0


Queues = tuple[queue.Queue[Any], queue.Queue[Any]]


def _drain(q: queue.Queue[Any]) -> list[Any]:
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out


def _shown(values: list[Any]) -> list[Any]:
    return ["STOP" if v is STOP else v for v in values]


@contextmanager
def _hang_means(explanation: str) -> Iterator[None]:
    """Put the meaning of a deadlock report first, in the words of this kata."""
    __tracebackhide__ = True
    try:
        yield
    except AssertionError as failure:
        if getattr(failure, "kind", None) == "deadlock":
            raise AssertionError(f"{explanation}\n\n{failure}") from None
        raise


def _queue_of(*values: Any) -> queue.Queue[Any]:
    q: queue.Queue[Any] = queue.Queue()
    for value in values:
        q.put(value)
    return q


def test_produce_puts_every_item_in_order_before_the_stop_markers() -> None:
    tasks: queue.Queue[Any] = queue.Queue()
    produce(["a", "b", "c"], tasks, 2)
    got = _shown(_drain(tasks))
    assert got[:3] == ["a", "b", "c"], (
        f"the queue holds {got}: the items must come first, in the order given, so that no "
        f"worker takes a STOP while items are still waiting behind it"
    )


def test_produce_puts_one_stop_marker_per_worker() -> None:
    tasks: queue.Queue[Any] = queue.Queue()
    produce(["a", "b"], tasks, 3)
    got = _drain(tasks)
    stops = sum(1 for value in got if value is STOP)
    assert stops == 3, (
        f"produce put {stops} STOP markers for 3 workers (queue: {_shown(got)}): each worker "
        f"leaves after taking one STOP, so a worker without a STOP of its own waits in get() "
        f"forever and the program never ends (the book's Threading_with_queue.py sends none)"
    )
    assert got[-3:] == [STOP] * 3, (
        f"the queue holds {_shown(got)}: the STOP markers must come after every item"
    )


@pytest.mark.probe
def test_a_worker_puts_each_result_and_returns_at_stop(probe: Prober) -> None:
    def setup() -> Queues:
        return _queue_of(1, 2, 3, STOP, "after stop"), queue.Queue()

    def results_then_stop(state: Queues, _: list[object]) -> None:
        tasks, results = state
        got, left = _drain(results), _shown(_drain(tasks))
        assert got == [10, 20, 30], (
            f"the worker put {got} on results for the items 1, 2, 3 and work x -> 10x: it must "
            f"put work(item) for each item, in the order it takes them"
        )
        assert left == ["after stop"], (
            f"after the worker returned, the task queue holds {left}: it must stop at its STOP "
            f"and leave what follows for the others"
        )

    with _hang_means("work_loop never returned: it must return as soon as it takes a STOP"):
        probe.explore(
            setup,
            [lambda s: work_loop(s[0], s[1], lambda x: 10 * x)],
            results_then_stop,
            budget=ALONE,
        )


@pytest.mark.probe
def test_a_worker_marks_every_item_done_the_stop_included(probe: Prober) -> None:
    def setup() -> Queues:
        return _queue_of(1, 2, STOP), queue.Queue()

    def all_marked(state: Queues, _: list[object]) -> None:
        unfinished = state[0].unfinished_tasks
        assert unfinished == 0, (
            f"the worker took 3 entries (2 items and a STOP) but {unfinished} of them were never "
            f"marked with task_done(): tasks.join() waits until every put() is matched by a "
            f"task_done(), so it would wait forever. Mark the STOP done too."
        )

    probe.explore(setup, [lambda s: work_loop(s[0], s[1], str)], all_marked, budget=ALONE)


@pytest.mark.probe
def test_a_worker_started_before_the_producer_waits_for_the_items(probe: Prober) -> None:
    def setup() -> Queues:
        return queue.Queue(), queue.Queue()

    def producer(state: Queues) -> None:
        for item in (1, 2, STOP):
            state[0].put(item)

    def nothing_skipped(state: Queues, _: list[object]) -> None:
        got = sorted(_drain(state[1]))
        assert got == [1, 2], (
            f"the worker processed {got} of the items 1 and 2 that a concurrent producer put: "
            f"it gave up when the queue looked empty. empty() only says that nothing is there "
            f"*yet*; wait in a blocking get() and stop only at STOP (the book's ch.3 consumer "
            f"quits on empty())"
        )

    with _hang_means("the worker never returned although the producer put a STOP for it"):
        probe.explore(
            setup,
            {"producer": producer, "worker": lambda s: work_loop(s[0], s[1], lambda x: x)},
            nothing_skipped,
            budget=SCHEDULES,
        )


@pytest.mark.probe
def test_a_result_is_on_the_results_queue_before_its_item_is_marked_done(probe: Prober) -> None:
    def setup() -> Queues:
        return _queue_of("item"), queue.Queue()

    def wait_then_count(state: Queues) -> int:
        tasks, results = state
        tasks.join()
        seen = results.qsize()
        tasks.put(STOP)  # now let the worker go
        return seen

    def result_first(_state: object, results: list[object]) -> None:
        seen = results[1]
        assert seen == 1, (
            f"tasks.join() returned while results held {seen} results instead of 1: the item was "
            f"marked done before its result was put, so whoever trusts join() (the collector's "
            f"STOP) can miss that result. Call task_done() after results.put()."
        )

    with _hang_means("tasks.join() never returned: the item was never marked done"):
        probe.explore(
            setup,
            {"worker": lambda s: work_loop(s[0], s[1], str.upper), "joiner": wait_then_count},
            result_first,
            budget=SCHEDULES,
        )


@pytest.mark.probe
def test_collect_returns_the_values_that_arrived_before_stop(probe: Prober) -> None:
    def setup() -> queue.Queue[Any]:
        return _queue_of("x", "y", STOP, "next run")

    def before_stop(_state: object, results: list[object]) -> None:
        assert results[0] == ["x", "y"], (
            f"collect returned {results[0]!r} from a queue holding x, y, STOP: it must return "
            f"every value before the STOP, in arrival order, and nothing after it"
        )

    with _hang_means("collect never returned: it must return as soon as it takes a STOP"):
        probe.explore(setup, [collect], before_stop, budget=ALONE)


PIPELINE_HANG = (
    "run_pipeline never finished: some thread waits forever. A worker without a STOP of its "
    "own waits in get(); an item or STOP never marked with task_done() makes tasks.join() wait; "
    "threads joined before the items are produced wait for each other."
)


def _squares(items: list[int], workers: int) -> Callable[[object], list[Any]]:
    return lambda _state: run_pipeline(items, lambda x: x * x, workers)


@pytest.mark.probe
def test_the_pipeline_processes_every_item_exactly_once(probe: Prober) -> None:
    def every_item_once(_state: object, results: list[object]) -> None:
        got = sorted(results[0])
        assert got == [1, 4, 9], (
            f"run_pipeline squared 1, 2, 3 into {got}: a result is missing or doubled. The "
            f"collector may only get its STOP after tasks.join() has returned, and join() may "
            f"only return when every result has been put."
        )

    with _hang_means(PIPELINE_HANG):
        probe.explore(
            lambda: None, {"caller": _squares([1, 2, 3], 2)}, every_item_once, budget=SCHEDULES
        )


@pytest.mark.probe
def test_the_pipeline_with_no_items_still_ends(probe: Prober) -> None:
    def empty(_state: object, results: list[object]) -> None:
        assert results[0] == [], f"run_pipeline of no items returned {results[0]!r} instead of []"

    with _hang_means(PIPELINE_HANG):
        probe.explore(lambda: None, {"caller": _squares([], 3)}, empty, budget=SCHEDULES)


class _Gauge:
    """Counts how many calls of the work are running at the same moment."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0

    def work(self, item: int) -> int:
        self.inside += 1
        self.most = max(self.most, self.inside)
        time.sleep(WORK_SECONDS)  # virtual time under the probe: another worker may start now
        self.inside -= 1
        return item


@pytest.mark.probe
def test_the_pipeline_runs_the_work_in_several_workers_at_once(probe: Prober) -> None:
    def overlapped(gauge: _Gauge, results: list[object]) -> None:
        assert gauge.most == 2, (
            f"with 2 workers and 4 items, at most {gauge.most} call(s) of work ran at the same "
            f"time: while one worker waited inside work(), no other worker took an item. Each "
            f"worker must run in its own thread, all started before the items are produced."
        )

    with _hang_means(PIPELINE_HANG):
        probe.explore(
            _Gauge,
            {"caller": lambda g: run_pipeline([1, 2, 3, 4], g.work, 2)},
            overlapped,
            budget=SCHEDULES,
        )
