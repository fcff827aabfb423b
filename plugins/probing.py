"""Race probes in kata tests: the `probe` fixture runs workers under the controlled scheduler.

The fixture knows which kata module the test exercises (from the implementation swap), so a
test only says what the workers do and what must hold afterwards. Seed, schedule budget and
statistics file come from the run settings (plugins/settings.py); with `--kata-probe-stats`
each exploration appends one JSON line for the benchmark (`nox -s probe_bench`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from plugins import impl, settings
from plugins.probe import Prober

PROBE_MARKER = "probe"
# Explorations this process ran that passed: [proved exhaustively, sampled].
tally_key = pytest.StashKey[list[int]]()


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.stash[tally_key] = [0, 0]
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


@pytest.fixture
def probe(request: pytest.FixtureRequest) -> Prober:
    """Explore many interleavings of workers calling the kata module under test."""
    config = request.config
    modules = [_module_under_test(request)]
    run = settings.of(config)
    stats_path = run.probe_stats

    def record(entry: dict[str, object]) -> None:
        if not entry.get("failed"):
            config.stash[tally_key][0 if entry.get("proved") else 1] += 1
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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line on what the passing explorations established: a proof or a sample."""
    proved, sampled = terminalreporter.config.stash.get(tally_key, [0, 0])
    if proved or sampled:
        budget = settings.of(terminalreporter.config).probe_budget
        terminalreporter.write_line(
            f"probe: {proved + sampled} explorations passed: {proved} proved (every distinct "
            f"interleaving checked), {sampled} on {budget} sampled schedules each"
        )


def _module_under_test(request: pytest.FixtureRequest) -> ModuleType:
    """The kata module the test exercises; a test fails here, rather than explore code in which
    the scheduler has no switch point and pass every schedule without having tested anything."""
    kata = impl.kata_of(request.node)
    if kata is None:
        pytest.fail(
            f"the probe fixture found no kata for {request.node.nodeid}: it traces the kata "
            "module of a test under katas/ (the one named in katas/curriculum.toml), and a test "
            "elsewhere would run its workers with no switch point at all and pass untested. "
            "Outside katas/, call plugins.probe.explore(..., modules=[the module]) yourself.",
            pytrace=False,
        )
    module = sys.modules.get(kata.module)
    if module is None:
        pytest.fail(
            f"the probe fixture found no imported module {kata.module!r} for kata {kata.name}: "
            f"import it in the test file (from {kata.module} import ...) before probing, so "
            "the scheduler knows which code to switch in.",
            pytrace=False,
        )
    return module


def _impl_label(config: pytest.Config) -> str:
    implementation = impl.implementation(config)
    return implementation.label if implementation else "-"
