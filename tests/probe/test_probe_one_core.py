"""A schedule's workers take turns, so an exploration keeps them on one CPU (waking a thread
on the same core is cheaper); the caller keeps every CPU, and the workers get them back
afterwards."""

from __future__ import annotations

import os
import sys

import pytest

from plugins.probe import explore, run_schedule

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


def test_the_workers_of_an_exploration_run_on_one_cpu_and_get_every_cpu_back_after() -> None:
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
