"""Cost per schedule (printed; run with -s to see it) and the tracer's opcode coverage."""

from __future__ import annotations

import sys

import pytest

from plugins.probe import explore
from plugins.probe.tracing import switch_points
from tests.probe.samples import counter_unlocked
from tests.probe.scenarios import CORRECT, Scenario


@pytest.mark.parametrize("scenario", CORRECT[:4], ids=lambda s: s.name)
def test_median_cost_per_schedule_stays_in_the_low_milliseconds(scenario: Scenario) -> None:
    stats = explore(
        scenario.setup, scenario.workers, scenario.check, modules=[scenario.module], budget=200
    )
    print(
        f"\n{sys.version_info[0]}.{sys.version_info[1]} {scenario.name}: "
        f"{stats.median_ms:.3f} ms/schedule, max {stats.max_steps} steps"
    )
    assert stats.median_ms < 5.0  # target <= 1 ms on an idle 2-core machine


def test_the_one_line_increment_has_a_switch_point_between_its_read_and_its_write() -> None:
    points = switch_points(counter_unlocked.Counter.increment.__code__)
    words = list(points.values())
    assert "reads .v" in words
    assert "writes .v" in words
    assert words.index("reads .v") < words.index("writes .v")
