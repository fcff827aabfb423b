"""Self-check: for every kata, the stub fails, the reference passes, every mutant is killed.

`pytest --kata-verify` collects one item per kata (plus one for the curriculum as a whole)
instead of the kata tests. Before the first item runs, every kata's runs (its suite against the
stub, the reference and each mutant, each in a process of its own) go to one pool of job slots
(plugins/verify_schedule.py), warm workers by default (plugins/verify_runs.py); each kata item
waits for its own runs, showing the pool's progress (plugins/verify_progress.py), and fails
when any of them behaves wrongly. The summary prints one table: kata x stub / reference /
mutants killed / seconds, and the total.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plugins import (
    budgets,
    consistency,
    contract,
    curriculum,
    hardware,
    mutants,
    settings,
    verify_admission,
    verify_changed,
    verify_plan,
    verify_runs,
)
from plugins.curriculum import Curriculum, Kata
from plugins.verify_progress import ProgressDisplay
from plugins.verify_runs import Outcome, cold_runner, is_killed

TIMING_MARKER = "timing"
ROW_PROPERTY = "kata_verify_row"
POLL_SECONDS = 0.2

rows_key = pytest.StashKey[list["Row"]]()
display_key = pytest.StashKey[ProgressDisplay]()
started_key = pytest.StashKey[float]()


@dataclass
class Row:
    kata: str
    stub: str = ""
    reference: str = ""
    mutants: str = ""
    seconds: float = 0.0  # the sum of the kata's runs, each a whole process
    runs: int = 0
    problems: list[str] = field(default_factory=list)
    skipped: str = ""
    clauses: int = 0  # the contract's numbered clauses (plugins/contract.py)
    budget_kills: list[str] = field(default_factory=list)  # "mutant (test)": killed by a budget


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{TIMING_MARKER}: the test measures wall-clock speed, so the self-check runs it only "
        f"with nothing beside it (in a kata's manifest `markers`: every test of the kata); "
        f"e.g. @pytest.mark.{TIMING_MARKER}",
    )
    config.stash[rows_key] = []
    config.stash[verify_plan.notes_key] = []
    config.stash[started_key] = time.monotonic()
    if settings.of(config).verify:
        config.pluginmanager.register(RowRecorder(config), "kata-verify-recorder")
        _children_judge_only(config)


def _children_judge_only(config: pytest.Config) -> None:
    """Every child run (forked or started after this) inherits KATA_VERDICT_ONLY=1."""
    inherited = os.environ.get(settings.VERDICT_ONLY_VARIABLE)
    os.environ[settings.VERDICT_ONLY_VARIABLE] = "1"

    def restore() -> None:
        if inherited is None:
            os.environ.pop(settings.VERDICT_ONLY_VARIABLE, None)
        else:
            os.environ[settings.VERDICT_ONLY_VARIABLE] = inherited

    config.add_cleanup(restore)


# -- collection ------------------------------------------------------------------------------


def _verifying(config: pytest.Config) -> Curriculum | None:
    return curriculum.for_config(config) if settings.of(config).verify else None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(
    module_path: Path, parent: pytest.Collector
) -> pytest.Collector | None:
    curriculum_ = _verifying(parent.config)
    if curriculum_ is None:
        return None
    kata = curriculum_.kata_for_path(module_path)
    if kata is None or module_path.name != f"test_{kata.name}.py":
        return None
    collector: pytest.Collector = KataVerifyFile.from_parent(parent, path=module_path)
    return collector


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    curriculum_ = _verifying(parent.config)
    if curriculum_ is None or file_path != curriculum_.root / "katas" / curriculum.MANIFEST_NAME:
        return None
    collector: pytest.Collector = CurriculumFile.from_parent(parent, path=file_path)
    return collector


class CurriculumFile(pytest.File):
    def collect(self) -> list[pytest.Item]:
        return [CurriculumItem.from_parent(self, name="curriculum is consistent")]


class CurriculumItem(pytest.Item):
    def runtest(self) -> None:
        curriculum_ = curriculum.for_config(self.config)
        assert curriculum_ is not None
        problems = consistency.curriculum_problems(curriculum_)
        if problems:
            raise VerifyFailure(problems)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: object = None
    ) -> str:
        if isinstance(excinfo.value, VerifyFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # Line 0, not None: pytest asserts a line when it reports the skip of a kata whose
        # backend is absent (an INTERNALERROR before).
        return self.path, 0, self.name


class KataVerifyFile(pytest.File):
    def collect(self) -> list[pytest.Item]:
        curriculum_ = curriculum.for_config(self.config)
        assert curriculum_ is not None
        kata = curriculum_.kata_for_path(self.path)
        assert kata is not None
        return [KataVerifyItem.from_parent(self, name="verify", kata=kata)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_settings = settings.of(config)
    if run_settings.verify_first:
        # A child run of the self-check: the test that killed this mutant last time goes first.
        items.sort(key=lambda item: item.name != run_settings.verify_first)
    if run_settings.verify and run_settings.verify_changed:
        changed = verify_changed.changed_katas(config.rootpath, run_settings.verify_changed)
        if changed is not None:
            unchanged = [
                item
                for item in items
                if isinstance(item, KataVerifyItem) and item.kata.name not in changed
            ]
            if unchanged:
                config.hook.pytest_deselected(items=unchanged)
                items[:] = [item for item in items if item not in unchanged]


class VerifyFailure(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(f"- {p}" for p in problems))


class KataVerifyItem(CurriculumItem):
    """Verifies one kata: its suite against stub, reference and mutants, run by the pool."""

    def __init__(self, *, kata: Kata, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kata = kata
        self.planned = False
        self.problems: list[str] = []  # found before any run: no runs are made
        self.mutant_problems: list[str] = []  # mutants that do not fit: not run
        self.futures: dict[str, Future[Outcome]] = {}

    def plan(self) -> None:
        """Queue this kata's runs on the pool (once; a kata that cannot run here queues none)."""
        if self.planned:
            return
        self.planned = True
        try:
            if self._absent_backends():
                return
        except pytest.fail.Exception:
            return  # runtest reports it
        curriculum_ = curriculum.for_config(self.config)
        assert curriculum_ is not None
        self.problems = consistency.kata_problems(curriculum_, self.kata)
        if self.problems:
            return
        runs, self.mutant_problems = verify_plan.runs(
            self.config, curriculum_, self.kata, TIMING_MARKER in self.kata.markers
        )
        self.futures = verify_plan.scheduler(self.config).submit(runs)

    def runtest(self) -> None:
        curriculum_ = curriculum.for_config(self.config)
        assert curriculum_ is not None
        row = Row(self.kata.name)
        stub = curriculum_.stub_path(self.kata)
        if stub.is_file():
            row.clauses = len(contract.clauses(contract.module_docstring(stub)))
        try:
            absent = self._absent_backends()
            if absent:
                row.skipped = ", ".join(absent)
                pytest.skip(f"{self.kata.name}: cannot verify here: " + "; ".join(absent))
            self.plan()
            row.problems = list(self.problems)
            if not row.problems:
                outcomes = _outcomes(self, self.futures)
                row.problems += self.mutant_problems
                row.runs = len(outcomes)
                row.seconds = sum(outcome.seconds for outcome in outcomes.values())
                _judge(row, outcomes, mutants.load(curriculum_.mutants_path(self.kata)))
            if row.problems:
                raise VerifyFailure(row.problems)
        finally:
            # Plain data, so the row survives xdist's report serialization.
            self.user_properties.append((ROW_PROPERTY, asdict(row)))

    def _absent_backends(self) -> list[str]:
        absent = []
        for marker in self.kata.markers:
            if marker not in hardware.BACKENDS:
                continue
            verdict = hardware.skip_or_fail_reason(self.config, marker)
            if verdict is not None:
                required, message = verdict
                if required:
                    pytest.fail(message, pytrace=False)
                absent.append(message)
        return absent


