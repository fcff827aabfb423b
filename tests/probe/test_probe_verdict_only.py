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
