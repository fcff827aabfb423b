"""Kata `tasks`: gather, wait, as_completed, TaskGroup, timeouts, cancellation, background tasks."""

from __future__ import annotations

import asyncio
import gc
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
from tasks import (
    Background,
    fail_fast,
    first_success,
    gather_settled,
    in_finishing_order,
    supervise,
    with_deadline,
)

from plugins.probe import Prober

# Each probe tries this many orders of the ready callbacks; the bugs here do not depend on a
# rare order, so a few dozen cover them and keep each probe well under a second.
SCHEDULES = 25


class Boom(Exception):
    """The failure a job raises when it is told to fail."""


class Jobs:
    """Setup for a probe run: jobs that sleep on the virtual clock and log what happens to them."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, float]] = []  # (event, job name, loop time)
        self.running: set[str] = set()
        self.failures: dict[str, Boom] = {}
        self.made: list[Coroutine[Any, Any, str]] = []

    def job(self, name: str, seconds: float, fail: bool = False) -> Coroutine[Any, Any, str]:
        """A coroutine that sleeps `seconds`, then returns `name` (or raises, if `fail`)."""
        coro = self._job(name, seconds, fail)
        self.made.append(coro)
        return coro

    def close_unstarted(self) -> None:
        """Close the jobs nobody ever ran, so Python does not warn they were never awaited."""
        for coro in self.made:
            if inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
                coro.close()

    async def _job(self, name: str, seconds: float, fail: bool) -> str:
        loop = asyncio.get_running_loop()
        self.running.add(name)
        self.log.append(("start", name, loop.time()))
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.log.append(("cancelled", name, loop.time()))
            raise
        finally:
            self.running.discard(name)
        if fail:
            self.failures[name] = Boom(f"job {name} failed")
            raise self.failures[name]
        return name

    def cancelled(self) -> list[str]:
        return sorted(name for event, name, _ in self.log if event == "cancelled")


@dataclass
class Outcome:
    """What the call under test gave, how long it took, and which jobs it left running."""

    value: object = None
    error: BaseException | None = None
    elapsed: float = 0.0
    left_running: list[str] = field(default_factory=list)


def trial(call: Callable[[Jobs], Awaitable[object]]) -> Callable[[Jobs], Awaitable[Outcome]]:
    """A probe worker: runs `call(jobs)` and records its outcome the moment it returns."""

    async def worker(jobs: Jobs) -> Outcome:
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome = Outcome()
        try:
            outcome.value = await call(jobs)
        except NotImplementedError:
            jobs.close_unstarted()
            raise
        except Exception as error:  # the check judges the error, so keep it
            outcome.error = error
        outcome.elapsed = loop.time() - started
        outcome.left_running = sorted(jobs.running)
        return outcome

    return worker


Call = Callable[[Jobs], Awaitable[object]]


def explore(probe: Prober, call: Call, check: Callable[[Jobs, Outcome], None]) -> None:
    """Run `call` under the probe's loop and judge its outcome with `check` on every schedule."""
    __tracebackhide__ = True

    def judge(jobs: Jobs, results: list[object]) -> None:
        outcome = results[0]
        assert isinstance(outcome, Outcome)
        check(jobs, outcome)

    probe.explore_async(Jobs, [trial(call)], judge, budget=SCHEDULES)


def no_error(outcome: Outcome, what: str) -> None:
    __tracebackhide__ = True
    assert outcome.error is None, f"{what} raised {outcome.error!r}"


def nothing_left_running(outcome: Outcome, what: str) -> None:
    __tracebackhide__ = True
    assert not outcome.left_running, (
        f"{what} returned while the jobs {outcome.left_running} were still running: cancel "
        f"every task you no longer need and then wait for it; task.cancel() only asks, and "
        f"the task stops only when it next runs"
    )


# -- gather_settled ------------------------------------------------------------------------


