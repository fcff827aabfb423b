"""Measure the probe: ms/schedule, first failing schedule per bug, false alarms.

Run from the repository root:  python -m tests.probe.measure_probe
(set PROBE_TRACER=settrace on 3.12+ to measure the settrace hook instead of sys.monitoring).
The last lines are the costs quoted in plugins/probe/README.md: a step with no hand-off,
barriers' three parties with no switch, under random walk and tracked by the exhaustive
search, the floor of a hand-off between OS threads, one between greenlets (the workers
now), the scheduler's step on its own, and an asyncio step.
"""

from __future__ import annotations

import _thread
import asyncio
import os
import random
import statistics
import sys
import time
from collections.abc import Callable

from plugins.probe import ProbeFailure, api, explore, explore_async, strategies
from plugins.probe.exhaustive import Tracker
from plugins.probe.scheduler import BLOCKED, Run
from plugins.probe.threadpool import POOL
from plugins.probe.tracing import use_monitoring
from reference.queues import queues
from tests.probe.samples import async_cache as ac
from tests.probe.scenarios import BUGS, CORRECT


async def _first(c: ac.RacyAsyncCache) -> int:
    return await c.get("k")


async def _late(c: ac.RacyAsyncCache) -> int:
    return await c.login_then_get("k")


def _one(c: ac.RacyAsyncCache, r: list[object]) -> None:
    assert c.fetches == 1


def main() -> None:
    hook = "sys.monitoring" if use_monitoring() else "settrace"
    print(f"python {sys.version.split()[0]}, hook {hook}")
    for s in BUGS:
        try:
            explore(s.setup, s.workers, s.check, modules=[s.module], budget=250, seed=0)
            print(f"  bug {s.name:<22} MISSED")
        except ProbeFailure as e:
            print(
                f"  bug {s.name:<22} caught at schedule #{e.stats.first_failure} "
                f"({e.kind}), shrunk to {sum(1 for c in e.schedule if c)} nonzero choices"
            )
    for s in CORRECT:
        alarms = 0
        medians = []
        for seed in range(10):
            try:
                st = explore(s.setup, s.workers, s.check, modules=[s.module], budget=100, seed=seed)
                medians.append(st.median_ms)
            except ProbeFailure:
                alarms += 1
        medians.sort()
        print(
            f"  ok  {s.name:<22} {medians[len(medians) // 2]:.3f} ms/schedule, "
            f"false alarms {alarms}/1000 schedules"
        )
    try:
        explore_async(ac.RacyAsyncCache, [_first, _late], _one, budget=250, seed=0)
    except ProbeFailure as e:
        print(f"  bug async_check_then_act    caught at schedule #{e.stats.first_failure}")
    alarms = 0
    for seed in range(10):
        try:
            st = explore_async(ac.SafeAsyncCache, [_first, _late], _one, budget=100, seed=seed)
        except ProbeFailure:
            alarms += 1
    print(f"  ok  async_lock             {st.median_ms:.3f} ms/schedule, false alarms {alarms}")


def _median_ms(run: Callable[[], object], times: int = 60) -> float:
    run()  # warm: a process's first schedule runs several times slower than its tenth
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def _handoff_floor_us(rounds: int = 20_000) -> float:
    """Two threads on one CPU handing a token back and forth with nothing but two ``_thread``
    locks: what a hand-off between OS threads costs before the scheduler adds anything."""
    mine, theirs, done = (_thread.allocate_lock() for _ in range(3))
    for lock in (mine, theirs, done):
        lock.acquire()
    everywhere = os.sched_getaffinity(0)
    one = {min(everywhere)}

    def other() -> None:
        os.sched_setaffinity(0, one)
        for _ in range(rounds):
            theirs.acquire()
            mine.release()
        done.release()

    os.sched_setaffinity(0, one)
    try:
        _thread.start_new_thread(other, ())
        started = time.perf_counter()
        for _ in range(rounds):
            theirs.release()
            mine.acquire()
        took = time.perf_counter() - started
        done.acquire()
    finally:
        os.sched_setaffinity(0, everywhere)
    return took / rounds / 2 * 1e6


def _greenlet_handoff_us(rounds: int = 100_000) -> float:
    """Two greenlets handing the token back and forth the way the scheduler does (through
    ``sys.call_tracing``): what a hand-off between workers costs now."""
    import greenlet

    test = greenlet.getcurrent()

    def other() -> None:
        while True:
            sys.call_tracing(test.switch, ())

    partner = greenlet.greenlet(other)
    started = time.perf_counter()
    for _ in range(rounds):
        sys.call_tracing(partner.switch, ())
    took = time.perf_counter() - started
    partner.throw(greenlet.GreenletExit)
    return took / rounds / 2 * 1e6


