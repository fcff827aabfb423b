"""The broker and worker plugins (plugins/redis_broker.py, plugins/celery_workers.py): a real Redis
per run, private to it (127.0.0.1 only, a password) and gone afterwards with every worker; an
app wired to anything else, or accepting pickle, fails at once with the reason; a task that never
comes back fails naming its id, state and queue."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from plugins import served_cpu
from plugins.backends import BACKENDS
from tests.kata_repo import MANIFEST, KataRepo, process_gone

pytestmark = pytest.mark.skipif(
    BACKENDS["broker"].detect() is not None,
    reason=f"needs {BACKENDS['broker'].description}: {BACKENDS['broker'].how_to_get}",
)

APP = """
import os
from celery import Celery

def settings():
    url = os.environ["KATA_BROKER_URL"]
    return {"broker_url": url, "result_backend": url, "accept_content": ["json"],
            "result_accept_content": ["json"]}

app = Celery("celeryapp")
app.add_defaults(settings)

@app.task(name="celeryapp.add", shared=False)
def add(x, y):
    return x + y

pickled = Celery("pickled")
pickled.add_defaults(lambda: {**settings(), "accept_content": ["json", "pickle"]})

elsewhere = Celery("elsewhere", broker="redis://localhost:6379/0", backend="redis://localhost:6379/0")

nobackend = Celery("nobackend")
nobackend.add_defaults(lambda: {"broker_url": os.environ["KATA_BROKER_URL"]})
"""

TESTS = '''
import json
import os
from pathlib import Path

import socket

import pytest
from celeryapp import add, app, elsewhere, nobackend, pickled

from plugins import proctree

OUT = Path(os.environ["KATA_TEST_OUT"])


def listening_addresses(port):
    """The local addresses of the TCP sockets listening on `port` (from /proc/net/tcp*)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.append(address)
    return found


@pytest.mark.clause(1)
@pytest.mark.budget(60)  # a worker starts in 2 s or more on a loaded machine
def test_runs_a_task_on_a_real_worker(broker, celery_worker, get_result, kata_namespace, pytestconfig):
    from plugins.celery_workers import warm_key

    queue = kata_namespace.name("q")
    worker = celery_worker("celeryapp", queues=[queue], concurrency=3, app=app)
    assert get_result(add.apply_async((2, 40), queue=queue), 10) == 42
    port = broker.port
    assert listening_addresses(port) == ["0100007F"], listening_addresses(port)
    # A client without the password: Redis answers every command with NOAUTH.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(b"PING\\r\\n")
        reply = client.recv(200)
    assert reply.startswith(b"-NOAUTH"), reply
    warm = pytestconfig.stash[warm_key]
    OUT.write_text(json.dumps({
        "redis": broker.service.pid,
        "worker": [worker.pid, *worker.pool_pids()],
        "pool": len(worker.pool_pids()),
        "url": broker.url,
        "warm": warm.pid,
        "worker_parent": proctree.read(worker.pid).ppid,
        "worker_group": proctree.read(worker.pid).pgid,
    }))


@pytest.mark.clause(1)
def test_a_task_nobody_serves_fails_naming_its_queue(broker, get_result, kata_namespace):
    get_result(add.apply_async((1, 2), queue="nobody-serves-this"), 0.3)


@pytest.mark.clause(1)
def test_a_group_nobody_serves_fails_naming_each_task(broker, get_result):
    from celery import group

    members = [add.s(1, 2).set(queue="nobody-a"), add.s(3, 4).set(queue="nobody-b")]
    get_result(group(members).apply_async(), 0.3)


@pytest.mark.clause(1)
def test_an_app_that_accepts_pickle_is_refused(celery_worker):
    celery_worker("celeryapp", app=pickled)


@pytest.mark.clause(1)
def test_an_app_with_its_own_broker_is_refused(celery_worker):
    celery_worker("celeryapp", app=elsewhere)


@pytest.mark.clause(1)
def test_an_app_with_no_result_backend_is_refused(celery_worker):
    celery_worker("celeryapp", app=nobackend)
'''


def test_redis_and_workers_are_private_to_the_run_and_gone_after_it(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    kata_repo.write(
        "katas/curriculum.toml",
        MANIFEST.replace('title = "Add two numbers"', 'title = "Add"\nmarkers = ["broker"]'),
    )
    kata_repo.write("katas/adder/celeryapp.py", APP)
    kata_repo.write("katas/adder/test_adder.py", TESTS)
    out = kata_repo.root / "out.json"
    monkeypatch.setenv("KATA_TEST_OUT", str(out))
    monkeypatch.delenv("KATA_BROKER_URL", raising=False)
    served = kata_repo.root / "served-cpu"
    monkeypatch.setenv(served_cpu.VARIABLE, str(served))
    # Short: the warm server's socket is made below it, and a socket's path fits in 108 bytes.
    temporary = Path(tempfile.mkdtemp(prefix="celery-run-"))
    monkeypatch.setenv("TMPDIR", str(temporary))
    result = kata_repo.run("katas/adder", "-p", "no:randomly", "-rA", timeout=120)
    result.assert_outcomes(passed=1, failed=5)
    output = result.stdout.str()
    assert (
        "task celeryapp.add (id " in output
        and "was not done after 0.3 s: its state is PENDING (no worker has reported on it" in output
        and "it was sent to queue 'nobody-serves-this'" in output
    ), output
    assert "2 of the group's 2 tasks were not done after 0.3 s:" in output, output
    assert "it was sent to queue 'nobody-a'" in output and "queue 'nobody-b'" in output, output
    assert "the app's serializers must be JSON only, but {'accept_content'" in output, output
    assert "the app's broker is 'redis://localhost:6379/0', not this run's Redis" in output
    assert "the app has no result backend" in output, output
    facts = json.loads(out.read_text())
    assert facts["pool"] == 3, facts
    # Forked from the run's warm server (plugins/celery_warm.py), leading a process group of its
    # own, which the plugin ends with it.
    assert facts["worker_parent"] == facts["warm"], facts
    assert facts["worker_group"] == facts["worker"][0], facts
    assert facts["url"].startswith("redis://:") and "@127.0.0.1:" in facts["url"], facts
    assert facts["url"] not in output, "the broker's password must not be printed"
    for pid in [facts["redis"], facts["warm"], *facts["worker"]]:
        assert process_gone(pid), f"process {pid} outlived the run"
    # Killed at the end, the worker's pool never removes its folder: the run must (all but the
    # port locks, which every run shares).
    left = sorted(p.name for p in temporary.iterdir() if not p.name.startswith("kata-ports-"))
    shutil.rmtree(temporary)
    assert not left, f"the run left these in its temporary folder: {left}"
    # The warm server recorded the worker's CPU seconds, which the self-check counts as the
    # run's own (plugins/served_cpu.py); a worker that ran Celery used well over 10 ms.
    recorded = served.read_text(encoding="ascii").split() if served.exists() else []
    assert recorded and float(recorded[0]) > 0.01, f"worker CPU not recorded: {recorded}"
