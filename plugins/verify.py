"""Self-check: for every kata, the stub fails, the reference passes, every mutant is killed.

`pytest --kata-verify` collects one item per kata (plus one for the curriculum as a whole)
instead of the kata tests. Each kata item runs the kata's suite in fresh pytest processes,
against the stub, the reference and each mutant, and fails when any of them behaves wrongly.
The summary prints one table: kata x stub / reference / mutants killed / seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plugins import consistency, curriculum, hardware, impl, mutants, settings
from plugins.curriculum import Curriculum, Kata

TIMING_MARKER = "timing"
ROW_PROPERTY = "kata_verify_row"
# A backstop only: each kata test already fails within its own budget.
SUITE_TIMEOUT_SECONDS = 600
JOBS_VARIABLE = "KATA_VERIFY_JOBS"

rows_key = pytest.StashKey[list["Row"]]()


@dataclass
class Outcome:
    """How one run of a kata's suite against one implementation ended."""

    returncode: int
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    broken_module: bool = False
    seconds: float = 0.0  # the whole process, pytest's start included
    test_seconds: float = 0.0  # the tests alone, as junit reports them
    timed_out: bool = False
    failures: list[str] = field(default_factory=list)  # "test name: first line of its message"

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped


@dataclass
class Row:
    kata: str
    stub: str = ""
    reference: str = ""
    mutants: str = ""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    skipped: str = ""


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{TIMING_MARKER}: the test measures wall-clock speed, so the self-check never runs the "
        f"kata's variants side by side; e.g. @pytest.mark.{TIMING_MARKER}",
    )
    config.stash[rows_key] = []
    if settings.of(config).verify:
        config.pluginmanager.register(RowRecorder(config), "kata-verify-recorder")


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
        return self.path, None, self.name


class KataVerifyFile(pytest.File):
    def collect(self) -> list[pytest.Item]:
        curriculum_ = curriculum.for_config(self.config)
        assert curriculum_ is not None
        kata = curriculum_.kata_for_path(self.path)
        assert kata is not None
        return [KataVerifyItem.from_parent(self, name="verify", kata=kata)]


class VerifyFailure(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(f"- {p}" for p in problems))


class KataVerifyItem(CurriculumItem):
    """Runs one kata's suite against stub, reference and mutants."""

    def __init__(self, *, kata: Kata, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kata = kata

    def runtest(self) -> None:
        curriculum_ = curriculum.for_config(self.config)
        assert curriculum_ is not None
        row = Row(self.kata.name)
        try:
            absent = self._absent_backends()
            if absent:
                row.skipped = ", ".join(absent)
                pytest.skip(f"{self.kata.name}: cannot verify here: " + "; ".join(absent))
            row.problems = consistency.kata_problems(curriculum_, self.kata)
            if not row.problems:
                _verify_behaviour(self.config, curriculum_, self.kata, row)
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


def _jobs() -> int:
    return max(1, int(os.environ.get(JOBS_VARIABLE, os.cpu_count() or 1)))


def _verify_behaviour(config: pytest.Config, curriculum_: Curriculum, kata: Kata, row: Row) -> None:
    started = time.perf_counter()
    test_file = curriculum_.kata_dir(kata) / f"test_{kata.name}.py"
    found = mutants.load(curriculum_.mutants_path(kata))
    reference_source = curriculum_.reference_path(kata).read_text(encoding="utf-8")
    targets: dict[str, str] = {"stub": impl.STUB, "reference": impl.REFERENCE}
    for mutant in found:
        try:
            # Checked here: a mutant the reference no longer fits is a problem to name, not a run.
            mutant.apply(reference_source)
        except mutants.MutantError as error:
            row.problems.append(str(error))
            continue
        targets[f"mutant:{mutant.name}"] = f"{impl.MUTANT_PREFIX}{kata.name}/{mutant.name}"
    # Timing katas measure speed, so their runs must not share the CPU with each other.
    jobs = 1 if TIMING_MARKER in kata.markers else _jobs()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        common = settings.of(config).child_args()
        futures = {
            label: pool.submit(
                run_suite,
                config.rootpath,
                test_file,
                target,
                *common,
                *(["-x"] if label.startswith("mutant:") else []),
            )
            for label, target in targets.items()
        }
        outcomes = {label: future.result() for label, future in futures.items()}
    row.seconds = time.perf_counter() - started
    _judge(row, outcomes, found)


def run_suite(root: Path, test_file: Path, target: str, *extra: str) -> Outcome:
    """Run one kata's suite against one implementation in a fresh pytest process."""
    with tempfile.TemporaryDirectory(prefix="kata-verify-") as scratch:
        junit = Path(scratch) / "report.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(test_file),
            f"--kata-impl={target}",
            "-p",
            "no:cacheprovider",
            "-q",
            "--no-header",
            "-p",
            "no:randomly",
            f"--junitxml={junit}",
            "-o",
            "junit_family=xunit2",
            *extra,
        ]
        started = time.perf_counter()
        try:
            completed = subprocess.run(
                command,
                cwd=root,
                capture_output=True,
                text=True,
                timeout=SUITE_TIMEOUT_SECONDS,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return Outcome(returncode=-1, timed_out=True, seconds=SUITE_TIMEOUT_SECONDS)
        outcome = _parse_junit(junit, completed.returncode)
        outcome.seconds = time.perf_counter() - started
        return outcome


def _parse_junit(junit: Path, returncode: int) -> Outcome:
    outcome = Outcome(returncode=returncode)
    if not junit.is_file():
        return outcome
    root = ElementTree.parse(junit).getroot()
    outcome.test_seconds = sum(float(suite.get("time", 0)) for suite in root.iter("testsuite"))
    for case in root.iter("testcase"):
        children = {child.tag for child in case}
        if children & {"failure", "error"}:
            outcome.failed += 1
            problem = next(child for child in case if child.tag in ("failure", "error"))
            message = (problem.get("message") or "").strip().splitlines()
            outcome.failures.append(f"{case.get('name')}: {message[0] if message else '?'}")
            if case.get("name") == impl.BROKEN_ITEM_NAME:
                outcome.broken_module = True
        elif "skipped" in children:
            outcome.skipped += 1
        else:
            outcome.passed += 1
    return outcome


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
        elif outcome.timed_out or (outcome.returncode == 1 and outcome.failed):
            killed += 1
        else:
            row.problems.append(
                f"mutant {mutant.name!r} survived ({mutant.bug}): no test caught it"
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


# -- summary ---------------------------------------------------------------------------------


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = list(config.stash.get(rows_key, ()))
    if not settings.of(config).verify or not rows:
        return
    curriculum_ = curriculum.for_config(config)
    order = {k.name: k.order for k in curriculum_.katas} if curriculum_ else {}
    rows.sort(key=lambda r: order.get(r.kata, 0))
    header = ("kata", "stub", "reference", "mutants", "seconds")
    cells = [header] + [
        (
            r.kata,
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
