"""The probe bench's order of runs and its speed check (plugins/probe_bench.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from plugins import probe_bench
from plugins.curriculum import Kata
from plugins.verify_runs import Outcome


def test_the_reference_runs_go_seed_by_seed_across_the_katas(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[tuple[str, int]] = []
    lock = threading.Lock()

    def run(runner: object, root: Path, kata: Any, target: str, seed: int, *rest: Any) -> Any:
        with lock:
            started.append((kata.name, seed))
        return Outcome(0), []

    monkeypatch.setattr(probe_bench, "_run", run)
    monkeypatch.setattr(probe_bench, "mutant_kills", lambda *args: [])
    monkeypatch.setattr(probe_bench, "report_kata", lambda *args: True)
    katas = [
        Kata(name, "threads", name, order)
        for order, name in enumerate(("first", "second", "third"))
    ]
    runners: list[Any] = [object()]  # never called: _run is the fake above
    probe_bench.bench(runners, tmp_path, None, katas, 3, 5, tmp_path)  # type: ignore[arg-type]
    by_seed = [(seed, name) for seed in range(3) for name in ("first", "second", "third")]
    assert started == [(name, seed) for seed, name in by_seed], (
        f"the reference runs went {started}: a kata's seeds ran back to back, so the median "
        "over them reads one moment's speed of the VM"
    )


def test_the_speed_check_times_a_loop_in_seconds() -> None:
    seconds = probe_bench.speed_check()
    assert 0.01 < seconds < 30, f"a loop of two million rounds took {seconds} s"
