"""How many preemptions each shipped mutant's probe report shows, and whether it is minimal.

For every kata whose tests use the probe, this runs its probe tests on each shipped mutant as
a learner would (shrinking on, no verdict-only mode), reads every failing probe test's report,
and prints one row per report: its preemptions and what the report says of fewer ("minimal":
every schedule with fewer preemptions was run and none failed; "not ruled out": the search
stopped at its re-run limit first). Reports with 0 preemptions are minimal by definition.

Run from the repository root (about 10 minutes on 2 cores):
    python -m tests.probe.preemption_survey [KATA ...] [--jobs 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from plugins import curriculum, mutants
from plugins.curriculum import Kata
from plugins.probe_bench import _probe_katas
from tests.probe.scenarios import preemptions_shown

# A test's section of pytest's failure report starts with its name between underscores.
_SECTION = re.compile(r"^_+ (test\S*) _+$", re.MULTILINE)
RUN_TIMEOUT_S = 600


def _rows(output: str) -> Iterator[dict[str, object]]:
    starts = list(_SECTION.finditer(output))
    for n, match in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(output)
        section = output[match.end() : end]
        preemptions = preemptions_shown(section)
        if preemptions is None:
            continue  # a plain assertion, not a probe report
        if "no schedule with fewer preemptions fails" in section or preemptions == 0:
            status = "minimal"
        elif "fewer preemptions not ruled out" in section:
            status = "not ruled out"
        else:
            status = "not shrunk"
        yield {"test": match.group(1), "preemptions": preemptions, "status": status}


def _survey_one(root: Path, kata: Kata, mutant: mutants.Mutant) -> list[dict[str, object]]:
    """Every probe report of one mutant's run (the plugin writes the mutant itself)."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        f"katas/{kata.name}",
        f"--kata-impl=mutant:{kata.name}/{mutant.name}",
        "-m",
        "probe",
        "-q",
        "--tb=short",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
    ]
    # A group of its own, so that a run past its time goes with anything it started.
    child = subprocess.Popen(
        command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        output, _ = child.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        return [{"kata": kata.name, "mutant": mutant.name, "test": "-", "status": "timed out"}]
    rows = [{"kata": kata.name, "mutant": mutant.name, **row} for row in _rows(output)]
    return rows or [{"kata": kata.name, "mutant": mutant.name, "test": "-", "status": "no report"}]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("katas", nargs="*")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the rows here too")
    options = parser.parse_args(argv)
    root = Path.cwd()
    lessons = curriculum.load(root)
    jobs = [
        (kata, mutant)
        for kata in _probe_katas(lessons, options.katas)
        for mutant in mutants.load(lessons.mutants_path(kata))
    ]
    with ThreadPoolExecutor(max(1, options.jobs)) as pool:
        results = list(pool.map(lambda job: _survey_one(root, *job), jobs))
    rows = [row for result in results for row in result]
    for row in rows:
        shown = row.get("preemptions", "")
        print(f"{row['kata']:16} {row['mutant']:34} {shown!s:>3} {row['status']:14} {row['test']}")
    reports = [r for r in rows if "preemptions" in r]
    by_status: dict[str, int] = {}
    for r in reports:
        by_status[str(r["status"])] = by_status.get(str(r["status"]), 0) + 1
    print(f"{len(jobs)} mutants, {len(reports)} probe reports: {by_status}")
    if options.json:
        options.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
