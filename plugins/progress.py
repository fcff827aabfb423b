"""Progress: tells the learner, at the end of a run, where each kata stands and what comes next.

A kata is *not started* while every test meets NotImplementedError, *in progress* while some
pass, *done* when all pass (then: where the reference is and which kata is next), and *broken*
when its module cannot be imported. Outcomes are counted from test reports, so it also works
when xdist runs the tests in other processes.

Status is judged on the kata's whole suite: a run in which some of its tests did not run (`-k`,
`-m`, a node id, `--deselect`, `--lf`, `-x` stopping early, Ctrl-C) says *partial run: k of n
tests ran*, never *done*. n is counted at collection, in this run: every test item that the
collectors of the kata's test module produced, whether or not it was then selected. A node id
(`test_locks.py::test_x`) still makes pytest collect the whole module to find the test, and
`-k`/`-m` deselect from the full list, so n needs no second collection and no saved state; a
test class that a node id passed over (pytest never opens it) is opened here to count its tests.
Under xdist the workers collect: each sends its counts back in `workeroutput`.
"""

from __future__ import annotations

import functools
import threading
import traceback
from collections.abc import Generator
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
PARTIAL = "partial run"
WORKER_OUTPUT_KEY = "kata_suite_sizes"  # xdist: what a worker counted, sent in workeroutput


@dataclass
class KataTally:
    """The final outcome of each of one kata's tests in this run, by node id."""

    kata: Kata
    outcomes: dict[str, str] = field(default_factory=dict)
    not_implemented: set[str] = field(default_factory=set)
    broken: bool = False
    suite: int | None = None  # tests in the kata's whole suite (None: not counted in this run)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes.values() if o == outcome)

    @property
    def ran(self) -> int:
        return len(self.outcomes)

    @property
    def total(self) -> int:
        return max(self.suite or 0, self.ran)

    @property
    def partial(self) -> bool:
        """Whether some of the kata's tests did not run in this run."""
        return self.ran < self.total

    @property
    def status(self) -> str:
        total, passed = len(self.outcomes), self.count("passed")
        if self.broken:
            return "broken"
        if self.partial:
            return PARTIAL
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
collected_key = pytest.StashKey[dict[str, set[str]]]()  # kata -> node ids of its whole suite
unopened_key = pytest.StashKey[dict[str, pytest.Collector]]()  # classes pytest passed over
worker_sizes_key = pytest.StashKey[dict[str, int]]()  # kata -> suite size, from xdist workers


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.stash[tallies_key] = {}
    if not settings.of(config).verify:  # the self-check reports on its own
        config.pluginmanager.register(ReportRecorder(config), "kata-progress-recorder")


# -- collection ------------------------------------------------------------------------------


def _counting(config: pytest.Config) -> bool:
    return impl.implementation(config) is not None and not settings.of(config).verify


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    # Every collector pytest opens passes here, also those it opens only to find a node id's
    # test (their collect reports are not logged); their results hold every test they found.
    report = yield
    config = collector.config
    implementation = impl.implementation(config)
    if implementation is None or not _counting(config):
        return report
    unopened = config.stash.setdefault(unopened_key, {})
    unopened.pop(collector.nodeid, None)
    collected = config.stash.setdefault(collected_key, {})
    for node in report.result if report.passed else ():
        kata = implementation.curriculum.kata_for_path(node.path)
        if kata is None:
            continue
        if isinstance(node, pytest.Item):
            collected.setdefault(kata.name, set()).add(node.nodeid)
        elif node.getparent(pytest.Module) is not None:  # a class: opened later, or never
            unopened[node.nodeid] = node
    return report


def _open(collector: pytest.Collector, into: set[str]) -> None:
    """Add the node ids of the tests under a class that pytest passed over (a node id named
    another test): it was never collected, so collecting it here registers nothing twice."""
    try:
        children = collector.collect()
    except Exception:  # pytest would have reported it had it opened the class; not our call
        return
    for child in children:
        if isinstance(child, pytest.Item):
            into.add(child.nodeid)
        elif isinstance(child, pytest.Collector):
            _open(child, into)


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if not _counting(config):
        return
    implementation = impl.implementation(config)
    collected = config.stash.setdefault(collected_key, {})
    unopened = config.stash.get(unopened_key, {})
    while unopened and implementation is not None:
        _, node = unopened.popitem()
        kata = implementation.curriculum.kata_for_path(node.path)
        if kata is not None:
            _open(node, collected.setdefault(kata.name, set()))
    workeroutput = getattr(config, "workeroutput", None)  # set on xdist workers only
    if workeroutput is not None:
        workeroutput[WORKER_OUTPUT_KEY] = {name: len(ids) for name, ids in collected.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist's controller collects nothing: its workers send their counts."""
    sizes = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY, {})
    known = node.config.stash.setdefault(worker_sizes_key, {})
    for name, size in sizes.items():
        known[name] = max(known.get(name, 0), int(size))


def tallies(config: pytest.Config) -> dict[str, KataTally]:
    """This run's tallies, by kata, each knowing the size of its kata's whole suite."""
    found = config.stash.get(tallies_key, {})
    collected = config.stash.get(collected_key, {})
    from_workers = config.stash.get(worker_sizes_key, {})
    for name, tally in found.items():
        sizes = [len(collected[name])] if name in collected else []
        sizes += [from_workers[name]] if name in from_workers else []
        tally.suite = max(sizes) if sizes else None
    return found


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
    found = None
    # Walked, not extracted: extracting reads every frame's source line, which only the last
    # frame found needs (a fifth of a stub run's time went there, profiled).
    for frame, lineno in traceback.walk_tb(excinfo.tb):
        if _same_file(frame.f_code.co_filename, module_file):
            found = traceback.FrameSummary(frame.f_code.co_filename, lineno, frame.f_code.co_name)
    return found


@functools.lru_cache(maxsize=1024)
def _same_file(filename: str, module_file: Path) -> bool:
    return Path(filename).resolve() == module_file


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


def _ran(tally: KataTally) -> str:
    """What happened to the tests that ran: "1 passed, 2 failed"."""
    counts = [(tally.count(o), o) for o in ("passed", "failed", "skipped")]
    return ", ".join(f"{n} {outcome}" for n, outcome in counts if n) or "none finished"


def _describe(tally: KataTally, curriculum: Curriculum, hints: int) -> list[str]:
    kata, total, passed = tally.kata, len(tally.outcomes), tally.count("passed")
    head = f"{kata.name} ({kata.title}): {tally.status}"
    lines: list[str]
    if tally.status == PARTIAL:
        lines = [
            f"{head}: {tally.ran} of {tally.total} tests ran ({_ran(tally)}). "
            f"The kata's status needs all of them: pytest katas/{kata.name}"
        ]
    elif tally.status == "broken":
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
    unsolved = tally.status != PARTIAL or tally.count("passed") < tally.ran
    if tally.status in ("not started", "in progress", PARTIAL) and unsolved:
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
    found = tallies(config)
    if implementation is None or not found:
        return
    terminalreporter.section(f"kata status ({implementation.label})")
    hints = settings.of(config).hints
    for tally in sorted(found.values(), key=lambda t: t.kata.order):
        for line in _describe(tally, implementation.curriculum, hints):
            terminalreporter.write_line(line)
