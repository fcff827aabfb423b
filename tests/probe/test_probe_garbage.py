"""A schedule's objects are freed when it ends, by reference counting, not by the collector.

Each schedule makes a run, its workers, the learner's state and its primitives. They referred to
each other in cycles (a primitive to its run, the run to its primitives and, through each
worker's function, to the state; a worker and its Thread to each other; a tracked run's trace
hook and an asyncio schedule's loop to themselves), so that each schedule left objects for the
garbage collector: 84 in locks' transfer pair, 254 in queues' pipeline, more in their tracked
runs. It collected them every few schedules, inside a later one: a collection that reached the
older generation added about 1 ms to a one-schedule probe test. Counted, not timed.
"""

from __future__ import annotations

import functools
import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from plugins.probe import explore
from plugins.probe.api import _executor, _running_the_schedules
from plugins.probe.asyncio_loop import _execute_async
from plugins.probe.exhaustive import Tracker
from plugins.probe.exploration import named_workers
from plugins.probe.strategies import make_strategy
from tests.probe.samples import async_cache, threads
from tests.probe.scenarios import CORRECT, Scenario


@pytest.fixture
def collector_off() -> Iterator[None]:
    """The collector off, with nothing left over from before: whatever a cycle holds stays."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _left_for_the_collector() -> int:
    return gc.collect()


@pytest.mark.parametrize("scenario", CORRECT, ids=lambda s: s.name)
def test_an_exploration_leaves_nothing_for_the_garbage_collector(
    scenario: Scenario, collector_off: None
) -> None:
    explore(scenario.setup, scenario.workers, scenario.check, modules=[scenario.module], budget=30)
    left = _left_for_the_collector()
    assert left == 0, (
        f"{scenario.name}: 30 schedules left {left} objects in reference cycles, for the "
        "collector to find inside a later schedule: Run.release must untie them"
    )


def test_a_proof_s_tracked_runs_leave_nothing_for_the_garbage_collector(
    collector_off: None,
) -> None:
    """A tracked run reads each step through a trace hook (settrace), made per run."""
    scenario = next(s for s in CORRECT if s.name == "transfer_ordered")
    stats = explore(
        scenario.setup,
        scenario.workers,
        scenario.check,
        modules=[scenario.module],
        budget=30,
        exhaustive=200,
    )
    assert stats.proved, "the scenario was meant to be proved, by tracked runs"
    left = _left_for_the_collector()
    assert left == 0, (
        f"the proof's tracked runs left {left} objects in reference cycles: the trace hook "
        "or the run refers to itself"
    )


def test_workers_the_learner_starts_as_threads_leave_nothing_for_the_garbage_collector(
    collector_off: None,
) -> None:
    """A Thread the learner starts and the worker that runs it refer to each other."""
    execute = _executor(threads.Tally, {"starter": threads.run_two}, None, [threads], 20_000, 2.0)
    with _running_the_schedules(1):
        for index in range(30):
            execute(make_strategy("portfolio", 0, index, 5))
    left = _left_for_the_collector()
    assert left == 0, f"30 schedules that start two Threads each left {left} objects in cycles"


class _Cyclic:
    """A learner's state that is a cycle of its own: a barrier whose action is a bound
    method of the object that holds it (barriers' Simulation)."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(1, action=self.round_ended)
        self.rounds = 0

    def round_ended(self) -> None:
        self.rounds += 1


def test_a_learner_s_cyclic_state_does_not_keep_the_run_s_strategy_alive(
    collector_off: None,
) -> None:
    """The state's cycle is the learner's; the run it reaches through its primitives must
    then hold nothing of the exploration's (a tracked run's strategy holds every step)."""
    execute = _executor(_Cyclic, {"party": lambda s: s.barrier.wait()}, None, [], 20_000, 2.0)
    with _running_the_schedules(1):
        for kind in ("tracked", "sampled"):
            strategy = (
                Tracker([0], footprints=True)
                if kind == "tracked"
                else make_strategy("portfolio", 0, 3, 5)
            )
            outcome = execute(strategy)
            assert outcome.failure is None, outcome.failure
            held = weakref.ref(strategy)
            del strategy
            assert held() is None, (
                f"a {kind} run's strategy outlived it: the run that a cyclic state keeps still "
                "refers to it"
            )


def _fetched_once(cache: async_cache.SafeAsyncCache, results: list[object]) -> None:
    assert cache.fetches == 1, f"fetched {cache.fetches} times"


@pytest.mark.parametrize("record", [False, True], ids=["explored", "recorded"])
def test_an_asyncio_exploration_leaves_nothing_for_the_garbage_collector(
    record: bool, collector_off: None
) -> None:
    """Each schedule runs on an event loop of its own; a replay for a report also records
    the lines each task ran, through a trace hook."""
    workers = [lambda c: c.get("k"), lambda c: c.login_then_get("k")]
    execute = functools.partial(
        _execute_async, async_cache.SafeAsyncCache, named_workers(workers), _fetched_once,
        [async_cache], 20_000, record,
    )  # fmt: skip
    for index in range(30):
        outcome = execute(make_strategy("portfolio", 0, index, 5))
        assert outcome.failure is None, outcome.failure
    left = _left_for_the_collector()
    assert left == 0, (
        f"30 asyncio schedules left {left} objects in reference cycles: the loop or its "
        "trace hook refers to itself"
    )
