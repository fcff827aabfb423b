"""One run of a kata's suite for the self-check: the command, a cold or warm process, the junit.

A run is `pytest <test file> --kata-impl=<target> ...` in a process of its own. The cold way
starts `python -m pytest` for it; the warm way (the default) asks a long-lived worker
(plugins/verify_worker.py) to fork a child that calls `pytest.main` with the same arguments and
environment. Both end in the same junit report, read the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from plugins import impl, isolation
from plugins.verify_start import in_the_kata
from plugins.verify_worker import kill_group, wait_for

# A backstop only: each kata test already fails within its own budget.
SUITE_TIMEOUT_SECONDS = 600
WORKER_START_SECONDS = 120  # imports on a loaded machine
WORKER_ANSWER_SECONDS = 30  # the fork itself
WORKER_MODULE = "plugins.verify_worker"


class Ended(NamedTuple):
    """How a run's process ended."""

    returncode: int
    timed_out: bool
    cpu_seconds: float  # the process and the descendants it reaped; 0.0 where unknown
    # Seconds spent before the run began (starting a warm worker): not the run's own. All of a
    # verify's slots start their workers at once, so a slot's first run looked several
    # seconds long, and, its CPU being the child's alone, like a run that mostly waits.
    setup_seconds: float = 0.0


# (argv after `pytest`, timeout) -> how it ended
Runner = Callable[[list[str], float], Ended]


@dataclass
class Outcome:
    """How one run of a kata's suite against one implementation ended."""

    returncode: int
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    broken_module: bool = False
    seconds: float = 0.0  # the whole process, pytest's start included
    cpu_seconds: float = 0.0  # CPU time of the run's process tree (what it costs the machine)
    test_seconds: float = 0.0  # the tests alone, as junit reports them
    timed_out: bool = False
    failures: list[str] = field(default_factory=list)  # "test name: first line of its message"
    first_failed: str = ""  # the name of the first test that failed: what killed a mutant

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped


def suite_argv(test_file: Path, target: str, junit: Path, *extra: str) -> list[str]:
    return [
        str(test_file),
        f"--kata-impl={target}",
        "-p",
        "no:cacheprovider",
        "-q",
        "--no-header",
        # Nobody reads a run's terminal output (the verdict comes from the junit file, whose
        # messages are the same): one line per failure spares parsing the test file for its
        # source, about 30 ms of a 230 ms mutant run.
        "--tb=line",
        "-p",
        "no:randomly",
        f"--junitxml={junit}",
        "-o",
        "junit_family=xunit2",
        *extra,
    ]


def run_suite(runner: Runner, test_file: Path, target: str, *extra: str) -> Outcome:
    """Run one kata's suite against one implementation in a process of its own."""
    with tempfile.TemporaryDirectory(prefix="kata-verify-") as scratch:
        junit = Path(scratch) / "report.xml"
        started = time.perf_counter()
        ended = runner(suite_argv(test_file, target, junit, *extra), SUITE_TIMEOUT_SECONDS)
        if ended.timed_out:
            outcome = Outcome(returncode=-1, timed_out=True)
        else:
            outcome = parse_junit(junit, ended.returncode)
        outcome.seconds = time.perf_counter() - started - ended.setup_seconds
        outcome.cpu_seconds = ended.cpu_seconds
        return outcome


def parse_junit(junit: Path, returncode: int) -> Outcome:
    outcome = Outcome(returncode=returncode)
    if not junit.is_file():
        return outcome
    root = ElementTree.parse(junit).getroot()
    outcome.test_seconds = sum(float(suite.get("time", 0)) for suite in root.iter("testsuite"))
    for case in root.iter("testcase"):
        children = {child.tag for child in case}
        if children & {"failure", "error"}:
            outcome.failed += 1
            problem = next(child for child in case if child.tag in ("failure", "error"))
            message = (problem.get("message") or "").strip().splitlines()
            outcome.failures.append(f"{case.get('name')}: {message[0] if message else '?'}")
            outcome.first_failed = outcome.first_failed or str(case.get("name"))
            if case.get("name") == impl.BROKEN_ITEM_NAME:
                outcome.broken_module = True
        elif "skipped" in children:
            outcome.skipped += 1
        else:
            outcome.passed += 1
    return outcome


def run_environment(scratch: str) -> dict[str, str]:
    """A run's environment: this process's, with the run's own scratch folder as TMPDIR. The
    folder goes once the run has ended, and with it whatever the run or a process it started
    left in the temporary folder: a process killed at a timeout (a run, an MPI rank, a Celery
    worker) never removes its own (a self-check left 228 of them in /tmp)."""
    return {
        **os.environ,
        isolation.PORT_LOCK_VARIABLE: str(isolation.PORT_LOCK_DIR),
        "TMPDIR": scratch,
    }


# -- the cold way ----------------------------------------------------------------------------


