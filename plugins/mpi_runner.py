"""MPI tests: a test marked `mpi(n=N)` runs on N ranks of a real launcher, and its outcome comes
back into this run as an ordinary test result.

The learner types `pytest katas/mpi_p2p`; this plugin (the "parent") runs the `mpi` tests of one
file and one N in one job (plugins/mpi_job.py), each rank a pytest of its own over those tests
with this same plugin in "rank" mode: there it gives each test a fresh traced communicator
(plugins/mpi_trace.py: synchronous sends, blocking calls recorded) and writes each test's
result for the parent. A test fails when it fails on any rank, with what each rank said; a
failure that leaves another rank stuck, a dead rank or a deadlock ends the job at once, and the
tests not reached run in the next job. `--kata-impl`, the probe and budget settings reach every rank.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from plugins import impl, isolation, mpi_job, mpi_state, mpi_warm, pycache, settings
from plugins.backends import mpi_launcher
from plugins.verify_worker import plugin_modules

MARKER = "mpi"
SIZE_FIXTURE = "mpi_size"
DEFAULT_SIZE = 2
MAX_SIZE = 16
JOB_VARIABLE = "KATA_MPI_JOB"  # set for the ranks: the job folder; its presence means "rank"
# A failed rank waits this long to be ended by the parent; only a rank run by hand reaches it.
FAILED_RANK_WAIT_SECONDS = 60.0
FAILED_RANK_POLL_SECONDS = 0.005
# MPICH's UCX layer opens TCP listeners on every interface unless limited to shared memory.
RANK_ENVIRONMENT = {"UCX_TLS": "self,sm"}

jobs_key = pytest.StashKey["Jobs"]()


def in_rank() -> bool:
    return JOB_VARIABLE in os.environ


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(n=N): run this test on N ranks of a real MPI launcher (n may be a list: "
        f"one test per size); e.g. @pytest.mark.{MARKER}(n=[2, 4])",
    )
    if in_rank():
        rank = Rank.start(Path(os.environ[JOB_VARIABLE]))
        config.pluginmanager.register(rank, "kata-mpi-rank")
        config.add_cleanup(rank.close)
    else:
        config.stash[jobs_key] = Jobs(config)
        _no_mpi_here()


def _no_mpi_here() -> None:
    """The parent imports the kata modules (for MPI's constants) but never communicates: it
    must not initialise MPI, whose singleton leaves a shared-memory file in /dev/shm whenever
    the process ends without MPI_Finalize (the self-check's forked runs end with os._exit)."""
    try:
        import mpi4py
    except ImportError:
        return
    mpi4py.rc.initialize = False
    mpi4py.rc.finalize = False


# -- collection ------------------------------------------------------------------------------


def sizes(marker: pytest.Mark) -> tuple[int, ...]:
    value = marker.kwargs.get("n", DEFAULT_SIZE)
    values = tuple(value) if isinstance(value, list | tuple) else (value,)
    if not values or not all(isinstance(n, int) and 1 <= n <= MAX_SIZE for n in values):
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}(n={value!r}): n must be a number of ranks from 1 to "
            f"{MAX_SIZE}, or a list of them"
        )
    return values


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker(MARKER)
    if marker is None:
        return
    if SIZE_FIXTURE not in metafunc.fixturenames:
        metafunc.fixturenames.append(SIZE_FIXTURE)
    ranks = sizes(marker)
    metafunc.parametrize(SIZE_FIXTURE, ranks, ids=[f"n{n}" for n in ranks])


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if in_rank():
        return
    jobs = config.stash[jobs_key]
    for item in items:
        if item.get_closest_marker(MARKER) is None or not isinstance(item, pytest.Function):
            continue
        # The rank runs the test under its budget; here the job watches the time (each test
        # at most its budget plus a grace), so the parent's own timeout is off.
        timeout = item.get_closest_marker("timeout")
        jobs.budgets[item.nodeid] = float(timeout.args[0]) if timeout and timeout.args else 0.0
        item.add_marker(pytest.mark.timeout(0), append=False)
    if jobs.budgets and mpi_launcher() is not None:
        jobs.start_warm_server()


# -- run time: the parent --------------------------------------------------------------------


