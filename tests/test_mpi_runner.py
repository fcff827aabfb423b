"""MPI tests run on real ranks and come back as ordinary results: failures name the ranks,
deadlocks are reported as who waits for what within about a second, and nothing is left over."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from plugins.backends import BACKENDS
from tests.kata_repo import KataRepo

pytestmark = pytest.mark.skipif(
    BACKENDS["mpi"].detect() is not None,
    reason=f"needs {BACKENDS['mpi'].description}: {BACKENDS['mpi'].how_to_get}",
)

OUTCOMES = """
import pytest
from adder import add


@pytest.mark.mpi(n=[2, 3])
def test_ring_on_any_size(comm):
    right, left = (comm.rank + 1) % comm.size, (comm.rank - 1) % comm.size
    assert comm.sendrecv(comm.rank, dest=right, source=left) == left


@pytest.mark.mpi(n=2)
def test_fails_on_rank_1_only(comm):
    print("rank", comm.rank, "was here")
    assert comm.rank == 0, f"rank {comm.rank} disagrees"


@pytest.mark.mpi(n=2)
def test_uses_the_chosen_implementation(comm):
    assert add(2, 2) == 4 + comm.rank * 0, "the ranks import the reference, as the parent chose"


@pytest.mark.mpi(n=2)
def test_skips_everywhere(comm):
    pytest.skip("nothing to do on any rank")


@pytest.mark.mpi(n=2)
def test_after_the_failure(comm):
    assert comm.allreduce(comm.rank + 1) == 3
"""


def test_each_file_and_size_runs_in_one_launch_and_a_rank_failure_names_the_rank(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/test_adder.py", OUTCOMES)
    result = kata_repo.run("katas/adder", "--kata-impl=reference", timeout=120)
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*failed on rank 1 of 2 (rank 0 passed).",
            "--- what rank 1 reported:",
            "*AssertionError: rank 1 disagrees",
            "*Captured stdout call*",
            "rank 0 was here",
            "--- rank 1 (stdout):",
            "rank 1 was here",
        ]
    )
    # One launch per size: every rank got through the failed test, so the job went on.
    result.stdout.fnmatch_lines(["MPI: 6 tests on 2, 3 ranks in 2 launches of mpiexec*"])


DEADLOCKS = """
import numpy as np
import pytest
from mpi4py import MPI


@pytest.mark.mpi(n=2)
def test_posted_receives_are_not_deadlocks(comm):
    other = 1 - comm.rank
    request = comm.irecv(source=other, tag=3)
    comm.send(comm.rank, dest=other, tag=3)
    assert request.wait() == other


@pytest.mark.mpi(n=2)
@pytest.mark.parametrize("nbytes", [8, 8 * 1024 * 1024])
def test_send_send(comm, nbytes):
    other = 1 - comm.rank
    comm.Send(np.zeros(nbytes, dtype=np.uint8), dest=other, tag=0)
    comm.Recv(np.empty(nbytes, dtype=np.uint8), source=other, tag=0)


@pytest.mark.mpi(n=3)
def test_collective_mismatch(comm):
    if comm.rank == 1:
        comm.recv(source=2, tag=5)
    else:
        comm.allreduce(comm.rank)


@pytest.mark.mpi(n=2)
def test_tag_mismatch(comm):
    if comm.rank == 0:
        comm.send("x", dest=1, tag=1)
    else:
        comm.recv(source=0, tag=2)


@pytest.mark.mpi(n=2)
def test_rank_leaves_early(comm):
    if comm.rank == 1:
        comm.recv(source=0)
"""


def test_deadlocks_fail_within_two_seconds_with_who_waits_for_what(kata_repo: KataRepo) -> None:
    kata_repo.write("katas/adder/test_adder.py", DEADLOCKS)
    result = kata_repo.run("katas/adder", "--durations=0", "-vv", timeout=120)
    result.assert_outcomes(passed=1, failed=5)
    for size in ("8", "8388608"):
        result.stdout.fnmatch_lines(
            [
                f"*test_send_send?n2-{size}?*",
                "deadlock: every rank is blocked and none can move on (found * s after the last rank blocked).",
                "rank 0 waits in Send(dest=1, tag=0) at test_adder.py:18;",
                "rank 1 waits in Send(dest=0, tag=0) at test_adder.py:18",
                "— each waits for the other to receive first.*",
            ]
        )
    result.stdout.fnmatch_lines(
        [
            "ranks 0 and 2 wait in allreduce() at test_adder.py:27;",
            "rank 1 waits in recv(source=2, tag=5) at test_adder.py:25",
            "— a collective (allreduce) must be called by every rank of its communicator, in the "
            "same order; rank 1 never called it.",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*rank 0's send (tag 1) and rank 1's receive (tag 2) do not match: a receive only takes*"]
    )
    result.stdout.fnmatch_lines(
        [
            "rank 0 has finished all its tests;",
            "rank 1 waits in recv(source=0, tag=ANY_TAG) at test_adder.py:41",
            "— Rank 0 left this test, so nothing more will come from it;*",
        ]
    )
    found = [
        float(s)
        for s in re.findall(r"found ([\d.]+) s after the last rank blocked", result.stdout.str())
    ]
    assert len(found) >= 5 and max(found) < 2.0, f"deadlocks called after {found} s"


# A rank that calls Abort, and one that runs past its budget: in the job of every ending, and
# in a mutant's job.
ABORTS = """
@pytest.mark.mpi(n=2)
def test_abort(comm):
    if comm.rank == 0:
        comm.Abort(3)
    comm.barrier()
