"""A learner's code that draws from the `random` module's generator (a random back-off, as
katas/deadlock's transfer_patiently) takes the same draws in every schedule and in its replay,
and the exploration leaves the generator as it found it."""

from __future__ import annotations

import random
from typing import Any

import pytest

from plugins.probe import ProbeFailure, api, explore, run_schedule
from tests.probe.samples import random_backoff


def _workers(method: str = "use") -> list[Any]:
    """One worker holds the resource; the other calls ``method``, which backs off for a random
    pause while it is held."""
    return [lambda r: r.hold(0.5), lambda r: getattr(r, method)()]


def _explore(check: Any, seed: int, method: str = "use") -> None:
    explore(
        random_backoff.Resource,
        _workers(method),
        check,
        modules=[random_backoff],
        budget=12,
        seed=seed,
    )


def _pauses(method: str, seed: int) -> list[list[float]]:
    """The pauses each schedule of an exploration drew (a check sees every schedule)."""
    seen: list[list[float]] = []

    def record(_r: Any, results: list[object]) -> None:
        seen.append(list(results[1]))  # type: ignore[call-overload]

    _explore(record, seed, method)
    return seen


@pytest.mark.parametrize("method", ["use", "use_bound"])
def test_an_exploration_draws_the_same_pauses_whatever_was_drawn_before(method: str) -> None:
    random.seed(1)
    first = _pauses(method, seed=3)
    random.seed(2)
    random.random()
    second = _pauses(method, seed=3)
    assert any(first), "no schedule paused: the sample no longer exercises the generator"
    assert first == second, (
        "the same seed gave other random pauses after the generator had been used before: a "
        "schedule's draws depend on what ran before it, so its replay may not reproduce it"
    )


def test_every_schedule_starts_the_generator_from_the_same_seed() -> None:
    first = _pauses("use", seed=0)
    assert len({tuple(p[:1]) for p in first if p}) == 1, (
        f"the first pause of each schedule differs ({sorted({p[0] for p in first if p})}): "
        f"a replay, which knows only the schedule's choices, could not draw the same numbers"
    )


def test_an_exploration_leaves_the_generator_as_it_found_it() -> None:
    random.seed(7)
    before = random.getstate()
    _pauses("use", seed=0)
    assert random.getstate() == before, (
        "the exploration moved the random module's generator: a test that seeded it for its "
        "own draws would draw other numbers after exploring"
    )


def test_a_module_that_does_not_use_the_generator_is_not_seeded() -> None:
    from tests.probe.samples import backoff

    assert api._uses_random([random_backoff]), "the sample's `import random` was not seen"
    assert not api._uses_random([backoff]), "a module without random was taken for one with it"


def test_a_replay_draws_the_pauses_its_schedule_drew() -> None:
    drawn: list[list[float]] = []

    def fails(_r: Any, results: list[object]) -> None:
        drawn.append(list(results[1]))  # type: ignore[call-overload]
        assert not results[1], "paused"

    with pytest.raises(ProbeFailure) as caught:
        _explore(fails, seed=0)
    schedule = caught.value.schedule
    random.random()  # the replay must not depend on where the generator stands
    results = run_schedule(
        random_backoff.Resource, _workers(), None, modules=[random_backoff], schedule=schedule
    )
    assert results[1] in drawn, (
        f"the replay of the failing schedule drew {results[1]}, which no run of the "
        f"exploration drew: a replay must draw what its schedule drew"
    )
