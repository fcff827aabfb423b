"""Kata `rlock`: a box whose methods call each other while holding one re-entrant lock."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rlock import Box, NotEnoughItems

from plugins.probe import Prober, scenario_settings

# The real-thread handshake below waits at most this long. Each wait ends within microseconds
# when the code is right; the bound only keeps a broken box from hanging the test.
HANDSHAKE_SECONDS = 2.0
# Drawn scenarios: Hypothesis draws the calls, their counts and the number of threads, and the
# probe explores each drawn scenario. Each example is a whole exploration, so examples times
# schedules stays small.
DRAWN_EXAMPLES = 8
DRAWN_SCHEDULES = 20
Call = tuple[str, int]  # ("add", 2), ("remove", 1), ("execute", -3)
Ending = tuple[tuple[tuple[str, ...], ...], int]  # (outcomes per thread, total_items)
RE_ENTRY = (
    "add() and remove() hold the box's lock while they call execute(), which takes the same "
    "lock again. A plain Lock does not know who holds it, so its own holder waits for it for "
    "ever; a threading.RLock lets the thread that holds it take it again."
)


def _remove_or_refuse(box: Box, count: int) -> str:
    """'removed', 'refused' (NotEnoughItems), or what else remove() raised, in words."""
    try:
        box.remove(count)
    except NotEnoughItems:
        return "refused"
    except NotImplementedError:
        raise
    except Exception as error:  # the check names it instead of a bare traceback
        return f"raised {type(error).__name__} ({error}) instead of NotEnoughItems"
    return "removed"


@pytest.mark.probe
@pytest.mark.clause(1, 3, 5, 6)
def test_add_remove_and_execute_change_the_count_of_a_new_empty_box(probe: Prober) -> None:
    def use(box: Box) -> list[int]:
        seen = [box.total_items]
        box.add(3)
        seen.append(box.total_items)
        box.remove(2)
        seen.append(box.total_items)
        box.execute(5)
        seen.append(box.total_items)
        box.execute(-2)
        seen.append(box.total_items)
        box.add()
        seen.append(box.total_items)
        box.remove()
        seen.append(box.total_items)
        return seen

    def counts_add_up(_box: Box, results: list[object]) -> None:
        assert results[0] == [0, 3, 1, 6, 4, 5, 4], (
            f"a new box, then add(3), remove(2), execute(5), execute(-2), add() and remove() "
            f"gave the counts {results[0]}, expected [0, 3, 1, 6, 4, 5, 4] (add() and remove() "
            f"without an argument move one item)"
        )

    # One worker has exactly one schedule. Under the probe a lock taken twice by its own holder
    # is reported as a deadlock instead of hanging the test.
    probe.explore(Box, [use], counts_add_up, budget=1, explain={"deadlock": RE_ENTRY})


@pytest.mark.probe
@pytest.mark.clause(6)
def test_remove_may_take_every_item_the_box_holds(probe: Prober) -> None:
    def empty_it(box: Box) -> tuple[str, int]:
        box.add(2)
        return _remove_or_refuse(box, 2), box.total_items

    def emptied(_box: Box, results: list[object]) -> None:
        assert results[0] == ("removed", 0), (
            f"remove(2) from a box of exactly 2 items gave {results[0]}, not ('removed', 0): "
            f"only fewer items than asked for is too few (`<`, not `<=`)"
        )

    probe.explore(Box, [empty_it], emptied, budget=1, explain={"deadlock": RE_ENTRY})


@pytest.mark.probe
@pytest.mark.clause(1)
def test_a_caller_holding_the_box_lock_can_still_call_the_box_methods(probe: Prober) -> None:
    def add_under_the_lock(box: Box) -> int:
        with box.lock:
            box.add(2)
            box.remove(1)
            box.add_batch([3])
            box.execute(1)
            return box.total_items

    def no_self_deadlock(_box: Box, results: list[object]) -> None:
        assert results[0] == 5, (
            f"a thread that held the box's lock and called add(2), remove(1), add_batch([3]) "
            f"and execute(1) saw {results[0]} items, expected 5"
        )

    probe.explore(
        Box, [add_under_the_lock], no_self_deadlock, budget=1, explain={"deadlock": RE_ENTRY}
    )


@pytest.mark.probe
@pytest.mark.clause(7)
def test_remove_refuses_more_items_than_the_box_holds_and_changes_nothing(probe: Prober) -> None:
    def ask_too_much(box: Box) -> str:
        box.add(2)
        return _remove_or_refuse(box, 3)

    def refused(box: Box, results: list[object]) -> None:
        assert results[0] == "refused", (
            f"remove(3) from a box of 2 items {results[0]}: it must raise NotEnoughItems"
        )
        assert box.total_items == 2, (
            f"a refused remove(3) left {box.total_items} items in a box of 2: a refusal must "
            f"change nothing, so check the count before you call execute(-count), not after"
        )

    probe.explore(Box, [ask_too_much], refused, budget=1, explain={"deadlock": RE_ENTRY})


@pytest.mark.probe
@pytest.mark.clause(4)
def test_no_change_is_lost_when_two_threads_call_execute_at_once(probe: Prober) -> None:
    def execute_twice(box: Box) -> None:
        box.execute(1)
        box.execute(1)

    def nothing_lost(box: Box, _results: list[object]) -> None:
        lost = 4 - box.total_items
        assert lost == 0, (
            f"{lost} of 4 calls to execute(1) were lost: both threads read total_items before "
            f"either wrote it back. execute() is public, so it must take the box's lock itself "
            f"(`with self.lock:`), even though add() and remove() already hold it when they call "
            f"it. It must be the one lock made in __init__: a lock created inside the method is "
            f"a new lock on every call and keeps nobody out"
        )

    probe.explore(Box, [execute_twice, execute_twice], nothing_lost)


@pytest.mark.probe
@pytest.mark.clause(8)
def test_two_threads_can_never_both_take_the_last_item(probe: Prober) -> None:
    def one_item() -> Box:
        box = Box()
        box.add(1)
        return box

    def exactly_one_wins(box: Box, results: list[object]) -> None:
        assert sorted(map(str, results)) == ["refused", "removed"], (
            f"two threads removing the last item got {results} and left {box.total_items} "
            f"items: both checked the count before either took the item. Hold the lock around "
            f"the check and the execute(-count) together"
        )

    remove_one = lambda box: _remove_or_refuse(box, 1)  # noqa: E731 - the same worker twice
    probe.explore(one_item, [remove_one, remove_one], exactly_one_wins)


@pytest.mark.probe
@pytest.mark.clause(10)
def test_add_batch_adds_every_count(probe: Prober) -> None:
    def batches(box: Box) -> list[int]:
        box.add_batch([2, 3, 4])
        seen = [box.total_items]
        box.add_batch([])
        seen.append(box.total_items)
        return seen

    def all_added(_box: Box, results: list[object]) -> None:
        assert results[0] == [9, 9], (
            f"add_batch([2, 3, 4]) then add_batch([]) on a new box gave the counts {results[0]}, "
            f"expected [9, 9]: call add(count) once for every count"
        )

    probe.explore(Box, [batches], all_added, budget=1, explain={"deadlock": RE_ENTRY})


@pytest.mark.probe
@pytest.mark.clause(11)
def test_a_thread_holding_the_lock_never_sees_half_a_batch(probe: Prober) -> None:
    def look(box: Box) -> int:
        with box.lock:
            return box.total_items

    def all_or_nothing(_box: Box, results: list[object]) -> None:
        seen = results[1]
        assert seen in (0, 5), (
            f"a thread holding the box's lock saw {seen} items while add_batch([2, 3]) ran: it "
            f"must see 0 (before the batch) or 5 (after it). add_batch() has to hold the lock "
            f"for the whole loop; each add() then takes it again"
        )

    workers = {"batch": lambda box: box.add_batch([2, 3]), "observer": look}
    probe.explore(Box, workers, all_or_nothing)


@pytest.mark.probe
@pytest.mark.clause(9)
def test_a_refused_remove_leaves_the_lock_free_for_other_threads(probe: Prober) -> None:
    def both_done(box: Box, results: list[object]) -> None:
        assert (results[0], box.total_items) == ("refused", 1), (
            f"a refused remove(5) and an add(1) from another thread gave {results[0]!r} and "
            f"{box.total_items} items, expected 'refused' and 1"
        )

    probe.explore(
        Box,
        {"remover": lambda box: _remove_or_refuse(box, 5), "adder": lambda box: box.add(1)},
        both_done,
        explain={
            "deadlock": (
                "remove(5) from an empty box raised NotEnoughItems while it held the box's lock. "
                "The lock must be released on that path too, or no other thread can ever use the "
                "box again: `with self.lock:` releases it however the block is left, a bare "
                "acquire()/release() pair does not."
            )
        },
    )


@pytest.mark.clause(2)
def test_only_the_thread_that_holds_the_lock_can_release_it() -> None:
    box = Box()
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        box.lock.acquire()
        taken.set()
        done.wait(HANDSHAKE_SECONDS)
        # With a plain Lock the main thread has already released it: nothing left to release.
        with contextlib.suppress(RuntimeError):
            box.lock.release()

    holder = threading.Thread(target=hold, name="holder")
    holder.start()
    try:
        assert taken.wait(HANDSHAKE_SECONDS), "the holder thread could not take box.lock"
        try:
            box.lock.release()
        except RuntimeError:
            refused = True
        else:
            refused = False
        assert refused, (
            "the main thread released box.lock while another thread held it: a plain Lock has "
            "no owner, so anybody can release it. An RLock remembers the thread that holds it "
            "and raises RuntimeError for any other"
        )
    finally:
        done.set()
        holder.join(HANDSHAKE_SECONDS)


CALLS = st.one_of(
    st.tuples(st.just("add"), st.integers(1, 3)),
    st.tuples(st.just("remove"), st.integers(1, 3)),
    st.tuples(st.just("execute"), st.integers(-3, 3)),
)


def _box_holding(items: int) -> Callable[[], Box]:
    def setup() -> Box:
        box = Box()
        box.total_items = items  # set directly: the test is about the calls the threads make
        return box

    return setup


def _calls(calls: Sequence[Call]) -> Callable[[Box], tuple[str, ...]]:
    """A thread that makes `calls` in order: what became of each ('removed', 'refused', ...)."""

    def worker(box: Box) -> tuple[str, ...]:
        outcomes = []
        for name, count in calls:
            if name == "remove":
                outcomes.append(_remove_or_refuse(box, count))
            else:
                getattr(box, name)(count)
                outcomes.append("done")
        return tuple(outcomes)

    return worker


def _one_at_a_time(items: int, plans: Sequence[Sequence[Call]]) -> set[Ending]:
    """Every ending the threads' calls can reach when each call runs whole, alone, in any order
    that keeps each thread's own calls in its order."""
    endings: set[Ending] = set()

    def run(total: int, done: tuple[int, ...], seen: tuple[tuple[str, ...], ...]) -> None:
        waiting = [w for w, plan in enumerate(plans) if done[w] < len(plan)]
        if not waiting:
            endings.add((seen, total))
        for w in waiting:
            name, count = plans[w][done[w]]
            if name != "remove":
                after, outcome = total + count, "done"
            elif total < count:
                after, outcome = total, "refused"
            else:
                after, outcome = total - count, "removed"
            step = tuple(n + (i == w) for i, n in enumerate(done))
            run(after, step, (*seen[:w], (*seen[w], outcome), *seen[w + 1 :]))

    run(items, (0,) * len(plans), ((),) * len(plans))
    return endings


