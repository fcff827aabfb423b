"""Where the workers' greenlets run (the test's thread, or the run's thread for an exploration
started on another): an error in the driver fails the run, and a schedule interrupted (a time
budget, Ctrl-C) leaves no worker running and raises what interrupted it."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import FrameType

import greenlet
import pytest

from plugins.probe import ExploreStats, ProbeFailure, api, explore, scheduler
from plugins.probe.clock import REAL_SLEEP
from plugins.probe.scheduler import DONE
from plugins.probe.threadpool import POOL
from tests.probe.blocked_registry import blocked_on_the_registry_lock
from tests.probe.elsewhere import on_another_thread
from tests.probe.samples import counter_unlocked, identity


def test_an_error_in_the_scheduler_itself_fails_the_run_instead_of_passing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: object, w: object) -> object:
        raise RuntimeError("no greenlet for you")

    monkeypatch.setattr(scheduler.Run, "_greenlet", broken)
    with pytest.raises(ProbeFailure) as caught:
        explore(identity.Seen, [lambda s: s.record("a")], None, modules=[identity], budget=3)
    assert "scheduler failed (RuntimeError: no greenlet for you)" in str(caught.value)


class _Interrupted(BaseException):
    """Stands for a test's time budget running out while a schedule runs (a BaseException,
    as pytest-timeout's and the budgets' are)."""


def _forever(counter: counter_unlocked.Counter) -> None:
    while True:
        counter.increment()


def _explore_two(worker: Callable[[counter_unlocked.Counter], None]) -> None:
    """One schedule of two such workers, with no step bound to end it."""
    explore(
        counter_unlocked.Counter,
        [worker, worker],
        modules=[counter_unlocked],
        budget=1,
        max_steps=10**9,
    )


def _all_done(run: scheduler.Run) -> bool:
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(w.status != DONE for w in run.workers):
        time.sleep(0.01)
    return all(w.status == DONE for w in run.workers)


def test_a_schedule_interrupted_in_the_tests_thread_stops_its_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[scheduler.Run] = []

    def interrupted(self: scheduler.Run) -> None:
        runs.append(self)
        time.sleep(0.05)  # the workers are running meanwhile
        raise _Interrupted

    monkeypatch.setattr(scheduler.Run, "wait", interrupted)
    try:
        with pytest.raises(_Interrupted):
            on_another_thread(lambda: _explore_two(_forever))
        assert _all_done(runs[0]), "the workers of an interrupted schedule went on running"
    finally:
        runs[0].abort()  # should the check above fail, no worker spins on for ever


def test_a_schedule_run_on_the_tests_thread_ends_at_a_signal_that_interrupts_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[scheduler.Run] = []
    launch = scheduler.Run.launch

    def recorded(self: scheduler.Run) -> None:
        runs.append(self)
        launch(self)

    expired = [False]

    def expire(signum: int, frame: FrameType | None) -> None:
        # Raised in a worker's own code only: elsewhere (a finalizer the collector runs) it
        # could not be raised, and the time is up again 5 ms later.
        if frame is None or frame.f_code.co_filename not in (__file__, counter_unlocked.__file__):
            signal.setitimer(signal.ITIMER_REAL, 0.005)
            return
        expired[0] = True
        raise _Interrupted

    def until_expired(counter: counter_unlocked.Counter) -> None:
        # Ends once the time is up: should the interruption be taken for the learner's own
        # exception, the runs that shrink it end too, and the test fails instead of hanging.
        while not expired[0]:
            counter.increment()

    monkeypatch.setattr(scheduler.Run, "launch", recorded)
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    try:
        with pytest.raises(_Interrupted):
            _explore_two(until_expired)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        for run in runs:
            run.abort()  # should the check fail, no worker spins on for ever
    assert runs and runs[0].inline, "the schedule was not run on the test's own thread"
    assert _all_done(runs[0]), "the workers of an interrupted schedule went on running"
    assert runs[0].failure is None, (
        f"the interruption was reported as the learner's finding: {runs[0].failure}"
    )


# Where the exploration starts: the main thread runs its schedules in place, watched by the
# watch's thread (watchdog); another thread hands them to the run's thread and waits (Run.wait).
WHERE = {
    "main-thread": lambda job: job(),
    "another-thread": on_another_thread,
}


@pytest.mark.parametrize("where", WHERE)
def test_a_schedule_that_keeps_stepping_outlasts_the_watchdog_without_a_report(
    where: str,
) -> None:
    # The watchdog reports a run whose steps stop for watchdog_s; it reads the step count every
    # 50 ms (a step reads no clock). This worker steps in bursts with a real 10 ms pause after
    # each, for 30 bursts: at least 0.3 s, twice a 0.15 s watchdog, never 0.15 s without a step.
    def bursts(counter: counter_unlocked.Counter) -> None:
        for _ in range(30):
            for _ in range(200):
                counter.increment()
            REAL_SLEEP(0.01)

    got: list[ExploreStats] = []
    started = time.perf_counter()
    WHERE[where](
        lambda: got.append(
            explore(
                counter_unlocked.Counter,
                [bursts],
                None,
                modules=[counter_unlocked],
                budget=1,
                max_steps=10**6,
                watchdog_s=0.15,
                exhaustive=0,
            )
        )
    )
    assert time.perf_counter() - started >= 0.3
    assert got and got[0].schedules == 1


def test_a_worker_blocked_outside_the_harness_on_the_runs_thread_is_reported() -> None:
    # Off the main thread the test's thread waits for the run and reports it; the run's thread
    # stays blocked until the lock is free (a known limit there).
    failure, elapsed = blocked_on_the_registry_lock(on_another_thread)
    assert failure.kind == "uncontrolled", str(failure)
    assert "blocked outside the harness's control at outside.py:13" in str(failure)
    assert elapsed < 5, f"the blocked worker took {elapsed:.1f} s to report"


def test_the_workers_first_schedule_runs_on_greenlets_made_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A new thread's first schedule would otherwise start its workers' greenlets itself,
    # timed as part of that schedule (a forked process's first probe test is only that).
    made: list[object] = []
    spare = scheduler.spare_greenlets

    def recorded(count: int) -> None:
        spare(count)
        made.extend(scheduler._spare_greenlets())

    monkeypatch.setattr(api, "spare_greenlets", recorded)
    seen: list[object] = []

    def look(s: identity.Seen) -> None:
        seen.append(greenlet.getcurrent())
        s.record("a")

    POOL.retire_idle()  # a new run thread, as in a forked process
    explore(identity.Seen, [look, look, look], None, modules=[identity], budget=1)
    assert len(seen) == 3 and all(g in made for g in seen), (
        f"the first schedule's workers ran on {len(set(seen) - set(made))} greenlets made "
        f"during it: the run's thread should have had them ready before it started"
    )
