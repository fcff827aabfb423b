"""Kata `queues`: a producer, worker threads and a collector connected by queue.Queue."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from queues import STOP, collect, produce, run_pipeline, work_loop

from plugins.probe import Prober, scenario_settings

# A single worker has only one possible schedule: one run under the probe is enough, and the
# probe turns a get() that would wait forever into a report instead of a hung test.
ALONE = 1
# Schedules per multi-thread probe. These scenarios are small (two or three threads, a few
# items), and every known bug of this kata shows within the first handful of schedules; 60
# leaves a wide margin and keeps the file fast.
SCHEDULES = 60
# Schedules for the pipeline's structural checks (generator, no items, overlap, start order):
# the bugs they look for show in every schedule, so a few are plenty.
FEW = 10
# Drawn scenarios: Hypothesis draws the items (0 included: an item or a result may be falsy)
# and the number of workers, and the probe explores each drawn scenario. The bugs they look for
# show in every schedule, so a few schedules per example are plenty.
DRAWN_EXAMPLES = 8
DRAWN_SCHEDULES = 3
SMALL_ITEMS = st.lists(st.integers(0, 5), max_size=4)
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


@pytest.mark.clause(1)
def test_produce_puts_every_item_in_order_before_the_stop_markers() -> None:
    tasks: queue.Queue[Any] = queue.Queue()
    produce(["a", "b", "c"], tasks, 2)
    got = _shown(_drain(tasks))
    assert got[:3] == ["a", "b", "c"], (
        f"the queue holds {got}: the items must come first, in the order given, so that no "
        f"worker takes a STOP while items are still waiting behind it"
    )


@pytest.mark.clause(1)
def test_produce_takes_its_items_from_any_iterable_a_generator_too() -> None:
    tasks: queue.Queue[Any] = queue.Queue()
    try:
        produce((letter for letter in "abc"), tasks, 1)
    except TypeError as error:
        pytest.fail(
            f"produce(a generator of a, b, c, tasks, 1) raised TypeError ({error}): `items` may "
            f"be any iterable, and a generator has no len() and no [index]. Loop over it "
            f"once: for item in items: tasks.put(item)"
        )
    got = _shown(_drain(tasks))
    assert got == ["a", "b", "c", "STOP"], (
        f"produce(a generator of a, b, c, tasks, 1) left {got} on the queue, not "
        f"['a', 'b', 'c', 'STOP']: a generator can be walked through only once"
    )


@pytest.mark.clause(2)
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


class _Work:
    """The work x -> 10x, which remembers every value it was handed."""

    def __init__(self) -> None:
        self.given: list[Any] = []

    def __call__(self, item: Any) -> Any:
        self.given.append(item)
        return "work(STOP)" if item is STOP else 10 * item


class _Worker:
    """A task queue, a results queue and a recording work function for one work_loop."""

    def __init__(self, *entries: Any) -> None:
        self.tasks = _queue_of(*entries)
        self.results: queue.Queue[Any] = queue.Queue()
        self.work = _Work()


def _work_loop(state: _Worker) -> object:
    """Run work_loop; report a task_done() called too often instead of dying of it."""
    try:
        work_loop(state.tasks, state.results, state.work)
    except ValueError as error:
        if "task_done" not in str(error):
            raise
        return "task_done() called too many times"
    return None


@pytest.mark.probe
@pytest.mark.clause(4)
def test_a_worker_puts_the_result_of_each_item_in_order(probe: Prober) -> None:
    def results_in_order(state: _Worker, _: list[object]) -> None:
        got = _shown(_drain(state.results))
        assert STOP not in state.work.given, (
            f"work was called with {_shown(state.work.given)}: work_loop handed the STOP to "
            f"work. Check `item is STOP` before calling work(item); STOP is a signal, not work."
        )
        assert got == [10, 20, 30], (
            f"the worker put {got} on results for the items 1, 2, 3 and work x -> 10x: it must "
            f"put work(item) for each item, in the order it takes them"
        )

    with _hang_means("work_loop never returned: it must return as soon as it takes a STOP"):
        probe.explore(lambda: _Worker(1, 2, 3, STOP), [_work_loop], results_in_order, budget=ALONE)


@pytest.mark.probe
@pytest.mark.clause(5)
def test_a_worker_returns_at_its_stop_and_leaves_the_rest_in_the_queue(probe: Prober) -> None:
    def stopped_there(state: _Worker, _: list[object]) -> None:
        left = _shown(_drain(state.tasks))
        assert left == ["after stop", "STOP"], (
            f"after the worker returned, the task queue holds {left}, not ['after stop', "
            f"'STOP']: it must return as soon as it takes its own STOP and leave what follows "
            f"(other workers' items and STOPs) for the others"
        )

    with _hang_means("work_loop never returned: it must return as soon as it takes a STOP"):
        probe.explore(
            lambda: _Worker(1, STOP, "after stop", STOP), [_work_loop], stopped_there, budget=ALONE
        )


@pytest.mark.probe
@pytest.mark.clause(6)
def test_a_worker_marks_every_entry_done_once_the_stop_included(probe: Prober) -> None:
    def all_marked_once(state: _Worker, results: list[object]) -> None:
        assert results[0] is None, (
            "work_loop raised ValueError('task_done() called too many times'): it called "
            "task_done() more often than it called get(). Call it exactly once per get(), in "
            "one `finally:`, not also after the put"
        )
        unfinished = state.tasks.unfinished_tasks
        assert unfinished == 1, (
            f"the queue held 4 entries (2 items, a STOP and one more) and the worker took 3 of "
            f"them, but {unfinished} are still unfinished instead of 1 (the one it left): "
            + (
                "some entry it took was never marked with task_done(). tasks.join() waits "
                "until every put() is matched by a task_done(), so it would wait forever. "
                "Mark the STOP done too."
                if unfinished > 1
                else "it called task_done() more often than it took entries; once per get()."
            )
        )

    probe.explore(
        lambda: _Worker(1, 2, STOP, "for another worker"),
        [_work_loop],
        all_marked_once,
        budget=ALONE,
    )


@pytest.mark.probe
@pytest.mark.clause(4, 5, 6)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(items=SMALL_ITEMS, others=st.integers(0, 2))
def test_a_worker_handles_whatever_items_come_before_its_stop(
    probe: Prober, items: list[int], others: int
) -> None:
    def handled(state: _Worker, results: list[object]) -> None:
        got = _shown(_drain(state.results))
        expected = [10 * item for item in items]
        assert got == expected, (
            f"the worker put {got} on results for the items {items} and work x -> 10x, "
            f"expected {expected}"
            + (
                ": it stopped at the item 0. An item is never the STOP, whatever its value: "
                "test `item is STOP`, not `if not item` (that is a test for None, 0, '', [])"
                if 0 in items
                else ""
            )
        )
        left = _shown(_drain(state.tasks))
        assert left == ["STOP"] * others, (
            f"after the worker returned, the task queue holds {left}, not the {others} STOP(s) "
            f"for the other workers: it must stop at its own STOP and take nothing more"
        )
        assert results[0] is None and state.tasks.unfinished_tasks == others, (
            f"the worker took {len(items) + 1} entries ({items} and its STOP) and "
            f"{state.tasks.unfinished_tasks} are unfinished instead of {others} (the other "
            f"workers' STOPs): call task_done() exactly once for every entry taken, the STOP "
            f"included"
        )

    with _hang_means("work_loop never returned: it must return as soon as it takes a STOP"):
        probe.explore(
            lambda: _Worker(*items, STOP, *[STOP] * others),
            [_work_loop],
            handled,
            budget=ALONE,
        )


def _slow_producer(*entries: Any) -> Callable[[_Worker], None]:
    """Puts each entry after a virtual second of its own work."""

    def producer(state: _Worker) -> None:
        for entry in entries:
            time.sleep(WORK_SECONDS)  # virtual time under the probe
            state.tasks.put(entry)

    return producer


@pytest.mark.probe
@pytest.mark.clause(3)
def test_a_worker_started_before_a_slow_producer_waits_for_the_items(probe: Prober) -> None:
    def nothing_skipped(state: _Worker, results: list[object]) -> None:
        assert results[1] is None, (
            "work_loop raised ValueError('task_done() called too many times'): it called "
            "task_done() more often than it called get(). Call it exactly once per get(), in "
            "one `finally:`, not also after the put"
        )
        got = sorted(_drain(state.results))
        assert got == [10, 20], (
            f"the worker put {got} on results for the items 1 and 2 that a producer put one "
            f"(virtual) second apart: it gave up when the queue looked empty, or when a get() "
            f"with a timeout found nothing yet. A slow producer is not a finished one: wait in "
            f"a blocking get() with no timeout, and stop only at STOP (the book's ch.3 consumer "
            f"quits on empty())"
        )

    with _hang_means("the worker never returned although the producer put a STOP for it"):
        probe.explore(
            _Worker,
            {"producer": _slow_producer(1, 2, STOP), "worker": _work_loop},
            nothing_skipped,
            budget=SCHEDULES,
        )


@pytest.mark.probe
@pytest.mark.clause(7)
def test_a_result_is_on_the_results_queue_before_its_item_is_marked_done(probe: Prober) -> None:
    def wait_then_count(state: _Worker) -> int:
        state.tasks.join()
        seen = state.results.qsize()
        state.tasks.put(STOP)  # now let the worker go
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
            lambda: _Worker(7),
            {"worker": _work_loop, "joiner": wait_then_count},
            result_first,
            budget=SCHEDULES,
        )


@pytest.mark.probe
@pytest.mark.clause(8)
def test_collect_returns_the_values_that_arrived_before_stop(probe: Prober) -> None:
    def setup() -> queue.Queue[Any]:
        return _queue_of("x", "y", STOP, "next run")

    def before_stop(_state: object, results: list[object]) -> None:
        assert results[0] == ["x", "y"], (
            f"collect returned {_shown(results[0])!r} from a queue holding x, y, STOP: it must "  # type: ignore[arg-type]
            f"return every value before the STOP, in arrival order, and nothing after it"
        )

    with _hang_means("collect never returned: it must return as soon as it takes a STOP"):
        probe.explore(setup, [collect], before_stop, budget=ALONE)


@pytest.mark.probe
@pytest.mark.clause(8)
def test_collect_waits_for_results_that_arrive_slowly(probe: Prober) -> None:
    def slow_results(state: queue.Queue[Any]) -> None:
        for value in ("x", "y", STOP):
            time.sleep(WORK_SECONDS)  # virtual time under the probe
            state.put(value)

    def waited(_state: object, results: list[object]) -> None:
        assert results[1] == ["x", "y"], (
            f"collect returned {_shown(results[1])!r} while x, y and STOP arrived one (virtual) "  # type: ignore[arg-type]
            f"second apart: it stopped when the queue looked empty. Results still being "
            f"worked on arrive later; wait in a blocking get() and stop only at STOP"
        )

    with _hang_means("collect never returned although a STOP arrived"):
        probe.explore(
            queue.Queue,
            {"workers": slow_results, "collector": collect},
            waited,
            budget=SCHEDULES,
        )


PIPELINE_EXPLAIN = {
    "deadlock": (
        "run_pipeline never finished: some thread waits forever. A worker without a STOP of "
        "its own waits in get(); an item or STOP never marked with task_done() makes "
        "tasks.join() wait, and so does a STOP that no worker is left to take (more STOPs than "
        "worker threads, or a worker that gave up before its STOP came); threads joined before "
        "the items are produced wait for each other."
    ),
    "exception": (
        "run_pipeline or one of its threads raised. ValueError('task_done() called too many times') means "
        "a worker called task_done() more often than get(): once per entry taken, in one "
        "`finally:`. A TypeError inside the work means the work was handed a STOP: check "
        "`item is STOP` before calling work(item). A TypeError about len() means run_pipeline "
        "measured `items`, which may be a generator."
    ),
}


def _square(x: Any) -> Any:
    return "work(STOP)" if x is STOP else x * x


def _pipeline(items: Any, work: Callable[[Any], Any], workers: int | None) -> list[Any]:
    """run_pipeline's result, copied at the moment it returned (a thread still filling it in
    after the return would be missed by a check made later)."""
    returned = run_pipeline(items, work) if workers is None else run_pipeline(items, work, workers)
    return list(returned)


def _squares(items: list[int], workers: int) -> Callable[[object], object]:
    return lambda _state: _pipeline(items, _square, workers)


@pytest.mark.probe
@pytest.mark.clause(9, 11)
def test_the_pipeline_processes_every_item_exactly_once(probe: Prober) -> None:
    def every_item_once(_state: object, results: list[object]) -> None:
        got = sorted(results[0], key=str)  # type: ignore[call-overload]
        assert "work(STOP)" not in got, (
            f"run_pipeline squared 1, 2, 3 into {got}: a worker handed a STOP to the work and "
            f"put what it returned among the results. Check `item is STOP` before work(item)."
        )
        assert got == [1, 4, 9], (
            f"run_pipeline squared 1, 2, 3 into {got} (the list as it stood when run_pipeline "
            f"returned): a result is missing or doubled. The collector may only get its STOP "
            f"after tasks.join() has returned, join() may only return when every result has "
            f"been put, and run_pipeline must join the collector before it returns its list."
        )

    probe.explore(
        lambda: None,
        {"caller": _squares([1, 2, 3], 3)},
        every_item_once,
        budget=SCHEDULES,
        explain=PIPELINE_EXPLAIN,
    )


@pytest.mark.probe
@pytest.mark.clause(9)
def test_the_pipeline_takes_its_items_from_a_generator(probe: Prober) -> None:
    def every_item_once(_state: object, results: list[object]) -> None:
        got = sorted(results[0], key=str)  # type: ignore[call-overload]
        assert got == [1, 4, 9], (
            f"run_pipeline squared a generator of 1, 2, 3 into {got}: either the generator was "
            f"walked through twice (it yields its items only once: give it to produce() and "
            f"use it nowhere else), or results were lost (see "
            f"test_the_pipeline_processes_every_item_exactly_once)"
        )

    probe.explore(
        lambda: None,
        {"caller": lambda _state: _pipeline((n for n in (1, 2, 3)), _square, 3)},
        every_item_once,
        budget=FEW,
        explain=PIPELINE_EXPLAIN,
    )


@pytest.mark.probe
@pytest.mark.clause(9)
def test_the_pipeline_with_no_items_still_ends(probe: Prober) -> None:
    def empty(_state: object, results: list[object]) -> None:
        assert results[0] == [], f"run_pipeline of no items returned {results[0]!r} instead of []"

    probe.explore(
        lambda: None,
        {"caller": _squares([], 3)},
        empty,
        budget=FEW,
        explain=PIPELINE_EXPLAIN,
    )


class _Gauge:
    """Counts how many calls of the work run at the same moment, and whether any of them ran
    while the items were still being produced."""

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.producing = False
        self.worked_while_producing = False

    def items(self, count: int) -> Iterator[int]:
        """`count` items, each after a virtual second of the producer's own work."""
        self.producing = True
        for item in range(count):
            time.sleep(WORK_SECONDS)
            yield item
        self.producing = False

    def work(self, item: int) -> int:
        self.worked_while_producing |= self.producing
        self.inside += 1
        self.most = max(self.most, self.inside)
        time.sleep(WORK_SECONDS)  # virtual time under the probe: another worker may start now
        self.inside -= 1
        return item


