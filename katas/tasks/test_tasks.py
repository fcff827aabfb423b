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
# The probe loop's clock starts at 0; each call under test starts at this loop time instead,
# so that a loop time passed where a delay belongs (asyncio.timeout_at(seconds)) shows.
CLOCK_START = 1000.0
# Real seconds the one test on a plain event loop waits for close(); a correct close() needs
# microseconds, so this runs out only when close() waits for a task that never ends.
HANG_SECONDS = 1.0


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
        await asyncio.sleep(CLOCK_START - loop.time())
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


def meaning(error: BaseException | None) -> str:
    """What a classic asyncio error means in this kata's words ('' for any other)."""
    text = str(error)
    if isinstance(error, TypeError) and "coroutines is forbidden" in text:
        return (
            " asyncio.wait wants tasks, not bare coroutines (a TypeError since Python 3.11): "
            "wrap each coroutine with asyncio.create_task first."
        )
    if isinstance(error, AttributeError) and "'coroutine' object" in text:
        return (
            " A bare coroutine is not a task: it has no done(), cancel() or result(). Wrap each "
            "coroutine with asyncio.create_task first."
        )
    if isinstance(error, ValueError) and "is empty" in text:
        return " asyncio.wait refuses an empty set of tasks: handle 'no coroutines' before it."
    if isinstance(error, asyncio.InvalidStateError):
        return (
            " A task's result was read before the task had finished: wait for it first (a "
            "TaskGroup waits only for the tasks made with its own create_task)."
        )
    return ""


def no_error(outcome: Outcome, what: str) -> None:
    __tracebackhide__ = True
    assert outcome.error is None, f"{what} raised {outcome.error!r}.{meaning(outcome.error)}"


def nothing_left_running(outcome: Outcome, what: str) -> None:
    __tracebackhide__ = True
    assert not outcome.left_running, (
        f"{what} returned while the jobs {outcome.left_running} were still running: cancel "
        f"every task you no longer need and then wait for it; task.cancel() only asks, and "
        f"the task stops only when it next runs"
    )


# -- gather_settled ------------------------------------------------------------------------


