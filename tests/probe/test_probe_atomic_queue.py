"""A plain queue's method is one step of the worker that calls it (plugins/probe/atomic_queue):
the learner's call before it is the switch point, a call from elsewhere takes a step of its own,
and a method still waits where the real one waits."""

from __future__ import annotations

import queue
import random
from collections.abc import Callable

import pytest

from plugins.probe import ProbeFailure, api, atomic_queue, explore, strategies
from plugins.probe.exhaustive import Tracker
from tests.probe.samples import queue_ops
from tests.probe.samples.queue_ops import Bounded, Mailbox


def _got(*items: int) -> Callable[[Mailbox, list[object]], None]:
    def check(m: Mailbox, _results: list[object]) -> None:
        assert sorted(m.got) == list(items), f"the takers got {m.got}, not {list(items)}"  # type: ignore[type-var]

    return check


def _steps_of(setup: object, workers: list[object]) -> int:
    execute = api._executor(setup, workers, None, [queue_ops], 20_000, 2.0)  # type: ignore[arg-type]
    return execute(strategies.Replay([])).steps


def test_a_put_from_the_learners_code_is_one_step_past_the_call() -> None:
    one = _steps_of(Mailbox, [lambda m: m.send(1)])
    two = _steps_of(Mailbox, [lambda m: (m.send(1), m.send(2))])
    # send: reads .box (replace_box stores it), makes a call; reading .put is no switch point
    # (nothing rebinds it: plugins/probe/rebinding), and the put itself adds no step.
    assert two - one == one, (
        f"a second put added {two - one} steps to the {one} of the first: a put's mutex, notify "
        "or release became switch points again"
    )
    assert one == 2, f"one send() took {one} steps, not its two switch points"


def test_a_put_from_the_tests_own_code_takes_one_step_as_it_starts() -> None:
    # The test's worker is untraced: without a step of the put's own, both puts would run as
    # one step and no schedule would let a look see a queue of one item.
    def puts_two(m: Mailbox) -> None:
        m.box.put(1)
        m.box.put(2)

    def never_one(m: Mailbox, _results: list[object]) -> None:
        assert 1 not in m.sizes, "a look saw the queue between the two puts"

    with pytest.raises(ProbeFailure) as caught:
        explore(Mailbox, [puts_two, Mailbox.size], never_one, modules=[queue_ops], budget=250)
    assert "between the two puts" in str(caught.value), str(caught.value)


@pytest.mark.parametrize("exhaustive", [0, 25], ids=["sampled", "exhaustive"])
def test_a_get_before_the_put_is_found_in_either_order(exhaustive: int) -> None:
    def got_the_item(m: Mailbox, _results: list[object]) -> None:
        assert m.got == [5], f"the taker got {m.got}"

    with pytest.raises(ProbeFailure) as caught:
        explore(
            Mailbox,
            [lambda m: m.send(5), Mailbox.take_now],
            got_the_item,
            modules=[queue_ops],
            budget=50,
            seed=0,
            exhaustive=exhaustive,
        )
    assert "['empty']" in str(caught.value), str(caught.value)


def test_a_put_into_a_full_queue_waits_for_room() -> None:
    def never_two(b: Bounded, _results: list[object]) -> None:
        assert max(b.sizes) <= 1, f"a queue of one place held {max(b.sizes)} items"
        assert "got 0" in b.order, f"the get did not take the first item: {b.order}"

    stats = explore(
        Bounded,
        [Bounded.put_one, Bounded.get_one, Bounded.size, Bounded.size],
        never_two,
        modules=[queue_ops],
        budget=100,
    )
    assert stats.max_steps > 0


def test_a_mutex_taken_by_hand_makes_the_method_wait() -> None:
    stats = explore(
        Mailbox,
        [Mailbox.hold_the_mutex, lambda m: m.send(1), Mailbox.take, Mailbox.take],
        _got(1, 7),
        modules=[queue_ops],
        budget=100,
        seed=0,
    )
    assert stats.max_steps > 0


def test_the_exhaustive_search_proves_a_put_and_a_get_that_wait_for_each_other() -> None:
    stats = explore(
        Mailbox,
        [lambda m: m.send(5), Mailbox.take],
        _got(5),
        modules=[queue_ops],
        budget=250,
        seed=0,
        exhaustive=25,
    )
    assert stats.proved, f"not proved: {stats}"


def test_a_priority_queue_is_not_run_as_one_step() -> None:
    def steps(kind: type[queue.Queue[int]]) -> int:
        def setup() -> Mailbox:
            m = Mailbox()
            m.box = kind()
            return m

        return _steps_of(setup, [lambda m: m.send(1)])

    assert steps(queue.PriorityQueue) > steps(queue.Queue), (
        "a PriorityQueue's put ran as one step: it compares the learner's items"
    )


def test_a_learners_queue_subclass_is_made_with_its_own_switch_points() -> None:
    # A plain queue is made with the settrace hook off (3.11); a subclass's constructor may
    # run the learner's ``_init``, which must keep its switch points.
    def steps(kind: type[queue.Queue[int]]) -> int:
        return _steps_of(Mailbox, [lambda m: m.replace_box(kind)])

    assert steps(queue_ops.CountingQueue) > steps(queue.Queue), (
        "a learner's Queue subclass was made untraced: its own _init lost its switch points"
    )


def test_a_tracked_run_takes_the_same_steps_as_a_sampled_one() -> None:
    execute = api._executor(
        Mailbox, [lambda m: m.send(1), Mailbox.take], None, [queue_ops], 20_000, 2.0
    )
    tracked = execute(Tracker([]))
    sampled = execute(strategies.Replay([]))
    assert (tracked.steps, tracked.choices) == (sampled.steps, sampled.choices)


def test_the_quick_answers_of_put_get_and_task_done_change_no_schedule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # put, get and task_done answer without the queue's mutex and Conditions where they
    # cannot wait or raise: every schedule must end as with the standard library's code.
    logs: list[list[tuple[str, object]]] = []
    execute = api._executor(
        queue_ops.Exchange,
        [queue_ops.Exchange.producer, queue_ops.Exchange.taker, queue_ops.Exchange.hasty_taker],
        lambda exchange, _results: logs.append(list(exchange.log)),
        [queue_ops],
        20_000,
        2.0,
    )

    def outcomes() -> list[tuple[object, ...]]:
        runs = [execute(strategies.RandomWalk(random.Random(seed))) for seed in range(60)]
        return [
            (log, run.steps, run.choices, str(run.failure))
            for log, run in zip(logs[-60:], runs, strict=True)
        ]

    quick = outcomes()
    monkeypatch.setattr(atomic_queue, "_QUICK", {})
    slow = outcomes()
    differ = [seed for seed, (a, b) in enumerate(zip(quick, slow, strict=True)) if a != b]
    assert not differ, (
        f"{len(differ)} of 60 schedules ended otherwise with the quick answers, seed "
        f"{differ[0]}:\n  quick: {quick[differ[0]]}\n  stdlib: {slow[differ[0]]}"
    )
