"""asyncio mode: one seeded ready callback per iteration on virtual time."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from plugins.probe import ProbeFailure, explore_async
from tests.probe.samples import async_cache as ac


async def first(c: ac.RacyAsyncCache) -> int:
    return await c.get("k")


async def late(c: ac.RacyAsyncCache) -> int:
    return await c.login_then_get("k")


def one_fetch(c: ac.RacyAsyncCache, results: list[object]) -> None:
    assert c.fetches == 1, f"fetched {c.fetches} times for one key"


def test_the_plain_fifo_loop_never_shows_the_race() -> None:
    async def both() -> int:
        c = ac.RacyAsyncCache()
        await asyncio.gather(first(c), late(c))
        return c.fetches

    assert asyncio.run(both()) == 1


def test_check_then_act_across_await_is_caught_at_seed_0_early() -> None:
    with pytest.raises(ProbeFailure) as caught:
        explore_async(ac.RacyAsyncCache, [first, late], one_fetch, budget=200, seed=0)
    assert caught.value.kind == "invariant"
    assert caught.value.stats.first_failure is not None
    assert caught.value.stats.first_failure < 50
    text = str(caught.value)
    assert "suspended at an await" in text
    assert "async_cache.py:17" in text


def test_only_the_reported_schedule_pays_for_the_line_by_line_trace() -> None:
    hooks: list[object] = []

    async def traced_get(c: ac.RacyAsyncCache) -> int:
        hooks.append(sys.gettrace())
        return await c.get("k")

    with pytest.raises(ProbeFailure) as caught:
        explore_async(ac.RacyAsyncCache, [traced_get, late], one_fetch, budget=200, seed=0)
    searched, reported = hooks[:-1], hooks[-1]
    assert searched and all(hook is None for hook in searched), (
        "the search ran schedules with a trace hook: it is called for every function asyncio "
        "enters, and only the report needs the lines"
    )
    assert reported is not None, "the reported schedule ran without the hook that records lines"
    assert "async_cache.py:17" in str(caught.value)


def test_the_asyncio_lock_version_is_never_flagged_over_ten_seeds() -> None:
    for seed in range(10):
        explore_async(ac.SafeAsyncCache, [first, late], one_fetch, budget=50, seed=seed)


def test_the_async_report_is_identical_for_the_same_seed() -> None:
    texts = set()
    for _ in range(3):
        with pytest.raises(ProbeFailure) as caught:
            explore_async(ac.RacyAsyncCache, [first, late], one_fetch, budget=200, seed=4)
        texts.add(str(caught.value))
    assert len(texts) == 1


def test_long_async_sleeps_cost_no_real_time() -> None:
    async def nap(state: list[float]) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(3600)
        state.append(loop.time() - t0)

    start = time.perf_counter()
    explore_async(list, [nap, nap], lambda s, r: None, budget=20)
    assert time.perf_counter() - start < 1.0


def test_tasks_waiting_on_each_other_are_reported_as_a_deadlock() -> None:
    class Pair:
        def __init__(self) -> None:
            self.a = asyncio.Event()
            self.b = asyncio.Event()

    async def one(p: Pair) -> None:
        await p.a.wait()
        p.b.set()

    async def two(p: Pair) -> None:
        await p.b.wait()
        p.a.set()

    with pytest.raises(ProbeFailure) as caught:
        explore_async(Pair, [one, two], budget=5)
    assert caught.value.kind == "deadlock"
    assert "worker-1 waits at test_probe_async.py" in str(caught.value)


def test_replaying_the_reported_async_schedule_fails_the_same_way() -> None:
    with pytest.raises(ProbeFailure) as caught:
        explore_async(ac.RacyAsyncCache, [first, late], one_fetch, budget=200, seed=2)
    with pytest.raises(ProbeFailure) as again:
        explore_async(ac.RacyAsyncCache, [first, late], one_fetch, schedule=caught.value.schedule)
    assert str(again.value).splitlines()[0] == str(caught.value).splitlines()[0]


@pytest.mark.asyncio
async def test_explore_async_also_works_from_inside_a_pytest_asyncio_test() -> None:
    with pytest.raises(ProbeFailure):
        explore_async(ac.RacyAsyncCache, [first, late], one_fetch, budget=200)
    await asyncio.sleep(0)


def test_a_plain_callback_that_raises_fails_the_exploration() -> None:
    """asyncio only logs an exception raised by a ``call_soon`` callback; the loop keeps it
    for the outcome instead (``ProbeLoop.default_exception_handler``)."""

    async def schedules_a_broken_callback(c: ac.SafeAsyncCache) -> None:
        asyncio.get_running_loop().call_soon(lambda: 1 / 0)
        await asyncio.sleep(0)

    with pytest.raises(ProbeFailure) as caught:
        explore_async(ac.SafeAsyncCache, [schedules_a_broken_callback], None, budget=3)
    assert "a callback raised ZeroDivisionError" in str(caught.value), (
        f"the broken callback was not reported as such: {caught.value}"
    )
