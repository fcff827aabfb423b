"""Race probes in kata tests: the `probe` fixture runs workers under the controlled scheduler.

The fixture knows which kata module the test exercises (from the implementation swap), so a
test only says what the workers do and what must hold afterwards. Seed and schedule budget
come from options; `--kata-probe-stats` appends one JSON line per exploration for the
benchmark (`nox -s probe_bench`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from plugins import impl, settings

if TYPE_CHECKING:
    from plugins import probe as harness

PROBE_MARKER = "probe"


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{PROBE_MARKER}: the test runs workers under the controlled scheduler; given "
        f"automatically to every test that uses the `probe` fixture",
    )


# -- collection ------------------------------------------------------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # `-m probe` selects every test that explores interleavings, decorated or not.
    for item in items:
        if PROBE_MARKER in getattr(item, "fixturenames", ()) and not item.get_closest_marker(
            PROBE_MARKER
        ):
            item.add_marker(PROBE_MARKER)


# -- fixtures --------------------------------------------------------------------------------


class Prober:
    """`explore` bound to the kata module under test and to this run's seed and budget."""

    def __init__(
        self,
        modules: Sequence[ModuleType],
        seed: int,
        budget: int,
        record: Callable[[dict[str, Any]], None],
    ) -> None:
        self.modules = list(modules)
        self.seed = seed
        self.budget = budget
        self._record = record

    def explore(
        self,
        setup: Callable[[], Any],
        workers: Sequence[Callable[[Any], object]] | Mapping[str, Callable[[Any], object]],
        check: Callable[[Any, list[object]], None] | None = None,
        *,
        explain: str = "",
        **options: Any,
    ) -> harness.ExploreStats:
        __tracebackhide__ = True
        from plugins import probe as harness  # imported on first use: most katas never probe

        options.setdefault("budget", self.budget)
        options.setdefault("seed", self.seed)
        try:
            stats = harness.explore(setup, workers, check, modules=self.modules, **options)
        except harness.ProbeFailure as failure:
            self._record({"mode": "threads", "failed": True, **_stats_dict(failure.stats)})
            raise _explained(failure, explain)  # noqa: B904  # the same failure, cause kept
        self._record({"mode": "threads", "failed": False, **_stats_dict(stats)})
        return stats

    def explore_async(
        self,
        setup: Callable[[], Any],
        workers: Sequence[Callable[[Any], Any]] | Mapping[str, Callable[[Any], Any]],
        check: Callable[[Any, list[object]], None] | None = None,
        *,
        explain: str = "",
        **options: Any,
    ) -> harness.ExploreStats:
        __tracebackhide__ = True
        from plugins import probe as harness

        options.setdefault("budget", self.budget)
        options.setdefault("seed", self.seed)
        options.setdefault("modules", self.modules)
        try:
            stats = harness.explore_async(setup, workers, check, **options)
        except harness.ProbeFailure as failure:
            self._record({"mode": "asyncio", "failed": True, **_stats_dict(failure.stats)})
            raise _explained(failure, explain)  # noqa: B904  # the same failure, cause kept
        self._record({"mode": "asyncio", "failed": False, **_stats_dict(stats)})
        return stats


def _explained(failure: harness.ProbeFailure, explain: str) -> harness.ProbeFailure:
    """The same failure, its message led by the test's explanation, without the harness's own
    frames (the report says everything; they would only bury it). Its cause stays chained."""
    if explain:
        failure.args = (f"{explain}\n\n{failure}", *failure.args[1:])
    return failure.with_traceback(None)


def _stats_dict(stats: Any) -> dict[str, Any]:
    if stats is None:
        return {}
    fields = getattr(stats, "__dataclass_fields__", None)
    if fields:
        return {
            name: getattr(stats, name)
            for name in fields
            if isinstance(getattr(stats, name), (int, float, str, bool, type(None)))
        }
    return {}


@pytest.fixture
def probe(request: pytest.FixtureRequest) -> Prober:
    """Explore many interleavings of workers calling the kata module under test."""
    config = request.config
    kata = impl.kata_of(request.node)
    modules = [sys.modules[kata.module]] if kata is not None and kata.module in sys.modules else []
    run = settings.of(config)
    stats_path = run.probe_stats

    def record(entry: dict[str, Any]) -> None:
        if stats_path:
            entry = {"test": request.node.nodeid, "impl": _impl_label(config), **entry}
            with Path(stats_path).open("a", encoding="utf-8") as stream:
                stream.write(json.dumps(entry) + "\n")

    return Prober(
        modules,
        seed=run.probe_seed,
        budget=run.probe_budget,
        record=record,
    )


def _impl_label(config: pytest.Config) -> str:
    implementation = impl.implementation(config)
    return implementation.label if implementation else "-"