# -- run time --------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Plan every kata's runs before the first item runs, so the pool sees all of them (not
    under xdist: there each worker plans its own items when it reaches them)."""
    config = session.config
    if not settings.of(config).verify or session.testsfailed or config.option.collectonly:
        return
    if config.pluginmanager.has_plugin("dsession") or hasattr(config, "workerinput"):
        return
    for item in session.items:
        if isinstance(item, KataVerifyItem):
            item.plan()


def _outcomes(item: KataVerifyItem, futures: dict[str, Future[Outcome]]) -> dict[str, Outcome]:
    """Wait for the kata's runs, showing the pool's progress meanwhile."""
    config = item.config
    if display_key not in config.stash:
        config.stash[display_key] = ProgressDisplay(config, verify_plan.scheduler(config))
    display = config.stash[display_key]
    try:
        while True:
            _, pending = wait(futures.values(), timeout=POLL_SECONDS)
            if not pending:
                break
            display.tick(item.kata.name)
    finally:
        display.done_waiting(item)
    return {label: future.result() for label, future in futures.items()}


def run_suite(root: Path, test_file: Path, target: str, *extra: str) -> Outcome:
    """One run, the cold way (for tools that run a suite now and then: the probe benchmark)."""
    return verify_runs.run_suite(cold_runner(root), test_file, target, *extra)


def _judge(row: Row, outcomes: dict[str, Outcome], found: list[mutants.Mutant]) -> None:
    reference, stub = outcomes["reference"], outcomes["stub"]
    if reference.returncode == 0 and reference.passed and not reference.failed:
        row.reference = f"passes {reference.passed}/{reference.total}"
    else:
        row.reference = (
            f"WRONG: {reference.failed} of {reference.total} fail (rc {reference.returncode})"
        )
        row.problems.append(
            f"the reference must pass every test; run: pytest katas/{row.kata} --kata-impl=reference"
        )
        row.problems += [f"  reference failed {failure}" for failure in reference.failures]
    if stub.passed == 0 and stub.failed and stub.returncode == 1:
        row.stub = f"fails {stub.failed}/{stub.total}"
    else:
        row.stub = f"WRONG: {stub.passed} of {stub.total} pass (rc {stub.returncode})"
        row.problems.append(
            f"every test must fail on the stub, but {stub.passed} passed: such a test cannot catch a missing solution"
        )
    killed = 0
    for mutant in found:
        outcome = outcomes.get(f"mutant:{mutant.name}")
        if outcome is None:
            continue
        if outcome.broken_module:
            row.problems.append(
                f"mutant {mutant.name!r} does not even import; a mutant must be a plausible program"
            )
        elif is_killed(outcome):
            killed += 1
            if outcome.failures and budgets.HEADLINE_MARK in outcome.failures[0]:
                row.budget_kills.append(f"{mutant.name} ({outcome.first_failed})")
        elif outcome.returncode == 0 and outcome.passed and not outcome.skipped:
            row.problems.append(
                f"mutant {mutant.name!r} survived ({mutant.bug}): no test caught it"
            )
        else:
            # Skipped tests, no tests, or a run that crashed: not a survivor, a broken run.
            row.problems.append(
                f"mutant {mutant.name!r} was not judged: its run ended with exit code "
                f"{outcome.returncode}, {outcome.passed} passed, {outcome.failed} failed, "
                f"{outcome.skipped} skipped; see why with: pytest katas/{row.kata} "
                f"--kata-impl=mutant:{row.kata}/{mutant.name}"
            )
    row.mutants = f"{killed}/{len(found)} killed"
    if killed != len(found):
        row.mutants = "WRONG: " + row.mutants


class RowRecorder:
    """Gathers the rows from reports (rows travel as user properties, so xdist works too)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.when == "setup" and report.skipped):
            return
        for name, value in report.user_properties:
            if name == ROW_PROPERTY and isinstance(value, dict):
                self.config.stash[rows_key].append(Row(**value))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the pool (cancelling what an early stop left queued) and remember this verify's
    durations and killers for the next one."""
    scheduler = session.config.stash.get(verify_plan.scheduler_key, None)
    if scheduler is not None:
        scheduler.close()
        scheduler.history.save()


# -- summary ---------------------------------------------------------------------------------


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = list(config.stash.get(rows_key, ()))
    if not settings.of(config).verify or not rows:
        return
    curriculum_ = curriculum.for_config(config)
    order = {k.name: k.order for k in curriculum_.katas} if curriculum_ else {}
    rows.sort(key=lambda r: order.get(r.kata, 0))
    header = ("kata", "clauses", "stub", "reference", "mutants", "seconds")
    cells = [header] + [
        (
            r.kata,
            str(r.clauses),
            r.stub or ("skipped" if r.skipped else "-"),
            r.reference or "-",
            r.mutants or "-",
            f"{r.seconds:.1f}",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    terminalreporter.section("kata verification")
    for n, row in enumerate(cells):
        terminalreporter.write_line(
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        )
        if n == 0:
            terminalreporter.write_line("  ".join("-" * w for w in widths))
    for r in rows:
        if r.skipped:
            terminalreporter.write_line(f"{r.kata}: not verified here: {r.skipped}")
    wall = time.monotonic() - config.stash[started_key]
    terminalreporter.write_line(
        f"total: {sum(r.runs for r in rows)} runs, {sum(r.seconds for r in rows):.1f} s of runs "
        f"on {verify_plan.jobs()} job slots, up to {verify_admission.max_runs(verify_plan.jobs())} "
        f"runs at once ({verify_plan.way()}), {wall:.1f} s wall"
    )
    budget_kills = [f"{r.kata}: {', '.join(r.budget_kills)}" for r in rows if r.budget_kills]
    if budget_kills:
        terminalreporter.write_line(
            f"killed only when a test's time budget ran out ({sum(len(r.budget_kills) for r in rows)} "
            f"mutants; right for a kata about hangs, elsewhere a bounded wait should fail sooner "
            f"with a sentence):"
        )
        for line in budget_kills:
            terminalreporter.write_line(f"  {line}")
    for note in config.stash[verify_plan.notes_key]:
        terminalreporter.write_line(f"note: {note}")
