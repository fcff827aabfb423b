"""One MPI job: N ranks of a real launcher running some tests of one kata file, watched until
every test has a result, a rank fails, dies or deadlocks, or a test overruns its budget.

Each rank writes one result line per test and keeps its state slot current (plugins/mpi_state.py);
this side reads both every POLL_SECONDS. A failure on one rank that the other ranks do not get
past within a moment ends the job at once (they may be waiting for the failed rank in a
collective), as does a rank that dies, a deadlock (plugins/mpi_deadlock.py) or a test past its
budget; the tests not reached are left without a result, for the caller to run in a new job.
A test that failed on every rank, or that every rank got through, lets the job go on. Nothing of the job outlives run(): the launcher
leads its own process group, and the whole group is ended before run() returns.

A plain library (no pytest, no mpi4py).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plugins import mpi_deadlock, mpi_state, proctree, services

POLL_SECONDS = 0.02
# Every rank unchanged and blocked for this long before a deadlock is declared: a transfer in
# progress changes nothing for microseconds to milliseconds, never for half a second.
STABLE_SECONDS = 0.5
# How long the other ranks get to report a test that one rank failed (their view helps).
FAILURE_GRACE_SECONDS = 0.3
# What a test may take beyond its budget before the launcher stops the job itself (the rank's
# own budget normally fires first, with the rank's stacks).
BUDGET_GRACE_SECONDS = 5.0
# Python, pytest and mpi4py start in well under 2 s per rank; 4 ranks on 2 busy cores can
# take several. 60 s means the launcher is broken.
START_SECONDS = 60.0
STOP_GRACE_SECONDS = 1.0
LOG_TAIL = 3000


@dataclass
class RankResult:
    """One rank's result for one test."""

    outcome: str  # passed, failed or skipped
    text: str = ""  # the failure's traceback, or the skip's reason
    stdout: str = ""
    stderr: str = ""


@dataclass
class JobResult:
    """Per test, each rank's result; and why the job stopped before the end, if it did."""

    results: dict[str, dict[int, RankResult]] = field(default_factory=dict)
    stopped: str | None = None  # the reason, for the test(s) in progress
    in_progress: set[str] = field(default_factory=set)  # tests a rank was in when it stopped
    log: str = ""  # the launcher's own output (its ranks' stray output included)


@dataclass
class _Watch:
    size: int
    job: Path
    budgets: Mapping[str, float]
    offsets: dict[int, int] = field(default_factory=dict)
    result: JobResult = field(default_factory=JobResult)
    failed_at: dict[str, float] = field(default_factory=dict)  # test -> when a rank failed it
    released: set[str] = field(default_factory=set)  # failed tests every rank got through
    last_sequences: tuple[int, ...] | None = None
    stable_since: float = 0.0
    test_started: dict[int, tuple[str, float]] = field(default_factory=dict)

    def read_results(self) -> None:
        for rank in range(self.size):
            path = mpi_state.results_path(self.job, rank)
            try:
                with path.open("rb") as file:
                    file.seek(self.offsets.get(rank, 0))
                    data = file.read()
            except OSError:
                continue
            complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
            self.offsets[rank] = self.offsets.get(rank, 0) + len(complete)
            for line in complete.splitlines():
                record: dict[str, Any] = json.loads(line)
                result = RankResult(
                    record["outcome"], record["text"], record["stdout"], record["stderr"]
                )
                self.result.results.setdefault(record["nodeid"], {})[rank] = result
                if result.outcome == "failed":
                    self.failed_at.setdefault(record["nodeid"], time.monotonic())

    def failures_end_the_job(self) -> bool:
        """A failed test that every rank got through lets the job go on (the failed ranks wait
        for that word); one that some rank has not reported within the grace ends the job, as
        that rank may be waiting for a failed one forever."""
        for test, when in self.failed_at.items():
            if test in self.released:
                continue
            if len(self.result.results.get(test, {})) == self.size:
                mpi_state.go_on_path(self.job, test).touch()
                self.released.add(test)
            elif time.monotonic() - when >= FAILURE_GRACE_SECONDS:
                self.result.in_progress.add(test)
                return True
        return False

    def states(self) -> dict[int, tuple[int, dict[str, Any]]]:
        found = {}
        for rank in range(self.size):
            state = mpi_state.read(mpi_state.slot_path(self.job, rank))
            if state is not None:
                found[rank] = state
        return found


