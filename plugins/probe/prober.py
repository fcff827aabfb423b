"""Prober: explore and explore_async bound to the modules under test, a seed and a budget.

It is what the `probe` fixture hands a kata test (``def test_x(probe: Prober)``). It knows
nothing of pytest: the fixture builds it and passes ``record``, which receives one stats entry
per exploration (for ``--kata-probe-stats``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from types import ModuleType
from typing import TypedDict, TypeVar, Unpack

from . import api, asyncio_loop
from .exploration import ExploreStats, ProbeFailure
from .failures import Check
from .scheduler import LoopKey, remembering_busy_loops

S = TypeVar("S")
Record = Callable[[dict[str, object]], None]
# What a failure's kind means, for `explain={kind: text}`: a text leads only the report of a
# failure of its kind, so an off-by-one is never prefaced by a lecture about circular waits.
EXHAUSTIVE_SHARE = 10  # the exhaustive attempt's runs: a tenth of the sampling budget
FAILURE_KINDS = {
    "deadlock": "every thread or task waits and nothing can wake them (a lost wakeup too)",
    "livelock": "they keep running and none makes progress",
    "invariant": "the test's check saw a wrong result (a lost update, a broken promise)",
    "exception": "the code under test raised",
    "misuse": "a primitive was used against its rules (releasing a lock one does not hold)",
    "lock-order": "two locks were taken in opposite orders, so a deadlock can happen",
    "uncontrolled": "the code blocked on something the scheduler does not control",
}
Explain = Mapping[str, str]


class ExploreOptions(TypedDict, total=False):
    """Keyword options of `plugins.probe.explore` that a test may set."""

    budget: int
    seed: int
    max_steps: int
    strategies: str
    watchdog_s: float
    exhaustive: int
    exhaustive_s: float


class AsyncExploreOptions(TypedDict, total=False):
    """Keyword options of `plugins.probe.explore_async` that a test may set."""

    budget: int
    seed: int
    max_steps: int
    strategies: str
    modules: Sequence[ModuleType]
    schedule: Sequence[int] | None
    timeout_s: float
    exhaustive: int
    exhaustive_s: float


class Prober:
    """`explore` bound to the kata module under test and to this run's seed and budget.

    Each exploration first tries every distinct interleaving, in at most ``budget //
    EXHAUSTIVE_SHARE`` runs (a count, not seconds, so that the same scenario is proved or
    sampled on every machine; a tracked run costs about three sampled ones): a small
    scenario is then proved, and its stats say "all N distinct interleavings checked". A
    bigger one samples ``budget`` seeded schedules, as before. ``exhaustive=0`` samples
    only."""

    def __init__(
        self, modules: Sequence[ModuleType], seed: int, budget: int, record: Record
    ) -> None:
        self.modules = list(modules)
        self.seed = seed
        self.budget = budget
        self._record = record
        # Loops that spun the full bound in this test's explorations (all its Hypothesis
        # examples): a later spin there is judged sooner (scheduler.KNOWN_BUSY_LOOP_S).
        self._busy_loops: set[LoopKey] = set()

    def explore(
        self,
        setup: Callable[[], S],
        workers: api.Workers[S],
        check: Check[S] = None,
        *,
        explain: Explain | None = None,
        **options: Unpack[ExploreOptions],
    ) -> ExploreStats:
        """`plugins.probe.explore` on the module under test; ``explain[kind]`` leads the report
        of a failure of that kind (FAILURE_KINDS)."""
        __tracebackhide__ = True  # pytest hides this frame: the report points at the test
        options.setdefault("budget", self.budget)
        options.setdefault("seed", self.seed)
        options.setdefault("exhaustive", options["budget"] // EXHAUSTIVE_SHARE)
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
        explain: Explain | None = None,
        **options: Unpack[AsyncExploreOptions],
    ) -> ExploreStats:
        """`plugins.probe.explore_async` on the module under test; ``explain[kind]`` leads the
        report of a failure of that kind (FAILURE_KINDS)."""
        __tracebackhide__ = True
        options.setdefault("budget", self.budget)
        options.setdefault("seed", self.seed)
        options.setdefault("modules", self.modules)
        options.setdefault("exhaustive", options["budget"] // EXHAUSTIVE_SHARE)
        return self._explored(
            "asyncio",
            explain,
            lambda: asyncio_loop.explore_async(setup, workers, check, **options),
        )

    def _explored(
        self, mode: str, explain: Explain | None, run: Callable[[], ExploreStats]
    ) -> ExploreStats:
        """Run one exploration, record its stats, and raise its failure led by its kind's
        explanation."""
        __tracebackhide__ = True
        if isinstance(explain, str):  # a kata author's mistake: say so at once
            raise TypeError(f"explain= maps failure kinds ({', '.join(FAILURE_KINDS)}) to texts")
        explained = dict(explain or {})
        unknown = sorted(set(explained) - set(FAILURE_KINDS))
        if unknown:
            raise TypeError(
                f"explain= has unknown kinds {unknown}; known: {', '.join(FAILURE_KINDS)}"
            )
        try:
            with remembering_busy_loops(self._busy_loops):
                stats = run()
        except ProbeFailure as failure:
            self._record({"mode": mode, "failed": True, **asdict(failure.stats)})
            raise _explained(failure, explained)  # noqa: B904  # the same failure, cause kept
        self._record({"mode": mode, "failed": False, **asdict(stats)})
        if mode == "threads" and stats.max_steps == 0:
            names = ", ".join(m.__name__ for m in self.modules) or "no module"
            raise AssertionError(
                f"the probe ran {stats.schedules} schedules that never reached a switch point "
                f"in {names}: the workers never ran that module's code, so no interleaving was "
                "tried and nothing was tested. Make the workers call the kata's functions."
            )
        return stats


def _explained(failure: ProbeFailure, explain: dict[str, str]) -> ProbeFailure:
    """The same failure, its message led by the test's explanation of its kind, without the
    harness's own frames (the report says everything; they would only bury it). Its cause
    stays chained."""
    text = explain.get(failure.kind, "")
    if text:
        failure.args = (f"{text}\n\n{failure}", *failure.args[1:])
    return failure.with_traceback(None)
