"""The warm worker lets Hypothesis scan its preloaded modules for constants once, so that each
forked run scans only the modules it imports itself, and ends with the same constants."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = """
import json, sys
from plugins import verify_worker
from hypothesis.internal.conjecture import providers
verify_worker.preload(["plugins.probing"])
if sys.argv[1] == "warm":
    verify_worker.warm_hypothesis_constants()
seen = len(providers._seen_modules)
import tests.probe.samples.phases  # what a run imports itself
found = providers._get_local_constants()
print(json.dumps({"scanned_in_the_run": len(providers._seen_modules) - seen,
                  "constants": sorted(map(repr, found))}))
"""


def _python(script: str, *args: str) -> str:
    """What ``python -c script args`` printed, run in the repository."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def _run(mode: str) -> dict[str, object]:
    return dict(json.loads(_python(_SCRIPT, mode).strip().splitlines()[-1]))


def test_a_warmed_worker_leaves_its_runs_only_their_own_modules_to_scan() -> None:
    providers = pytest.importorskip("hypothesis.internal.conjecture.providers")
    if not hasattr(providers, "_get_local_constants"):
        pytest.skip("this Hypothesis has no _get_local_constants to warm")
    warm, cold = _run("warm"), _run("cold")
    assert warm["constants"] == cold["constants"], "warming changed the constants a run sees"
    assert isinstance(warm["scanned_in_the_run"], int) and isinstance(
        cold["scanned_in_the_run"], int
    )
    assert warm["scanned_in_the_run"] < 10 < cold["scanned_in_the_run"], (
        f"a run after warming scanned {warm['scanned_in_the_run']} modules, one without "
        f"{cold['scanned_in_the_run']}: the warm-up did not spare the runs the preloaded ones"
    )


_QUIET = """
from plugins import verify_worker
verify_worker.preload(["plugins.settings", "plugins.impl", "plugins.probing"])
verify_worker.run_pytest(["katas/locks/test_locks.py", "--kata-impl=reference", "--co", "-q",
                          "-p", "no:randomly"])
"""


def test_a_warm_run_does_not_warn_that_its_preloaded_plugins_cannot_be_rewritten() -> None:
    printed = _python(_QUIET)
    assert "tests collected" in printed, printed[-2000:]
    assert "cannot be rewritten" not in printed, (
        "a warm run warns about each plugin the worker preloaded (about 3 ms a run, read by nobody)"
    )
