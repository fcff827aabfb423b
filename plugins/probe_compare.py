"""Compare the controlled scheduler with frontrun on five bug/fix pairs (issue 17).

    python -m plugins.probe_compare [--repeat 5] [--timeout 5] [--json FILE]
                                    [--pair NAME ...] [--tools ours,dpor,dpor-unbounded,random]

The pairs live in `plugins/probe_compare_cases/`: lost update; check-then-act; lock-order
deadlock; a 2-producer/2-consumer `threading.Condition` buffer with `if` and `notify`; a bug
that needs three preemptions; and the same buffer with two items per worker, too big to prove.
On each broken version the script measures the schedules run up to and including the first
failing one, the seconds until the tool returned its report (min/median over --repeat runs),
whether that report shows a readable interleaving (source lines of the pair's module) and
whether its text is the same on every run. On each fixed
version it measures the seconds to finish the budget (or to prove it) and the verdict.

How each tool is invoked:

- ours, in this process: `plugins.probe.explore(setup, workers, check, modules=[pair's
  module], budget=250, seed=0, exhaustive=5000, exhaustive_s=5)`: every distinct
  interleaving first (partial-order reduced), and the default portfolio of 250 seeded
  schedules if that does not finish. Its time includes shrinking the failing schedule to the
  fewest preemptions; the "preemptions" column is the count its report shows, next to the
  fewest that break the pair (`MIN_PREEMPTIONS`, reasoned out in each module's docstring).
- frontrun (0.7.0), in one subprocess per pair, version and mode, under its CLI wrapper:
  `python -m frontrun.cli python -m plugins.probe_compare --frontrun-child PAIR VERSION MODE`.
  The wrapper sets FRONTRUN_ACTIVE=1 (and LD_PRELOAD=libfrontrun_io.so); without it, or the
  pytest plugin's `--frontrun-patch-locks`, `frontrun.explore` raises RuntimeError outside
  pytest and skips inside it. The child calls `frontrun.explore(setup=, workers=[...],
  invariant=, total_timeout=TIMEOUT, **MODE)` with MODE `dpor` = `strategy="dpor"` (its default
  preemption_bound=2), `dpor-unbounded` = `strategy="dpor", preemption_bound=None`, `random` =
  `strategy="random", max_attempts=200, seed=0`. Every other option is frontrun's default, so
  a failure's time includes its 10 replays of the counterexample (`reproduce_on_failure=10`).
  The child prints one JSON line per repetition; the parent kills its process group when a
  repetition goes TIMEOUT + 10 s without an answer, and stops a cell at its first inconclusive
  repetition (both DPOR and seeded random are deterministic, so the rest would repeat it).

Verdicts: broken versions are "found", "MISSED" (the tool reported a pass) or "inconclusive";
fixed ones "pass" (sampled, or DPOR within its preemption bound), "proved" (ours or unbounded
DPOR explored every distinct interleaving), "FALSE ALARM" or "inconclusive". Inconclusive means
the tool said so, ran out of TIMEOUT seconds, or was killed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from plugins.probe import ProbeFailure, explore
from plugins.probe_compare_cases import PAIRS, PAIRS_BY_NAME, Pair

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 250
SEED = 0
# Ours first tries every distinct interleaving: up to EXHAUSTIVE_RUNS runs and
# EXHAUSTIVE_S seconds, then samples BUDGET schedules.
EXHAUSTIVE_RUNS = 5000
EXHAUSTIVE_S = 2.0
RANDOM_ATTEMPTS = 200
FRONTRUN_MODES: dict[str, dict[str, Any]] = {
    "dpor": {"strategy": "dpor"},
    "dpor-unbounded": {"strategy": "dpor", "preemption_bound": None},
    "random": {"strategy": "random", "max_attempts": RANDOM_ATTEMPTS, "seed": SEED},
}
TOOLS = ("ours", *FRONTRUN_MODES)
TOOL_LABELS = {
    "ours": f"ours (exhaustive, else portfolio {BUDGET})",
    "dpor": "frontrun DPOR (bound 2)",
    "dpor-unbounded": "frontrun DPOR (no bound)",
    "random": f"frontrun random ({RANDOM_ATTEMPTS})",
}
# Seconds a frontrun child may take beyond --timeout for one repetition (its replays of a
# counterexample are outside total_timeout), and to start and import frontrun.
GRACE_S = 10.0
STARTUP_S = 30.0
NO_FRONTRUN = "frontrun is not installed (pip install frontrun==0.7.0): running our scheduler only."


@dataclass
class Attempt:
    """One repetition of one tool on one version of a pair."""

    outcome: str  # "failed", "passed", "inconclusive" or "error"
    seconds: float
    schedules: int | None = None
    # failed: our ProbeFailure.kind; inconclusive: the cause, "its verdict", "timeout" or "killed"
    kind: str = ""
    report: str = ""


@dataclass
class Cell:
    """Every repetition of one tool on one version of a pair, and what they add up to."""

    pair: str
    variant: str
    tool: str
    attempts: list[Attempt] = field(default_factory=list)


def _site_lines(report: str, pair: Pair) -> int:
    """How many times the report cites a line of the pair's module (`lost_update.py:20`)."""
    return len(re.findall(rf"\b{re.escape(pair.name)}\.py:\d+", report))