@dataclass
class Jobs:
    """The parent's record of the jobs it ran: each test's per-rank results."""

    config: pytest.Config
    budgets: dict[str, float] = field(default_factory=dict)
    results: dict[str, dict[int, mpi_job.RankResult]] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)  # why a job stopped in that test
    launches: int = 0
    sizes: set[int] = field(default_factory=set)
    server: mpi_warm.Server | None = None  # this run's own warm rank server, if it started one
    warm_launches: int = 0
    notes: list[str] = field(default_factory=list)

    def start_warm_server(self) -> None:
        """Start this run's warm rank server, unless ranks start cold or one is shared (the
        self-check's); it imports while the parent collects and runs other tests."""
        if mpi_warm.cold() or os.environ.get(mpi_warm.SERVER_VARIABLE) or self.server:
            return
        self.server = mpi_warm.Server(
            self.config.rootpath, plugin_modules(self.config.pluginmanager.get_plugins())
        )
        self.config.add_cleanup(self.server.stop)

    def warm_socket(self) -> str | None:
        """Where the ranks of the next job find a warm server, if anywhere."""
        if mpi_warm.cold():
            return None
        shared = os.environ.get(mpi_warm.SERVER_VARIABLE)
        if shared:
            return shared  # the shim starts a cold rank itself should it not answer
        if self.server is None:
            return None
        if not self.server.ready():
            self.notes.append(self.server.problem())
            self.server.stop()
            self.server = None
            return None
        return str(self.server.path)

    def group(self, item: pytest.Function) -> list[pytest.Function]:
        """The tests that share `item`'s file and size, in run order, from `item` on, that
        have no result yet: they run in one job."""
        size = size_of(item)
        same = [
            other
            for other in item.session.items
            if isinstance(other, pytest.Function)
            and other.path == item.path
            and other.get_closest_marker(MARKER) is not None
            and size_of(other) == size
        ]
        rest = same[same.index(item) :] if item in same else [item]
        return [t for t in rest if t.nodeid not in self.results and t.nodeid not in self.verdicts]

    def run(self, item: pytest.Function) -> None:
        if item.nodeid in self.results or item.nodeid in self.verdicts:
            return
        tests = self.group(item)
        size = size_of(item)
        launcher = mpi_launcher()
        assert launcher is not None  # the hardware plugin skipped this test otherwise
        namespace = isolation.of(self.config)
        job = Path(tempfile.mkdtemp(prefix="mpi-", dir=namespace.scratch))
        self.launches += 1
        self.sizes.add(size)
        arguments = rank_arguments(self.config, [t.nodeid for t in tests])
        warm = self.warm_socket()
        self.warm_launches += warm is not None
        command = mpi_warm.rank_command(arguments) if warm else [sys.executable, *arguments]
        result = mpi_job.run(
            [*launcher, "-n", str(size), *command],
            size=size,
            job=job,
            budgets=self.budgets,
            env=rank_environment(namespace, job, warm),
            cwd=self.config.rootpath,
        )
        self.results.update(result.results)
        for test in result.in_progress:
            if result.stopped is not None:
                self.verdicts.setdefault(test, result.stopped)
        if item.nodeid not in self.results and item.nodeid not in self.verdicts:
            self.verdicts[item.nodeid] = result.stopped or (
                "the job ended before this test ran; the launcher's output:\n" + result.log
            )


def size_of(item: pytest.Item) -> int:
    callspec = getattr(item, "callspec", None)
    return int(callspec.params.get(SIZE_FIXTURE, DEFAULT_SIZE)) if callspec else DEFAULT_SIZE


def rank_arguments(config: pytest.Config, nodeids: list[str]) -> list[str]:
    """Each rank's `python` arguments: pytest on these tests, this run's settings, quiet (the
    parent reports)."""
    run = settings.of(config)
    return [
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:faulthandler",  # the rank's own handler writes a crash's report where we read it
        "-q",
        "--no-header",
        "--color=no",
        # The parent stops at its first failure (-x, --maxfail): so do the ranks, rather than
        # run the rest of the file for results nobody will read.
        *([f"--maxfail={config.option.maxfail}"] if config.option.maxfail else []),
        f"--rootdir={config.rootpath}",
        f"{settings.IMPL_OPTION}={_rank_impl(config, run.impl)}",
        *run.child_args(),
        *nodeids,
    ]


