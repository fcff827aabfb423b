"""A probe over Hypothesis-drawn scenarios reports one example: the smallest scenario that
fails, under the shortest interleaving of it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins.probe import ProbeFailure, Prober, scenario_settings
from tests.probe.samples import counter_unlocked


def test_the_scenario_and_the_interleaving_shrink_together() -> None:
    probe = Prober([counter_unlocked], seed=0, budget=30, record=lambda _entry: None)

    @scenario_settings(max_examples=10)
    @given(workers=st.integers(1, 4), each=st.integers(1, 4))
    def no_update_is_lost(workers: int, each: int) -> None:
        def work(counter: counter_unlocked.Counter) -> None:
            for _ in range(each):
                counter.increment()

        def check(counter: counter_unlocked.Counter, _results: list[object]) -> None:
            assert counter.v == workers * each, f"{workers * each - counter.v} increments lost"

        probe.explore(counter_unlocked.Counter, [work] * workers, check)

    with pytest.raises(ProbeFailure) as caught:
        no_update_is_lost()
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    # The fewest threads and increments that can lose one, under the one switch it needs.
    assert "workers=2" in notes and "each=1" in notes, notes
    assert "interleaving that fails (1 preemption;" in str(caught.value), str(caught.value)
    assert "These lines were always and only run by failing test cases" not in notes, notes
