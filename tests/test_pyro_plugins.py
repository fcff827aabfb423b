"""The Pyro plugin (plugins/pyro_names.py, pyro_serve.py, pyro_calls.py): a real name server per
run that refuses clients without its key, the learner's servers as real processes gone after
the run, and a hang across processes told as the chain of calls that forms a circle."""

from __future__ import annotations

import json

import pytest

from plugins.backends import BACKENDS
from tests.kata_repo import MANIFEST, KataRepo, process_gone

pytestmark = pytest.mark.skipif(
    BACKENDS["pyro"].detect() is not None,
    reason=f"needs {BACKENDS['pyro'].description}: {BACKENDS['pyro'].how_to_get}",
)

RING = """
import os

import Pyro4


def key():
    return os.environ["KATA_PYRO_KEY"].encode()


def proxy(name):
    host, port = os.environ["KATA_PYRO_NS"].split(":")
    found = Pyro4.Proxy(f"PYRONAME:{name}@{host}:{port}")
    found._pyroHmacKey = key()
    return found


@Pyro4.expose
class Link:
    def __init__(self, name, after):
        self.name, self.after = name, after

    def forward(self, trail):
        trail = [*trail, self.name]
        if len(trail) == 4:
            return trail
        with proxy(self.after) as next_link:
            return next_link.forward(trail)


def serve(name, after, servertype):
    Pyro4.config.SERVERTYPE = servertype
    host, port = os.environ["KATA_PYRO_NS"].split(":")
    daemon = Pyro4.Daemon(host="127.0.0.1")
    daemon._pyroHmacKey = key()
    uri = daemon.register(Link(name, after))
    with Pyro4.locateNS(host, int(port), hmac_key=key()) as ns:
        ns.register(name, uri)
    daemon.requestLoop()
"""

TESTS = """
import json
import os
from pathlib import Path

import Pyro4
import Pyro4.errors
import pytest
from ring import proxy

OUT = Path(os.environ["KATA_TEST_OUT"])


def ring(pyro_server, kata_namespace, servertype):
    names = [kata_namespace.name(f"ring-{servertype}-{i}") for i in range(3)]
    servers = [
        pyro_server(name, "ring", "serve", name, names[(i + 1) % 3], servertype)
        for i, name in enumerate(names)
    ]
    return names, servers


@pytest.mark.clause(1)
def test_a_threaded_ring_answers(pyro_ns, pyro_server, kata_namespace):
    names, servers = ring(pyro_server, kata_namespace, "thread")
    with proxy(names[0]) as first:
        assert first.forward([]) == [names[0], names[1], names[2], names[0]]
    with Pyro4.Proxy(f"PYRONAME:{names[0]}@{pyro_ns.host}:{pyro_ns.port}") as stranger:
        with pytest.raises(Pyro4.errors.PyroError):
            stranger.forward([])
    OUT.write_text(json.dumps({"pids": [s.pid for s in servers] + [pyro_ns.service.pid]}))


@pytest.mark.clause(1)
def test_a_multiplexed_ring_hangs(pyro_server, kata_namespace):
    names, servers = ring(pyro_server, kata_namespace, "multiplex")
    with proxy(names[0]) as first:
        first._pyroTimeout = 1.5
        first.forward([])
"""


def test_a_ring_of_servers_hangs_told_as_a_circle_of_calls_and_nothing_outlives_the_run(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    kata_repo.write(
        "katas/curriculum.toml",
        MANIFEST.replace('title = "Add two numbers"', 'title = "Add"\nmarkers = ["pyro"]'),
    )
    kata_repo.write("katas/adder/ring.py", RING)
    kata_repo.write("katas/adder/test_adder.py", TESTS)
    out = kata_repo.root / "out.json"
    monkeypatch.setenv("KATA_TEST_OUT", str(out))
    result = kata_repo.run("katas/adder", "-p", "no:randomly", "-rA", timeout=120)
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    assert "remote calls in flight" in output, output
    assert "Pyro4.errors.TimeoutError" in output or "TimeoutError" in output, output
    for i, j in ((0, 1), (1, 2), (2, 0)):
        assert f"ring-multiplex-{i}" in output and f"ring-multiplex-{j}" in output
    assert "waits for ring-multiplex-" in output, output
    assert "each of these waits for the next, in a circle" in output, output
    assert "Pyro's multiplex server" in output, output
    pids = json.loads(out.read_text())["pids"]
    for pid in pids:
        assert process_gone(pid), f"process {pid} outlived the run"