def run(
    argv: Sequence[str],
    *,
    size: int,
    job: Path,
    budgets: Mapping[str, float],
    env: Mapping[str, str],
    cwd: Path,
) -> JobResult:
    """Launch `argv` (the launcher, its -n `size`, and each rank's command) and watch it."""
    job.mkdir(parents=True, exist_ok=True)
    watch = _Watch(size, job, budgets)
    service = services.start_service(
        argv, log=job / "launcher.log", name="mpiexec", env=env, cwd=cwd
    )
    try:
        _watch(watch, service)
    finally:
        final = [state for _, state in watch.states().values()]
        pids = [state["pid"] for state in final if "pid" in state]
        # The processes the ranks spawned (an MPIPoolExecutor's workers) report nothing:
        # what every process of the launcher's group maps is read before they are killed.
        mapped = _mapped_shared_memory(_group_members(service.process.pid))
        # Every result is already read; a rank that is still running is stuck or a leftover,
        # and gforker takes its time over SIGTERM (about 1 s): nothing is lost to SIGKILL.
        service.kill(STOP_GRACE_SECONDS)
        _end_strays(pids)
        _remove_shared_memory([*final, {"shm": sorted(mapped)}])
        watch.read_results()
        watch.result.log = service.log_tail()
    return watch.result


def _watch(watch: _Watch, service: services.Service) -> None:
    started = time.monotonic()
    while True:
        time.sleep(POLL_SECONDS)
        watch.read_results()
        if watch.failures_end_the_job():
            return
        states = watch.states()
        now = time.monotonic()
        if len(states) == watch.size and all(
            state["phase"] == mpi_state.FINISHED for _, state in states.values()
        ):
            return  # every result is in; what is left is MPI_Finalize, which nobody needs
        if _stop_reason(watch, service, states, now - started):
            return


def _stop_reason(
    watch: _Watch,
    service: services.Service,
    states: dict[int, tuple[int, dict[str, Any]]],
    elapsed: float,
) -> bool:
    """Set why the job must stop now (and which tests that fails), if it must."""
    result = watch.result
    if len(states) < watch.size:
        if service.process.poll() is not None:
            result.stopped = (
                f"the launcher exited with status {service.process.returncode} before all "
                f"{watch.size} ranks started; its output:\n{service.log_tail()}"
            )
            return True
        if elapsed > START_SECONDS:
            result.stopped = (
                f"only {len(states)} of {watch.size} ranks started within {START_SECONDS:g} s"
            )
            return True
        return False
    current = {rank: state for rank, (_, state) in states.items()}
    for rank, state in current.items():
        test = state.get("test")
        if test and watch.test_started.get(rank, ("",))[0] != test:
            watch.test_started[rank] = (test, time.monotonic())
    aborted = [r for r, s in current.items() if (s.get("call") or {}).get("kind") == "abort"]
    if aborted:
        rank = aborted[0]
        call = current[rank]["call"]
        result.in_progress = {current[rank]["test"]} if current[rank].get("test") else set()
        result.stopped = (
            f"rank {rank} called {call['shown']} at {call['where']}: MPI_Abort ends every rank "
            "of the job at once, so no rank finished this test. A test fails with an exception "
            "or a failed assert; Abort is for a program that cannot go on at all."
        )
        return True
    dead = [r for r, s in current.items() if s["phase"] != mpi_state.FINISHED and not _alive(s)]
    if dead:
        watch.read_results()  # a rank that failed and then died said why first
        result.in_progress = {current[r]["test"] for r in dead if current[r].get("test")}
        result.stopped = _died(watch, dead, current)
        return True
    if service.process.poll() is not None:
        result.in_progress = {s["test"] for s in current.values() if s.get("test")}
        result.stopped = (
            f"the launcher exited with status {service.process.returncode} while the ranks were "
            f"still running; its output:\n{service.log_tail()}"
        )
        return True
    sequences = tuple(sequence for _, (sequence, _) in sorted(states.items()))
    now = time.monotonic()
    if sequences != watch.last_sequences:
        watch.last_sequences, watch.stable_since = sequences, now
    elif now - watch.stable_since >= STABLE_SECONDS:
        report = mpi_deadlock.verdict(current)
        if report is not None:
            result.in_progress = _tests_in(current)
            # The states last changed when the last rank blocked: that is when it began.
            found = f" (found {now - watch.stable_since:.2f} s after the last rank blocked)"
            result.stopped = report.replace(".\n", found + ".\n", 1)
            return True
    for rank, (test, since) in watch.test_started.items():
        budget = watch.budgets.get(test, 0.0)
        if budget and now - since > budget + BUDGET_GRACE_SECONDS:
            result.in_progress = {test}
            result.stopped = (
                f"rank {rank} ran this test past its budget of {budget:g} s and its own budget "
                f"could not stop it (it was inside a call that does not return to Python). "
                f"Where each rank was:\n"
                + "\n".join(
                    f"rank {r} {mpi_deadlock.describe(s)}" for r, s in sorted(current.items())
                )
            )
            return True
    return False