def run_ours(pair: Pair, variant: str) -> Attempt:
    """Our scheduler on one version, in this process: seed 0, portfolio, budget 250."""

    def check(state: object, results: list[object]) -> None:
        pair.check(state)

    started = time.perf_counter()
    try:
        stats = explore(
            pair.setup(variant),
            list(pair.workers),
            check,
            modules=[pair.module],
            budget=BUDGET,
            seed=SEED,
            exhaustive=EXHAUSTIVE_RUNS,
            exhaustive_s=EXHAUSTIVE_S,
        )
    except ProbeFailure as failure:
        first = failure.stats.first_failure
        return Attempt(
            "failed",
            time.perf_counter() - started,
            schedules=None if first is None else first + 1,
            kind=failure.kind,
            report=str(failure),
        )
    kind = f"proved: {stats.verdict}" if stats.proved else stats.verdict
    return Attempt("passed", time.perf_counter() - started, schedules=stats.schedules, kind=kind)


def _frontrun_child(pair_name: str, variant: str, mode: str, repeat: int, timeout: float) -> int:
    """Run frontrun `repeat` times and print one JSON Attempt per line (under its CLI)."""
    import frontrun  # type: ignore[import-untyped,import-not-found,unused-ignore]  # no hints; absent in the nox typecheck venv

    pair = PAIRS_BY_NAME[pair_name]

    def invariant(state: object) -> bool:
        pair.check(state)
        return True

    print(json.dumps({"ready": frontrun.__version__}), flush=True)
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            result = frontrun.explore(
                setup=pair.setup(variant),
                workers=list(pair.workers),
                invariant=invariant,
                total_timeout=timeout,
                **FRONTRUN_MODES[mode],
            )
        except Exception as error:  # report any crash of the tool as this cell's verdict
            attempt = Attempt("error", time.perf_counter() - started, report=repr(error))
        else:
            seconds = time.perf_counter() - started
            explored = int(result.num_explored)
            outcome, kind = "passed", ""
            if result.property_holds is False:
                outcome = "failed"
            elif result.property_holds is None:
                outcome, kind = "inconclusive", "its verdict"
            elif seconds >= timeout or (mode == "random" and explored < RANDOM_ATTEMPTS):
                outcome, kind = "inconclusive", "timeout"  # total_timeout cut the search short
            text = result.explanation or result.inconclusive_reason or ""
            attempt = Attempt(outcome, seconds, explored, kind, str(text))
        print(json.dumps(asdict(attempt)), flush=True)
    return 0


def _read_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def run_frontrun(pair: Pair, variant: str, mode: str, repeat: int, timeout: float) -> Cell:
    """frontrun in a subprocess under its CLI, with a hard deadline on every repetition."""
    cell = Cell(pair.name, variant, mode)
    command = [
        sys.executable,
        "-m",
        "frontrun.cli",
        sys.executable,
        "-m",
        "plugins.probe_compare",
        "--frontrun-child",
        pair.name,
        variant,
        mode,
        "--repeat",
        str(repeat),
        "--timeout",
        str(timeout),
    ]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stderr:
        child = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_read_lines, args=(child.stdout, lines), daemon=True).start()
        deadline_s = STARTUP_S
        waited_from = time.perf_counter()
        try:
            while len(cell.attempts) < repeat:
                try:
                    line = lines.get(timeout=deadline_s)
                except queue.Empty:
                    waited = time.perf_counter() - waited_from
                    report = f"killed after {waited:.0f} s without an answer"
                    cell.attempts.append(Attempt("inconclusive", waited, None, "killed", report))
                    break
                if line is None:
                    stderr.seek(0)
                    tail = stderr.read()[-500:].strip()
                    cell.attempts.append(Attempt("error", 0.0, report=f"child ended: {tail}"))
                    break
                data = json.loads(line)
                deadline_s = timeout + GRACE_S
                waited_from = time.perf_counter()
                if "ready" in data:
                    continue
                cell.attempts.append(Attempt(**data))
                if data["outcome"] in ("inconclusive", "error"):
                    break
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    return cell


