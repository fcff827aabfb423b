"""The self-check's schedule: every run of every kata on one pool of job slots, longest first.

Each slot is a thread with its own runner (a warm worker, or cold processes). Runs are queued
with their expected duration (from earlier verifies, kept in the verify parent's pytest cache)
and started longest first across all katas, so that two cores stay busy until the end. A run of a
`timing` kata measures speed and so runs alone: it starts only when nothing else runs, and nothing
starts while it runs. A slot goes to the longest busy run; runs that mostly wait start beside
the busy ones while the cores they are expected to use leave room (plugins/verify_admission.py).
The cache also remembers which test killed each mutant, so that the next verify runs that test
first, and how much CPU each run used. A fresh clone has no
cache: it starts from the history committed in `reference/verify-history.json` (written by
`python -m plugins.verify_history` after a verify), and its own cache wins where it has a value.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from plugins import verify_admission
from plugins.verify_admission import LIGHT_LOAD, Admission
from plugins.verify_runs import Outcome, Runner, is_killed, run_suite

KILLERS_KEY = "kata/verify/killers"
DURATIONS_KEY = "kata/verify/durations"
CPU_KEY = "kata/verify/cpu"
FIRST_OPTION = "--kata-verify-first"
UNMEASURED_SECONDS = 2.0  # a guess for a run never measured, before any run of this verify ends
STOP_SECONDS = 5.0
RECHECK_SECONDS = 0.25  # a backstop: a run that ends or is queued notifies the slots


@dataclass(frozen=True)
class Run:
    """One run to make: a kata's suite against one implementation."""

    kata: str
    label: str  # stub, reference, mutant:NAME
    test_file: Path
    target: str  # the --kata-impl value
    extra: tuple[str, ...]  # child_args, and -x / the likely killer first for a mutant
    timing: bool
    expected: float | None  # seconds, from an earlier verify
    # A mutant of a kata with some timing tests first runs the others beside other runs; only
    # if they all pass does it run its timing tests, alone (these are the extra arguments).
    then_timing: tuple[str, ...] | None = None
    phase: str = ""  # "" or "timing": the second run of such a mutant
    polls: bool = False  # its processes keep cores busy even while they wait: never light

    @property
    def key(self) -> str:
        return f"{self.kata}/{self.label}" + (f"@{self.phase}" if self.phase else "")


class History:
    """How long each run took and which test killed each mutant, in earlier verifies."""

    def __init__(self, cache: pytest.Cache | None, seed: Path | None = None) -> None:
        self.cache = cache
        committed = read_seed(seed)
        self.durations = self._mapping(DURATIONS_KEY, float, committed)
        self.killers = self._mapping(KILLERS_KEY, str, committed)
        self.cpu = self._mapping(CPU_KEY, float, committed)

    def _mapping(
        self, key: str, kind: Callable[[Any], Any], committed: dict[str, Any]
    ) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for source in (committed.get(key), self.cache.get(key, {}) if self.cache else {}):
            if isinstance(source, dict):
                merged.update(
                    (str(k), kind(v)) for k, v in source.items() if isinstance(v, int | float | str)
                )
        return merged

    def mutant_args(self, kata: str, label: str) -> tuple[str, ...]:
        """Stop at the first failure, and start with the test that killed it last time."""
        killer = self.killers.get(f"{kata}/{label}")
        return ("-x", f"{FIRST_OPTION}={killer}") if killer else ("-x",)

    def record(self, run: Run, outcome: Outcome) -> None:
        if outcome.timed_out:
            return  # a backstop timeout says nothing about the run's usual length
        self.durations[run.key] = round(outcome.seconds, 3)
        self.cpu[run.key] = round(outcome.cpu_seconds, 3)
        if run.label.startswith("mutant:") and is_killed(outcome) and outcome.first_failed:
            self.killers[run.key] = outcome.first_failed

    def save(self) -> None:
        if self.cache is not None:
            self.cache.set(DURATIONS_KEY, dict(sorted(self.durations.items())))
            self.cache.set(KILLERS_KEY, dict(sorted(self.killers.items())))
            self.cache.set(CPU_KEY, dict(sorted(self.cpu.items())))

    def load(self, run: Run) -> float:
        """The cores the run used on average last time (never measured, or polling: a whole
        core)."""
        if run.polls:
            return 1.0
        return verify_admission.load(self.cpu.get(run.key), self.durations.get(run.key))

    def light(self, run: Run) -> bool:
        """Whether the run mostly waited last time (under LIGHT_LOAD cores on average)."""
        return self.load(run) < LIGHT_LOAD


