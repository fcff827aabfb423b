"""The `pyro` backend: a real Pyro4 name server per run, the learner's servers as real processes,
and hangs told as chains of remote calls.

- The name server starts the first time a test file of a kata marked `pyro` is collected: a
  process (`python -m plugins.pyro_serve --name-server`) bound to 127.0.0.1 at a port this run
  holds, broadcast off, with a random HMAC key, so a client without the key is refused. Its
  address and key are in the environment (KATA_PYRO_NS = "127.0.0.1:PORT", KATA_PYRO_KEY), where
  the katas read them and every process a test starts inherits them. It stops when the run ends.
- `pyro_server(name, module, function, *arguments)` (module scope) runs a server function of
  the learner's in a process of its own and returns once `name` is registered with the name
  server; the server is stopped, with its process group, at the end of the test module.
- Every remote call, in the test process and in each server, is recorded while it runs
  (plugins/pyro_calls.py). A test that fails while calls are still in flight (a Pyro timeout,
  or its budget running out) gets a section telling the chain: who waits for whom, and the
  circle, if there is one.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from plugins import hardware, impl, isolation, pyro_calls
from plugins.pyro_serve import KEY_VARIABLE, NAME_SERVER_FLAG
from plugins.services import Service, ServiceError

ADDRESS_VARIABLE = "KATA_PYRO_NS"
MARKER = "pyro"
# A server imports Pyro4 and the kata module, then registers: a fraction of a second, a few
# on a loaded machine; well inside a test's budget (10 s by default).
READY_SECONDS = 6.0

names_key = pytest.StashKey["NameServer"]()


@dataclass
class NameServer:
    """This run's name server."""

    host: str
    port: int
    key: bytes
    service: Service
    calls: Path  # the folder of every process's calls in flight
    servers: dict[str, Service] = field(default_factory=dict)  # name -> its server process

    def locate(self) -> Any:
        """A proxy of the name server, with the key."""
        import Pyro4

        return Pyro4.locateNS(self.host, self.port, hmac_key=self.key)

    def uri_names(self) -> dict[str, str]:
        """Each registered object's URI (and PYRONAME form) -> its name."""
        try:
            with self.locate() as ns:
                listed = ns.list()
        except Exception:  # a name server that does not answer: raw URIs will do
            return {}
        found = {str(uri): name for name, uri in listed.items()}
        for name in listed:
            found[f"PYRONAME:{name}@{self.host}:{self.port}"] = name
            found[f"PYRONAME:{name}"] = name
        return found


def _answers(host: str, port: int, key: bytes) -> bool:
    import Pyro4
    import Pyro4.errors

    try:
        with Pyro4.locateNS(host, port, hmac_key=key) as ns:
            ns.ping()
        return True
    except Pyro4.errors.PyroError:
        return False


# -- collection ------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> None:
    """Start the name server before a `pyro` kata's test file imports the learner's module."""
    if impl.kata_marked(parent.config, module_path, MARKER):
        ensure_name_server(parent.config)


def ensure_name_server(config: pytest.Config) -> NameServer | None:
    """This run's name server, started on first use; None when Pyro4 is absent here."""
    if names_key in config.stash:
        return config.stash[names_key]
    if hardware.absence(config, MARKER) is not None:
        return None
    namespace = isolation.of(config)
    host, port, key = "127.0.0.1", namespace.port(), secrets.token_hex(16)
    calls = namespace.scratch / "pyro-calls"
    calls.mkdir(exist_ok=True)
    os.environ.update({KEY_VARIABLE: key, pyro_calls.FOLDER_VARIABLE: str(calls)})
    try:
        service = namespace.start_service(
            [sys.executable, "-m", "plugins.pyro_serve", NAME_SERVER_FLAG, host, str(port)],
            ready=lambda: _answers(host, port, key.encode()),
            name="pyro-name-server",
        )
    except ServiceError as error:
        raise pytest.UsageError(f"the Pyro name server did not start: {error}") from error
    os.environ[ADDRESS_VARIABLE] = f"{host}:{port}"
    pyro_calls.install("the test")
    config.stash[names_key] = NameServer(host, port, key.encode(), service, calls)
    return config.stash[names_key]


# -- run time --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pyro_ns(pytestconfig: pytest.Config) -> NameServer:
    """This run's name server (`host`, `port`, `key`, `locate()`)."""
    found = ensure_name_server(pytestconfig)
    if found is None:
        pytest.skip(f"no Pyro: {hardware.absence(pytestconfig, MARKER)}")
    return found


@pytest.fixture(scope="module")
def pyro_server(
    pyro_ns: NameServer, kata_namespace: isolation.Namespace
) -> Iterator[Callable[..., Service]]:
    """`pyro_server(name, module, function, *arguments)`: FUNCTION(*arguments) of MODULE, run
    in a process of its own, which must register `name` with the name server; returns once it
    has. Stopped at the end of the test module."""
    started: list[Service] = []

    def start(name: str, module: str, function: str, *arguments: Any) -> Service:
        argv = [
            sys.executable,
            *("-m", "plugins.pyro_serve", name, module, function, json.dumps(list(arguments))),
        ]
        before = _names(pyro_ns)
        service = kata_namespace.start_service(argv, name=f"pyro-{name}")
        started.append(service)
        pyro_ns.servers[name] = service
        deadline = time.monotonic() + READY_SECONDS
        while name not in (now := _names(pyro_ns)):
            others = sorted(set(now) - set(before))
            why = ""
            if others:
                why = f"it registered {', '.join(map(repr, others))} instead"
            elif not service.running():
                why = "it exited"
            elif time.monotonic() > deadline:
                why = f"not within {READY_SECONDS:g} s"
            if why:
                service.stop()
                pytest.fail(
                    f"the server {function}(...) of {module} did not register {name!r} with the "
                    f"name server ({why}); the end of its output:\n{service.log_tail()}",
                    pytrace=False,
                )
            time.sleep(0.02)
        return service

    yield start
    for service in started:
        service.stop(grace=1.0)
    for name in [n for n, s in pyro_ns.servers.items() if s in started]:
        del pyro_ns.servers[name]


def _names(ns: NameServer) -> dict[str, str]:
    """Every name registered with the name server (but its own), with its URI."""
    import Pyro4.errors

    try:
        with ns.locate() as proxy:
            listed = dict(proxy.list())
    except Pyro4.errors.PyroError:
        return {}
    listed.pop("Pyro.NameServer", None)
    return listed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test while remote calls are in flight: tell their chain under the failure."""
    report = yield
    found = item.config.stash.get(names_key, None)
    if found is not None and report.failed and call.when == "call":
        text = pyro_calls.chain(found.calls, found.uri_names(), since=call.start)
        if text:
            report.sections.append(("remote calls in flight", text))
    return report


# -- summary ---------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the name server before isolation's sweep (which would call it a stray)."""
    found = session.config.stash.get(names_key, None)
    if found is not None:
        found.service.stop(grace=1.0)
        for variable in (ADDRESS_VARIABLE, KEY_VARIABLE, pyro_calls.FOLDER_VARIABLE):
            os.environ.pop(variable, None)