def _preemptions(report: str) -> int | None:
    found = re.search(r"\((\d+) preemptions?;", report)
    return int(found.group(1)) if found else None


def _verdict(cell: Cell) -> str:
    outcomes = [a.outcome for a in cell.attempts]
    if not outcomes:
        return "not run"
    if "error" in outcomes:
        return "error"
    if "inconclusive" in outcomes:
        causes = sorted({a.kind for a in cell.attempts if a.outcome == "inconclusive" and a.kind})
        return f"inconclusive ({', '.join(causes)})" if causes else "inconclusive"
    failed = outcomes.count("failed")
    if cell.variant == "broken":
        word = "found" if failed else "MISSED"
    elif failed:
        word = "FALSE ALARM"
    elif cell.tool == "ours":
        word = "proved" if all(a.kind.startswith("proved") for a in cell.attempts) else "pass"
    else:
        word = "proved" if cell.tool == "dpor-unbounded" else "pass"
    if 0 < failed < len(outcomes):
        return f"mixed: {failed} of {len(outcomes)} failed"
    return word


def _times(cell: Cell) -> str:
    seconds = [a.seconds for a in cell.attempts if a.outcome in ("failed", "passed")]
    if not seconds:
        return "—"
    return f"{min(seconds) * 1000:.1f} / {statistics.median(seconds) * 1000:.1f}"


def _schedules(cell: Cell) -> str:
    counts = sorted({a.schedules for a in cell.attempts if a.schedules is not None})
    return "—" if not counts else "/".join(str(c) for c in counts)


def _readable(cell: Cell, pair: Pair) -> str:
    reports = [a.report for a in cell.attempts if a.outcome == "failed"]
    if not reports:
        return "—"
    return "yes (source lines)" if _site_lines(reports[0], pair) >= 2 else "no"


def _same_text(cell: Cell) -> str:
    reports = [a.report for a in cell.attempts if a.outcome == "failed"]
    if len(reports) < 2:
        return "—"
    return "yes" if len(set(reports)) == 1 else "no"


def _shown_preemptions(cell: Cell, pair: Pair) -> str:
    if cell.tool != "ours":
        return "—"
    shown = sorted(
        {
            n
            for a in cell.attempts
            if a.outcome == "failed" and (n := _preemptions(a.report)) is not None
        }
    )
    return f"{'/'.join(map(str, shown)) or '—'} (fewest {pair.min_preemptions})"


def _kind(cell: Cell) -> str:
    if cell.tool == "ours":
        kinds = {a.kind for a in cell.attempts if a.outcome == "failed"}
        return "/".join(sorted(kinds)) or "—"
    reports = [a.report for a in cell.attempts if a.outcome == "failed"]
    if not reports:
        return "—"
    first = reports[0]
    for marker, kind in (
        ("Deadlock", "deadlock"),
        ("Worker crash", "exception"),
        ("AssertionError", "invariant"),
    ):
        if marker in first:
            return kind
    return "other"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [
        line(header),
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        *(line(r) for r in rows),
    ]


def _notes(cells: Sequence[Cell]) -> list[str]:
    """One line per cell whose verdict needs its cause: inconclusive, error, a weak replay."""
    notes: list[str] = []
    for cell in cells:
        where = f"{cell.pair} {cell.variant}, {TOOL_LABELS[cell.tool]}"
        for attempt in cell.attempts:
            if attempt.outcome in ("inconclusive", "error"):
                first = (
                    attempt.report.strip().split(". ")[0].splitlines()[0] if attempt.report else ""
                )
                notes.append(
                    f"- {where}: {attempt.kind or attempt.outcome}: {first or '(no text)'}"
                )
                break
            replayed = re.search(r"Reproduced (\d+)/(\d+) times", attempt.report)
            if attempt.outcome == "failed" and replayed and replayed[1] != replayed[2]:
                notes.append(f"- {where}: its report says {replayed[0]!r}")
                break
    return notes


