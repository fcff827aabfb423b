"""Records a run's test results as JSON, for the `kata` command's watch and grade.

Loaded by the command only (`pytest -p plugins.kata_cli_record`, with KATA_RECORD_FILE naming
the file): each test's outcome, the phase and exception that failed it, its message, captured
output and seconds, in the order they ran, and each kata's status as plugins/progress.py judged
it. It judges nothing itself.

It imports the other plugins only inside its hooks: `-p` loads it before conftest.py registers
them, and a plugin imported before that cannot have its asserts rewritten (pytest warns).
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from plugins.kata_cli import RECORD_VARIABLE


class Recorder:
    """What pytest reported, test by test (a class: logreport gets no config)."""

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config, self.path = config, path
        self.tests: dict[str, dict[str, Any]] = {}
        self.errors: dict[tuple[str, str], str] = {}  # (node id, phase) -> exception type

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.excinfo is not None:
            self.errors[(item.nodeid, call.when)] = call.excinfo.typename
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.tests.setdefault(report.nodeid, _new_entry(self.config, report.nodeid))
        entry["seconds"] += report.duration
        entry["output"] = report.capstdout + report.capstderr  # each phase holds the earlier
        if entry["outcome"] == "failed":
            return
        if report.failed or report.skipped or report.when == "setup":
            entry["outcome"], entry["phase"] = report.outcome, report.when
            entry["exception"] = self.errors.get((report.nodeid, report.when))
            entry["message"] = _message(report)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from plugins import progress

        katas = {
            name: {
                "status": tally.status,
                "passed": tally.count("passed"),
                "failed": tally.count("failed"),
                "skipped": tally.count("skipped"),
                "ran": tally.ran,
                "total": tally.total,
            }
            for name, tally in progress.tallies(self.config).items()
        }
        data = {"exitstatus": int(exitstatus), "tests": list(self.tests.values()), "katas": katas}
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
        temporary.replace(self.path)


def _new_entry(config: pytest.Config, nodeid: str) -> dict[str, Any]:
    from plugins import impl

    implementation = impl.implementation(config)
    kata = (
        implementation.curriculum.kata_for_path(config.rootpath / nodeid.split("::")[0])
        if implementation is not None
        else None
    )
    return {
        "nodeid": nodeid,
        "kata": kata.name if kata is not None else None,
        "outcome": "passed",
        "phase": None,
        "exception": None,
        "message": "",
        "output": "",
        "seconds": 0.0,
    }


def _message(report: pytest.TestReport) -> str:
    """The skip reason; for a failure the exception's own message where pytest has it (an
    assertion's explanation), else the whole report."""
    if report.passed:
        return ""
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple):
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and crash.message:
        return str(crash.message)
    return report.longreprtext


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(RECORD_VARIABLE)
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(Recorder(config, Path(path)), "kata-cli-recorder")
