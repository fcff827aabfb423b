"""The warm worker runs the probe harness once before it forks (plugins/probe/warmup.py) and
leaves nothing of it behind; each forked run freezes what its collection made, so that a
collection during a test scans only what the tests made, and a run with probe tests writes to
the harness's shared pages before its first test (warmup.touch), not in its first schedule."""

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


_TOUCHED = """
import json, sys
from plugins import verify_worker
from plugins.probe import warmup
calls = []
real = warmup.touch
warmup.touch = lambda: calls.append("touch") or real()

# The run's own plugin (the one that freezes) also says when each test starts.
verify_worker.FreezeAfterCollection.pytest_runtest_call = staticmethod(
    lambda item: calls.append("test")
)
verify_worker.run_pytest(["-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                          "katas/locks/test_locks.py", "--kata-impl=reference", "-k", KEYWORD])
print(json.dumps(calls))
"""

_FAULTS = """
import json, os, resource
from plugins.probe import warmup
from plugins.probe.api import explore
warmup.warm()

def faults_of_a_first_exploration(touch_first):
    pid = os.fork()
    if pid == 0:
        if touch_first:
            warmup.touch()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        explore(warmup._Shop, [warmup._Shop.make, warmup._Shop.sell], warmup._sold_one,
                modules=[warmup], budget=3, seed=7)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        with open(OUT, "a") as out:
            out.write(f"{faults}\\n")
        os._exit(0)
    os.waitpid(pid, 0)

faults_of_a_first_exploration(False)
faults_of_a_first_exploration(True)
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


def test_a_workers_run_touches_the_probe_before_its_first_probe_test() -> None:
    calls = json.loads(_python('KEYWORD = "two_threads_increment"\n' + _TOUCHED).splitlines()[-1])
    assert calls[:2] == ["touch", "test"], (
        f"calls were {calls}: a run with a probe test must touch the harness once, before it"
    )
    assert calls.count("touch") == 1, f"calls were {calls}: touched more than once"


def test_a_workers_run_without_probe_tests_does_not_touch_the_probe() -> None:
    calls = json.loads(_python('KEYWORD = "starts_at_zero"\n' + _TOUCHED).splitlines()[-1])
    assert calls == ["test"], f"calls were {calls}: a run with no probe test paid for a touch"


def test_a_touch_takes_the_page_copies_out_of_the_first_exploration(tmp_path: Path) -> None:
    out = tmp_path / "faults.txt"
    _python(f"OUT = {str(out)!r}\n" + _FAULTS)
    untouched, touched = (int(n) for n in out.read_text().split())
    # A forked child shares the warm worker's pages until it writes to one; untouched, the
    # first exploration copied hundreds of them (622 measured), touched a few dozen (31).
    assert untouched > 150, f"only {untouched} page faults without a touch: nothing to show"
    assert touched * 4 < untouched, (
        f"the first exploration after a touch still faulted {touched} pages (without: "
        f"{untouched}): the touch does not write to the pages a run writes to"
    )
