"""Which of the learner's functions get switch points, whichever hook delivers them: a
closure the test made before exploring and handed over as a worker, a decorated function, one
behind ``functools.lru_cache``. (3.11 rewrites each function reachable from the modules and
from what the test hands the exploration; 3.12+ watches each code object reachable so.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from plugins.probe import ProbeFailure, explore
from tests.probe.samples import rewrite_shapes
from tests.probe.samples.rewrite_shapes import Box


def _lost_update(worker: Callable[[Box], None]) -> str:
    def both_counted(b: Box, _results: list[object]) -> None:
        assert b.v == 2, f"a lost update: {b.v} after two bumps"

    with pytest.raises(ProbeFailure) as caught:
        explore(Box, [worker, worker], both_counted, modules=[rewrite_shapes], budget=100)
    return str(caught.value)


def test_a_closure_the_test_made_before_exploring_keeps_its_switch_points() -> None:
    assert "a lost update" in _lost_update(rewrite_shapes.bumper())


def test_a_decorated_function_keeps_its_switch_points() -> None:
    assert "a lost update" in _lost_update(rewrite_shapes.decorated_bump)


def test_a_function_behind_lru_cache_keeps_its_switch_points() -> None:
    assert "a lost update" in _lost_update(rewrite_shapes.cached_bump)
