"""In the self-check's runs (KATA_VERDICT_ONLY=1) a failing exploration is reported unshrunk:
the same failure, the same kind, without the re-runs that only make the report shorter."""

from __future__ import annotations

import sys
import threading

import pytest

from plugins.probe import ProbeFailure, explore

HERE = sys.modules[__name__]


class Counter:
    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()


def unlocked_increment(counter: Counter) -> None:
    for _ in range(3):
        value = counter.value
        counter.value = value + 1


def all_counted(counter: Counter, results: list[object]) -> None:
    assert counter.value == 6, f"{6 - counter.value} of 6 increments were lost"


def _failure() -> ProbeFailure:
    with pytest.raises(ProbeFailure) as caught:
        explore(Counter, [unlocked_increment] * 2, all_counted, modules=[HERE], seed=3)
    return caught.value


def test_a_verdict_only_run_fails_the_same_way_without_shrinking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KATA_VERDICT_ONLY", raising=False)
    shrunk = _failure()
    monkeypatch.setenv("KATA_VERDICT_ONLY", "1")
    judged = _failure()
    assert judged.kind == shrunk.kind, "the verdict and its kind must not depend on shrinking"
    assert shrunk.stats.shrink_runs > 0, "a learner's run shrinks its failure"
    assert judged.stats.shrink_runs == 0, "a verdict-only run must not re-run to shrink"
    assert "not shrunk" in str(judged), str(judged)


def test_only_hypothesis_final_scenario_is_shrunk(monkeypatch: pytest.MonkeyPatch) -> None:
    # Hypothesis tries many scenarios while it shrinks; only its last run, the smallest failing
    # scenario, is what the learner reads. Shrinking every try made one queues test take 10 s.
    from hypothesis import given
    from hypothesis import strategies as st

    from plugins.probe.scenarios import scenario_settings

    monkeypatch.delenv("KATA_VERDICT_ONLY", raising=False)
    shrink_runs: list[int] = []

    @scenario_settings(max_examples=10)
    @given(workers=st.integers(2, 4))
    def lost_updates(workers: int) -> None:
        try:
            explore(Counter, [unlocked_increment] * workers, all_counted, modules=[HERE])
        except ProbeFailure as failure:
            shrink_runs.append(failure.stats.shrink_runs)
            raise

    with pytest.raises(ProbeFailure):
        lost_updates()
    assert len(shrink_runs) >= 2, f"Hypothesis replays the failing scenario: {shrink_runs}"
    assert shrink_runs[-1] > 0, f"the final scenario's schedule is shrunk: {shrink_runs}"
    assert not any(shrink_runs[:-1]), f"no scenario before it is: {shrink_runs}"
