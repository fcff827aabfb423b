"""Shrinking by switches tied to each worker's own steps (``strategies.Anchored``): a found
schedule becomes anchored switches that replay it, a dropped switch leaves the others where
they were in their workers' code, and a livelock is shown with its fewest preemptions."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from plugins.probe import ProbeFailure, api, explore
from plugins.probe.exploration import Outcome
from plugins.probe.strategies import Anchored, Replay
from tests.probe.samples import lockstep
from tests.probe.scenarios import preemptions_shown

HERE = sys.modules[__name__]


class Cells:
    """Three workers' own attributes (this module is the one traced)."""

    def __init__(self) -> None:
        self.a = 0
        self.b = 0
        self.c = 0


def bump_a(cells: Cells) -> None:
    for _ in range(6):
        cells.a += 1


def bump_b(cells: Cells) -> None:
    for _ in range(6):
        cells.b += 1


def bump_c(cells: Cells) -> None:
    for _ in range(6):
        cells.c += 1


def _execute() -> Callable[[object], Outcome]:
    return api._executor(Cells, [bump_a, bump_b, bump_c], None, [HERE], 20_000, 2.0)  # type: ignore[return-value]


def _switches(out: Outcome) -> list[tuple[int, int, int, str]]:
    """(from, its steps so far, to, why) of every switch of a run."""
    steps = [0, 0, 0]
    found = []
    for kind, who, what, why in out.events:
        if kind == "s":
            steps[who] += 1
        elif kind == "x" and who >= 0:
            found.append((who, steps[who], what, why))
    return found


def test_a_choice_list_replayed_once_becomes_anchored_switches_that_make_the_same_run() -> None:
    execute = _execute()
    choices = [0, 0, 1, 0, 0, 2, 0, 0, 0, 1, 0, 1]
    replayed = execute(Replay(choices))
    recorder = Anchored({}, replay=choices)
    recorded = execute(recorder)
    again = execute(Anchored(recorder.recorded, frozenset(recorder.resumed)))
    assert recorded.events == replayed.events, "recording a replay changed the run"
    assert again.events == replayed.events, (
        f"the anchored switches {recorder.recorded} did not make the run they were read from: "
        f"{_switches(again)} instead of {_switches(replayed)}"
    )


def test_dropping_a_switch_leaves_the_next_one_at_its_workers_own_step() -> None:
    execute = _execute()
    # Worker 0 is preempted at its 2nd step (worker 1 runs to its end), resumed, and
    # preempted again at its 8th step (worker 2 runs).
    back_to_0 = frozenset({(0, 2)})
    both = _switches(execute(Anchored({(0, 2, 0): 1, (0, 8, 0): 2}, back_to_0)))
    assert both[0] == (0, 2, 1, "preempted") and both[1][::3] == (1, "finished"), both
    assert both[2] == (0, 8, 2, "preempted"), both
    second_only = _switches(execute(Anchored({(0, 8, 0): 2}, back_to_0)))
    assert second_only[0] == (0, 8, 2, "preempted"), (
        f"with the first switch dropped the second moved: {second_only}; it must still come "
        "at worker 0's 8th step (a choice index would now point at another step)"
    )


def test_a_choice_where_nobody_is_preempted_resumes_the_worker_it_names() -> None:
    execute = _execute()
    # Worker 0 is preempted at its 2nd step for worker 2; when 2 finishes, nobody is
    # preempted by the next choice: ring order resumes worker 0, a resume anchor worker 1.
    # (Worker 0 starts the run either way: (0, 0) names it at the first choice.)
    plain = _switches(execute(Anchored({(0, 2, 0): 2})))
    named_run = execute(Anchored({(0, 2, 0): 2}, frozenset({(0, 0), (1, 0)})))
    named = _switches(named_run)
    assert plain[1][::2] == (2, 0) and named[1][::2] == (2, 1), (plain, named)
    assert named[1][3] == "finished", "a choice after a worker ends preempts nobody"
    recorder = Anchored({}, replay=named_run.choices)
    execute(recorder)
    assert recorder.recorded == {(0, 2, 0): 2}, recorder.recorded
    assert (1, 0) in recorder.resumed, recorder.resumed


def _livelock(attempts: int) -> ProbeFailure:
    def both_get_through(bank: lockstep.Bank, results: list[object]) -> None:
        assert results == [True, True], f"the transfers returned {results}"

    with pytest.raises(ProbeFailure) as caught:
        explore(
            lockstep.Bank,
            {
                "a-to-b": lambda bank: lockstep.transfer_with_fixed_pause(
                    bank.a, bank.b, 10, 1.0, attempts
                ),
                "b-to-a": lambda bank: lockstep.transfer_with_fixed_pause(
                    bank.b, bank.a, 20, 1.0, attempts
                ),
            },
            both_get_through,
            modules=[lockstep],
            budget=250,
            seed=0,
        )
    return caught.value


def _shown(failure: ProbeFailure) -> int:
    shown = preemptions_shown(str(failure))
    assert shown is not None, str(failure)
    return shown


def test_a_two_round_livelock_is_shown_with_its_three_preemptions_checked_minimal() -> None:
    failure = _livelock(2)
    assert _shown(failure) == 3, (
        f"a livelock of two colliding attempts needs 3 preemptions (lockstep.py says why); "
        f"the report shows {_shown(failure)}:\n{failure}"
    )
    assert "no schedule with fewer preemptions fails" in str(failure), str(failure)


@pytest.mark.parametrize("attempts", [3, 4])
def test_each_more_round_of_a_livelock_shows_two_preemptions_more(attempts: int) -> None:
    # Before switches were anchored to the workers' steps the shrinker stuck at 22 and 25.
    failure = _livelock(attempts)
    assert _shown(failure) == 2 * attempts - 1, (
        f"{attempts} colliding attempts need {2 * attempts - 1} preemptions; the report shows "
        f"{_shown(failure)}:\n{failure}"
    )
