"""A test's explanation leads only the report of the failure kind it explains."""

from __future__ import annotations

import pytest

from plugins.probe import ProbeFailure, Prober
from tests.probe.samples import counter_unlocked

LOST_UPDATE = "two increments read the same value"
CIRCULAR_WAIT = "a circle of threads each waiting for the next"


def _lost_update(probe: Prober, explain: object) -> ProbeFailure:
    def both_counted(counter: counter_unlocked.Counter, _results: list[object]) -> None:
        assert counter.v == 2, f"count is {counter.v}"

    with pytest.raises(ProbeFailure) as caught:
        probe.explore(
            counter_unlocked.Counter,
            [lambda c: c.increment(), lambda c: c.increment()],
            both_counted,
            explain=explain,  # type: ignore[arg-type]
        )
    return caught.value


@pytest.fixture
def probe() -> Prober:
    return Prober([counter_unlocked], seed=0, budget=100, record=lambda _entry: None)


def test_an_explanation_of_another_kind_stays_out_of_the_report(probe: Prober) -> None:
    failure = _lost_update(probe, {"deadlock": CIRCULAR_WAIT})
    assert failure.kind == "invariant"
    assert CIRCULAR_WAIT not in str(failure), "a deadlock lecture led a lost-update report"


def test_the_explanation_of_the_failure_kind_leads_the_report(probe: Prober) -> None:
    failure = _lost_update(probe, {"deadlock": CIRCULAR_WAIT, "invariant": LOST_UPDATE})
    assert str(failure).startswith(LOST_UPDATE)
    assert CIRCULAR_WAIT not in str(failure)


@pytest.mark.parametrize("explain", ["a bare text", {"lost-update": "no such kind"}])
def test_an_explanation_not_keyed_by_a_known_kind_is_refused(
    probe: Prober, explain: object
) -> None:
    with pytest.raises(TypeError, match="kinds"):
        probe.explore(counter_unlocked.Counter, [lambda c: c.increment()], explain=explain)  # type: ignore[arg-type]