def cold_runner(root: Path) -> Runner:
    """Each run a fresh `python -m pytest` (KATA_VERIFY_COLD=1; the warm way's yardstick)."""

    def run(argv: list[str], timeout: float) -> Ended:
        # A rank or worker outside the run's group may still be ending: never an error.
        with tempfile.TemporaryDirectory(prefix="kata-run-", ignore_cleanup_errors=True) as scratch:
            process = subprocess.Popen(
                [sys.executable, "-m", "pytest", *in_the_kata(argv, root)],
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=run_environment(scratch),
                start_new_session=True,  # as the warm children: a timeout kills all it started
            )
            # The worker's own wait: it kills the group and reaps the child with its CPU seconds.
            returncode, timed_out, cpu = wait_for(process.pid, timeout)
            process.returncode = returncode  # reaped here, so Popen must not wait for it again
            return Ended(-1 if timed_out else returncode, timed_out, cpu)

    return run


# -- the warm way ----------------------------------------------------------------------------


class WorkerDied(Exception):
    """The worker stopped answering; the run it had is run again elsewhere."""


class Worker:
    """One warm worker process (plugins/verify_worker.py) and its request pipe."""

    def __init__(self, root: Path, preload: list[str]) -> None:
        # The worker's stderr, quoted if it dies; it lives as long as the worker, closed by stop().
        self.log = tempfile.TemporaryFile()  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, *preload],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            start_new_session=True,  # Ctrl-C goes to the parent, which stops the worker
        )
        self.buffer = b""
        self.child = 0
        self._read(WORKER_START_SECONDS)

    def run(self, argv: list[str], env: dict[str, str], output: Path, timeout: float) -> Any:
        request = {"argv": argv, "env": env, "output": str(output), "timeout": timeout}
        stdin: IO[bytes] | None = self.process.stdin
        try:
            assert stdin is not None
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
        except OSError as error:
            raise self._died(f"cannot send it a run ({error})") from None
        self.child = int(self._read(WORKER_ANSWER_SECONDS)["pid"])
        answer = self._read(timeout + WORKER_ANSWER_SECONDS)
        self.child = 0
        return answer

    def _read(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        stdout = self.process.stdout
        assert stdout is not None
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([stdout], [], [], max(0.0, left))
            if not ready:
                raise self._died(f"no answer within {timeout:g} s")
            chunk = os.read(stdout.fileno(), 65536)
            if not chunk:
                raise self._died("it exited")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def _died(self, why: str) -> WorkerDied:
        self._end_process()
        try:
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace").strip().splitlines()[-5:]
            self.log.close()
        except ValueError:  # closed: the session is stopping this worker
            tail = []
        detail = ("; its last words: " + " | ".join(tail)) if tail else ""
        return WorkerDied(f"verify worker {self.process.pid} {why}{detail}")

    def stop(self) -> None:
        """End the worker and the run it may be in the middle of (never waits long)."""
        self._end_process()
        self.log.close()

    def _end_process(self) -> None:
        if self.child:
            kill_group(self.child)
            self.child = 0
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):  # a pipe the worker already closed
                self.process.stdin.close()
        try:
            self.process.wait(2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class WarmRunner:
    """A job slot's runner: its own worker, replaced when it dies. A run whose worker died is run
    once more on a fresh worker, then, should that die too, the cold way: every run ends."""

    def __init__(self, root: Path, preload: list[str], notes: list[str]) -> None:
        self.root, self.preload, self.notes = root, preload, notes
        self.worker: Worker | None = None
        self.closed = False

    def __call__(self, argv: list[str], timeout: float) -> Ended:
        setup = 0.0
        # (As the cold way's: what a rank still ending writes there must not stop the check.)
        with tempfile.TemporaryDirectory(prefix="kata-run-", ignore_cleanup_errors=True) as scratch:
            output = Path(scratch) / "output.txt"
            for _attempt in range(2):
                if self.closed:
                    return Ended(-1, False, 0.0)  # the session is over; nobody reads it
                try:
                    if self.worker is None:
                        began = time.perf_counter()
                        self.worker = Worker(self.root, self.preload)
                        setup += time.perf_counter() - began
                    arguments = in_the_kata(argv, self.root)
                    answer = self.worker.run(arguments, run_environment(scratch), output, timeout)
                    return Ended(
                        int(answer["returncode"]),
                        bool(answer["timed_out"]),
                        float(answer.get("cpu", 0.0)),
                        setup,
                    )
                except WorkerDied as died:
                    self.worker = None
                    self.notes.append(f"{died}; replaced it and ran {argv[0]} again")
        self.notes.append(f"ran {argv[0]} the cold way: two workers died in a row")
        return cold_runner(self.root)(argv, timeout)

    def close(self) -> None:
        self.closed = True
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop()


def is_killed(outcome: Outcome) -> bool:
    """Whether a mutant's run caught it: a test failed (or the run hung) on a module that loads."""
    return not outcome.broken_module and (
        outcome.timed_out or (outcome.returncode == 1 and outcome.failed > 0)
    )