def render(cells: Sequence[Cell], repeat: int, timeout: float) -> str:
    """The two markdown tables: broken versions, then fixed versions."""
    broken = [c for c in cells if c.variant == "broken"]
    fixed = [c for c in cells if c.variant == "fixed"]
    out = [
        f"Broken versions (min / median ms over {repeat} runs; timeout {timeout:g} s)",
        "",
        *_table(
            [
                "pair",
                "tool",
                "verdict",
                "kind",
                "schedules",
                "ms",
                "interleaving",
                "same text",
                "preemptions shown",
            ],
            [
                [
                    PAIRS_BY_NAME[c.pair].title,
                    TOOL_LABELS[c.tool],
                    _verdict(c),
                    _kind(c),
                    _schedules(c),
                    _times(c),
                    _readable(c, PAIRS_BY_NAME[c.pair]),
                    _same_text(c),
                    _shown_preemptions(c, PAIRS_BY_NAME[c.pair]),
                ]
                for c in broken
            ],
        ),
        "",
        "Fixed versions (time to finish the budget or to prove it)",
        "",
        *_table(
            ["pair", "tool", "verdict", "schedules", "ms"],
            [
                [
                    PAIRS_BY_NAME[c.pair].title,
                    TOOL_LABELS[c.tool],
                    _verdict(c),
                    _schedules(c),
                    _times(c),
                ]
                for c in fixed
            ],
        ),
    ]
    notes = _notes(cells)
    if notes:
        out += ["", "Notes", "", *notes]
    return "\n".join(out)


def compare(
    pairs: Sequence[Pair],
    tools: Sequence[str],
    repeat: int,
    timeout: float,
    progress: Callable[[str], None] = lambda text: None,
) -> list[Cell]:
    """Every tool on both versions of every pair; ours runs here, frontrun in subprocesses."""
    cells: list[Cell] = []
    for pair in pairs:
        for variant in ("broken", "fixed"):
            for tool in tools:
                progress(f"{pair.name} {variant} {tool}")
                if tool == "ours":
                    cell = Cell(pair.name, variant, tool)
                    cell.attempts = [run_ours(pair, variant) for _ in range(repeat)]
                else:
                    cell = run_frontrun(pair, variant, tool, repeat, timeout)
                cells.append(cell)
    return cells


def frontrun_installed() -> bool:
    return importlib.util.find_spec("frontrun") is not None


def versions() -> dict[str, str]:
    """The interpreter and, when installed, frontrun: the first line of the output."""
    found = {"python": sys.version.split()[0]}
    if frontrun_installed():
        found["frontrun"] = importlib.metadata.version("frontrun")
    return found


def _tool_list(text: str) -> list[str]:
    tools = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown or not tools:
        raise argparse.ArgumentTypeError(
            f"unknown tool(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(TOOLS)}"
        )
    return tools


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plugins.probe_compare",
        description="Our scheduler vs frontrun on five bug/fix pairs (issue 17).",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per cell (default 5)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        help="seconds before a frontrun search counts as inconclusive (default 5)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write every run as JSON here")
    parser.add_argument(
        "--pair", action="append", choices=sorted(PAIRS_BY_NAME), help="only this pair (repeatable)"
    )
    parser.add_argument(
        "--tools",
        type=_tool_list,
        default=list(TOOLS),
        help=f"comma-separated subset of {','.join(TOOLS)} (default: all)",
    )
    parser.add_argument("--frontrun-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.frontrun_child:
        pair_name, variant, mode = args.frontrun_child
        return _frontrun_child(pair_name, variant, mode, args.repeat, args.timeout)
    tools: list[str] = args.tools
    if not frontrun_installed() and tools != ["ours"]:
        print(NO_FRONTRUN)
        tools = ["ours"]
    pairs = [PAIRS_BY_NAME[n] for n in args.pair] if args.pair else list(PAIRS)
    cells = compare(
        pairs,
        tools,
        args.repeat,
        args.timeout,
        progress=lambda text: print(f"  running {text}", file=sys.stderr, flush=True),
    )
    print(", ".join(f"{name} {version}" for name, version in versions().items()))
    print(render(cells, args.repeat, args.timeout))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    **versions(),
                    "repeat": args.repeat,
                    "timeout": args.timeout,
                    "cells": [asdict(c) for c in cells],
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
