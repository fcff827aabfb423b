"""Service isolation: side-by-side runs get their own names, ports, scratch folders and services."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from plugins import isolation, services
from tests.kata_repo import KataRepo
from tests.test_cleanup import assert_none_running, killed_afterwards, processes_running

SERVICE_CHILD = "sleep 3593"
FORGOTTEN_SERVICE_CHILD = "sleep 3592"
NEVER_READY = "sleep 3591"

RECORDS_ITS_NAMESPACE = """
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def test_records_its_namespace(kata_namespace):
    out = Path(os.environ["ISOLATION_OUT"])
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ['KATA_RUN_ID'])"],
        capture_output=True, text=True, timeout=30, check=True,
    )
    (kata_namespace.scratch / "note.txt").write_text("mine")
    record = {
        "run_id": kata_namespace.run_id,
        "names": [kata_namespace.name("queue") for _ in range(3)],
        "ports": [kata_namespace.port() for _ in range(5)],
        "scratch": str(kata_namespace.scratch),
        "child_saw": child.stdout.strip(),
    }
    mine = out / f"{os.getpid()}.json"
    mine.with_suffix(".tmp").write_text(json.dumps(record))
    mine.with_suffix(".tmp").rename(mine)
    # Hold the ports until the other run has taken its own, so both hold theirs at once.
    deadline = time.monotonic() + 60
    while len(list(out.glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
"""


def test_two_runs_side_by_side_get_different_names_ports_and_scratch_folders(
    kata_repo: KataRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kata_repo.write("katas/adder/test_adder.py", RECORDS_ITS_NAMESPACE)
    out = tmp_path / "records"
    out.mkdir()
    monkeypatch.setenv("ISOLATION_OUT", str(out))
    # Both inherit one parent id, as `pytest --kata-verify`'s children do.
    monkeypatch.setenv(isolation.RUN_ID_VARIABLE, "parent-run")
    command = [sys.executable, "-m", "pytest", "katas/adder", "--kata-impl=reference", "-q"]
    runs = [
        kata_repo.pytester.popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0].decode(errors="replace") for run in runs]
    assert all(run.returncode == 0 for run in runs), "\n".join(outputs)
    first, second = (json.loads(path.read_text()) for path in sorted(out.glob("*.json")))
    assert first["run_id"] != second["run_id"], (
        "two pytest runs started by one parent share a run id: their servers would collide"
    )
    assert all(r["run_id"].startswith("parent-run-") for r in (first, second)), (
        f"{first['run_id']!r}, {second['run_id']!r}: a child run's id must derive from its parent's"
    )
    assert not set(first["names"]) & set(second["names"]), "two runs were handed the same name"
    assert len(set(first["names"])) == 3, "one run was handed the same name twice"
    assert not set(first["ports"]) & set(second["ports"]), "two runs held the same port at once"
    assert first["scratch"] != second["scratch"], "two runs share a scratch folder"
    for record in (first, second):
        assert record["child_saw"] == record["run_id"], (
            f"a process the test started saw KATA_RUN_ID={record['child_saw']!r}, not the "
            f"test's {record['run_id']!r}: a launcher or worker would leave the namespace"
        )
        assert not Path(record["scratch"]).exists(), "the scratch folder outlived its run"


def test_a_port_held_by_one_namespace_is_never_handed_to_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = []
    for _ in range(3):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free.append(probe.getsockname()[1])
    monkeypatch.setattr(isolation, "PORT_LOCK_DIR", tmp_path / "locks")
    monkeypatch.setattr(isolation, "PORT_RANGE", free)
    monkeypatch.setattr(isolation, "PORT_ATTEMPTS", 50)
    first, second = isolation.Namespace("first"), isolation.Namespace("second")
    try:
        taken = {first.port(), first.port()}
        assert len(taken) == 2, "one namespace was handed the same port twice"
        last = second.port()
        assert last not in taken, f"port {last} was handed to two namespaces at once"
        with pytest.raises(RuntimeError, match="no free port"):
            second.port()
    finally:
        first.close()
        second.close()
    for port in free:
        with (tmp_path / "locks" / f"{port}.lock").open("rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises while still held


SERVICE_FIXTURE = """
import sys

import pytest
from plugins.services import listening


@pytest.fixture(scope="module")
def server(kata_namespace):
    port = kata_namespace.port()
    service = kata_namespace.start_service(
        ["sh", "-c", f"__CHILD__ & exec {sys.executable} -m http.server --bind 127.0.0.1 {port}"],
        ready=listening(port),
        name="web",
    )
    yield service, port
    __STOP__


def test_reaches_the_server(server):
    service, port = server
    assert listening(port)(), "the service must accept connections once started"


def test_still_reaches_it_in_the_next_test(server):
    service, port = server
    assert service.running() and listening(port)(), (
        "a module-scoped service must outlive the first test: the cleanup must spare it"
    )
"""


def test_a_service_survives_between_tests_and_stop_ends_its_whole_group(
    kata_repo: KataRepo,
) -> None:
    test_file = SERVICE_FIXTURE.replace("__CHILD__", SERVICE_CHILD)
    kata_repo.write("katas/adder/test_adder.py", test_file.replace("__STOP__", "service.stop()"))
    with killed_afterwards(SERVICE_CHILD):
        result = kata_repo.run("katas/adder", "--kata-impl=reference", timeout=60)
        assert_none_running(SERVICE_CHILD)
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*threads and processes left running*")


def test_a_service_left_running_is_stopped_with_its_group_and_reported(
    kata_repo: KataRepo,
) -> None:
    test_file = SERVICE_FIXTURE.replace("__CHILD__", FORGOTTEN_SERVICE_CHILD)
    kata_repo.write("katas/adder/test_adder.py", test_file.replace("__STOP__", "pass"))
    with killed_afterwards(FORGOTTEN_SERVICE_CHILD):
        result = kata_repo.run("katas/adder", "--kata-impl=reference", timeout=60)
        assert_none_running(FORGOTTEN_SERVICE_CHILD)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*threads and processes left running*",
            "end of run: service 'web' (pid *) was still running; stopped it and its process group",
        ]
    )


def test_a_service_that_exits_while_starting_raises_with_its_log(tmp_path: Path) -> None:
    with pytest.raises(services.ServiceError) as raised:
        services.start_service(
            ["sh", "-c", "echo 'no such config file' >&2; exit 3"],
            log=tmp_path / "broken.log",
            name="broken",
            ready=lambda: False,
        )
    message = str(raised.value)
    assert "exited with status 3 before it was ready" in message, message
    assert "no such config file" in message, f"the error must show the service's log: {message}"


def test_a_service_never_ready_is_stopped_and_raises(tmp_path: Path) -> None:
    with (
        killed_afterwards(NEVER_READY),
        pytest.raises(services.ServiceError, match=r"was not ready within 0\.3 s"),
    ):
        services.start_service(
            NEVER_READY.split(),
            log=tmp_path / "slow.log",
            name="slow",
            ready=lambda: False,
            ready_timeout=0.3,
        )
    assert not processes_running(NEVER_READY), "a service that never got ready was left running"
    assert os.environ.get(isolation.RUN_ID_VARIABLE), "this run's id must be in the environment"


def test_a_service_ends_when_the_process_that_started_it_is_killed_outright(tmp_path) -> None:
    # A pytest killed by SIGKILL (or by SIGTERM, which skips its cleanup) runs no teardown: its
    # servers must still go (they are in sessions of their own, out of its process group).
    import signal
    import subprocess
    import sys
    import time

    from tests.kata_repo import REPO_ROOT, process_gone

    starter = tmp_path / "starter.py"
    starter.write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from plugins.services import start_service\n"
        "service = start_service([sys.executable, '-c', 'import time; time.sleep(60)'],\n"
        f"    log=Path({str(tmp_path / 'server.log')!r}), name='sleeper')\n"
        "print(service.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, str(starter)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    server = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 5
    while not process_gone(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_gone(server), f"the service {server} outlived the process that started it"


def test_what_a_killed_service_made_in_its_temporary_folder_goes_when_the_run_ends() -> None:
    # A server the run kills outright (a Celery worker's pool makes a folder; an MPI rank its
    # OpenCL loader folder) never removes what it made: its temporary folder is the run's.
    namespace = isolation.Namespace("temporary-files-test")
    try:
        service = namespace.start_service(
            [
                sys.executable,
                "-c",
                "import tempfile, time\n"
                "print(tempfile.mkdtemp(prefix='left-behind-'), flush=True)\n"
                "time.sleep(60)",
            ],
            ready=lambda: bool(next(namespace.scratch.glob("*.log")).read_text().strip()),
            name="leaver",
        )
        service.kill()
        made = Path(service.log_tail().strip())
        assert made.is_dir(), f"the service never made its folder ({made})"
    finally:
        namespace.close()
    assert not made.exists(), (
        f"{made}, made by a service the run killed, outlived the run: a service's temporary "
        "folder must be the run's scratch folder"
    )