def _rank_impl(config: pytest.Config, choice: str) -> str:
    """The implementation each rank imports: for a mutant, the folder this run already wrote
    it to. A rank that resolved `mutant:NAME` itself wrote a scratch copy of its own, and a
    rank that ends without pytest's cleanup (an abort, a rank past its budget) left it in the
    temporary folder: 94 of them after one self-check."""
    written = impl.implementation(config)
    if written is not None and written.scratch is not None:
        return str(written.scratch)
    return choice


def rank_environment(namespace: isolation.Namespace, job: Path, warm: str | None) -> dict[str, str]:
    # A rank started cold is a fresh Python: with its bytecode cached it starts in ~0.5 s, not ~1.3.
    extra = {JOB_VARIABLE: str(job), **({mpi_warm.SERVER_VARIABLE: warm} if warm else {})}
    env = pycache.environment(namespace.environment(extra))
    for name, value in RANK_ENVIRONMENT.items():
        env.setdefault(name, value)
    return env


def verdict_text(item: pytest.Item, size: int, ranks: dict[int, mpi_job.RankResult]) -> str:
    failed = sorted(r for r, result in ranks.items() if result.outcome == "failed")
    passed = sorted(r for r, result in ranks.items() if result.outcome == "passed")
    missing = sorted(set(range(size)) - set(ranks))
    lines = [f"failed on {_ranks(failed)} of {size}"]
    if passed:
        lines[0] += f" ({_ranks(passed)} passed)"
    if missing:
        lines[0] += f"; {_ranks(missing)} had not finished it when the job was stopped"
    lines[0] += "."
    texts: dict[str, list[int]] = {}
    for rank in failed:
        texts.setdefault(ranks[rank].text, []).append(rank)
    for text, alike in texts.items():
        lines.append(f"\n--- what {_ranks(alike)} reported:\n{text}")
    return "\n".join(lines)


def _ranks(ranks: list[int]) -> str:
    if len(ranks) == 1:
        return f"rank {ranks[0]}"
    return "ranks " + ", ".join(str(r) for r in ranks[:-1]) + f" and {ranks[-1]}"


def _show_output(ranks: dict[int, mpi_job.RankResult]) -> None:
    """Rank 0's output as the test's own; another rank's only where it differs."""
    for stream, name in ((sys.stdout, "stdout"), (sys.stderr, "stderr")):
        first = getattr(ranks.get(0), name, "") if 0 in ranks else ""
        if first:
            stream.write(first)
        for rank in sorted(ranks):
            text = getattr(ranks[rank], name)
            if rank and text and text != first:
                stream.write(f"--- rank {rank} ({name}):\n{text}")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if in_rank() or pyfuncitem.get_closest_marker(MARKER) is None:
        return None
    jobs = pyfuncitem.config.stash[jobs_key]
    jobs.run(pyfuncitem)
    if pyfuncitem.nodeid in jobs.verdicts and pyfuncitem.nodeid not in jobs.results:
        pytest.fail(jobs.verdicts[pyfuncitem.nodeid], pytrace=False)
    ranks = jobs.results.get(pyfuncitem.nodeid, {})
    _show_output(ranks)
    size = size_of(pyfuncitem)
    if any(r.outcome == "failed" for r in ranks.values()):
        text = verdict_text(pyfuncitem, size, ranks)
        if pyfuncitem.nodeid in jobs.verdicts:
            text += "\n\n" + jobs.verdicts[pyfuncitem.nodeid]
        pytest.fail(text, pytrace=False)
    if ranks and all(r.outcome == "skipped" for r in ranks.values()):
        pytest.skip(ranks[min(ranks)].text)
    if len(ranks) < size:
        pytest.fail(
            jobs.verdicts.get(pyfuncitem.nodeid, "")
            or f"only {_ranks(sorted(ranks))} of {size} reported a result",
            pytrace=False,
        )
    return True


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    jobs = config.stash.get(jobs_key, None)
    if jobs is None or not jobs.launches:
        return
    launcher = " ".join(mpi_launcher() or ["?"])
    tests = len(jobs.results) + len(set(jobs.verdicts) - set(jobs.results))
    sizes = ", ".join(str(n) for n in sorted(jobs.sizes))
    warm = (
        "ranks forked warm"
        if jobs.warm_launches == jobs.launches
        else f"ranks forked warm in {jobs.warm_launches}"
        if jobs.warm_launches
        else "ranks started cold"
    )
    terminalreporter.write_line(
        f"MPI: {tests} test{'s' if tests != 1 else ''} on {sizes} "
        f"rank{'s' if jobs.sizes != {1} else ''} in {jobs.launches} "
        f"launch{'es' if jobs.launches != 1 else ''} of {Path(launcher).name} ({warm})"
    )
    for note in jobs.notes:
        terminalreporter.write_line(f"MPI: {note}")


