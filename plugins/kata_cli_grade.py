"""`kata grade DIR`: run the katas against a student's folder, or each folder of a class.

One pytest run per kata, each in a process of its own (as the self-check runs them: in one
process, a kata can change another's outcome, e.g. parallel_python's pp leaves celery_canvas's
app configured too early): `pytest katas/<k> --kata-impl=DIR` (what plugins/impl.py accepts for
a folder laid out like reference/), with plugins/kata_cli_record.py writing what it reports.
`--json` turns that into exercism's test-runner results.json (version 3) with per-kata fields
added; `--junit` is pytest's own `--junitxml`, the runs' suites gathered in one file. A kata
whose file the folder lacks is not run: it is reported missing, and the others are graded.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugins import kata_cli_store, parsing
from plugins.curriculum import Kata
from plugins.kata_cli import (
    EXIT_ERROR,
    EXIT_NOT_YET,
    EXIT_OK,
    RECORD_VARIABLE,
    CliError,
    Workspace,
)
from plugins.kata_cli_learn import katas_of_track
from plugins.kata_cli_store import ProgressFile

RESULTS_VERSION = 3
OUTPUT_LIMIT = 500  # exercism's cap on a test's output
OUTPUT_TRUNCATED = "\n[output truncated to 500 characters]"
MESSAGE_LIMIT = 65535  # exercism's cap on the top-level message


@dataclass
class Submission:
    """One student's folder and what grading it found."""

    name: str
    folder: Path
    present: list[Kata]
    missing: list[Kata]


def _holds(folder: Path, kata: Kata) -> bool:
    return (folder / kata.name / f"{kata.module}.py").is_file()


def submissions(ws: Workspace, folder: Path, katas: list[Kata]) -> list[Submission]:
    """`folder` as one student's submission, or each of its sub-folders that is one."""

    def submission(path: Path) -> Submission:
        present = [k for k in katas if _holds(path, k)]
        return Submission(path.name, path, present, [k for k in katas if k not in present])

    everything = list(ws.curriculum.katas)
    if any(_holds(folder, k) for k in everything):
        return [submission(folder)]
    students = [
        path
        for path in sorted(folder.iterdir())
        if path.is_dir() and any(_holds(path, k) for k in everything)
    ]
    if not students:
        raise CliError(
            f"{folder} holds neither kata folders (<kata>/<kata>.py, laid out like reference/) "
            "nor students' folders holding them."
        )
    return [submission(path) for path in students]


@dataclass
class KataRun:
    """One kata's pytest run against a student's folder."""

    kata: Kata
    record: dict[str, Any] | None  # what plugins/kata_cli_record.py wrote (None: nothing)
    output: str
    junit: Path | None


def run_kata(ws: Workspace, folder: Path, kata: Kata, scratch: Path, junit: bool) -> KataRun:
    record, report = scratch / f"{kata.name}.json", scratch / f"{kata.name}.xml"
    argv = [sys.executable, "-m", "pytest", f"katas/{kata.name}", f"--kata-impl={folder}"]
    argv += ["-p", "plugins.kata_cli_record", "-q", "-p", "no:cacheprovider"]
    argv += [f"--junitxml={report}"] if junit else []
    env = os.environ | {RECORD_VARIABLE: str(record), kata_cli_store.SAVE_VARIABLE: "0"}
    done = subprocess.run(argv, cwd=ws.root, env=env, capture_output=True, text=True, check=False)
    found = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None
    return KataRun(kata, found, done.stdout + done.stderr, report if junit else None)


def run_submission(
    ws: Workspace, submission: Submission, junit: Path | None, jobs: int
) -> list[KataRun]:
    """Each kata the student has, in a pytest process of its own, `jobs` at a time."""
    with tempfile.TemporaryDirectory(prefix="kata-grade-") as scratch:
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            runs = list(
                pool.map(
                    lambda k: run_kata(ws, submission.folder, k, Path(scratch), bool(junit)),
                    submission.present,
                )
            )
        if junit is not None:
            gather_junit([run.junit for run in runs if run.junit], junit)
    return runs


def gather_junit(parts: list[Path], into: Path) -> None:
    """The <testsuite> of each run's pytest --junitxml report, in one <testsuites>."""
    gathered = ElementTree.Element("testsuites")
    for part in parts:
        try:
            root = ElementTree.parse(part).getroot()
        except (OSError, ElementTree.ParseError):
            continue
        gathered.extend([root] if root.tag == "testsuite" else list(root))
    ElementTree.ElementTree(gathered).write(into, encoding="utf-8", xml_declaration=True)


