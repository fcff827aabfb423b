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

from plugins import impl

if TYPE_CHECKING:
    from plugins import probe as harness

SEED_OPTION, SEED_INI = "--kata-probe-seed", "kata_probe_seed"
BUDGET_OPTION, BUDGET_INI = "--kata-probe-budget", "kata_probe_budget"
STATS_OPTION = "--kata-probe-stats"
DEFAULT_BUDGET = 250


# -- options ---------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kata")
    group.addoption(
        SEED_OPTION,
        dest="kata_probe_seed",
        type=int,
        default=None,
        metavar="N",
        help="seed of the controlled scheduler's strategies (default 0: every run explores the same schedules)",
    )
    parser.addini(SEED_INI, "default for --kata-probe-seed", default="0")
    group.addoption(
        BUDGET_OPTION,
        dest="kata_probe_budget",
        type=int,
        default=None,
        metavar="N",
        help=f"schedules explored per probe (default {DEFAULT_BUDGET})",
    )
    parser.addini(BUDGET_INI, "default for --kata-probe-budget", default=str(DEFAULT_BUDGET))
    group.addoption(
        STATS_OPTION,
        dest="kata_probe_stats",
        default=None,
        metavar="PATH",
        help="append one JSON line of statistics per probe to PATH (for the benchmark)",
    )


def _int_setting(config: pytest.Config, dest: str, ini: str, minimum: int) -> int:
    value = config.getoption(dest)
    if value is None:
        try:
            value = int(str(config.getini(ini)))
        except ValueError:
            raise pytest.UsageError(f"{ini} must be an integer") from None
    if value < minimum:
        raise pytest.UsageError(f"{ini} must be at least {minimum}, got {value}")
    return int(value)


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
    stats_path = config.getoption("kata_probe_stats")

    def record(entry: dict[str, Any]) -> None:
        if stats_path:
            entry = {"test": request.node.nodeid, "impl": _impl_label(config), **entry}
            with Path(stats_path).open("a", encoding="utf-8") as stream:
                stream.write(json.dumps(entry) + "\n")

    return Prober(
        modules,
        seed=_int_setting(config, "kata_probe_seed", SEED_INI, 0),
        budget=_int_setting(config, "kata_probe_budget", BUDGET_INI, 1),
        record=record,
    )


def _impl_label(config: pytest.Config) -> str:
    implementation = impl.implementation(config)
    return implementation.label if implementation else "-"