def _ending(outcomes: Sequence[Sequence[str]], total: int) -> str:
    """'thread 1 done then removed, thread 2 refused, 3 items'."""
    threads = ", ".join(f"thread {w} {' then '.join(o)}" for w, o in enumerate(outcomes, 1))
    return f"{threads}, {total} item{'' if total == 1 else 's'} left"


@pytest.mark.probe
@pytest.mark.clause(4, 5, 8)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(
    items=st.integers(0, 3),
    plans=st.lists(st.lists(CALLS, min_size=1, max_size=2), min_size=2, max_size=3),
)
def test_calls_from_several_threads_end_as_if_made_one_at_a_time(
    probe: Prober, items: int, plans: list[list[Call]]
) -> None:
    possible = _one_at_a_time(items, plans)
    told = "; ".join(
        f"thread {w} calls " + ", then ".join(f"{name}({count})" for name, count in plan)
        for w, plan in enumerate(plans, 1)
    )

    def as_if_one_at_a_time(box: Box, results: list[object]) -> None:
        outcomes = tuple(cast(tuple[str, ...], got) for got in results)  # what _calls returns
        total = box.total_items
        if (outcomes, total) in possible:
            return
        if any(outcome.startswith("raised") for got in outcomes for outcome in got):
            why = "A remove() raised something other than NotEnoughItems: see what each thread got."
        elif total < 0:
            why = (
                "The box went below zero: two remove() calls both passed the count check before "
                "either took its items. Check and call execute(-count) inside one `with self.lock:`."
            )
        else:
            why = (
                "A change was lost or half seen: every method that changes total_items must do "
                "it under box.lock, add() by calling execute(count) while it holds the lock, and "
                "execute() taking the lock itself, not `self.total_items += ...` without it."
            )
        shown = "; or ".join(_ending(o, t) for o, t in sorted(possible)[:4])
        raise AssertionError(
            f"A box of {items} items; {told}. They ended with {_ending(outcomes, total)}, which "
            f"no order of whole calls made one at a time gives (that ends with {shown}). {why}"
        )

    probe.explore(
        _box_holding(items),
        [_calls(plan) for plan in plans],
        as_if_one_at_a_time,
        budget=min(probe.budget, DRAWN_SCHEDULES),
        explain={"deadlock": RE_ENTRY},
    )


