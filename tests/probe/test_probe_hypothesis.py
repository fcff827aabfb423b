"""Hypothesis draws schedules (0 = keep running) and shrinks them to minimal interleavings."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from plugins.probe import ProbeFailure, run_schedule, schedules
from tests.probe.scenarios import BUGS, CORRECT


def test_hypothesis_finds_the_counter_race_and_shrinks_it_to_at_most_two_switches() -> None:
    s = BUGS[0]

    @settings(
        max_examples=200,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(schedules(max_len=40))
    def prop(schedule: list[int]) -> None:
        run_schedule(s.setup, s.workers, s.check, modules=[s.module], schedule=schedule)

    with pytest.raises(ProbeFailure) as caught:
        prop()
    assert caught.value.kind == "invariant"
    switches = sum(1 for c in caught.value.schedule if c)
    assert switches <= 2, caught.value.schedule


def test_hypothesis_finds_nothing_on_the_locked_counter() -> None:
    s = CORRECT[0]

    @settings(
        max_examples=100,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(schedules(max_len=40))
    def prop(schedule: list[int]) -> None:
        run_schedule(s.setup, s.workers, s.check, modules=[s.module], schedule=schedule)

    prop()
