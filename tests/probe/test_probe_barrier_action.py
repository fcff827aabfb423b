"""A barrier's action is the learner's code, run by the last party inside ``Barrier.wait``:
its switch points count like any other, although the scheduler's own frames there are not
traced (on 3.11 each cost a call of the trace hook)."""

from __future__ import annotations

import pytest

from plugins.probe import ProbeFailure, explore
from tests.probe.samples import barrier_action
from tests.probe.samples.barrier_action import Rounds


def _never_half_done(rounds: Rounds, results: list[object]) -> None:
    assert "half" not in rounds.seen, "a look saw the barrier's action half done"


def test_a_switch_inside_the_barrier_action_is_explored() -> None:
    with pytest.raises(ProbeFailure) as caught:
        explore(
            Rounds,
            [Rounds.arrive, Rounds.arrive, Rounds.look],
            _never_half_done,
            modules=[barrier_action],
            budget=250,
            seed=0,
        )
    assert "half done" in str(caught.value), str(caught.value)