@pytest.mark.probe
@pytest.mark.clause(10)
@pytest.mark.parametrize(
    ("workers", "called"),
    [(3, "run_pipeline(items, work, 3)"), (None, "run_pipeline(items, work)")],
    ids=["three-workers", "default-workers"],
)
def test_the_pipeline_runs_the_work_in_as_many_workers_at_once(
    probe: Prober, workers: int | None, called: str
) -> None:
    def overlapped(gauge: _Gauge, results: list[object]) -> None:
        assert gauge.most == 3, (
            f"{called} with 6 items ran at most {gauge.most} call(s) of work at the same time, "
            f"not 3: while the workers waited inside work(), no other worker took an item. Start "
            f"exactly `workers` worker threads (3 when the caller gives none), each running "
            f"work_loop, all before the items are produced."
        )

    probe.explore(
        _Gauge,
        {"caller": lambda g: _pipeline([1, 2, 3, 4, 5, 6], g.work, workers)},
        overlapped,
        budget=FEW,
        explain=PIPELINE_EXPLAIN,
    )


@pytest.mark.probe
@pytest.mark.clause(10)
def test_the_workers_start_before_the_items_are_produced(probe: Prober) -> None:
    def started_first(gauge: _Gauge, results: list[object]) -> None:
        assert gauge.worked_while_producing, (
            "no work started while the items (one per virtual second) were still being "
            "produced: run_pipeline produced them all before it started the workers. Start "
            "every worker and the collector first, then produce, so that the work overlaps "
            "with a slow producer."
        )

    probe.explore(
        _Gauge,
        {"caller": lambda g: _pipeline(g.items(3), g.work, 3)},
        started_first,
        budget=FEW,
        explain=PIPELINE_EXPLAIN,
    )


