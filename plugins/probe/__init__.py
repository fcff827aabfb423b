"""Deterministic race and deadlock probes: run workers under a controlled, seeded scheduler.

See README.md in this folder for the design, the API and how to read a report.
"""

from __future__ import annotations

from .api import explore, run_schedule, schedules
from .asyncio_loop import explore_async
from .exploration import ExploreStats, ProbeFailure
from .prober import Prober
from .scenarios import scenario_settings

__all__ = [
    "ExploreStats",
    "ProbeFailure",
    "Prober",
    "explore",
    "explore_async",
    "run_schedule",
    "scenario_settings",
    "schedules",
]
