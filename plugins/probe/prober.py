"""Prober: explore and explore_async bound to the modules under test, a seed and a budget.

It is what the `probe` fixture hands a kata test (``def test_x(probe: Prober)``). It knows
nothing of pytest: the fixture builds it and passes ``record``, which receives one stats entry
per exploration (for ``--kata-probe-stats``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from types import ModuleType
from typing import TypedDict, TypeVar, Unpack

from . import api, asyncio_loop
from .exploration import ExploreStats, ProbeFailure
from .failures import Check

S = TypeVar("S")
Record = Callable[[dict[str, object]], None]


class ExploreOptions(TypedDict, total=False):
    """Keyword options of `plugins.probe.explore` that a test may set."""

    budget: int
    seed: int
    max_steps: int
    strategies: str
    watchdog_s: float


class AsyncExploreOptions(TypedDict, total=False):
    """Keyword options of `plugins.probe.explore_async` that a test may set."""

    budget: int
    seed: int
    max_steps: int
    strategies: str
    modules: Sequence[ModuleType]
    schedule: Sequence[int] | None
    timeout_s: float


class Prober:
    """`explore` bound to the kata module under test and to this run's seed and budget."""

    def __init__(
        self, modules: Sequence[ModuleType], seed: int, budget: int, record: Record
    ) -> None:
        self.modules = list(modules)
        self.seed = seed
        self.budget = budget
        self._record = record

    def explore(
        self,
        setup: Callable[[], S],
        workers: api.Workers[S],
        check: Check[S] = None,
        *,
        explain: str = "",
        **options: Unpack[ExploreOptions],
    ) -> ExploreStats:
        """`plugins.probe.explore` on the module under test; ``explain`` leads the report."""
        __tracebackhide__ = True  # pytest hides this frame: the report points at the test
        options.setdefault("budget", self.budget)
        options.setdefault("seed", self.seed)
        return self._explored(
            "threads",
            explain,
            lambda: api.explore(setup, workers, check, modules=self.modules, **options),
        )

    def explore_async(
        self,
        setup: Callable[[], S],
        workers: asyncio_loop.AsyncWorkers[S],
        check: Check[S] = None,
        *,
        explain: str = "",
        **options: Unpack[AsyncExploreOptions],
    ) -> ExploreStats:
        """`plugins.probe.explore_async` on the module under test; ``explain`` leads the report."""
        __tracebackhide__ = True
        options.setdefault("budget", self.budget)
        options.setdefault("seed", self.seed)
        options.setdefault("modules", self.modules)
        return self._explored(
            "asyncio",
            explain,
            lambda: asyncio_loop.explore_async(setup, workers, check, **options),
        )

    def _explored(self, mode: str, explain: str, run: Callable[[], ExploreStats]) -> ExploreStats:
        """Run one exploration, record its stats, and raise its failure led by ``explain``."""
        __tracebackhide__ = True
        try:
            stats = run()
        except ProbeFailure as failure:
            self._record({"mode": mode, "failed": True, **asdict(failure.stats)})
            raise _explained(failure, explain)  # noqa: B904  # the same failure, cause kept
        self._record({"mode": mode, "failed": False, **asdict(stats)})
        return stats


def _explained(failure: ProbeFailure, explain: str) -> ProbeFailure:
    """The same failure, its message led by the test's explanation, without the harness's own
    frames (the report says everything; they would only bury it). Its cause stays chained."""
    if explain:
        failure.args = (f"{explain}\n\n{failure}", *failure.args[1:])
    return failure.with_traceback(None)
