"""The exhaustive mode: proofs of small correct programs with the exact number of distinct
interleavings, the fewest preemptions on known bugs, and an honest fallback to sampling."""

from __future__ import annotations

import re
import sys
import threading

import pytest

from plugins.probe import ProbeFailure, explore, explore_async, run_schedule
from plugins.probe_compare_cases import PAIRS_BY_NAME, Pair
from tests.probe.samples import async_cache as ac

HERE = sys.modules[__name__]


class Box:
    """Shared state for the hand-counted scenarios (this module is the one traced)."""

    def __init__(self) -> None:
        self.v = 0
        self.w = 0
        self.lock = threading.Lock()


def write_v_twice(box: Box) -> None:
    box.v = 1
    box.v = 2


def write_w_twice(box: Box) -> None:
    box.w = 1
    box.w = 2


def nothing_to_check(box: Box, results: list[object]) -> None:
    pass


def test_two_workers_writing_one_attribute_twice_have_exactly_six_interleavings() -> None:
    # Each worker runs three steps: up to its first write (local only), the first write, the
    # second write and its end. Writes to the same attribute never commute, so the distinct
    # interleavings are the orders of 2 + 2 writes that keep each worker's own order:
    # 4! / (2! * 2!) = 6. The local first steps commute with everything and add none.
    stats = explore(
        Box, [write_v_twice, write_v_twice], nothing_to_check, modules=[HERE], exhaustive=250
    )
    assert stats.proved, stats
    assert stats.interleavings == 6, stats
    assert stats.verdict == "all 6 distinct interleavings checked"


def test_workers_writing_different_attributes_commute_into_one_interleaving() -> None:
    stats = explore(
        Box, [write_v_twice, write_w_twice], nothing_to_check, modules=[HERE], exhaustive=250
    )
    assert stats.proved, stats
    assert stats.interleavings == 1, stats


def _report(pair: Pair, variant: str = "broken") -> ProbeFailure:
    with pytest.raises(ProbeFailure) as caught:
        explore(
            pair.setup(variant),
            list(pair.workers),
            lambda state, results: pair.check(state),
            modules=[pair.module],
            budget=250,
            seed=0,
            exhaustive=2000,
            exhaustive_s=30.0,
        )
    return caught.value


def _shown(failure: ProbeFailure) -> int:
    found = re.search(r"\((\d+) preemptions?;", str(failure))
    assert found, str(failure)
    return int(found.group(1))


# The fewest preemptions that make each pair fail, argued in each module's docstring; the
# lock-order oracle flags the opposite orders from a schedule that does not deadlock, so that
# pair's minimum is 0 (its deadlock needs 1).
MINIMUM = {
    "lost_update": ("invariant", 1),
    "check_then_act": ("invariant", 1),
    "lock_order": ("lock-order", 0),
    "condition_buffer": ("invariant", 0),
    "three_preemptions": ("invariant", 3),
}


@pytest.mark.parametrize("name", sorted(MINIMUM))
def test_the_report_shows_the_fewest_preemptions_any_failing_schedule_has(name: str) -> None:
    failure = _report(PAIRS_BY_NAME[name])
    kind, fewest = MINIMUM[name]
    assert failure.kind == kind, str(failure)
    assert _shown(failure) == fewest, str(failure)
    assert "no schedule with fewer preemptions fails" in str(failure), str(failure)


def test_a_failure_found_by_sampling_is_shrunk_to_the_fewest_preemptions_too() -> None:
    pair = PAIRS_BY_NAME["check_then_act"]
    with pytest.raises(ProbeFailure) as caught:
        explore(
            pair.setup("broken"),
            list(pair.workers),
            lambda state, results: pair.check(state),
            modules=[pair.module],
            budget=250,
            seed=0,
        )
    assert _shown(caught.value) == 1, str(caught.value)
    assert "strategy=" in str(caught.value), "sampling found it, and the report says so"


@pytest.mark.parametrize("name", ["lost_update", "check_then_act", "three_preemptions"])
def test_small_fixed_pairs_are_proved(name: str) -> None:
    pair = PAIRS_BY_NAME[name]
    stats = explore(
        pair.setup("fixed"),
        list(pair.workers),
        lambda state, results: pair.check(state),
        modules=[pair.module],
        exhaustive=2000,
        exhaustive_s=30.0,
    )
    assert stats.proved, stats
    assert stats.interleavings == stats.schedules, "sleep sets: no interleaving twice"


def test_a_scenario_too_big_for_the_cap_is_sampled_and_never_called_proved() -> None:
    pair = PAIRS_BY_NAME["lost_update"]
    stats = explore(
        pair.setup("fixed"),
        list(pair.workers),
        lambda state, results: pair.check(state),
        modules=[pair.module],
        budget=30,
        exhaustive=3,
    )
    assert not stats.proved
    assert stats.interleavings == 0
    assert (stats.exhaustive_runs, stats.schedules) == (3, 30)
    assert stats.verdict == "30 sampled schedules passed"


def _locked_increment(box: Box) -> None:
    with box.lock:
        box.v += 1


def test_a_lock_s_critical_sections_are_proved_in_both_orders_only() -> None:
    # Two workers, one critical section each: the lock makes them run one after the other,
    # in either order; a worker may also find the lock taken and block, or not.
    checks: list[int] = []

    def check(box: Box, results: list[object]) -> None:
        checks.append(box.v)
        assert box.v == 2

    stats = explore(
        Box, [_locked_increment, _locked_increment], check, modules=[HERE], exhaustive=250
    )
    assert stats.proved, stats
    assert checks and set(checks) == {2}
    assert 2 <= stats.interleavings <= 6, stats


async def _first(c: ac.RacyAsyncCache) -> int:
    return await c.get("k")


async def _late(c: ac.RacyAsyncCache) -> int:
    return await c.login_then_get("k")


def _one_fetch(c: ac.RacyAsyncCache, results: list[object]) -> None:
    assert c.fetches == 1, f"fetched {c.fetches} times for one key"


def test_asyncio_exhaustive_finds_the_race_with_the_fewest_switches() -> None:
    with pytest.raises(ProbeFailure) as caught:
        explore_async(ac.RacyAsyncCache, [_first, _late], _one_fetch, exhaustive=500)
    assert caught.value.kind == "invariant"
    assert "found by: exhaustive search" in str(caught.value)
    assert "no schedule with fewer preemptions fails" in str(caught.value)


def test_asyncio_exhaustive_proves_a_correct_pair_of_tasks() -> None:
    async def once(c: ac.RacyAsyncCache) -> int:
        return await c.get("k")

    def fine(c: ac.RacyAsyncCache, results: list[object]) -> None:
        assert c.fetches >= 1

    stats = explore_async(ac.RacyAsyncCache, [once], fine, exhaustive=500)
    assert stats.proved, stats
    assert stats.interleavings >= 1


def test_exhaustive_failures_replay_with_the_schedule_in_the_report() -> None:
    pair = PAIRS_BY_NAME["lost_update"]
    failure = _report(pair)
    with pytest.raises(ProbeFailure):
        run_schedule(
            pair.setup("broken"),
            list(pair.workers),
            lambda state, results: pair.check(state),
            modules=[pair.module],
            schedule=failure.schedule,
        )
