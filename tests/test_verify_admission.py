"""Beyond one run per core, the self-check starts only runs that mostly wait, and only while a
core idles."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from plugins import verify_admission
from plugins.verify_admission import Admission, CpuMeter, is_light, load, max_runs
from plugins.verify_runs import Ended
from plugins.verify_schedule import History, Run, Scheduler


class FixedMeter(CpuMeter):
    """A meter that reports whatever idle time the test sets."""

    def __init__(self, idle: float | None) -> None:
        self.fixed = idle
        self.restarts = 0

    def idle_cores(self) -> float | None:
        return self.fixed

    def restart(self) -> None:
        self.restarts += 1


def stat_line(idle: int, busy: int) -> str:
    # user nice system idle iowait irq softirq steal
    return f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n"


def test_the_meter_turns_idle_ticks_into_idle_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stat = tmp_path / "stat"
    stat.write_text(stat_line(idle=1000, busy=1000))
    monkeypatch.setattr(verify_admission, "SETTLE_SECONDS", 0.0)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    meter = CpuMeter(stat)
    stat.write_text(stat_line(idle=1000 + 75, busy=1000 + 25))
    assert meter.idle_cores() == pytest.approx(3.0), "75 % of 4 cores idle is 3 idle cores"
    stat.write_text(stat_line(idle=1075, busy=1025 + 100))
    assert meter.idle_cores() == pytest.approx(0.0), "only the newest window counts"


def test_an_unreadable_meter_never_claims_an_idle_core(tmp_path: Path) -> None:
    meter = CpuMeter(tmp_path / "missing")
    assert meter.idle_cores() is None
    admission = Admission(jobs=2, limit=4, meter=meter)
    assert admission.may_add(1), "one run per job slot needs no measurement"
    assert not admission.may_add(2), "without a measurement no extra run may start"


def test_extra_runs_need_an_idle_core_room_under_the_limit_and_a_settled_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    meter = FixedMeter(idle=0.7)
    admission = Admission(jobs=2, limit=3, meter=meter)
    assert admission.may_add(0) and admission.may_add(1)
    assert not admission.may_add(2, 0.3), "0.7 idle cores leave no half core beside 0.3"
    assert admission.may_add(2, 0.1)
    meter.fixed = 1.2
    assert admission.may_add(2, 0.3)
    admission.started(3)
    assert meter.restarts == 1, "an extra start restarts the idle window"
    assert not admission.may_add(2, 0.3), "the next extra start waits until the window settled"
    monkeypatch.setattr(verify_admission, "SETTLE_SECONDS", 0.0)
    assert admission.may_add(2, 0.3)
    assert not admission.may_add(3, 0.1), "never more than the limit in flight"


def test_a_run_is_light_when_it_used_under_half_a_core_last_time() -> None:
    assert load(0.4, 5.0) == pytest.approx(0.08)
    assert load(None, 5.0) == 1.0, "a run never measured counts as a whole core"
    assert is_light(0.4, 5.0)
    assert not is_light(3.0, 5.0)
    assert not is_light(None, 5.0), "a run never measured counts as busy"
    assert not is_light(0.1, None)


def test_the_most_runs_in_flight_default_to_two_per_slot_and_can_be_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(verify_admission.MAX_RUNS_VARIABLE, raising=False)
    assert max_runs(2) == 4
    monkeypatch.setenv(verify_admission.MAX_RUNS_VARIABLE, "2")
    assert max_runs(2) == 2, "equal to the slots turns the extra runs off"
    monkeypatch.setenv(verify_admission.MAX_RUNS_VARIABLE, "1")
    assert max_runs(2) == 2, "never fewer than one run per slot"


def _most_at_once(tmp_path: Path, cpu_seconds: float, monkeypatch: pytest.MonkeyPatch) -> int:
    """Runs six 0.2 s runs on one slot (limit 3) with a core always idle; the most at once."""
    monkeypatch.setattr(verify_admission, "SETTLE_SECONDS", 0.0)
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
    scheduler.admission.meter = FixedMeter(idle=1.5)
    try:
        futures = scheduler.submit(runs)
        for future in futures.values():
            future.result(timeout=10)
    finally:
        scheduler.close()
    return most[0]


def test_runs_that_mostly_wait_share_a_slot_while_a_core_idles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _most_at_once(tmp_path, 0.1, monkeypatch) == 3


def test_busy_runs_never_start_beyond_one_per_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _most_at_once(tmp_path, 0.9, monkeypatch) == 1
