"""The exhaustive mode: proofs of small correct programs with the exact number of distinct
interleavings, the fewest preemptions on known bugs, and an honest fallback to sampling."""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from plugins.probe import (
    ExploreStats,
    ProbeFailure,
    exhaustive,
    explore,
    explore_async,
    run_schedule,
)
from plugins.probe.bytecode_paths import ENTRY, EXIT, path
from plugins.probe_compare_cases import PAIRS_BY_NAME, Pair, condition_buffer
from tests.probe.samples import async_cache as ac
from tests.probe.scenarios import preemptions_shown

HERE = sys.modules[__name__]


class Box:
    """Shared state for the hand-counted scenarios (this module is the one traced)."""

    def __init__(self) -> None:
        self.v = 0
        self.w = 0
        self.items: list[int] = []
        self.seen = -1
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
    shown = preemptions_shown(str(failure))
    assert shown is not None, str(failure)
    return shown


# The fewest preemptions that make each pair fail, argued in each module's docstring; the
# lock-order oracle flags the opposite orders from a schedule that does not deadlock, so that
# pair's minimum is 0 (its deadlock needs 1).
MINIMUM = {
    "lost_update": ("invariant", 1),
    "check_then_act": ("invariant", 1),
    "lock_order": ("lock-order", 0),
    "condition_buffer": ("exception", 0),
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


# Distinct interleavings of each fixed pair, by hand: every shared step is under one lock
# (lost update: 2 critical sections per worker, 4!/(2!2!) = 6; the others: one each, 2).
PROVED = {"lost_update": 6, "check_then_act": 2, "lock_order": 2, "three_preemptions": 2}


@pytest.mark.parametrize("name", sorted(PROVED))
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
    assert stats.interleavings == PROVED[name], stats


def _orders_of_buffer_sections(items_each: int) -> int:
    """The fixed `condition_buffer`'s distinct interleavings, counted on a model.

    Every critical section of the fixed buffer touches `items` (a put or a get) or the
    waiters (a wait, or a notify_all), so no two commute and an interleaving is an order of
    sections. The model runs those sections: a producer's put when the buffer (capacity 1)
    is empty, or else a wait; a consumer's get when it is full, or else a wait; a put or get
    wakes every waiter, whose next section checks again."""
    kinds = ("put", "put", "get", "get")

    @functools.cache
    def orders(full: bool, workers: tuple[tuple[int, bool], ...]) -> int:
        total, runnable = 0, False
        for k, (done, waiting) in enumerate(workers):
            if done == items_each or waiting:
                continue
            runnable = True
            after = list(workers)
            if full == (kinds[k] == "put"):  # a put on a full buffer, a get on an empty one
                after[k] = (done, True)
                total += orders(full, tuple(after))
                continue
            after[k] = (done + 1, False)
            total += orders(not full, tuple((d, False) for d, _ in after))  # notify_all
        if not runnable:
            return int(all(done == items_each for done, _ in workers))  # a deadlock: none
        return total

    return orders(False, ((0, False),) * len(kinds))


def test_the_condition_pair_with_two_producers_and_two_consumers_is_proved() -> None:
    # The Condition pair, one item per worker. With two items each the model counts
    # 288,000 orders: too many to run each (the pair `condition_buffer_two_each`).
    assert _orders_of_buffer_sections(2) == 288_000
    pair = PAIRS_BY_NAME["condition_buffer"]
    taken: list[list[int]] = []

    def check(state: condition_buffer.Broken, results: list[object]) -> None:
        pair.check(state)
        taken.append(sorted(state.taken))

    stats = explore(
        pair.setup("fixed"),
        list(pair.workers),
        check,
        modules=[pair.module],
        exhaustive=2000,
        exhaustive_s=30.0,
    )
    assert stats.proved, stats
    assert stats.interleavings == _orders_of_buffer_sections(1) == 80, stats
    assert taken and all(t == [1, 2] for t in taken), "every run took both items"


def _fixed_lost_update(cap: int) -> ExploreStats:
    """The fixed lost update (6 interleavings), 30 sampled schedules, `cap` exhaustive runs."""
    pair = PAIRS_BY_NAME["lost_update"]
    return explore(
        pair.setup("fixed"),
        list(pair.workers),
        lambda state, results: pair.check(state),
        modules=[pair.module],
        budget=30,
        exhaustive=cap,
    )


def test_a_scenario_too_big_for_the_cap_is_sampled_and_never_called_proved() -> None:
    stats = _fixed_lost_update(3)
    assert not stats.proved
    assert stats.interleavings == 0
    # It needs 6 runs: it gives up as soon as the branches left outnumber the runs left.
    assert 1 <= stats.exhaustive_runs < 3 and stats.schedules == 30, stats
    assert stats.verdict == "30 sampled schedules passed"


def test_a_search_that_needs_exactly_its_cap_still_finishes_and_proves() -> None:
    """Giving up early must never cost a proof the cap allows."""
    stats = _fixed_lost_update(PROVED["lost_update"])
    assert stats.proved and stats.exhaustive_runs == PROVED["lost_update"], stats


def _locked_increment(box: Box) -> None:
    with box.lock:
        box.v += 1


def test_a_lock_s_critical_sections_are_proved_in_both_orders_only() -> None:
    # Two workers, one critical section each: the lock makes them run one after the other,
    # in either order. A worker that finds the lock taken only blocks: that is not a third
    # interleaving, and the search does not run it as one (a release and the next acquire
    # are reversed as whole critical sections).
    checks: list[int] = []

    def check(box: Box, results: list[object]) -> None:
        checks.append(box.v)
        assert box.v == 2

    stats = explore(
        Box, [_locked_increment, _locked_increment], check, modules=[HERE], exhaustive=250
    )
    assert stats.proved, stats
    assert checks and set(checks) == {2}
    assert (stats.interleavings, stats.exhaustive_runs) == (2, 2), stats


def _two_locked_increments(box: Box) -> None:
    _locked_increment(box)
    _locked_increment(box)


def test_two_critical_sections_each_are_the_six_orders_of_four() -> None:
    # Everything shared is under the lock, so an interleaving is an order of the four
    # critical sections that keeps each worker's own two in order: 4! / (2! * 2!) = 6.
    stats = explore(
        Box,
        [_two_locked_increments, _two_locked_increments],
        nothing_to_check,
        modules=[HERE],
        exhaustive=250,
    )
    assert stats.proved, stats
    assert (stats.interleavings, stats.exhaustive_runs) == (6, 6), stats


def _count_items(box: Box) -> None:
    box.seen = len(box.items)


def _append_item(box: Box) -> None:
    box.items.append(1)


def _extend_items(box: Box) -> None:
    box.items += [1]


def _add_to_v(box: Box) -> None:
    box.v += 1


def test_a_builtin_call_reading_a_list_commutes_with_an_unrelated_write() -> None:
    # len() of a list reads its items and nothing else: once it was "unknown", dependent on
    # every step, and this scenario counted 2.
    stats = explore(
        Box, [_count_items, write_w_twice], nothing_to_check, modules=[HERE], exhaustive=250
    )
    assert (stats.proved, stats.interleavings) == (True, 1), stats


# list.append is one step that writes the list; `box.items += [1]` is two that race with
# the reader: the `+=` mutating the list, then the store back into .items (which the
# reader's load of .items does not commute with): reader before, between or after.
@pytest.mark.parametrize(("writer", "orders"), [(_append_item, 2), (_extend_items, 3)])
def test_a_list_written_while_another_worker_reads_it_is_run_in_both_orders(
    writer: Callable[[Box], None], orders: int
) -> None:
    seen: set[int] = set()

    def check(box: Box, results: list[object]) -> None:
        seen.add(box.seen)

    stats = explore(Box, [_count_items, writer], check, modules=[HERE], exhaustive=250)
    assert stats.proved, stats
    assert seen == {0, 1}, f"the reader saw {sorted(seen)} items, never the other order"
    assert stats.interleavings == orders, stats


def test_an_increment_of_an_int_does_not_touch_containers() -> None:
    # `box.v += 1` on an int reads .v and writes .v; its `+=` mutates nothing (it used to
    # count as a write of every container, a race with the append).
    stats = explore(
        Box, [_add_to_v, _append_item], nothing_to_check, modules=[HERE], exhaustive=250
    )
    assert (stats.proved, stats.interleavings) == (True, 1), stats


def _put_one(buffer: condition_buffer.Broken) -> None:
    buffer.put(1)


def _get_one(buffer: condition_buffer.Broken) -> None:
    buffer.get()


def test_a_condition_handoff_between_one_producer_and_one_consumer_is_proved() -> None:
    # The producer's critical section first (the consumer then finds the item), or the
    # consumer's first: it finds the buffer empty and waits, the producer puts and notifies,
    # the consumer takes the lock back and the item. 2 interleavings; a woken consumer that
    # finds the lock still taken only looks, which is no third one.
    taken: list[list[int]] = []

    def check(buffer: condition_buffer.Broken, results: list[object]) -> None:
        taken.append(list(buffer.taken))

    stats = explore(
        condition_buffer.Fixed,
        [_put_one, _get_one],
        check,
        modules=[condition_buffer],
        exhaustive=250,
    )
    assert stats.proved, stats
    assert stats.interleavings == 2, stats
    assert taken and all(t == [1] for t in taken), taken


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


def _take_or_note(box: Box) -> None:
    try:
        box.v = box.items[0]
    except IndexError:
        box.w = 1  # runs only when the list is empty: no normal path goes through it


def test_an_untraced_worker_function_is_read_whole_unless_a_handler_may_have_run() -> None:
    # A test's own worker function has no switch points: its bytecode is read as a whole.
    # One with an exception handler is unknown: the handler's write may have run instead
    # of the normal path, and nothing would show it.
    assert path(write_v_twice.__code__, ENTRY, EXIT, traced=False) == {"w:.v"}
    assert path(_take_or_note.__code__, ENTRY, EXIT, traced=False) is None


def write_then_spawn_a_look(box: Box) -> None:
    """Alone until it starts the looker: then its next write races with the look."""
    box.v = 1
    looker = threading.Thread(target=lambda: box.items.append(box.v))
    looker.start()
    box.v = 2
    looker.join()


def test_a_worker_alone_then_joined_by_a_thread_still_races_with_it() -> None:
    # A worker alone in its run records no footprints (nothing can race with it yet): once it
    # starts a thread, its next write must still be ordered both ways with the thread's look.
    # (It fails when the search loses what the steps after the start touch; a lone worker's
    # own steps come before every other worker's, so what they record cannot hide a race.)
    def saw_the_last_write(box: Box, results: list[object]) -> None:
        assert box.items == [2], f"the look saw v={box.items}, before the parent's last write"

    with pytest.raises(ProbeFailure) as caught:
        explore(
            Box,
            [write_then_spawn_a_look],
            saw_the_last_write,
            modules=[HERE],
            budget=250,
            seed=0,
            exhaustive=25,
        )
    assert "exhaustive search" in str(caught.value), str(caught.value)


def test_a_worker_alone_is_proved_without_reading_what_its_steps_touch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import plugins.probe.scheduler as scheduler

    read: list[object] = []
    for name in ("op_loc", "sync_loc"):
        real = getattr(scheduler, name)
        monkeypatch.setattr(
            scheduler, name, lambda *a, _real=real, **k: read.append(a) or _real(*a, **k)
        )
    stats = explore(Box, [write_v_twice], modules=[HERE], budget=250, seed=0, exhaustive=25)
    assert stats.proved and stats.interleavings == 1, stats
    assert not read, f"a lone worker's {len(read)} steps were read for what they touch"


def write_v_beside_a_thread_writing_w(box: Box) -> None:
    """Alone until it starts a thread whose writes touch nothing the parent's touch."""
    box.v = 1
    writer = threading.Thread(target=write_w_twice, args=(box,))
    writer.start()
    box.v = 2
    writer.join()


def test_a_lone_worker_that_starts_a_thread_is_counted_from_a_tracked_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The search's first run goes untracked while its one worker is alone; this one starts a
    # thread, so that run is made again with footprints. Counted from the untracked run, every
    # step would be "may touch anything": more distinct interleavings than a search that
    # tracks from its first run counts (5 against 4, when the run is not made again).
    def explored() -> ExploreStats:
        return explore(
            Box,
            [write_v_beside_a_thread_writing_w],
            modules=[HERE],
            budget=250,
            seed=0,
            exhaustive=25,
        )

    shortcut = explored()

    class NeverLone(exhaustive.Tracker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "lone": False})

    monkeypatch.setattr(exhaustive, "Tracker", NeverLone)
    tracked = explored()
    assert shortcut.proved and tracked.proved, (shortcut, tracked)
    assert shortcut.interleavings == tracked.interleavings, (shortcut, tracked)
