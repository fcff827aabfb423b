"""Prove a mutant's report minimal with the fewest-preemptions search's caps raised.

A probe test's search for fewer preemptions stops at 1000 re-runs or 5 s, so a learner never
waits long for a report; where it stops first, the report says "fewer preemptions not ruled
out". This runs one kata's probe tests on one shipped mutant with much higher caps (no test
budget either), to check by enumeration that no schedule with fewer preemptions fails.

Run from the repository root:
    python -m tests.probe.fewest_offline queues empty-then-get -k "three-workers"
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import pytest

import plugins.budgets
import plugins.probe.exploration


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kata")
    parser.add_argument("mutant")
    parser.add_argument("-k", default="", help="pytest's -k: which probe tests")
    parser.add_argument("--runs", type=int, default=200_000, help="re-runs (default 200000)")
    parser.add_argument("--seconds", type=float, default=600.0, help="seconds (default 600)")
    options = parser.parse_args(argv)
    plugins.probe.exploration.FEWEST_RUNS = options.runs
    plugins.probe.exploration.FEWEST_SECONDS = options.seconds

    def no_budget(item: pytest.Item, settings: Any) -> bool:
        return True  # a measurement, not a learner's run: the test's time budget is off

    plugins.budgets.pytest_timeout_set_timer = no_budget
    started = time.perf_counter()
    # The plugin writes the mutant (and says which names exist, for a wrong one).
    mutant = f"--kata-impl=mutant:{options.kata}/{options.mutant}"
    selection = [f"katas/{options.kata}", mutant, "-m", "probe", "-k", options.k]
    code = pytest.main([*selection, "-q", "-p", "no:cacheprovider", "-p", "no:randomly"])
    print(f"took {time.perf_counter() - started:.1f} s")
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
