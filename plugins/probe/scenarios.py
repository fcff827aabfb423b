"""Hypothesis-drawn scenarios explored by the scheduler: one failing example, shrunk twice.

A kata test draws what its workers do (how many, how many operations each, capacities,
amounts, timeouts) with Hypothesis and hands each drawn scenario to the probe. The probe
explores interleavings of that scenario and shrinks a failing one to its fewest switches;
Hypothesis then shrinks the scenario, re-exploring each smaller one. The learner reads one
example: the smallest scenario, printed by Hypothesis ("Failing test case: ..."), under the
probe's shortest interleaving of it.

    @scenario_settings(max_examples=8)
    @given(workers=st.integers(2, 3), each=st.integers(1, 3))
    def test_no_update_is_lost(probe: Prober, workers: int, each: int) -> None:
        probe.explore(Counter, [increment_n(each)] * workers, check, budget=40)

Keep examples times schedules small: each example runs a whole exploration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, settings

F = TypeVar("F", bound=Callable[..., Any])


def scenario_settings(max_examples: int = 8) -> Callable[[F], F]:
    """Hypothesis settings for a probe over drawn scenarios: the same examples on every run
    (derandomized, no database), no per-example deadline (the test's budget bounds it), and
    no "explain" phase, whose list of the harness's own lines would bury the report. The
    `probe` fixture is safe to share between examples: it holds the seed, the budget and the
    loops seen spinning so far (a later spin there is stopped after 0.05 s, not 0.5 s).
    Shrinking follows the loaded profile: the self-check's `verdict` profile has none."""
    shrink = [Phase.shrink] if Phase.shrink in settings().phases else []
    chosen: Callable[[F], F] = settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, *shrink],
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    return chosen
