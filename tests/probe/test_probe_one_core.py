"""An exploration started on the main thread runs its workers there, with the test's CPUs and
scheduling policy. One started on another thread hands them to a harness thread: as they take
turns, it keeps them on one CPU (waking a thread on the same core is cheaper); the caller keeps
every CPU, and the workers get them back afterwards."""

from __future__ import annotations

import _thread
import os
import sys
import threading

import pytest

from plugins.probe import explore, run_schedule
from tests.probe.elsewhere import on_another_thread

HERE = sys.modules[__name__]

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs an OS that pins threads (Linux) and at least 2 CPUs",
)


class Seen:
    def __init__(self) -> None:
        self.cpus: list[frozenset[int]] = []


def record_cpus(seen: Seen) -> None:
    seen.cpus.append(frozenset(os.sched_getaffinity(0)))


def test_an_exploration_on_the_main_thread_runs_its_workers_there_as_they_are() -> None:
    everything = frozenset(os.sched_getaffinity(0))
    policy = os.sched_getscheduler(0)
    where: list[tuple[int, frozenset[int], int]] = []

    def record(_: object) -> None:
        where.append((_thread.get_ident(), frozenset(os.sched_getaffinity(0)), policy_now()))

    def policy_now() -> int:
        return os.sched_getscheduler(0)

    explore(lambda: None, [record, record], modules=[HERE], budget=10)
    main = threading.main_thread().ident
    assert where and {w[0] for w in where} == {main}, (
        f"the workers ran on threads {sorted({w[0] for w in where})}, not the test's own "
        f"({main}): each schedule was handed to a harness thread"
    )
    assert {(w[1], w[2]) for w in where} == {(everything, policy)}, (
        f"the workers ran with CPUs and policies {sorted({(w[1], w[2]) for w in where})}: on "
        f"the test's thread they keep its own ({everything}, {policy})"
    )


def test_the_workers_of_an_exploration_run_on_one_cpu_and_get_every_cpu_back_after() -> None:
    on_another_thread(_one_cpu_and_every_cpu_back_after)


def _one_cpu_and_every_cpu_back_after() -> None:
    everything = frozenset(os.sched_getaffinity(0))
    runs: list[Seen] = []
    callers: list[frozenset[int]] = []

    def setup() -> Seen:
        callers.append(frozenset(os.sched_getaffinity(0)))  # the test's own thread
        runs.append(Seen())
        return runs[-1]

    explore(setup, [record_cpus, record_cpus, record_cpus], modules=[HERE], budget=20)
    seen = {cpus for run in runs for cpus in run.cpus}
    assert len(seen) == 1 and len(next(iter(seen))) == 1, (
        f"the workers ran with CPU sets {seen}: one exploration should keep them on one CPU"
    )
    assert set(callers) == {everything}, (
        f"the exploring thread itself ran with {set(callers)}: a process it starts would "
        f"inherit one CPU"
    )
    after = Seen()
    run_schedule(lambda: after, [record_cpus, record_cpus], modules=[HERE], schedule=[])
    assert after.cpus and all(cpus == everything for cpus in after.cpus), (
        f"outside an exploration the pool's threads ran with {after.cpus}, not every CPU"
    )


def record_policy(seen: list[int]) -> None:
    seen.append(os.sched_getscheduler(0))


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="needs SCHED_BATCH (Linux)")
def test_the_workers_of_an_exploration_never_preempt_the_worker_that_woke_them() -> None:
    on_another_thread(_never_preempt_the_worker_that_woke_them)


def _never_preempt_the_worker_that_woke_them() -> None:
    during: list[int] = []
    explore(lambda: during, [record_policy, record_policy], modules=[HERE], budget=10)
    assert during and set(during) == {os.SCHED_BATCH}, (
        f"the workers ran with scheduling policies {set(during)}: a worker woken at a hand-off "
        f"should wait for the one that woke it to block (SCHED_BATCH), not preempt it"
    )
    after: list[int] = []
    run_schedule(lambda: after, [record_policy], modules=[HERE], schedule=[])
    assert after == [os.SCHED_OTHER], (
        f"outside an exploration the pool's threads ran with policy {after}, not SCHED_OTHER"
    )