@pytest.mark.probe
@pytest.mark.clause(5, 11)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(
    items=st.integers(0, 2),
    counts=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    as_batch=st.booleans(),
)
def test_a_thread_holding_the_lock_sees_every_add_and_batch_whole_and_nothing_change(
    probe: Prober, items: int, counts: list[int], as_batch: bool
) -> None:
    # What the holder may see: the box before or after each whole call, never in between.
    if as_batch:
        calls, whole = f"add_batch({counts})", [items, items + sum(counts)]
    else:
        calls = ", then ".join(f"add({count})" for count in counts)
        whole = [items + sum(counts[:n]) for n in range(len(counts) + 1)]

    def change(box: Box) -> None:
        if as_batch:
            box.add_batch(counts)
        else:
            for count in counts:
                box.add(count)

    def hold_and_look(box: Box) -> list[tuple[int, int]]:
        looks = []
        for _ in range(3):  # three looks, so that one can fall in the middle of a call
            with box.lock:
                before = box.total_items
                time.sleep(0)  # let the other thread run: it must not get in while the lock is held
                looks.append((before, box.total_items))
            time.sleep(0)
        return looks

    def whole_and_still(box: Box, results: list[object]) -> None:
        for before, after in cast(list[tuple[int, int]], results[1]):
            assert before == after, (
                f"A box of {items} items; one thread calls {calls}. Another thread holding "
                f"box.lock read {before} items, let the other run, and read {after}: the count "
                f"changed while the lock was held, so something changed it without taking "
                f"box.lock. add() must hold the lock and call execute(count), which takes it "
                f"again, never change total_items on its own"
            )
            assert before in whole, (
                f"A box of {items} items; one thread calls {calls}. Another thread holding "
                f"box.lock saw {before} items, expected one of {whole}: it saw a call half done. "
                + (
                    "add_batch() must hold the lock around its whole loop of add() calls"
                    if as_batch
                    else "add(count) must hold the lock and call execute(count) once, not "
                    "execute(1) count times"
                )
            )

    probe.explore(
        _box_holding(items),
        {"adder": change, "holder": hold_and_look},
        whole_and_still,
        budget=min(probe.budget, DRAWN_SCHEDULES),
        explain={"deadlock": RE_ENTRY},
    )
