"""The probe catches every sample bug early, never flags correct samples, and is reproducible."""

from __future__ import annotations

import re
import threading
import time

import pytest

from plugins.probe import ProbeFailure, explore, run_schedule
from tests.probe.samples import counter_locked, counter_unlocked, transfer
from tests.probe.scenarios import BUGS, CORRECT, Scenario

BUDGET = 200


def _explore(s: Scenario, **kw: object) -> None:
    explore(s.setup, s.workers, s.check, modules=[s.module], **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("scenario", BUGS, ids=lambda s: s.name)
def test_each_sample_bug_is_caught_at_seed_0_within_a_quarter_of_the_budget(
    scenario: Scenario,
) -> None:
    with pytest.raises(ProbeFailure) as caught:
        _explore(scenario, budget=BUDGET, seed=0)
    failure = caught.value
    assert failure.kind == scenario.expect, str(failure)
    assert failure.stats.first_failure is not None
    assert failure.stats.first_failure < BUDGET // 4
    print(f"{scenario.name}: caught at schedule #{failure.stats.first_failure}")


@pytest.mark.parametrize("scenario", CORRECT, ids=lambda s: s.name)
def test_correct_samples_raise_no_false_alarm_over_ten_seeds(scenario: Scenario) -> None:
    for seed in range(10):
        stats = explore(
            scenario.setup,
            scenario.workers,
            scenario.check,
            modules=[scenario.module],
            budget=40,
            seed=seed,
        )
        assert stats.schedules == 40


@pytest.mark.parametrize("scenario", [BUGS[0], BUGS[2], BUGS[3]], ids=lambda s: s.name)
def test_the_same_seed_gives_the_same_report_text_three_times(scenario: Scenario) -> None:
    texts = set()
    for _ in range(3):
        with pytest.raises(ProbeFailure) as caught:
            _explore(scenario, budget=BUDGET, seed=3)
        texts.add(str(caught.value))
    assert len(texts) == 1


def test_the_replay_line_reproduces_the_failure_exactly() -> None:
    s = BUGS[0]
    with pytest.raises(ProbeFailure) as first:
        _explore(s, budget=BUDGET, seed=1)
    with pytest.raises(ProbeFailure) as again:
        run_schedule(s.setup, s.workers, s.check, modules=[s.module], schedule=first.value.schedule)
    assert again.value.kind == first.value.kind
    assert f"schedule={first.value.schedule}" in str(first.value)
    assert str(first.value).splitlines()[0] == str(again.value).splitlines()[0]


def test_the_counter_report_shows_the_split_line_and_the_preemption() -> None:
    with pytest.raises(ProbeFailure) as caught:
        _explore(BUGS[0], budget=BUDGET)
    text = str(caught.value)
    lines = text.splitlines()
    assert lines[0] == "invariant broken: lost update: counter is 2 after 4 increments"
    assert "counter_unlocked.py:9" in text
    assert "self.v += 1" in text
    assert "--- switch: worker-1 preempted, worker-2 runs ---" in text or "preempted" in text
    # Between its read of .v and its write: the fewest steps put the switch right after the
    # read (before the add); a schedule that shrank less stops just before the write.
    assert re.search(r"preempted just before it (computes \+=|writes \.v)", text), text
    assert any(line.startswith("replay: run_schedule(") for line in lines)
    assert len(lines) < 40


def test_the_deadlock_report_names_both_locks_and_the_line() -> None:
    s = BUGS[2]
    with pytest.raises(ProbeFailure) as caught:
        # worker-1 takes its first lock, then worker-2 takes its own: each waits for the other.
        run_schedule(s.setup, s.workers, s.check, modules=[transfer], schedule=[0, 0, 1])
    head = str(caught.value).splitlines()[0]
    assert head.startswith("deadlock: worker-1 holds Lock 'state[")
    assert "Lock 'state[0].lock'" in head
    assert "Lock 'state[1].lock'" in head
    assert "created at transfer.py:10" in head
    assert "at transfer.py:15" in head
    assert "worker-2 holds" in head


def test_a_lock_order_cycle_is_flagged_even_when_the_schedule_did_not_deadlock() -> None:
    s = BUGS[2]
    with pytest.raises(ProbeFailure) as caught:
        # schedule [] = never preempt: worker-1 finishes both locks before worker-2 starts.
        run_schedule(s.setup, s.workers, s.check, modules=[transfer], schedule=[])
    assert caught.value.kind == "lock-order"
    head = str(caught.value).splitlines()[0]
    assert head.startswith("lock-order cycle (potential deadlock): worker-1 took Lock")
    assert "transfer.py:14" in head
    assert "transfer.py:15" in head


def test_the_ordered_transfer_has_no_lock_order_cycle_in_any_schedule() -> None:
    s = CORRECT[2]
    assert run_schedule(s.setup, s.workers, s.check, modules=[transfer], schedule=[]) == [
        None,
        None,
    ]


def test_the_barrier_report_explains_the_party_count() -> None:
    with pytest.raises(ProbeFailure) as caught:
        _explore(BUGS[6], budget=BUDGET)
    text = str(caught.value)
    assert "(2 of 3 parties arrived)" in text
    assert "expects 3 parties but only 2 reached wait()" in text
    assert "the party count must equal" in text, "the learner's module made the barrier"


def test_a_barrier_the_test_made_is_not_blamed_on_its_party_count() -> None:
    def alone(barrier: threading.Barrier) -> None:
        counter_locked.Counter().increment()  # some learner code, then a barrier nobody joins
        barrier.wait()

    with pytest.raises(ProbeFailure) as caught:
        explore(lambda: threading.Barrier(2), [alone], None, modules=[counter_locked], budget=5)
    text = str(caught.value)
    assert "expects 2 parties but only 1 reached wait()" in text
    assert "never got there while it waited" in text
    assert "party count must equal" not in text, "the test made the barrier with the right count"


def test_the_missed_wakeup_report_points_at_the_event() -> None:
    with pytest.raises(ProbeFailure) as caught:
        _explore(BUGS[4], budget=BUDGET)
    text = str(caught.value)
    assert "waits for Event 'state.ready' (created at pulse.py:8) to be set" in text
    assert "Missed wakeup" in text


def test_the_double_semaphore_release_is_reported_in_plain_words() -> None:
    with pytest.raises(ProbeFailure) as caught:
        _explore(BUGS[5], budget=BUDGET)
    head = str(caught.value).splitlines()[0]
    assert "Semaphore 'state.slots'" in head
    assert "released more often than acquired" in head


def test_a_bounded_semaphore_over_release_is_misuse_at_the_releasing_line() -> None:
    from tests.probe.samples import pool

    with pytest.raises(ProbeFailure) as caught:
        explore(lambda: pool.BoundedPool(2), [lambda p: p.use()], modules=[pool], budget=5)
    head = str(caught.value).splitlines()[0]
    assert caught.value.kind == "misuse"
    assert "more times than it was acquired" in head
    assert "pool.py:23" in head


def _sleep_then_increment(counter: counter_unlocked.Counter) -> None:
    time.sleep(1.0)
    counter.increment()


def test_workers_whose_sleeps_end_at_the_same_moment_are_interleaved_after_it() -> None:
    # Both sleeps end at virtual time 1.0: whichever runs first, the other may run at each of
    # its switch points (it is no longer waiting), so the lost update is found. A scheduler that
    # offered a worker whose deadline has passed only once the running one blocks or ends
    # would run the two increments one after the other and find nothing.
    def both_counted(counter: counter_unlocked.Counter, results: list[object]) -> None:
        assert counter.v == 2, f"two increments after the sleeps left {counter.v}"

    with pytest.raises(ProbeFailure) as caught:
        explore(
            counter_unlocked.Counter,
            [_sleep_then_increment, _sleep_then_increment],
            both_counted,
            modules=[counter_unlocked],
            budget=50,
            seed=0,
        )
    assert caught.value.kind == "invariant", str(caught.value)