def _step_alone_us(times: int = 200_000) -> float:
    """``Run._step`` on its own: three workers, the running one may go on, two blocked."""
    run = Run(strategies.Replay([]), frozenset(), 10**9)
    running, *others = (run.add_worker(f"w{i}", lambda: None) for i in range(3))
    for worker in others:
        worker.status, worker.pred = BLOCKED, lambda: False
    site = ("measure", 1)
    started = time.perf_counter()
    for _ in range(times):
        run._step(running, site, "", None)
    return (time.perf_counter() - started) / times * 1e6


class _Gauge:
    """The work of the queues kata's pipeline test: a virtual second per item."""

    def work(self, item: int) -> int:
        time.sleep(1.0)
        return item


def _six_items_three_workers(gauge: _Gauge) -> object:
    return queues.run_pipeline([1, 2, 3, 4, 5, 6], gauge.work, 3)


def costs() -> None:
    from reference.barriers import barriers
    from tests.probe.samples import counter_unlocked

    def two_hundred(counter: counter_unlocked.Counter) -> None:
        for _ in range(200):
            counter.increment()

    solo = api._executor(
        counter_unlocked.Counter, [two_hundred], None, [counter_unlocked], 20_000, 2.0
    )

    def party(n: int) -> Callable[[barriers.Simulation], object]:
        return lambda sim: sim.run_party(n, 3)

    sim = api._executor(
        lambda: barriers.Simulation([1, 0, 1, 1, 0, 1], 3),
        [party(n) for n in range(3)],
        None,
        [barriers],
        20_000,
        2.0,
    )
    with POOL.on_one_core():
        steps = solo(strategies.Replay([])).steps
        ms = _median_ms(lambda: solo(strategies.Replay([])))
        print(f"  cost one worker: {steps} steps in {ms:.2f} ms, {ms / steps * 1000:.2f} us/step")
        steps = sim(strategies.Replay([])).steps
        ms = _median_ms(lambda: sim(strategies.Replay([])))
        walk = iter(range(10**9))
        rw = _median_ms(lambda: sim(strategies.RandomWalk(random.Random(next(walk)))))
        print(
            f"  cost barriers 3 parties: {steps} steps, no switch {ms:.2f} ms, random {rw:.2f} ms"
        )
        # The exhaustive search's run: the same schedule, with what each step touched.
        tracked = _median_ms(lambda: sim(Tracker([])))
        print(f"  cost barriers 3 parties tracked (exhaustive search): {tracked:.2f} ms")
        # A plain queue's methods under a random walk: the queues kata's pipeline of six items.
        pipeline = api._executor(_Gauge, [_six_items_three_workers], None, [queues], 20_000, 2.0)
        steps = pipeline(strategies.Replay([])).steps
        ms = _median_ms(lambda: pipeline(strategies.RandomWalk(random.Random(next(walk)))))
        print(f"  cost queues pipeline of 6 items, 3 workers: {steps} steps, random {ms:.2f} ms")
        # What every schedule pays besides its steps: patching, the run's thread, the check.
        idle = api._executor(
            counter_unlocked.Counter, [lambda c: None], None, [counter_unlocked], 20_000, 2.0
        )
        pair = api._executor(
            counter_unlocked.Counter,
            [counter_unlocked.Counter.increment, counter_unlocked.Counter.increment],
            None,
            [counter_unlocked],
            20_000,
            2.0,
        )
        idle_ms = _median_ms(lambda: idle(strategies.Replay([])), 2000)
        pair_ms = _median_ms(lambda: pair(strategies.RandomWalk(random.Random(next(walk)))), 2000)
        print(
            f"  cost a schedule's floor: one worker doing nothing {idle_ms * 1000:.0f} us, "
            f"two workers of one increment (random walk) {pair_ms * 1000:.0f} us"
        )

    print(f"  cost hand-off floor, two raw locks on one core: {_handoff_floor_us():.2f} us")
    print(f"  cost hand-off between two greenlets: {_greenlet_handoff_us():.2f} us")
    print(f"  cost scheduler step alone (no tracing, no hand-off): {_step_alone_us():.2f} us")

    async def ten_sleeps(_state: object) -> None:
        for _ in range(10):
            await asyncio.sleep(0)

    st = explore_async(object, [ten_sleeps, ten_sleeps], budget=60, modules=[ac])
    print(f"  cost asyncio two tasks of ten sleep(0): {st.max_steps} steps, {st.median_ms:.2f} ms")


if __name__ == "__main__":
    main()
    costs()