@pytest.mark.probe
def test_gather_settled_runs_every_coroutine_at_the_same_time(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return gather_settled([jobs.job("a", 3), jobs.job("b", 1), jobs.job("c", 2)])

    def concurrent(_jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, "gather_settled")
        assert outcome.elapsed == 3.0, (
            f"jobs of 3, 1 and 2 s took {outcome.elapsed:g} s of loop time instead of 3 s: "
            f"they ran one after another; gather runs them side by side"
        )
        assert outcome.value == ["a", "b", "c"], f"gather_settled returned {outcome.value!r}"

    explore(probe, call, concurrent)


@pytest.mark.probe
def test_gather_settled_returns_each_failure_in_its_place_instead_of_raising(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return gather_settled([jobs.job("a", 3), jobs.job("b", 1, fail=True), jobs.job("c", 2)])

    def settled(jobs: Jobs, outcome: Outcome) -> None:
        assert outcome.error is None, (
            f"gather_settled raised {outcome.error!r}: pass return_exceptions=True so that a "
            f"failure becomes an entry of the result instead of an exception"
        )
        assert outcome.value == ["a", jobs.failures["b"], "c"], (
            f"gather_settled returned {outcome.value!r}; expected ['a', <b's Boom>, 'c']"
        )

    explore(probe, call, settled)


# -- fail_fast -----------------------------------------------------------------------------


@pytest.mark.probe
def test_fail_fast_returns_all_results_in_order_when_none_fails(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return fail_fast([jobs.job("a", 3), jobs.job("b", 1), jobs.job("c", 2)])

    def all_results(_jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, "fail_fast with no failing job")
        assert (outcome.value, outcome.elapsed) == (["a", "b", "c"], 3.0), (
            f"fail_fast returned {outcome.value!r} after {outcome.elapsed:g} s; expected "
            f"['a', 'b', 'c'] after 3 s (all at once, results in the order given)"
        )

    explore(probe, call, all_results)


@pytest.mark.probe
def test_fail_fast_raises_the_failure_as_soon_as_it_happens(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return fail_fast([jobs.job("a", 5), jobs.job("b", 1, fail=True), jobs.job("c", 3)])

    def raised_at_once(jobs: Jobs, outcome: Outcome) -> None:
        assert outcome.error is jobs.failures.get("b"), (
            f"fail_fast gave {outcome.error or outcome.value!r}; it must raise job b's own "
            f"exception (not a wrapper)"
        )
        assert outcome.elapsed == 1.0, (
            f"job b failed at 1 s but fail_fast raised only at {outcome.elapsed:g} s: it waited "
            f"for the other jobs; wait with return_when=asyncio.FIRST_EXCEPTION"
        )

    explore(probe, call, raised_at_once)


@pytest.mark.probe
def test_fail_fast_cancels_the_others_and_waits_until_they_have_stopped(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return fail_fast([jobs.job("a", 5), jobs.job("b", 1, fail=True), jobs.job("c", 3)])

    def cleaned_up(jobs: Jobs, outcome: Outcome) -> None:
        nothing_left_running(outcome, "fail_fast")
        assert jobs.cancelled() == ["a", "c"], f"the cancelled jobs were {jobs.cancelled()}"

    explore(probe, call, cleaned_up)


# -- first_success -------------------------------------------------------------------------


@pytest.mark.probe
def test_first_success_returns_the_first_result_even_if_a_faster_one_fails(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return first_success([jobs.job("a", 1, fail=True), jobs.job("b", 2), jobs.job("c", 3)])

    def first_good(_jobs: Jobs, outcome: Outcome) -> None:
        assert outcome.error is None, (
            f"first_success raised {outcome.error!r} when job a failed at 1 s, although b "
            f"succeeded at 2 s: a failure only drops out of the race"
        )
        assert (outcome.value, outcome.elapsed) == ("b", 2.0), (
            f"first_success returned {outcome.value!r} after {outcome.elapsed:g} s; expected "
            f"'b' after 2 s, the moment the first job succeeded"
        )

    explore(probe, call, first_good)


@pytest.mark.probe
def test_first_success_cancels_the_slower_ones_and_waits_until_they_have_stopped(
    probe: Prober,
) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return first_success([jobs.job("a", 1, fail=True), jobs.job("b", 2), jobs.job("c", 3)])

    def cleaned_up(jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, "first_success")
        nothing_left_running(outcome, "first_success")
        assert jobs.cancelled() == ["c"], f"the cancelled jobs were {jobs.cancelled()}, not ['c']"

    explore(probe, call, cleaned_up)


@pytest.mark.probe
def test_first_success_raises_the_last_failure_when_every_one_fails(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return first_success([jobs.job("a", 2, fail=True), jobs.job("b", 1, fail=True)])

    def last_failure(jobs: Jobs, outcome: Outcome) -> None:
        assert outcome.error is jobs.failures.get("a"), (
            f"when b failed at 1 s and a at 2 s, first_success gave "
            f"{outcome.error or outcome.value!r}; it must raise a's failure, the last one"
        )

    explore(probe, call, last_failure)


@pytest.mark.asyncio
async def test_first_success_of_nothing_raises_value_error() -> None:
    with pytest.raises(ValueError):
        await first_success([])


def ignore(_result: object) -> None:
    """A report function that does nothing."""


# -- in_finishing_order --------------------------------------------------------------------


@pytest.mark.probe
def test_in_finishing_order_reports_each_result_the_moment_it_is_ready(probe: Prober) -> None:
    reports: list[list[tuple[object, float]]] = []

    async def call(jobs: Jobs) -> object:
        loop = asyncio.get_running_loop()
        started = loop.time()
        seen: list[tuple[object, float]] = []
        reports.append(seen)
        return await in_finishing_order(
            [jobs.job("a", 3), jobs.job("b", 1), jobs.job("c", 2)],
            lambda result: seen.append((result, loop.time() - started)),
        )

    def reported_on_time(_jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, "in_finishing_order")
        seen = reports[-1]
        assert seen == [("b", 1.0), ("c", 2.0), ("a", 3.0)], (
            f"the reports came as (result, seconds) {seen}; expected b at 1 s, c at 2 s and a "
            f"at 3 s: report each result as soon as its job finishes (asyncio.as_completed)"
        )

    explore(probe, call, reported_on_time)


@pytest.mark.probe
def test_in_finishing_order_returns_the_results_in_finishing_order(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return in_finishing_order([jobs.job("a", 3), jobs.job("b", 1), jobs.job("c", 2)], ignore)

    def finishing_order(_jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, "in_finishing_order")
        assert outcome.value == ["b", "c", "a"], (
            f"in_finishing_order returned {outcome.value!r} for jobs finishing b, c, a"
        )

    explore(probe, call, finishing_order)


# -- supervise -----------------------------------------------------------------------------


@pytest.mark.probe
def test_supervise_returns_the_results_in_order_after_running_all_at_once(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return supervise([jobs.job("a", 3), jobs.job("b", 1), jobs.job("c", 2)])

    def all_results(_jobs: Jobs, outcome: Outcome) -> None:
        assert outcome.error is None, (
            f"supervise raised {outcome.error!r}. Create the tasks with the group's own "
            f"create_task inside `async with asyncio.TaskGroup() as group:`; the group waits "
            f"for its tasks only"
        )
        assert (outcome.value, outcome.elapsed) == (["a", "b", "c"], 3.0), (
            f"supervise returned {outcome.value!r} after {outcome.elapsed:g} s; expected "
            f"['a', 'b', 'c'] after 3 s"
        )

    explore(probe, call, all_results)


@pytest.mark.probe
def test_supervise_cancels_the_siblings_of_a_failure_and_raises_an_exception_group(
    probe: Prober,
) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return supervise([jobs.job("a", 5), jobs.job("b", 1, fail=True), jobs.job("c", 3)])

    def grouped(jobs: Jobs, outcome: Outcome) -> None:
        nothing_left_running(outcome, "supervise")
        error = outcome.error
        assert isinstance(error, ExceptionGroup), (
            f"supervise gave {error or outcome.value!r}, not an ExceptionGroup: a TaskGroup "
            f"collects the failures of its tasks into one"
        )
        assert list(error.exceptions) == [jobs.failures["b"]], f"the group held {error.exceptions}"

    explore(probe, call, grouped)


# -- with_deadline -------------------------------------------------------------------------


@pytest.mark.probe
def test_with_deadline_returns_the_result_as_soon_as_it_is_ready(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return with_deadline(jobs.job("a", 1), 2.0, "too late")

    def in_time(_jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, "with_deadline")
        assert (outcome.value, outcome.elapsed) == ("a", 1.0), (
            f"a 1 s job with a 2 s deadline gave {outcome.value!r} after {outcome.elapsed:g} s; "
            f"expected 'a' after 1 s"
        )

    explore(probe, call, in_time)


@pytest.mark.probe
def test_with_deadline_gives_the_default_at_the_deadline_and_stops_the_job(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return with_deadline(jobs.job("a", 5), 2.0, "too late")

    def timed_out(jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, "with_deadline")
        assert (outcome.value, outcome.elapsed) == ("too late", 2.0), (
            f"a 5 s job with a 2 s deadline gave {outcome.value!r} after {outcome.elapsed:g} s; "
            f"expected the default after 2 s"
        )
        nothing_left_running(outcome, "with_deadline")
        assert jobs.cancelled() == ["a"], "the job that missed its deadline was never cancelled"

    explore(probe, call, timed_out)


@pytest.mark.probe
def test_with_deadline_stays_cancelled_when_its_caller_is_cancelled(probe: Prober) -> None:
    async def call(jobs: Jobs) -> object:
        task = asyncio.create_task(with_deadline(jobs.job("a", 5), 10.0, "default"))
        await asyncio.sleep(1)
        task.cancel()
        await asyncio.wait([task])
        return "cancelled" if task.cancelled() else f"finished with {task.result()!r}"

    def stayed_cancelled(_jobs: Jobs, outcome: Outcome) -> None:
        assert outcome.value == "cancelled", (
            f"with_deadline was cancelled from outside after 1 s, yet its task "
            f"{outcome.value or outcome.error}: it swallowed the CancelledError. Catch only "
            f"TimeoutError; a cancellation must travel on to whoever cancelled"
        )

    explore(probe, call, stayed_cancelled)


# -- Background ----------------------------------------------------------------------------


@pytest.mark.probe
def test_background_counts_its_tasks_while_they_run_and_forgets_them_when_done(
    probe: Prober,
) -> None:
    async def call(jobs: Jobs) -> object:
        background = Background()
        background.spawn(jobs.job("a", 1))
        background.spawn(jobs.job("b", 2))
        await asyncio.sleep(0.5)
        during = (background.running, sorted(jobs.running))
        await asyncio.sleep(2)
        return during, background.running

    def counted(_jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, "Background")
        during, after = outcome.value  # type: ignore[misc]
        assert during == (2, ["a", "b"]), (
            f"0.5 s after spawning jobs a and b, (running, jobs running) was {during}: spawn "
            f"must start each task at once and keep it"
        )
        assert after == 0, (
            f"after both jobs finished, running was still {after}: remove a task from the set "
            f"when it is done (task.add_done_callback(self._tasks.discard)), or the set grows "
            f"forever"
        )

    explore(probe, call, counted)


@pytest.mark.probe
def test_background_close_cancels_every_task_and_waits_until_they_have_stopped(
    probe: Prober,
) -> None:
    async def call(jobs: Jobs) -> object:
        background = Background()
        background.spawn(jobs.job("a", 10))
        background.spawn(jobs.job("b", 10))
        await asyncio.sleep(1)
        await background.close()
        return None

    def closed(jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, "Background.close")
        assert outcome.elapsed == 1.0, (
            f"close() returned {outcome.elapsed - 1:g} s after it was called: it waited for "
            f"the tasks to end by themselves instead of cancelling them"
        )
        nothing_left_running(outcome, "Background.close")
        assert jobs.cancelled() == ["a", "b"], f"the cancelled jobs were {jobs.cancelled()}"

    explore(probe, call, closed)


@pytest.mark.asyncio
async def test_a_spawned_task_is_not_lost_to_the_garbage_collector() -> None:
    ended_by: list[str] = []

    async def wait_for_a_reply() -> None:
        # Awaits a future that nothing else refers to: only Background keeps this task alive.
        reply = asyncio.get_running_loop().create_future()
        try:
            await reply
        except BaseException as stop:
            ended_by.append(type(stop).__name__)
            raise

    background = Background()
    waiter = wait_for_a_reply()
    try:
        background.spawn(waiter)
    except NotImplementedError:
        waiter.close()  # spare the learner a "coroutine was never awaited" warning
        raise
    del waiter  # from here on only Background may keep the task (and its coroutine) alive
    await asyncio.sleep(0)
    gc.collect()
    await background.close()
    assert ended_by == ["CancelledError"], (
        f"the spawned task ended by {ended_by or 'nothing'} instead of close()'s CancelledError: "
        f"the garbage collector destroyed it while it was waiting (GeneratorExit), because "
        f"nothing held a strong reference to it. The loop keeps tasks only in a weak set; keep "
        f"each task in self._tasks until it is done."
    )
