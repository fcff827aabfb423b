"""The warm worker runs the probe harness once before it forks (plugins/probe/warmup.py) and
leaves nothing of it behind; each forked run freezes what its collection made, so that a
collection during a test scans only what the tests made."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_WARM = """
import json, queue, threading, time, gc
real = (threading.Lock, threading.Thread, time.sleep, queue.Queue.put, queue.Queue.get)
from plugins import verify_worker
from plugins.probe import scheduler, threadpool
verify_worker.warm_the_probe()
print(json.dumps({
    "restored": (threading.Lock, threading.Thread, time.sleep, queue.Queue.put,
                 queue.Queue.get) == real,
    "active": scheduler.active_run() is not None,
    "busy_threads": threadpool.POOL._running - len(threadpool.POOL._idle),
}))
"""

_FREEZE = """
import gc, sys
import pytest
from plugins import verify_worker
sys.path.insert(0, FOLDER)
before = gc.get_freeze_count()
arguments = ["-q", "-s", "-p", "no:cacheprovider", "-p", "look_at_the_freeze",
             "tests/probe/test_probe_sites.py", "-k", "stops_at_the_given"]
if MODE == "worker":
    verify_worker.run_pytest(arguments)
else:
    pytest.main(arguments)
print("BEFORE", before)
"""

_LOOK = """
import gc

def pytest_runtest_call(item):
    print("FROZEN", gc.get_freeze_count())
"""


def _python(script: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_the_probe_warm_up_leaves_nothing_patched_running_or_active() -> None:
    found = json.loads(_python(_WARM).strip().splitlines()[-1])
    assert found["restored"], "the warm-up left threading, time or queue.Queue patched"
    assert not found["active"], "the warm-up left its run active"
    assert found["busy_threads"] == 0, "the warm-up left a harness thread busy"


def _frozen(mode: str, folder: Path) -> tuple[int, int]:
    (folder / "look_at_the_freeze.py").write_text(_LOOK, encoding="utf-8")
    out = _python(f"MODE = {mode!r}\nFOLDER = {str(folder)!r}\n" + _FREEZE)
    lines = dict(line.split() for line in out.splitlines() if line.startswith(("FROZEN", "BEFORE")))
    return int(lines["BEFORE"]), int(lines["FROZEN"])


def test_a_workers_run_freezes_what_its_collection_made_before_its_tests_run(
    tmp_path: Path,
) -> None:
    before, during = _frozen("worker", tmp_path)
    plain_before, plain_during = _frozen("plain", tmp_path)
    assert plain_during == plain_before, "a plain pytest run froze objects: the test sees nothing"
    assert during > before + 1000, (
        f"{during - before} objects were frozen by the time a test ran: the run's collection "
        "was left in the collector's reach"
    )