# -- run time: a rank ------------------------------------------------------------------------


@dataclass
class Rank:
    """This rank's side, registered as a plugin in rank mode: its results file, its crash
    report file, and the reports of the test under way."""

    job: Path
    rank: int
    results: IO[str]
    fault: IO[str]
    reports: dict[str, list[pytest.TestReport]] = field(default_factory=dict)

    @classmethod
    def start(cls, job: Path) -> Rank:
        from plugins import mpi_trace  # imports mpi4py, which initialises MPI: ranks only

        rank = mpi_trace.REAL_WORLD.Get_rank()
        mpi_trace.open_slot(mpi_state.slot_path(job, rank))
        mpi_trace.install()
        fault = mpi_state.fault_path(job, rank).open("w")
        faulthandler.enable(fault)
        results = mpi_state.results_path(job, rank).open("w")
        return cls(job, rank, results, fault)

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        from plugins import mpi_trace

        mpi_trace.set_phase(mpi_state.RUNNING, test=nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.setdefault(report.nodeid, []).append(report)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        from plugins import mpi_trace

        mpi_trace.note_shared_memory()  # a test's own communicators (or a pool's) map more
        if not self.record(nodeid):
            return
        # Another rank may be stuck waiting for this one in the failed test. The parent tells:
        # it lets this rank go on once every rank got through the test, or ends the job.
        go_on = mpi_state.go_on_path(self.job, nodeid)
        deadline = time.monotonic() + FAILED_RANK_WAIT_SECONDS
        while time.monotonic() < deadline:
            if go_on.exists():
                return
            time.sleep(FAILED_RANK_POLL_SECONDS)
        os.kill(os.getpid(), signal.SIGKILL)

    def record(self, nodeid: str) -> bool:
        """Write one test's result; True when it failed."""
        reports = self.reports.pop(nodeid, [])
        failed = [r for r in reports if r.failed]
        skipped = [r for r in reports if r.skipped]
        call = [r for r in reports if r.when == "call"]
        if failed:
            outcome, text = "failed", failed[0].longreprtext
        elif skipped:
            outcome, text = "skipped", _skip_reason(skipped[0])
        else:
            outcome, text = "passed", ""
        shown = call[0] if call else (reports[-1] if reports else None)
        record = {
            "nodeid": nodeid,
            "outcome": outcome,
            "text": text,
            "stdout": shown.capstdout if shown else "",
            "stderr": shown.capstderr if shown else "",
        }
        self.results.write(json.dumps(record) + "\n")
        self.results.flush()
        return bool(failed)

    def close(self) -> None:
        from plugins import mpi_trace

        mpi_trace.set_phase(mpi_state.FINISHED)
        self.results.close()
        # MPI_Finalize, at exit, waits for every rank spinning: wait for them asleep first.
        mpi_trace.sleep_until_all_arrive(mpi_trace.REAL_WORLD)


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def mpi_size() -> int:
    """The number of ranks this test runs on (`@pytest.mark.mpi(n=...)`)."""
    return DEFAULT_SIZE


@pytest.fixture
def comm(request: pytest.FixtureRequest, mpi_size: int) -> Iterator[Any]:
    """A fresh duplicate of COMM_WORLD for this test, on every rank: sends are synchronous and
    blocking calls are watched for deadlocks. (In the parent, which never runs the test body,
    it is None.)"""
    if not in_rank():
        yield None
        return
    from plugins import mpi_trace

    communicator = mpi_trace.per_test_communicator(request.node.nodeid)
    if communicator.Get_size() != mpi_size:
        pytest.fail(f"this test wants {mpi_size} ranks but runs on {communicator.Get_size()}")
    yield communicator
    communicator.Free()