def read_seed(path: Path | None) -> dict[str, Any]:
    """The committed history (keys as in the cache); a missing or unreadable file is none."""
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # only a scheduling hint: a broken file must never stop the self-check
    return data if isinstance(data, dict) else {}


def crashed(outcome: Outcome) -> bool:
    """The run's process was killed by a signal it did not get from the self-check."""
    return outcome.returncode < 0 and not outcome.timed_out


@dataclass
class KataProgress:
    runs: int = 0
    finished: int = 0
    mutants: int = 0
    killed: int = 0
    stage: str = "queued"
    seconds: float = 0.0  # the sum of its runs' process seconds


class Scheduler:
    """A pool of `jobs` slots that runs submitted runs longest first, timing runs alone, and up
    to `max_runs` at once where the extra ones mostly wait."""

    def __init__(
        self,
        jobs: int,
        make_runner: Callable[[], Runner],
        history: History,
        log: Path | None = None,
        max_runs: int | None = None,
        notes: list[str] | None = None,
    ) -> None:
        self.jobs, self.make_runner, self.history, self.log = jobs, make_runner, history, log
        self.notes = notes if notes is not None else []  # printed under the summary
        self.admission = Admission(jobs, max(jobs, max_runs or jobs))
        self.changed = threading.Condition()
        self.queue: list[tuple[Run, Future[Outcome]]] = []
        self.running: dict[str, float] = {}  # run key -> when it started
        self.loads: dict[str, float] = {}  # run key -> the cores it is expected to use
        self.alone = False  # a timing run is running
        self.closed = False
        self.slots: list[threading.Thread] = []
        self.runners: list[Runner] = []
        self.katas: dict[str, KataProgress] = {}
        self.started = 0.0
        self.finished_seconds: list[float] = []

    def submit(self, runs: list[Run]) -> dict[str, Future[Outcome]]:
        """Queue a kata's runs; each label's future ends with its outcome."""
        futures: dict[str, Future[Outcome]] = {}
        with self.changed:
            for run in runs:
                futures[run.label] = Future()
                self.queue.append((run, futures[run.label]))
                progress = self.katas.setdefault(run.kata, KataProgress())
                progress.runs += 1
                progress.mutants += run.label.startswith("mutant:")
            self.queue.sort(key=self._order)
            if not self.slots:
                self.started = time.monotonic()
                for n in range(self.admission.limit):
                    slot = threading.Thread(target=self._slot, name=f"kata-verify-{n}", daemon=True)
                    self.slots.append(slot)
                    slot.start()
            self.changed.notify_all()
        return futures

    def _order(self, queued: tuple[Run, Future[Outcome]]) -> tuple[int, float]:
        """Timing runs first, while nothing else runs yet; then the longest first; a mutant's
        timing tests last: to run alone, they wait until every run in flight has ended, and
        at the end that costs nothing (mid-way, the cores idled while the runs drained)."""
        run = queued[0]
        rank = 2 if run.phase == "timing" else 0 if run.timing else 1
        return rank, -self.expected(run)

    def expected(self, run: Run) -> float:
        if run.expected is not None:
            return run.expected
        done = self.finished_seconds
        return sum(done) / len(done) if done else UNMEASURED_SECONDS

    def _next(self) -> int | None:
        """The queue index of the run to start now, if any."""
        if not self.queue or self.alone:
            return None
        if self.queue[0][0].timing:
            return None if self.running else 0
        loads = list(self.loads.values())
        busy = sum(load >= LIGHT_LOAD for load in loads)
        # None for a timing run: it starts only from the head of the queue, alone (above).
        light = [None if run.timing else self.history.light(run) for run, _ in self.queue]
        if busy < self.jobs and False in light:
            # A core has no busy run: the longest busy run takes it (or waits for room).
            chosen = light.index(False)
        elif True in light:
            chosen = light.index(True)  # the longest of those that mostly wait
        else:
            return None
        expected = self.history.load(self.queue[chosen][0])
        return chosen if self.admission.may_add(loads, expected) else None

    def _slot(self) -> None:
        runner = self.make_runner()
        with self.changed:
            self.runners.append(runner)
        while True:
            with self.changed:
                chosen = self._next()
                while not self.closed and chosen is None:
                    # With a timeout: an idle core shows up without anything notifying.
                    self.changed.wait(RECHECK_SECONDS if self.queue else None)
                    chosen = self._next()
                if self.closed or chosen is None:
                    return
                run, future = self.queue.pop(chosen)
                self.running[run.key] = time.monotonic()
                self.loads[run.key] = self.history.load(run)
                self.alone = run.timing
                self.katas[run.kata].stage = run.label
            try:
                # A timing run that follows a mutant's first run has its future running already.
                if future.running() or future.set_running_or_notify_cancel():
                    self._run(runner, run, future)
            finally:  # whatever happens, the slot is free again and the pool goes on
                with self.changed:
                    del self.running[run.key]
                    del self.loads[run.key]
                    self.alone = False
                    self.changed.notify_all()

    def _run(self, runner: Runner, run: Run, future: Future[Outcome]) -> None:
        began = time.time()
        try:
            outcome = run_suite(runner, run.test_file, run.target, *run.extra)
            if crashed(outcome) and run.label.startswith("mutant:"):
                # A native crash (PoCL once segfaulted under load in 1,200 runs) judges nothing:
                # a crash is never a kill. The run is made once more; a second crash stays.
                with self.changed:
                    self.notes.append(
                        f"{run.kata} {run.label}: its run crashed (exit code "
                        f"{outcome.returncode}) and was made once more"
                    )
                outcome = run_suite(runner, run.test_file, run.target, *run.extra)
        except BaseException as error:  # the item waiting for it reports it
            future.set_exception(error)
            return
        if run.then_timing is not None and not is_killed(outcome) and not outcome.broken_module:
            self._then_timing(run, outcome, future, began)
            return
        with self.changed:
            progress = self.katas[run.kata]
            progress.finished += 1
            progress.killed += run.label.startswith("mutant:") and is_killed(outcome)
            progress.seconds += outcome.seconds
            self.finished_seconds.append(outcome.seconds)
            self.history.record(run, outcome)
            self._log(run, outcome, began)
        future.set_result(outcome)

    def _then_timing(
        self, run: Run, outcome: Outcome, future: Future[Outcome], began: float
    ) -> None:
        """The mutant survived the kata's other tests: queue its timing tests, to run alone,
        for the same future (the verdict is theirs)."""
        assert run.then_timing is not None
        follow = replace(
            run,
            extra=run.then_timing,
            timing=True,
            then_timing=None,
            phase="timing",
            expected=self.history.durations.get(f"{run.key}@timing"),
        )
        with self.changed:
            self.history.record(run, outcome)
            self._log(run, outcome, began)
            self.katas[run.kata].seconds += outcome.seconds
            self.queue.append((follow, future))
            self.queue.sort(key=self._order)
            self.changed.notify_all()

    def _log(self, run: Run, outcome: Outcome, began: float) -> None:
        """One JSON line per run (KATA_VERIFY_LOG): for measuring, and for the tests."""
        if self.log is None:
            return
        entry = {"kata": run.kata, "label": run.label, "start": began, "end": time.time()}
        entry |= {"phase": run.phase} if run.phase else {}
        entry |= {k: v for k, v in asdict(outcome).items() if k != "failures"}
        with self.log.open("a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")

    def remaining_seconds(self) -> float:
        """A guess at the wall time left: timing runs one at a time; busy runs spread on the
        slots, while the runs that mostly wait go beside them on the other places."""
        now = time.monotonic()
        with self.changed:
            alone = sum(self.expected(r) for r, _ in self.queue if r.timing)
            busy = waiting = 0.0
            for run, _ in self.queue:
                if not run.timing:
                    if self.history.light(run):
                        waiting += self.expected(run)
                    else:
                        busy += self.expected(run)
            for key, began in self.running.items():
                left = max(0.0, self.history.durations.get(key, 0.0) - (now - began))
                if self.loads.get(key, 1.0) < LIGHT_LOAD:
                    waiting += left
                else:
                    busy += left
        beside = max(1, self.admission.limit - self.jobs)
        return alone + max(busy / self.jobs, waiting / beside)

    def close(self) -> None:
        """Cancel what has not started, stop the workers (ending their runs), never wait long."""
        with self.changed:
            self.closed = True
            for _, future in self.queue:
                future.cancel()
            self.queue.clear()
            self.changed.notify_all()
            runners = list(self.runners)
        for runner in runners:
            close = getattr(runner, "close", None)
            if close is not None:
                close()
        for slot in self.slots:
            slot.join(STOP_SECONDS)
