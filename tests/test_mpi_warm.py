"""The warm rank server (plugins/mpi_warm.py) and the shim the launcher starts (plugins/mpi_shim.py),
under the real launcher: a forked rank reports what a fresh one would, and never outlives its job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugins import mpi_job, mpi_warm, served_cpu
from plugins.backends import mpi_launcher

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = mpi_launcher()
pytestmark = pytest.mark.skipif(
    LAUNCHER is None, reason="needs an MPI launcher: pip install -e '.[mpi]'"
)

RANK_TESTS = """
import os
import tempfile
import time

from mpi4py import MPI


def test_passes():
    assert MPI.Is_initialized() and MPI.COMM_WORLD.Get_size() == int(os.environ["EXPECTED_SIZE"])
    assert MPI.COMM_WORLD.allreduce(1) == MPI.COMM_WORLD.Get_size()
    # The run removes its job's temporary folder, with what a killed rank left there.
    assert tempfile.gettempdir() == os.environ["TMPDIR"], (
        f"the rank's temporary folder is {tempfile.gettempdir()}, not its job's"
    )


def test_fails_on_request():
    assert not os.environ.get("FAIL"), "failing as asked"


def test_sleeps_on_request():
    time.sleep(float(os.environ.get("SLEEP", "0")))
"""


@pytest.fixture
def server() -> Iterator[mpi_warm.Server]:
    # isolation asks tempfile for its folder at import, as the plugins do in every server.
    warm = mpi_warm.Server(ROOT, ["pytest", "plugins.isolation"])
    assert warm.ready(), warm.problem()
    yield warm
    warm.stop()


def launch(tmp_path: Path, size: int, server: str, **env: str) -> subprocess.Popen[bytes]:
    assert LAUNCHER is not None
    tests = tmp_path / "test_rank.py"
    tests.write_text(RANK_TESTS)
    (tmp_path / "job-tmp").mkdir(exist_ok=True)
    arguments = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(tests)]
    return subprocess.Popen(
        [*LAUNCHER, "-n", str(size), *mpi_warm.rank_command(arguments)],
        cwd=tmp_path,
        env={
            **os.environ,
            mpi_warm.SERVER_VARIABLE: server,
            "EXPECTED_SIZE": str(size),
            "TMPDIR": str(tmp_path / "job-tmp"),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def forked_ranks(server: mpi_warm.Server) -> list[int]:
    group = os.getpgid(server.process.pid)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if int(pid) != server.process.pid and os.getpgid(int(pid)) == group:
                found.append(int(pid))
        except ProcessLookupError:
            continue
    return found


def test_warm_ranks_start_mpi_and_the_launcher_sees_their_success(
    server: mpi_warm.Server, tmp_path: Path
) -> None:
    job = launch(tmp_path, 3, str(server.path))
    output, _ = job.communicate(timeout=60)
    assert job.returncode == 0, output.decode()
    assert output.decode().count("3 passed") == 3, output.decode()


def test_the_server_records_each_rank_s_cpu_seconds_for_the_run_that_launched_it(
    server: mpi_warm.Server, tmp_path: Path
) -> None:
    """The self-check counts these as the run's own: a run whose ranks keep cores busy must not
    look like a run that waits."""
    record = tmp_path / "served-cpu"
    job = launch(tmp_path, 3, str(server.path), **{served_cpu.VARIABLE: str(record)})
    output, _ = job.communicate(timeout=60)
    assert job.returncode == 0, output.decode()
    lines = record.read_text(encoding="ascii").split()
    assert len(lines) == 3, f"expected one line per rank, got {lines}"
    # Each rank ran pytest and MPI_Init: well over 10 ms of CPU, on any machine.
    assert all(float(line) > 0.01 for line in lines), lines
    assert served_cpu.collect(record) == pytest.approx(sum(map(float, lines)))
    assert not record.exists(), "collecting removes the record"


def test_a_failing_warm_rank_makes_the_launcher_fail(
    server: mpi_warm.Server, tmp_path: Path
) -> None:
    job = launch(tmp_path, 2, str(server.path), FAIL="1")
    output, _ = job.communicate(timeout=60)
    assert job.returncode != 0, (
        f"the launcher reported success for failing ranks:\n{output.decode()}"
    )
    assert "failing as asked" in output.decode()


def test_warm_ranks_die_with_their_job(server: mpi_warm.Server, tmp_path: Path) -> None:
    job = launch(tmp_path, 2, str(server.path), SLEEP="60")
    deadline = time.monotonic() + 30
    while len(forked_ranks(server)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(forked_ranks(server)) == 2, "the server never forked the job's two ranks"
    # Killed ranks never reach MPI_Finalize, which removes their shared-memory files: the
    # runner removes them after a job; this test, which ends the job itself, does it too.
    mapped = mpi_job._mapped_shared_memory(forked_ranks(server))
    os.killpg(job.pid, signal.SIGKILL)  # the launcher and its shims, as the runner ends a job
    job.wait()
    deadline = time.monotonic() + 5
    while forked_ranks(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    for name in mapped:
        Path(name).unlink(missing_ok=True)
    assert not forked_ranks(server), "a rank outlived its killed shim (no SIGIO?)"


def test_with_no_server_to_reach_the_shim_runs_an_ordinary_rank(tmp_path: Path) -> None:
    job = launch(tmp_path, 2, str(tmp_path / "no-such.sock"))
    output, _ = job.communicate(timeout=60)
    assert job.returncode == 0, output.decode()
    assert output.decode().count("3 passed") == 2, output.decode()


def test_the_server_refuses_what_is_not_a_rank_of_pytest(server: mpi_warm.Server) -> None:
    shim = subprocess.run(
        [sys.executable, "-I", "-S", str(mpi_warm.SHIM), "-c", "print('not pytest')"],
        env={**os.environ, mpi_warm.SERVER_VARIABLE: str(server.path)},
        capture_output=True,
        timeout=30,
    )
    assert shim.returncode == 2 and b"not pytest" not in shim.stdout
