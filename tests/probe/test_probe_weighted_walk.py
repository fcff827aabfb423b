"""A random walk at a switch point that stands for dropped reads (``tracing.weights_of``)
preempts with the chance those reads' own switch points gave it, so dropping them does not
make a bug that needs a preemption in a stretch of reads harder to find."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from plugins.probe.strategies import PCT, RandomWalk

DRAWS = 8_000


def _walk(seed: int = 7) -> RandomWalk:
    return RandomWalk(random.Random(seed))


def test_a_weight_of_one_chooses_as_the_plain_walk_does() -> None:
    weighted, plain = _walk(), _walk()
    for n in (2, 3, 5) * 300:
        got, want = weighted.choose_weighted(n, 1), plain.choose(None, range(n), 0)
        assert got == want, (
            f"with weight 1 among {n} options the weighted walk chose {got} where the plain "
            f"walk chose {want} from the same draw: code with no dropped read would get "
            "other schedules than before"
        )


@pytest.mark.parametrize(("n", "weight"), [(2, 2), (2, 4), (3, 3)])
def test_the_running_worker_is_kept_as_often_as_weight_choices_in_a_row_would_keep_it(
    n: int, weight: int
) -> None:
    walk = _walk()
    counts = Counter(walk.choose_weighted(n, weight) for _ in range(DRAWS))
    kept = counts[0] / DRAWS
    expected = n**-weight
    # Binomial: the standard deviation is under 0.0059 for these; 0.02 is more than 3 of them
    # (and the seed is fixed, so the test is not flaky).
    assert abs(kept - expected) < 0.02, (
        f"among {n} options at a point standing for {weight}, the running worker was kept "
        f"{kept:.3f} of the time, not (1/{n})^{weight} = {expected:.3f}"
    )
    others = [counts[i] for i in range(1, n)]
    assert min(others) > 0.8 * max(others), (
        f"the other workers were chosen {others} times: not uniformly"
    )
    assert set(counts) <= set(range(n)), f"choices out of range: {sorted(counts)}"


class _Worker:
    def __init__(self, index: int) -> None:
        self.index = index


@pytest.mark.parametrize(("weight", "lowered"), [(1, False), (2, False), (3, True)])
def test_pct_lowers_the_running_worker_at_a_change_point_anywhere_in_what_a_point_stands_for(
    weight: int, lowered: bool
) -> None:
    pct = PCT(random.Random(1), depth=2, k=10)
    pct._changes = frozenset({5})  # the one change point, at decision 5
    workers = [_Worker(0), _Worker(1)]
    runner = workers[pct.choose_indexed(0, workers, 2)]  # the higher rank runs
    other = workers[1 - runner.index]
    # A point at decision 3 standing for `weight` switch points covers decisions 3, 4, 5 for a
    # weight of 3, and stops short of 5 for 1 or 2.
    chosen = pct.choose_indexed(runner.index, [runner, other], 3, weight)
    assert (chosen == 1) is lowered, (
        f"PCT's change point is decision 5; a point at decision 3 standing for {weight} "
        f"switch points {'covers' if lowered else 'does not cover'} it, yet the running "
        f"worker was {'kept' if chosen == 0 else 'preempted'}"
    )
