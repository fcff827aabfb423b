"""Beyond one run per core, the self-check starts only runs that mostly wait, and only while the
cores they are expected to use leave room."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import pytest

from plugins import verify_admission
from plugins.verify_admission import Admission, load, max_runs
from plugins.verify_runs import Ended
from plugins.verify_schedule import History, Run, Scheduler


def test_one_run_per_slot_always_starts_and_more_only_within_the_headroom() -> None:
    admission = Admission(jobs=2, limit=5)
    assert admission.may_add([]) and admission.may_add([1.0]), "one run per job slot always starts"
    assert admission.may_add([1.0, 1.0], 0.3), "a waiting run fits beside two busy runs"
    assert admission.may_add([1.0, 1.0, 0.3], 0.2), "2.5 cores expected: still within the room"
    assert not admission.may_add([1.0, 1.0, 0.3], 0.3), "2.6 cores expected: over the room"
    assert not admission.may_add([1.0, 1.0], 1.0), "a third busy run never shares two slots"
    assert not admission.may_add([0.1] * 5, 0.1), "never more than the limit in flight"


def test_a_run_is_light_when_it_used_under_half_a_core_last_time(tmp_path: Path) -> None:
    assert load(0.4, 5.0) == pytest.approx(0.08)
    assert load(None, 5.0) == 1.0, "a run never measured counts as a whole core"

    def light(cpu: float | None, seconds: float | None, polls: bool = False) -> bool:
        history = History(None)
        run = Run("k", "mutant:m", tmp_path / "test_k.py", "reference", (), False, None)
        run = replace(run, polls=polls)
        if cpu is not None:
            history.cpu[run.key] = cpu
        if seconds is not None:
            history.durations[run.key] = seconds
        return history.light(run)

    assert light(0.4, 5.0)
    assert not light(3.0, 5.0)
    assert not light(None, 5.0), "a run never measured counts as busy"
    assert not light(0.1, None)
    assert not light(0.4, 5.0, polls=True), "MPI ranks poll while they wait: never light"


def test_the_most_runs_in_flight_default_to_four_per_slot_and_can_be_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(verify_admission.MAX_RUNS_VARIABLE, raising=False)
    assert max_runs(2) == 8
    monkeypatch.setenv(verify_admission.MAX_RUNS_VARIABLE, "2")
    assert max_runs(2) == 2, "equal to the slots turns the extra runs off"
    monkeypatch.setenv(verify_admission.MAX_RUNS_VARIABLE, "1")
    assert max_runs(2) == 2, "never fewer than one run per slot"


def _most_at_once(tmp_path: Path, cpu_seconds: float) -> int:
    """Runs six 0.2 s runs on one slot (limit 3); the most at once."""
    history = History(None)
    runs = [
        Run("k", f"mutant:m{n}", tmp_path / "test_k.py", "reference", (), False, 1.0)
        for n in range(6)
    ]
    for run in runs:
        history.durations[run.key], history.cpu[run.key] = 1.0, cpu_seconds
    lock, now, most = threading.Lock(), [0], [0]

    def runner(argv: list[str], timeout: float) -> Ended:
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.2)
        with lock:
            now[0] -= 1
        return Ended(0, False, 0.0)

    scheduler = Scheduler(1, lambda: runner, history, max_runs=3)
    try:
        futures = scheduler.submit(runs)
        for future in futures.values():
            future.result(timeout=10)
    finally:
        scheduler.close()
    return most[0]


def test_runs_that_mostly_wait_share_a_slot(tmp_path: Path) -> None:
    assert _most_at_once(tmp_path, 0.1) == 3


def test_busy_runs_never_start_beyond_one_per_slot(tmp_path: Path) -> None:
    assert _most_at_once(tmp_path, 0.9) == 1


def test_a_busy_run_takes_the_slot_while_a_longer_waiting_run_starts_beside_it(
    tmp_path: Path,
) -> None:
    """Longest first used to put the waiting runs (the longest) in the slots, and the busy runs
    behind them, while the cores idled."""
    history = History(None)
    waiting = Run("k", "mutant:hangs", tmp_path / "test_k.py", "waiting", (), False, 5.0)
    busy = Run("k", "mutant:computes", tmp_path / "test_k.py", "busy", (), False, 1.0)
    history.durations[waiting.key], history.cpu[waiting.key] = 5.0, 0.2
    history.durations[busy.key], history.cpu[busy.key] = 1.0, 1.0
    started: dict[str, float] = {}
    release = threading.Event()

    def runner(argv: list[str], timeout: float) -> Ended:
        started[next(a for a in argv if a.startswith("--kata-impl="))] = time.monotonic()
        release.wait(10)
        return Ended(0, False, 0.0)

    scheduler = Scheduler(1, lambda: runner, history, max_runs=2)
    try:
        futures = scheduler.submit([waiting, busy])
        deadline = time.monotonic() + 10
        while len(started) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(started) == ["--kata-impl=busy", "--kata-impl=waiting"], (
            f"both runs should be in flight at once; started only {sorted(started)}"
        )
        release.set()
        for future in futures.values():
            future.result(timeout=10)
    finally:
        release.set()
        scheduler.close()


def test_the_time_left_counts_waiting_runs_beside_the_busy_ones(tmp_path: Path) -> None:
    """Two busy 10 s runs on two slots and four waiting 10 s runs beside them: about 10 s
    left, not (2 + 4) x 10 / 2 = 30 s."""
    history = History(None)
    scheduler = Scheduler(
        2, lambda: lambda argv, timeout: Ended(0, False, 0.0), history, max_runs=8
    )
    for n, cpu in enumerate([10.0, 10.0, 0.5, 0.5, 0.5, 0.5]):
        run = Run("k", f"mutant:m{n}", tmp_path / "test_k.py", "reference", (), False, 10.0)
        history.durations[run.key], history.cpu[run.key] = 10.0, cpu
        scheduler.queue.append((run, Future()))
    assert scheduler.remaining_seconds() == pytest.approx(10.0)