"""
RUNS_PAST_ITS_BUDGET = """
@pytest.mark.mpi(n=2)
@pytest.mark.budget(1)
def test_busy_rank_runs_past_its_budget(comm):
    if comm.rank == 1:
        while True:
            time.sleep(0.01)
    comm.barrier()
"""

ENDINGS = (
    """
import ctypes
import os
import time

import pytest


@pytest.mark.mpi(n=2)
def test_a_first_job_waits_for_the_warm_rank_server(comm):
    # The server imports while the run collects; with an empty bytecode cache (this test's
    # fresh home) on a loaded machine, the first job can wait several seconds for it.
    comm.barrier()


@pytest.mark.mpi(n=2)
def test_segfault_on_one_rank(comm):
    if comm.rank == 1:
        ctypes.string_at(0)
    comm.barrier()


"""
    + ABORTS[1:]
    + """

@pytest.mark.mpi(n=2)
def test_exception_while_the_other_waits_in_a_collective(comm):
    if comm.rank == 0:
        raise ValueError("rank 0 gives up")
    comm.barrier()


"""
    + RUNS_PAST_ITS_BUDGET[1:]
    + """

@pytest.mark.mpi(n=2)
def test_still_runs_after_all_that(comm):
    assert comm.allreduce(1) == 2
"""
)


def test_a_crash_an_abort_an_exception_and_a_hang_each_end_the_job_at_once(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/test_adder.py", ENDINGS)
    result = kata_repo.run("katas/adder", "--durations=0", "-vv", timeout=120)
    result.assert_outcomes(passed=2, failed=4)
    result.stdout.fnmatch_lines(
        [
            "rank 1 died while running test_segfault_on_one_rank?n2?. Python's report of the crash:",
            "Fatal Python error: Segmentation fault",
        ]
    )
    result.stdout.fnmatch_lines(
        ["rank 0 called Abort(3) at test_adder.py:25: MPI_Abort ends every rank of the job*"]
    )
    result.stdout.fnmatch_lines(
        ["*failed on rank 0 of 2;*rank 1 had not finished it*", "*ValueError: rank 0 gives up"]
    )
    result.stdout.fnmatch_lines(["*the test ran past its budget of 1 s*"])
    # Each ending is a launch (about a second) and at most a budget of 1 s: none waited out the
    # default budget of 10 s, as a rank left waiting in a collective would.
    calls = {
        name: float(seconds)
        for seconds, name in re.findall(r"([\d.]+)s call +\S+::(\w+)", result.stdout.str())
    }
    calls.pop("test_a_first_job_waits_for_the_warm_rank_server", None)
    assert len(calls) == 5 and max(calls.values()) < 8, f"seconds per test: {calls}"
    leftovers = [
        line
        for line in os.popen("ps -eo pid,args").read().splitlines()
        if str(kata_repo.root) in line or "KATA_MPI_JOB" in line
    ]
    assert not leftovers, f"processes left running: {leftovers}"


MUTANT_JOB = (
    """
import time

import pytest
from adder import add


@pytest.mark.mpi(n=2)
def test_every_rank_imports_the_mutant(comm):
    assert add(2, 2) == 5, f"rank {comm.rank} did not import the off-by-one mutant"


"""
    + ABORTS[1:]
    + """

"""
    + RUNS_PAST_ITS_BUDGET[1:]
)


def test_a_mutants_job_leaves_no_copy_of_the_mutant_behind(
    kata_repo: KataRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The self-check runs every MPI mutant: each rank that wrote its own copy and was ended
    # without pytest's cleanup left a folder in the temporary directory (43 for two katas).
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    kata_repo.write("katas/adder/test_adder.py", MUTANT_JOB)
    result = kata_repo.run("katas/adder", "--kata-impl=mutant:adder/off-by-one", timeout=120)
    result.assert_outcomes(passed=1, failed=2)
    left = sorted(p.name for p in scratch.glob("kata-mutant-*"))
    assert not left, f"copies of the mutant left behind by the job's ranks: {left}"


LISTENERS = """
import os
from pathlib import Path

import pytest

LISTEN = "0A"


def listening_inodes():
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == LISTEN:
                found[fields[9]] = fields[1]
    return found


# This rank's process group (the ranks, and the warm server that forked them) and every
# process started with this job's environment (the launcher, and each rank's shim).
def ours(pid):
    if os.getpgid(pid) == os.getpgid(0):
        return True
    job = ("KATA_MPI_JOB=" + os.environ["KATA_MPI_JOB"]).encode()
    return job in Path(f"/proc/{pid}/environ").read_bytes().split(b"\\0")


def our_sockets(seen):
    inodes = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if not ours(int(pid)):
                continue
            seen.append(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\\0")[0])
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    return inodes


@pytest.mark.mpi(n=4)
def test_nothing_listens_beyond_loopback(comm):
    comm.barrier()
    if comm.rank == 0:
        seen = []
        ours = {inode: address for inode, address in listening_inodes().items() if inode in our_sockets(seen)}
        assert any(b"mpiexec" in name for name in seen), f"the launcher was not among {seen}"
        outside = [a for a in ours.values() if not a.startswith(("0100007F", "00000000000000000000000001000000"))]
        assert not outside, f"the job listens beyond loopback: {ours}"
    comm.barrier()
"""


def test_the_launcher_and_the_ranks_listen_on_no_address_beyond_loopback(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/test_adder.py", LISTENERS)
    result = kata_repo.run("katas/adder", timeout=120)
    result.assert_outcomes(passed=1)