@pytest.mark.probe
@pytest.mark.clause(1, 4)
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
@pytest.mark.clause(4)
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
@pytest.mark.clause(1, 5)
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
@pytest.mark.clause(6)
def test_fail_fast_raises_the_failure_as_soon_as_it_happens(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return fail_fast([jobs.job("a", 5), jobs.job("b", 1, fail=True), jobs.job("c", 3)])

    def raised_at_once(jobs: Jobs, outcome: Outcome) -> None:
        assert outcome.error is jobs.failures.get("b"), (
            f"fail_fast gave {outcome.error or outcome.value!r}; it must raise job b's own "
            f"exception (not a wrapper).{meaning(outcome.error)}"
        )
        assert outcome.elapsed == 1.0, (
            f"job b failed at 1 s but fail_fast raised only at {outcome.elapsed:g} s: it waited "
            f"for the other jobs; wait with return_when=asyncio.FIRST_EXCEPTION"
        )

    explore(probe, call, raised_at_once)


@pytest.mark.probe
@pytest.mark.clause(2, 6)
def test_fail_fast_cancels_the_others_and_waits_until_they_have_stopped(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return fail_fast([jobs.job("a", 5), jobs.job("b", 1, fail=True), jobs.job("c", 3)])

    def cleaned_up(jobs: Jobs, outcome: Outcome) -> None:
        assert outcome.error is jobs.failures.get("b"), (
            f"fail_fast gave {outcome.error or outcome.value!r} instead of job b's failure."
            f"{meaning(outcome.error)}"
        )
        nothing_left_running(outcome, "fail_fast")
        assert jobs.cancelled() == ["a", "c"], (
            f"the cancelled jobs were {jobs.cancelled()}, not a and c, the two still running "
            f"when b failed"
        )

    explore(probe, call, cleaned_up)


@pytest.mark.asyncio
@pytest.mark.clause(5)
async def test_fail_fast_of_no_coroutines_returns_an_empty_list() -> None:
    try:
        results = await fail_fast([])
    except ValueError as error:
        pytest.fail(
            f"fail_fast([]) raised {error!r}: asyncio.wait refuses an empty set of tasks. With "
            f"no coroutines, all of them succeeded: return [] before you wait"
        )
    assert results == [], f"fail_fast([]) returned {results!r}, expected []"


# -- first_success -------------------------------------------------------------------------


@pytest.mark.probe
@pytest.mark.clause(7)
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
@pytest.mark.clause(2, 7)
def test_first_success_cancels_the_slower_ones_and_waits_until_they_have_stopped(
    probe: Prober,
) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return first_success([jobs.job("a", 1, fail=True), jobs.job("b", 2), jobs.job("c", 3)])

    def cleaned_up(jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, "first_success")
        nothing_left_running(outcome, "first_success")
        assert jobs.cancelled() == ["c"], (
            f"the cancelled jobs were {jobs.cancelled()}, not ['c'], the one still running when b "
            f"won"
        )

    explore(probe, call, cleaned_up)


@pytest.mark.probe
@pytest.mark.clause(8)
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
@pytest.mark.clause(8)
async def test_first_success_of_nothing_raises_value_error() -> None:
    with pytest.raises(ValueError):
        await first_success([])


def ignore(_result: object) -> None:
    """A report function that does nothing."""


# -- in_finishing_order --------------------------------------------------------------------


@pytest.mark.probe
@pytest.mark.clause(1, 9)
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
@pytest.mark.clause(10)
def test_in_finishing_order_returns_the_results_in_finishing_order(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return in_finishing_order([jobs.job("a", 3), jobs.job("b", 1), jobs.job("c", 2)], ignore)

    def finishing_order(_jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, "in_finishing_order")
        assert outcome.value == ["b", "c", "a"], (
            f"in_finishing_order returned {outcome.value!r} for jobs finishing b, c, a"
        )

    explore(probe, call, finishing_order)


@pytest.mark.probe
@pytest.mark.clause(2, 11)
def test_in_finishing_order_raises_a_failure_and_leaves_nothing_running(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return in_finishing_order(
            [jobs.job("a", 3), jobs.job("b", 1, fail=True), jobs.job("c", 2)], ignore
        )

    def raised_and_stopped(jobs: Jobs, outcome: Outcome) -> None:
        assert outcome.error is jobs.failures.get("b"), (
            f"job b failed at 1 s and in_finishing_order gave {outcome.error or outcome.value!r}; "
            f"it must raise b's own exception when it comes to it"
        )
        assert outcome.elapsed == 1.0, (
            f"job b failed at 1 s but in_finishing_order raised only at {outcome.elapsed:g} s"
        )
        nothing_left_running(outcome, "in_finishing_order (raising b's failure)")

    explore(probe, call, raised_and_stopped)


# -- supervise -----------------------------------------------------------------------------


@pytest.mark.probe
@pytest.mark.clause(1, 12)
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
@pytest.mark.clause(2, 13)
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
        assert list(error.exceptions) == [jobs.failures["b"]], (
            f"the group held {error.exceptions}, expected only job b's failure"
        )

    explore(probe, call, grouped)


# -- with_deadline -------------------------------------------------------------------------


@pytest.mark.probe
@pytest.mark.clause(14)
def test_with_deadline_returns_the_result_as_soon_as_it_is_ready(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return with_deadline(jobs.job("a", 1.75), 2.0, "too late")

    def in_time(_jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, "with_deadline")
        why = ""
        if outcome.value == "too late" and outcome.elapsed == 0:
            why = (
                f" The deadline passed at once: was `seconds` given as a loop time "
                f"(asyncio.timeout_at)? The clock read {CLOCK_START:g} s at the call; "
                f"asyncio.timeout(seconds) counts from now."
            )
        assert (outcome.value, outcome.elapsed) == ("a", 1.75), (
            f"a 1.75 s job with a 2 s deadline gave {outcome.value!r} after "
            f"{outcome.elapsed:g} s; expected 'a' after 1.75 s, the moment it was ready.{why}"
        )

    explore(probe, call, in_time)


@pytest.mark.probe
@pytest.mark.clause(2, 15)
def test_with_deadline_gives_the_default_at_the_deadline_and_stops_the_job(probe: Prober) -> None:
    def call(jobs: Jobs) -> Awaitable[object]:
        return with_deadline(jobs.job("a", 2.25), 2.0, "too late")

    def timed_out(jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, "with_deadline")
        assert (outcome.value, outcome.elapsed) == ("too late", 2.0), (
            f"a 2.25 s job with a 2 s deadline gave {outcome.value!r} after "
            f"{outcome.elapsed:g} s; expected the default after exactly 2 s. Waiting for the "
            f"job and then comparing the time it took comes too late: the deadline itself must "
            f"interrupt the wait (async with asyncio.timeout(seconds))"
        )
        nothing_left_running(outcome, "with_deadline")
        assert jobs.cancelled() == ["a"], "the job that missed its deadline was never cancelled"

    explore(probe, call, timed_out)


@pytest.mark.probe
@pytest.mark.clause(16)
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


# -- cancelled from outside ----------------------------------------------------------------


@dataclass
class Cancellation:
    """How a call ended after its task was cancelled, and who was running at that moment."""

    stayed_cancelled: bool
    left_running: list[str]
    ended: str
    ended_at: float
    why: str = ""


# Each call starts jobs a (3 s), b (1 s) and c (2 s), or the like, and is cancelled at 1.5 s,
# when at least two of them are still running.
CANCEL_AT = 1.5
CANCELLED_CALLS: dict[str, Call] = {
    "gather_settled": lambda jobs: gather_settled(
        [jobs.job("a", 3), jobs.job("b", 1), jobs.job("c", 2)]
    ),
    "fail_fast": lambda jobs: fail_fast([jobs.job("a", 3), jobs.job("b", 1), jobs.job("c", 2)]),
    "first_success": lambda jobs: first_success(
        [jobs.job("a", 1, fail=True), jobs.job("b", 2), jobs.job("c", 3)]
    ),
    "in_finishing_order": lambda jobs: in_finishing_order(
        [jobs.job("a", 3), jobs.job("b", 1), jobs.job("c", 2)], ignore
    ),
    "supervise": lambda jobs: supervise([jobs.job("a", 3), jobs.job("b", 1), jobs.job("c", 2)]),
    "with_deadline": lambda jobs: with_deadline(jobs.job("a", 3), 10.0, "default"),
}


def cancelled_midway(call: Call) -> Call:
    """Runs `call(jobs)` as a task, cancels it at CANCEL_AT, and notes, the moment the call
    ends, which jobs are still running."""

    async def run(jobs: Jobs) -> Cancellation:
        loop = asyncio.get_running_loop()
        started = loop.time()
        left_running: list[str] = []
        ended_at: list[float] = []

        async def watched() -> object:
            try:
                return await call(jobs)
            finally:
                left_running.extend(sorted(jobs.running))
                ended_at.append(loop.time() - started)

        task = asyncio.create_task(watched())
        await asyncio.sleep(CANCEL_AT)
        task.cancel()
        await asyncio.wait([task])
        if task.cancelled():
            return Cancellation(True, left_running, "with CancelledError", ended_at[0])
        error = task.exception()
        if isinstance(error, NotImplementedError):
            task.result()  # raises it: the stub is not written yet
        ended = f"raising {error!r}" if error else f"returning {task.result()!r}"
        return Cancellation(False, left_running, ended, ended_at[0], meaning(error))

    return run


@pytest.mark.probe
@pytest.mark.clause(3)
@pytest.mark.parametrize("name", list(CANCELLED_CALLS))
def test_a_call_cancelled_from_outside_leaves_no_job_running(probe: Prober, name: str) -> None:
    def stopped_everything(_jobs: Jobs, outcome: Outcome) -> None:
        no_error(outcome, name)
        ending = outcome.value
        assert isinstance(ending, Cancellation)
        assert ending.ended_at >= CANCEL_AT, (
            f"{name} ended at {ending.ended_at:g} s, {ending.ended}, before it was cancelled at "
            f"{CANCEL_AT:g} s, although its jobs take 2 s and more.{ending.why}"
        )
        assert not ending.left_running, (
            f"{name} was cancelled from outside at {CANCEL_AT:g} s and ended {ending.ended} "
            f"while the jobs {ending.left_running} were still running. The cancellation "
            f"arrives at the `await` where {name} waits (asyncio.wait, as_completed, ...), and "
            f"that stops none of the tasks you started: cancel and await them in a `finally`, "
            f"so that this way out cleans up too"
        )
        assert ending.stayed_cancelled, (
            f"{name} was cancelled from outside at {CANCEL_AT:g} s, yet it ended {ending.ended}: "
            f"a cancellation must travel on to whoever cancelled.{ending.why}"
        )

    explore(probe, cancelled_midway(CANCELLED_CALLS[name]), stopped_everything)


# -- Background ----------------------------------------------------------------------------


@pytest.mark.probe
@pytest.mark.clause(17, 18)
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
@pytest.mark.clause(19)
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
        assert jobs.cancelled() == ["a", "b"], (
            f"the cancelled jobs were {jobs.cancelled()}, not both a and b"
        )

    explore(probe, call, closed)


@pytest.mark.asyncio
@pytest.mark.clause(17)
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
    closing = asyncio.create_task(background.close())
    done, _ = await asyncio.wait([closing], timeout=HANG_SECONDS)
    if not done:
        closing.cancel()
        await asyncio.wait([closing])
        pytest.fail(
            f"close() had not returned {HANG_SECONDS:g} s after it was called, while its one task "
            f"waited for a reply that never comes: close() must cancel every task, not only "
            f"wait for it"
        )
    closing.result()
    assert ended_by == ["CancelledError"], (
        f"the spawned task ended by {ended_by or 'nothing'} instead of close()'s CancelledError: "
        f"the garbage collector destroyed it while it was waiting (GeneratorExit), because "
        f"nothing held a strong reference to it. The loop keeps tasks only in a weak set; keep "
        f"each task in self._tasks until it is done."
    )