def _tests_in(current: Mapping[int, Mapping[str, Any]]) -> set[str]:
    """The tests the ranks are in; a rank waiting at the start of the next test is not in it."""
    tests = set()
    for state in current.values():
        call = state.get("call") or {}
        if state.get("test") and state["phase"] != mpi_state.FINISHED and not call.get("runner"):
            tests.add(state["test"])
    return tests or {s["test"] for s in current.values() if s.get("test")}


def _alive(state: Mapping[str, Any]) -> bool:
    proc = proctree.read(int(state["pid"]))
    return proc is not None and proc.alive


def _died(watch: _Watch, dead: list[int], current: Mapping[int, Mapping[str, Any]]) -> str:
    parts = []
    for rank in dead:
        test = current[rank].get("test") or "its start-up"
        try:
            fault = mpi_state.fault_path(watch.job, rank).read_text(errors="replace").strip()
        except OSError:
            fault = ""
        where = (
            f" Python's report of the crash:\n{fault}"
            if fault
            else " It left no report: it was killed by a signal, or called os._exit()."
        )
        parts.append(f"rank {rank} died while running {test.split('::')[-1]}.{where}")
    return "\n".join(parts)


def _remove_shared_memory(states: Sequence[Mapping[str, Any]]) -> None:
    """The shared-memory files the ranks had mapped: MPI removes them in MPI_Finalize, which a
    killed rank never reaches. Only names the job's own ranks reported are touched."""
    for name in {path for state in states for path in state.get("shm", [])}:
        if name.startswith("/dev/shm/"):
            Path(name).unlink(missing_ok=True)


def _group_members(group: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry)) == group:
                    members.append(int(entry))
    return members


def _mapped_shared_memory(pids: Sequence[int]) -> set[str]:
    found = set()
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/maps") as maps:
            found |= {
                line.split(maxsplit=5)[5].strip()
                for line in maps
                if "/dev/shm/" in line and not line.rstrip().endswith("(deleted)")
            }
    return found


def _end_strays(pids: Sequence[int]) -> None:
    """A rank that left the launcher's process group (a learner's setsid) is ended too."""
    procs = [proc for pid in pids if (proc := proctree.read(pid)) is not None and proc.alive]
    if procs:
        proctree.end(procs, STOP_GRACE_SECONDS)
