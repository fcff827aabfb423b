"""Progress: tells the learner, at the end of a run, where each kata stands and what comes next.

A kata is *not started* while every test meets NotImplementedError, *in progress* while some
pass, *done* when all pass (then: where the reference is and which kata is next), and *broken*
when its module cannot be imported. Everything is counted from test reports, so it also works
when xdist runs the tests in other processes.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plugins import impl, settings
from plugins.curriculum import Curriculum, Kata

NOT_IMPLEMENTED_PROPERTY = "kata_not_implemented"
NOT_IMPLEMENTED = (
    "{where}: `{function}` is not implemented yet (it still raises NotImplementedError).\n"
    "Fill in its TODO(kata); this test needs it."
)


@dataclass
class KataTally:
    """The final outcome of each of one kata's tests in this run, by node id."""

    kata: Kata
    outcomes: dict[str, str] = field(default_factory=dict)
    not_implemented: set[str] = field(default_factory=set)
    broken: bool = False

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes.values() if o == outcome)

    @property
    def status(self) -> str:
        total, passed = len(self.outcomes), self.count("passed")
        if self.broken:
            return "broken"
        if total and self.count("skipped") == total:
            return "skipped"
        if total and passed + self.count("skipped") == total:
            return "done"
        failed = {n for n, o in self.outcomes.items() if o == "failed"}
        if passed == 0 and failed and failed <= self.not_implemented:
            return "not started"
        return "in progress"


tallies_key = pytest.StashKey[dict[str, KataTally]]()
thread_errors_key = pytest.StashKey[list[BaseException]]()


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.stash[tallies_key] = {}
    if not settings.of(config).verify:  # the self-check reports on its own
        config.pluginmanager.register(ReportRecorder(config), "kata-progress-recorder")


# -- run time --------------------------------------------------------------------------------


def _learner_frame(
    excinfo: pytest.ExceptionInfo[BaseException], item: pytest.Item
) -> traceback.FrameSummary | None:
    """The innermost frame of the exception that lies in the kata module under test."""
    implementation = impl.implementation(item.config)
    kata = impl.kata_of(item)
    if implementation is None or kata is None:
        return None
    module_file = implementation.module_path(kata).resolve()
    frames = [
        f for f in traceback.extract_tb(excinfo.tb) if Path(f.filename).resolve() == module_file
    ]
    return frames[-1] if frames else None


def _root_cause(error: BaseException) -> BaseException:
    """Follow `raise ... from` chains: a harness may wrap the learner's NotImplementedError."""
    seen = {id(error)}
    while error.__cause__ is not None and id(error.__cause__) not in seen:
        error = error.__cause__
        seen.add(id(error))
    return error


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    # A stub called inside a learner's thread raises there, not in the test; remember it so the
    # failure can still say which function is missing.
    errors = item.stash.setdefault(thread_errors_key, [])
    previous = threading.excepthook

    def remember(arguments: threading.ExceptHookArgs) -> None:
        if arguments.exc_value is not None:
            errors.append(arguments.exc_value)
        previous(arguments)

    threading.excepthook = remember
    try:
        return (yield)
    finally:
        threading.excepthook = previous


def _not_implemented_cause(item: pytest.Item, call: pytest.CallInfo[None]) -> BaseException | None:
    if call.excinfo is None:
        return None
    candidates = [call.excinfo.value, *item.stash.get(thread_errors_key, ())]
    for candidate in candidates:
        cause = _root_cause(candidate)
        if isinstance(cause, NotImplementedError):
            return cause
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    cause = _not_implemented_cause(item, call)
    if cause is not None:
        excinfo = pytest.ExceptionInfo.from_exception(cause)
        frame = _learner_frame(excinfo, item)
        if frame is not None:
            where = f"{impl.shown_path(Path(frame.filename))}:{frame.lineno}"
            report.longrepr = NOT_IMPLEMENTED.format(where=where, function=frame.name)
            report.user_properties.append((NOT_IMPLEMENTED_PROPERTY, True))
    return report


def _kata_of_report(config: pytest.Config, report: pytest.TestReport) -> Kata | None:
    implementation = impl.implementation(config)
    if implementation is None:
        return None
    return implementation.curriculum.kata_for_path(config.rootpath / report.nodeid.split("::")[0])


class ReportRecorder:
    """Records each report's outcome into the config's tallies (logreport gets no config)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        kata = _kata_of_report(self.config, report)
        if kata is None:
            return
        tally = self.config.stash[tallies_key].setdefault(kata.name, KataTally(kata))
        previous = tally.outcomes.get(report.nodeid)
        if report.when == "setup" or previous is None:
            tally.outcomes[report.nodeid] = report.outcome
        elif report.failed:  # a failing call or teardown fails the whole test
            tally.outcomes[report.nodeid] = "failed"
        elif report.when == "call" and previous == "passed":
            tally.outcomes[report.nodeid] = report.outcome
        if any(name == NOT_IMPLEMENTED_PROPERTY for name, _ in report.user_properties):
            tally.not_implemented.add(report.nodeid)
        if report.nodeid.endswith(f"::{impl.BROKEN_ITEM_NAME}"):
            tally.broken = True


# -- summary ---------------------------------------------------------------------------------


def _describe(tally: KataTally, curriculum: Curriculum, hints: int) -> list[str]:
    kata, total, passed = tally.kata, len(tally.outcomes), tally.count("passed")
    head = f"{kata.name} ({kata.title}): {tally.status}"
    lines: list[str]
    if tally.status == "broken":
        lines = [f"{head}: its module cannot be imported; fix the error above first."]
    elif tally.status == "skipped":
        lines = [f"{head}: this machine lacks what it needs (see the skip reasons above)."]
    elif tally.status == "done":
        after = curriculum.next_after(kata)
        reference = shown(curriculum.reference_path(kata))
        nxt = (
            f"Next kata: {after.name} (pytest katas/{after.name})."
            if after
            else "That was the last kata."
        )
        lines = [f"{head}: all {total} tests pass. Compare with the reference: {reference}. {nxt}"]
    elif tally.status == "not started":
        lines = [
            f"{head}: 0 of {total} tests pass; every test still meets NotImplementedError.",
            f"  Read {shown(curriculum.kata_dir(kata) / 'README.md')}, then fill in each "
            f"TODO(kata) in {shown(curriculum.stub_path(kata))}.",
        ]
    else:
        lines = [f"{head}: {passed} of {total} tests pass."]
    if tally.status in ("not started", "in progress"):
        shown_hints = kata.hints[:hints]
        lines += [f"  hint {n}: {text}" for n, text in enumerate(shown_hints, start=1)]
        if len(shown_hints) < len(kata.hints):
            lines.append(
                f"  Stuck? pytest katas/{kata.name} {settings.HINTS_OPTION}={len(shown_hints) + 1} "
                f"shows hint {len(shown_hints) + 1} of {len(kata.hints)}."
            )
    return lines


def shown(path: Path) -> str:
    return impl.shown_path(path)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    implementation = impl.implementation(config)
    tallies = config.stash.get(tallies_key, {})
    if implementation is None or not tallies:
        return
    terminalreporter.section(f"kata status ({implementation.label})")
    hints = settings.of(config).hints
    for tally in sorted(tallies.values(), key=lambda t: t.kata.order):
        for line in _describe(tally, implementation.curriculum, hints):
            terminalreporter.write_line(line)