def _test_sources(ws: Workspace, kata: Kata) -> dict[str, str]:
    """Each test function's source in the kata's test file, by name (exercism's test_code)."""
    path = ws.curriculum.kata_dir(kata) / f"test_{kata.name}.py"
    try:
        source = path.read_text(encoding="utf-8")
        tree = parsing.parse(source, str(path))
    except (OSError, SyntaxError):
        return {}
    return {
        node.name: ast.get_source_segment(source, node) or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _capped(text: str) -> str | None:
    if not text:
        return None
    if len(text) <= OUTPUT_LIMIT:
        return text
    return text[: OUTPUT_LIMIT - len(OUTPUT_TRUNCATED)] + OUTPUT_TRUNCATED


def _test_status(test: dict[str, Any]) -> str:
    if test["outcome"] == "passed":
        return "pass"
    assertion = test["phase"] == "call" and test["exception"] in ("AssertionError", "Failed")
    return "fail" if assertion else "error"


def _hints_used(folder: Path) -> dict[str, int]:
    """Hint levels from the student's own progress file, where they handed it in."""
    file = ProgressFile(folder / kata_cli_store.DEFAULT_FILE_NAME)
    if not file.path.is_file():
        return {}
    return {name: record.hints_seen for name, record in file.load().items()}


def _entry(
    name: str, kata: str, status: str, message: str | None, output: str | None, code: str | None
) -> dict[str, Any]:
    return {"name": name, "kata": kata, "status": status, "message": message,
            "output": output, "test_code": code}  # fmt: skip


def _kata_fields(
    status: str, passed: int, total: int, seconds: float, hints: int | None
) -> dict[str, Any]:
    return {"status": status, "passed": passed, "total": total, "seconds": round(seconds, 3),
            "hints_used": hints}  # fmt: skip


def results(ws: Workspace, submission: Submission, runs: list[KataRun]) -> dict[str, Any]:
    """exercism's results.json (version 3), plus `katas`: status, seconds, hints per kata."""
    hints, tests, katas = _hints_used(submission.folder), [], {}
    for kata in submission.missing:
        shown = f"{submission.name}/{kata.name}/{kata.module}.py"
        why = (
            f"{shown} does not exist: the folder must mirror reference/ (<folder>/<kata>/<kata>.py)"
        )
        tests.append(
            _entry(f"{kata.name} > kata module present", kata.name, "error", why, None, None)
        )
        katas[kata.name] = _kata_fields("missing", 0, 0, 0.0, hints.get(kata.name))
    reported = 0
    for run in runs:
        kata, record = run.kata, run.record
        found = (record or {}).get("katas", {}).get(kata.name)
        if record is None or found is None:
            said = f"pytest did not report; its last output:\n{run.output[-4000:]}"
            tests.append(_entry(f"{kata.name} > pytest run", kata.name, "error", said, None, None))
            katas[kata.name] = _kata_fields("error", 0, 0, 0.0, hints.get(kata.name))
            continue
        reported += 1
        sources, seconds = _test_sources(ws, kata), 0.0
        for test in record["tests"]:
            seconds += test["seconds"]
            if test["outcome"] == "skipped":  # exercism has no skip: counted in `katas` only
                continue
            name, status = test["nodeid"].split("::", 1)[-1], _test_status(test)
            tests.append(_entry(
                f"{kata.name} > {name}", kata.name, status,
                test["message"] if status != "pass" else None, _capped(test["output"]),
                sources.get(name.split("[")[0]),
            ))  # fmt: skip
        katas[kata.name] = _kata_fields(
            found["status"], found["passed"], found["total"], seconds, hints.get(kata.name)
        )
    katas = {k.name: katas[k.name] for k in ws.curriculum.katas if k.name in katas}
    status = "fail" if any(t["status"] != "pass" for t in tests) else "pass"
    message: str | None = None
    if runs and not reported:  # exercism's error: no test was executed
        status, message = "error", str(tests[-1]["message"])[:MESSAGE_LIMIT]
    return {"version": RESULTS_VERSION, "status": status, "message": message, "tests": tests,
            "katas": katas}  # fmt: skip


def _junit_path(junit: str | None, submission: Submission, several: bool) -> Path | None:
    if not junit:
        return None
    path = Path(junit).resolve()
    return path.with_name(f"{path.stem}-{submission.name}{path.suffix}") if several else path


def _summary(results_: dict[str, Any]) -> dict[str, Any]:
    katas = results_["katas"].values()
    return {
        "status": results_["status"],
        "done": sum(k["status"] == "done" for k in katas),
        "missing": sum(k["status"] == "missing" for k in katas),
        "katas": len(results_["katas"]),
        "tests_passed": sum(t["status"] == "pass" for t in results_["tests"]),
        "tests": len(results_["tests"]),
    }


def cmd_grade(ws: Workspace, args: argparse.Namespace) -> int:
    folder = Path(args.folder).resolve()
    if not folder.is_dir():
        raise CliError(f"{args.folder} is not a folder")
    katas = katas_of_track(ws, args.track)
    if args.kata:
        chosen = {ws.kata(name).name for name in args.kata}
        katas = [k for k in katas if k.name in chosen]
    students = submissions(ws, folder, katas)
    several = len(students) > 1 or folder != students[0].folder
    graded: dict[str, dict[str, Any]] = {}
    for student in students:
        started = time.perf_counter()
        runs = run_submission(ws, student, _junit_path(args.junit, student, several), args.jobs)
        seconds = time.perf_counter() - started
        graded[student.name] = results(ws, student, runs)
        summary = _summary(graded[student.name])
        ws.say(f"{student.name}: {summary['status']}, {summary['done']} of {summary['katas']} "
               f"katas done, {summary['missing']} missing, {summary['tests_passed']} of "
               f"{summary['tests']} tests pass ({seconds:.1f} s)")  # fmt: skip
    if not several:
        _kata_table(ws, graded[students[0].name])
    if args.json:
        data = (
            graded[students[0].name]
            if not several
            else {"students": graded, "summary": {n: _summary(r) for n, r in graded.items()}}
        )
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        ws.say(f"Results: {args.json}")
    statuses = {r["status"] for r in graded.values()}
    return EXIT_ERROR if "error" in statuses else EXIT_NOT_YET if "fail" in statuses else EXIT_OK


def _kata_table(ws: Workspace, results_: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("kata", "status", "passed", "seconds", "hints"):
        table.add_column(column)
    for name, kata in results_["katas"].items():
        hints = "-" if kata["hints_used"] is None else str(kata["hints_used"])
        table.add_row(name, kata["status"], f"{kata['passed']}/{kata['total']}",
                      f"{kata['seconds']:.2f}", hints)  # fmt: skip
    ws.console.print(table)