@pytest.mark.probe
@pytest.mark.clause(9, 11)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(items=SMALL_ITEMS, workers=st.integers(1, 4))
def test_the_pipeline_returns_one_result_per_item_whatever_the_items_and_workers(
    probe: Prober, items: list[int], workers: int
) -> None:
    expected = sorted(item * item for item in items)

    def one_result_per_item(_state: object, results: list[object]) -> None:
        got = sorted(results[0], key=str)  # type: ignore[call-overload]
        assert "work(STOP)" not in got, (
            f"run_pipeline squared {items} into {got}: a worker handed a STOP to the work."
        )
        assert sorted(got) == expected, (
            f"run_pipeline({items}, square, {workers}) returned {sorted(got)}, expected "
            f"{expected}"
            + (
                ": a result 0 (or an item 0) is data like any other. Stop only at STOP, "
                "tested with `is STOP`, never with `if not value`"
                if 0 in items
                else ": a result is missing or doubled"
            )
        )

    probe.explore(
        lambda: None,
        {"caller": _squares(items, workers)},
        one_result_per_item,
        budget=min(probe.budget, DRAWN_SCHEDULES),
        explain=PIPELINE_EXPLAIN,
    )


@pytest.mark.probe
@pytest.mark.clause(10)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(workers=st.integers(1, 4), count=st.integers(1, 5))
def test_the_pipeline_runs_as_many_works_at_once_as_it_was_given_workers(
    probe: Prober, workers: int, count: int
) -> None:
    expected = min(workers, count)

    def overlapped(gauge: _Gauge, _results: list[object]) -> None:
        assert gauge.most == expected, (
            f"run_pipeline({count} items, work, {workers}) ran at most {gauge.most} call(s) of "
            f"work at the same time, not {expected} (one per worker, while there are items): "
            f"start exactly `workers` worker threads, the number the caller gave, and put one "
            f"STOP for each of them"
        )

    probe.explore(
        _Gauge,
        {"caller": lambda g: _pipeline(list(range(count)), g.work, workers)},
        overlapped,
        budget=min(probe.budget, DRAWN_SCHEDULES),
        explain=PIPELINE_EXPLAIN,
    )
