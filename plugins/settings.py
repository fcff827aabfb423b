"""Run settings: every `--kata-*` option read once, validated, shown and handed to child runs.

Each setting comes from its option, else its ini twin, else the default, and is validated here,
so a bad value stops the run as a usage error naming what the user typed. Other plugins read
the one `RunSettings` object (`settings.of(config)`), never each other's option names, and a
plugin that starts another pytest (the self-check, a launcher) forwards `child_args()` whole.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from plugins.backends import BACKENDS

IMPL_OPTION, IMPL_INI = "--kata-impl", "kata_impl"
REQUIRE_OPTION, REQUIRE_INI = "--kata-require", "kata_require"
SEED_OPTION, SEED_INI = "--kata-probe-seed", "kata_probe_seed"
PROBE_BUDGET_OPTION, PROBE_BUDGET_INI = "--kata-probe-budget", "kata_probe_budget"
STATS_OPTION, STATS_INI = "--kata-probe-stats", "kata_probe_stats"
SCALE_OPTION, SCALE_INI = "--kata-budget-scale", "kata_budget_scale"
HINTS_OPTION, HINTS_INI = "--kata-hints", "kata_hints"
HTML_OPTION, HTML_INI = "--kata-html", "kata_html"
VERIFY_OPTION = "--kata-verify"
VERIFY_CHANGED_OPTION = "--kata-verify-changed"
VERIFY_FIRST_OPTION = "--kata-verify-first"  # internal: the self-check's child runs
# "1" in the self-check's child runs: only the verdict counts, so neither Hypothesis nor the
# probe shrinks a failure (the same test fails the same way, sooner).
VERDICT_ONLY_VARIABLE = "KATA_VERDICT_ONLY"
DEFAULT_PROBE_BUDGET = 250
STUB = "stub"

T = TypeVar("T")


@dataclass(frozen=True)
class RunSettings:
    """What this run was asked to do, after validation."""

    impl: str  # the raw choice; plugins/impl.py resolves it to files
    require: frozenset[str]  # backends whose absence fails rather than skips
    probe_seed: int
    probe_budget: int
    probe_stats: Path | None  # absolute, so child runs in other folders append to one file
    budget_scale: float  # 0 turns time budgets off
    hints: int
    verify: bool
    verify_changed: str = ""  # a git ref: verify only the katas changed since
    verify_first: str = ""  # a test name the self-check wants run first (a likely killer)
    html: Path | None = None  # where to write the HTML report (plugins/html_report.py)

    def child_args(self) -> list[str]:
        """The options that make a child pytest run under exactly these settings (the
        implementation and the self-check mode are the parent's to choose per child)."""
        args = [
            f"{SEED_OPTION}={self.probe_seed}",
            f"{PROBE_BUDGET_OPTION}={self.probe_budget}",
            f"{SCALE_OPTION}={self.budget_scale:g}",
            f"{HINTS_OPTION}={self.hints}",
        ]
        if self.require:
            args.append(f"{REQUIRE_OPTION}={','.join(sorted(self.require))}")
        if self.probe_stats is not None:
            args.append(f"{STATS_OPTION}={self.probe_stats}")
        return args

    def header(self) -> str:
        required = ", ".join(sorted(self.require)) or "none"
        stats = f", probe stats to {self.probe_stats}" if self.probe_stats else ""
        return (
            f"kata settings: probe seed {self.probe_seed}, probe budget {self.probe_budget}, "
            f"budget scale {self.budget_scale:g}, required backends {required}{stats}"
        )


settings_key = pytest.StashKey[RunSettings]()


def of(config: pytest.Config) -> RunSettings:
    """This run's settings (built at configure)."""
    return config.stash[settings_key]


# -- options ---------------------------------------------------------------------------------


def _twinned_options() -> list[tuple[str, str, str, str, str]]:
    """(option, ini key = dest, metavar, ini default, help) of every option with an ini twin."""
    return [
        (
            IMPL_OPTION,
            IMPL_INI,
            "stub|reference|mutant:NAME|PATH",
            STUB,
            "which implementation the kata tests import: the learner's stub (default), the "
            "reference solution, one mutant of the reference, or a folder laid out like "
            "reference/ (to grade a student).",
        ),
        (
            REQUIRE_OPTION,
            REQUIRE_INI,
            "BACKEND[,BACKEND...]",
            "",
            "fail (instead of skip) tests whose backend is absent; one of: "
            f"{', '.join(BACKENDS)}, all",
        ),
        (
            SEED_OPTION,
            SEED_INI,
            "N",
            "0",
            "seed of the controlled scheduler's strategies (default 0: every run explores "
            "the same schedules)",
        ),
        (
            PROBE_BUDGET_OPTION,
            PROBE_BUDGET_INI,
            "N",
            "",
            f"schedules explored per probe (default {DEFAULT_PROBE_BUDGET})",
        ),
        (
            STATS_OPTION,
            STATS_INI,
            "PATH",
            "",
            "append one JSON line of statistics per probe to PATH (for the benchmark)",
        ),
        (
            SCALE_OPTION,
            SCALE_INI,
            "FACTOR",
            "1",
            "multiply every kata test's time budget (e.g. 3 on a slow machine; 0 disables budgets)",
        ),
        (
            HTML_OPTION,
            HTML_INI,
            "FILE",
            "",
            "write an HTML report to FILE: each kata's status, every failure, and each race or "
            "deadlock drawn as one column per thread",
        ),
        (
            HINTS_OPTION,
            HINTS_INI,
            "LEVEL",
            "0",
            "show the hints up to LEVEL (1 = a nudge, higher = closer to the answer) for "
            "every kata that is not done",
        ),
    ]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kata", "parallel katas")
    for option, ini, metavar, default, help_ in _twinned_options():
        group.addoption(option, dest=ini, metavar=metavar, help=help_)
        parser.addini(ini, f"default for {option}", default=default)
    group.addoption(
        VERIFY_OPTION,
        action="store_true",
        dest="kata_verify",
        help="verify the repository instead of running the katas: every stub fails, every "
        "reference passes, every mutant is killed, and the curriculum is consistent",
    )
    group.addoption(
        VERIFY_CHANGED_OPTION,
        dest="kata_verify_changed",
        metavar="REF",
        help="with --kata-verify: only the katas whose files under katas/ or reference/ changed "
        "since the git REF (all of them when plugins/ or the manifest changed)",
    )
    group.addoption(
        VERIFY_FIRST_OPTION,
        dest="kata_verify_first",
        metavar="TEST",
        help=argparse.SUPPRESS,  # the self-check passes it to its child runs, nobody else
    )


# -- configure -------------------------------------------------------------------------------


def _raw(config: pytest.Config, option: str, ini: str) -> tuple[str, str]:
    """The value the user gave and where (the option's name, or the ini key's, which is also
    the option's dest)."""
    value = config.getoption(ini)
    if value is not None:
        return str(value), option
    return str(config.getini(ini)), f"{ini} (ini)"


def _parsed(
    config: pytest.Config,
    names: tuple[str, str],
    parse: Callable[[str], T],
    valid: Callable[[T], bool],
    expected: str,
) -> T:
    text, source = _raw(config, *names)
    try:
        value = parse(text.strip())
    except ValueError:
        raise pytest.UsageError(f"{source}={text}: expected {expected}") from None
    if not valid(value):
        raise pytest.UsageError(f"{source}={text}: expected {expected}")
    return value


def _required(config: pytest.Config) -> frozenset[str]:
    text, source = _raw(config, REQUIRE_OPTION, REQUIRE_INI)
    names = {n.strip() for n in text.split(",") if n.strip()}
    if "all" in names:
        return frozenset(BACKENDS)
    unknown = sorted(names - set(BACKENDS))
    if unknown:
        raise pytest.UsageError(
            f"{source}: unknown backend {', '.join(unknown)}; valid: {', '.join(BACKENDS)}, all"
        )
    return frozenset(names)


def _html_path(config: pytest.Config) -> Path | None:
    return _file_path(config, HTML_OPTION, HTML_INI)


def _stats_path(config: pytest.Config) -> Path | None:
    return _file_path(config, STATS_OPTION, STATS_INI)


def _file_path(config: pytest.Config, option: str, ini: str) -> Path | None:
    text, source = _raw(config, option, ini)
    if not text.strip():
        return None
    path = Path(text).expanduser().resolve()
    if not path.parent.is_dir():
        raise pytest.UsageError(f"{source}={text}: the folder {path.parent} does not exist")
    return path


def _probe_budget(text: str) -> int:
    return int(text) if text else DEFAULT_PROBE_BUDGET


def build(config: pytest.Config) -> RunSettings:
    """Option, else ini, else default; each validated, a bad one a usage error naming it."""
    impl_text, _ = _raw(config, IMPL_OPTION, IMPL_INI)
    return RunSettings(
        impl=impl_text.strip() or STUB,
        require=_required(config),
        probe_seed=_parsed(
            config,
            (SEED_OPTION, SEED_INI),
            int,
            lambda n: n >= 0,
            "a whole number >= 0",
        ),
        probe_budget=_parsed(
            config,
            (PROBE_BUDGET_OPTION, PROBE_BUDGET_INI),
            _probe_budget,
            lambda n: n >= 1,
            "a whole number of schedules >= 1",
        ),
        probe_stats=_stats_path(config),
        budget_scale=_parsed(
            config,
            (SCALE_OPTION, SCALE_INI),
            float,
            lambda x: x >= 0 and x != float("inf"),
            "0 (budgets off) or a positive factor",
        ),
        hints=_parsed(
            config,
            (HINTS_OPTION, HINTS_INI),
            int,
            lambda n: n >= 0,
            "a hint level >= 0 (1 = the first nudge)",
        ),
        verify=bool(config.getoption("kata_verify")),
        verify_changed=str(config.getoption("kata_verify_changed") or ""),
        verify_first=str(config.getoption("kata_verify_first") or ""),
        html=_html_path(config),
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.stash[settings_key] = build(config)


# -- report header ---------------------------------------------------------------------------


def pytest_report_header(config: pytest.Config) -> str:
    return of(config).header()
