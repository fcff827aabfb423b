"""Celery for the katas: the learner's app in real worker processes, and results that are
waited for with a deadline and explained when they never come.

- `celery_worker` starts `celery -A <module> worker` (prefork, 2 processes by default) as a
  real process group against this run's broker (plugins/redis_broker.py), waits until it has
  said it is ready and answers a ping, and stops it (SIGKILL to the group: nothing in it is
  worth a warm shutdown) at the end of the test module. Each worker gets a name of its own
  (`-n`), and the queues it consumes (`-Q`) default to one made for this run alone.
- `get_result(result, timeout)` (a fixture) is `AsyncResult.get` with a deadline. A task that
  does not finish in time fails the test naming the task, its id, its state, and the queue it
  was sent to, read from Celery's `before_task_publish` signal, which this plugin records for
  every task sent from the test process.
- Fixtures `idle_queue` (a queue name nobody serves), `published` (the names of the tasks
  the test process sent during the test, in order) and `sent_at_first_wait` (how many of them
  it had sent when it first waited for a result).
- Workers are forked from a warm server (plugins/celery_warm.py) that this run starts while it
  collects the first `broker` kata, so each start skips Python's and Celery's imports; where
  the server is missing (KATA_CELERY_COLD=1, or it failed) a worker starts as a fresh Python.
- `check_app(app, broker)` fails the test, saying why, when an app's broker or result backend
  is not this run's, or when it would send or accept anything but JSON (pickle on the network
  lets whoever can write to the broker run code on the workers). `celery_worker(..., app=app)`
  checks the app this way before it starts a worker that would wait for ever on a wrong URL.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from plugins import celery_warm, hardware, impl, isolation, proctree, redis_broker, settings
from plugins.backends import BROKER_URL_VARIABLE as URL_VARIABLE
from plugins.isolation import Namespace
from plugins.redis_broker import Broker
from plugins.services import Service, ServiceError

# A worker process imports Celery, the app and its tasks, then connects: about 0.6 s on a
# quiet 2-core machine, 1.2 s on a loaded one. 20 s runs out only for a broken app.
READY_SECONDS = 20.0
PING_SECONDS = 5.0
LOG_TAIL_CHARACTERS = 3000

# task id -> (task name, queue or routing key, exchange), for every task this run sent
sent_key = pytest.StashKey[dict[str, tuple[str, str, str]]]()
# The run's warm worker server, once a `broker` kata is collected; None where workers start cold.
warm_key = pytest.StashKey[celery_warm.Server | None]()


@dataclass
class Worker:
    """One worker process group started by `celery_worker`."""

    hostname: str  # what `-n` named it: how results and pings tell workers apart
    queues: tuple[str, ...]
    service: Service
    log: Path
    app: Any = None
    stopped: bool = field(default=False)

    @property
    def pid(self) -> int:
        return self.service.pid

    def pool_pids(self) -> list[int]:
        """The pids of its pool's processes (prefork's children)."""
        return [p.pid for p in proctree.descendants(self.pid).values() if p.alive]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """SIGKILL the whole group and wait until it is gone."""
        if not self.stopped:
            self.service.kill()
            self.stopped = True


class WorkerError(RuntimeError):
    """A worker exited, or never became ready; the message holds the end of its log."""


def start_worker(namespace: Namespace, module: str, **options: Any) -> Worker:
    """Start `celery -A module worker` (options: those of launch_worker) and return once it is
    ready (and, when `app` is given, once it answers that app's ping)."""
    worker = launch_worker(namespace, module, **options)
    wait_until_ready(worker)
    return worker


def launch_worker(
    namespace: Namespace,
    module: str,
    queues: Sequence[str] = (),
    concurrency: int = 2,
    pool: str = "prefork",
    name: str = "worker",
    options: Sequence[str] = (),
    app: Any = None,
    warm: celery_warm.Server | None = None,
) -> Worker:
    """Start `celery -A module worker` (forked from `warm` when it is ready) and return at once
    (see wait_until_ready): several workers launched together start side by side."""
    hostname = f"{namespace.name(name)}@kata"
    chosen = tuple(queues) or (namespace.name("celery"),)
    arguments = [
        *("-A", module, "worker", "--pool", pool, "-c", str(concurrency)),
        # No gossip, mingle or heartbeat: they cost start-up time and chatter between workers
        # that the katas do not need.
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        *("-n", hostname, "-Q", ",".join(chosen), "--loglevel", "INFO", *options),
    ]
    label = f"celery-{name}"
    if warm is not None and warm.ready():
        log = namespace.scratch / f"{namespace.name(label)}.log"
        try:
            forked = warm.launch(arguments, namespace.environment(), log)
        except OSError:
            pass  # the server is gone: this worker starts cold
        else:
            # A ForkedProcess does what Service asks of a Popen (args, pid, poll, returncode).
            service = Service(label, cast(subprocess.Popen[bytes], forked), log)
            namespace.services.append(service)  # spared by the per-test cleanup until stopped
            return Worker(hostname, chosen, service, log, app)
    # celery's own command, with the queue-polling option of plugins/celery_worker_main.py.
    argv = [sys.executable, "-m", "plugins.celery_worker_main", *arguments]
    try:
        service = namespace.start_service(argv, name=label)
    except ServiceError as error:
        raise WorkerError(str(error)) from error
    return Worker(hostname, chosen, service, service.log, app)


def wait_until_ready(worker: Worker) -> None:
    """Until the worker has said it is ready and, with an app, answered its ping."""
    marker = f"{worker.hostname} ready."
    _wait_for(
        worker.service,
        lambda: marker in _read(worker.log),
        READY_SECONDS,
        f"worker {worker.hostname}",
    )
    if worker.app is not None:
        _wait_for(
            worker.service,
            lambda: _pongs(worker.app, worker.hostname),
            PING_SECONDS,
            f"ping of {worker.hostname}",
        )


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _pongs(app: Any, hostname: str) -> bool:
    replies = app.control.ping(destination=[hostname], timeout=0.5, limit=1)
    return any(hostname in reply for reply in replies or [])


def _wait_for(service: Service, done: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        problem = None
        if not service.running():
            problem = f"exited with status {service.process.returncode}"
        elif time.monotonic() >= deadline:
            problem = f"was not ready within {seconds:g} s"
        if problem is not None:
            service.kill()
            raise WorkerError(
                f"{what} ({service.command}) {problem}; the end of its log "
                f"({service.log}):\n{_read(service.log)[-LOG_TAIL_CHARACTERS:]}"
            )
        time.sleep(proctree.POLL_SECONDS)


def result_of(
    result: Any, timeout: float, sent: dict[str, tuple[str, str, str]], propagate: bool = True
) -> Any:
    """`result.get(timeout=timeout)`; a task not done in time fails the test, saying which
    task it was, its state, and where it was sent (`sent`: what before_task_publish saw). For a
    group's result (a ResultSet), every member not done is named."""
    import celery.exceptions
    from celery.result import ResultSet

    try:
        return result.get(timeout=timeout, propagate=propagate, interval=0.01)
    except NotImplementedError as error:
        # Raised on a worker: it arrives without the frames that would name the stub's task.
        name = getattr(result, "name", None) or (sent.get(result.id) or ("a task",))[0]
        raise pytest.fail.Exception(
            f"{name} is not implemented yet: on the worker it still raises "
            "NotImplementedError. Fill in its TODO(kata).",
            pytrace=False,
        ) from error
    except celery.exceptions.TimeoutError:
        if isinstance(result, ResultSet):
            late = [member for member in result.results if not member.ready()]
            lines = [lost_task(member, timeout, sent.get(member.id)) for member in late]
            pytest.fail(
                f"{len(late)} of the group's {len(result.results)} tasks were not done after "
                f"{timeout:g} s:\n- " + "\n- ".join(lines or ["(all were done by now)"]),
                pytrace=False,
            )
        pytest.fail(lost_task(result, timeout, sent.get(result.id)), pytrace=False)


def lost_task(result: Any, timeout: float, sent: tuple[str, str, str] | None) -> str:
    """Why a result did not arrive in `timeout` seconds, as far as the test process knows."""
    state = result.state
    if sent is None:
        name = getattr(result, "name", None) or "?"
        where = (
            "this test process never sent it (no before_task_publish signal for its id): was "
            "it sent at all, or by another process?"
        )
    else:
        name, queue, exchange = sent
        where = f"it was sent to queue {queue!r}" + (
            f" (exchange {exchange!r})" if exchange else ""
        )
    meaning = {
        "PENDING": "no worker has reported on it: nobody consumes that queue, the worker "
        "crashed, or the app has no result backend to report to",
        "STARTED": "a worker started it and it has not finished: it may be stuck or too slow",
        "RETRY": "it is waiting to be retried",
    }.get(state, "")
    return (
        f"task {name} (id {result.id}) was not done after {timeout:g} s: its state is "
        f"{state}" + (f" ({meaning})" if meaning else "") + f"; {where}."
    )


def _hide_password(url: str) -> str:
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}:***@{tail}"


def check_app(app: Any, broker: Broker) -> None:
    """Fail the test when `app` is not wired to this run's broker and backend, JSON only."""
    __tracebackhide__ = True
    url = broker.url
    wanted = f"this run's Redis, the URL in {URL_VARIABLE} ({_hide_password(url)})"
    broker_url = app.conf.broker_url
    if broker_url is None:
        # Celery drops a configuration function that raised when it was first read (pytest
        # reads the task objects while it collects): call it again, so its own error shows.
        settings = getattr(sys.modules.get(str(app.main)), "settings", None)
        if callable(settings):
            settings()
        pytest.fail(
            f"the app has no broker at all: its settings must give broker_url = {wanted}",
            pytrace=False,
        )
    if broker_url != url:
        pytest.fail(
            f"the app's broker is {_hide_password(str(broker_url))!r}, not {wanted}: read the "
            f"URL from os.environ[{URL_VARIABLE!r}] instead of writing one into the code, so "
            "that the same code reaches whatever broker it is deployed with",
            pytrace=False,
        )
    backend = app.conf.result_backend
    if not backend:
        pytest.fail(
            "the app has no result backend: a worker runs its tasks, but their results go "
            "nowhere, so no caller can ever read one (get() raises 'No result backend is "
            f"configured'). Give it result_backend = {wanted}",
            pytrace=False,
        )
    if backend != url:
        pytest.fail(
            f"the app's result backend is {_hide_password(str(backend))!r}, not {wanted}",
            pytrace=False,
        )
    json_only(app)


def json_only(app: Any) -> None:
    """Fail the test if `app` would send or accept pickle (or any format but JSON)."""
    __tracebackhide__ = True
    conf = app.conf
    settings = {
        "task_serializer": [conf.task_serializer],
        "result_serializer": [conf.result_serializer],
        "accept_content": list(conf.accept_content or []),
        "result_accept_content": list(conf.result_accept_content or conf.accept_content or []),
    }
    wrong = {key: value for key, value in settings.items() if any(v != "json" for v in value)}
    if wrong:
        pytest.fail(
            f"the app's serializers must be JSON only, but {wrong}. A worker that accepts "
            "pickle runs whatever code a message tells it to: anyone who can write to the "
            "broker can then run programs on every worker. Keep task_serializer, "
            "result_serializer, accept_content and result_accept_content at 'json'.",
            pytrace=False,
        )


# -- collection ------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    """Start the warm worker server while pytest goes on collecting (its imports take about
    half a second of the other core). The self-check's parent starts one for all its runs."""
    config = parent.config
    if warm_key not in config.stash and impl.kata_marked(config, module_path, redis_broker.MARKER):
        config.stash[warm_key] = _warm_server(config)
    return (yield)


def _warm_server(config: pytest.Config) -> celery_warm.Server | None:
    if celery_warm.cold() or hardware.absence(config, redis_broker.MARKER) is not None:
        return None
    if settings.of(config).verify:
        server = celery_warm.start_server(isolation.of(config))
        server.share()  # the runs inherit the variable, each run its own broker and queues
        return server
    shared = celery_warm.Server.shared()
    if shared is not None:
        return shared
    if redis_broker.ensure_broker(config) is None:
        return None
    return celery_warm.start_server(isolation.of(config))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Record where every task sent from here goes (once a kata has imported Celery)."""
    if "celery" not in sys.modules:
        return
    from celery.signals import before_task_publish

    sent = session.config.stash.setdefault(sent_key, {})

    def record(
        sender: Any = None, headers: Any = None, routing_key: str = "", exchange: str = "", **_: Any
    ) -> None:
        if isinstance(headers, dict) and headers.get("id"):
            sent[str(headers["id"])] = (str(headers.get("task") or sender), routing_key, exchange)

    before_task_publish.connect(record, weak=False, dispatch_uid=f"kata-sent-{id(sent)}")
    session.config.add_cleanup(
        lambda: before_task_publish.disconnect(dispatch_uid=f"kata-sent-{id(sent)}")
    )


# -- summary ---------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the warm server before isolation's sweep (which would call it a stray)."""
    warm = session.config.stash.get(warm_key, None)
    if warm is not None:
        warm.stop()


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def celery_worker(
    celery_workers: Callable[..., list[Worker]],
) -> Callable[..., Worker]:
    """`celery_worker(module, queues=(), concurrency=2, pool="prefork", name="worker",
    options=(), app=None)` starts a real worker on this run's broker; every worker started is
    stopped at the end of the test module."""

    def start(module: str, **kwargs: Any) -> Worker:
        return celery_workers(module, [kwargs])[0]

    return start


@pytest.fixture(scope="module")
def celery_workers(
    kata_namespace: Namespace, broker: Broker, pytestconfig: pytest.Config
) -> Iterator[Callable[..., list[Worker]]]:
    """`celery_workers(module, [options, ...])`: one worker per dict of celery_worker's keyword
    options, started side by side (each costs most of a second), returned once all are ready;
    stopped at the end of the test module."""
    started: list[Worker] = []
    warm = pytestconfig.stash.get(warm_key, None)

    def start(module: str, specs: Sequence[dict[str, Any]]) -> list[Worker]:
        for spec in specs:
            if spec.get("app") is not None:
                check_app(spec["app"], broker)
        try:
            workers = [launch_worker(kata_namespace, module, warm=warm, **spec) for spec in specs]
            started.extend(workers)
            for worker in workers:
                wait_until_ready(worker)
        except WorkerError as error:
            pytest.fail(f"the Celery worker did not start: {error}", pytrace=False)
        return workers

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def get_result(pytestconfig: pytest.Config) -> Callable[..., Any]:
    """`get_result(async_result, timeout, propagate=True)`: its value, or a test failure that
    names the task, its id, its state and its queue when it is not done within `timeout`."""
    sent = pytestconfig.stash.setdefault(sent_key, {})

    def get(result: Any, timeout: float, propagate: bool = True) -> Any:
        return result_of(result, timeout, sent, propagate)

    return get


@pytest.fixture
def idle_queue(kata_namespace: Namespace) -> str:
    """A queue name no worker consumes (and no other run uses)."""
    return kata_namespace.name("idle")


@pytest.fixture
def published() -> Iterator[list[str]]:
    """The names of the tasks sent from the test process during the test, in order."""
    from celery.signals import before_task_publish

    names: list[str] = []

    def record(sender: Any = None, headers: Any = None, **_: Any) -> None:
        names.append(str((headers or {}).get("task") or sender))

    uid = f"kata-published-{id(names)}"
    before_task_publish.connect(record, weak=False, dispatch_uid=uid)
    yield names
    before_task_publish.disconnect(dispatch_uid=uid)


@pytest.fixture
def sent_at_first_wait(published: list[str], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """[how many tasks the test process had sent] once it first waited for a result (get,
    wait, ready, ... of an AsyncResult, or of a group's ResultSet); [] while it has not."""
    counted: list[int] = []

    def watch(cls: type, name: str) -> None:
        original = getattr(cls, name)

        def waiting(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not counted:
                counted.append(len(published))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, waiting)

    for cls, names in result_waits():
        for name in names:
            watch(cls, name)
    return counted


def result_waits() -> tuple[tuple[type, tuple[str, ...]], ...]:
    """Each result class, and its methods that wait for (or peek at) a result: what a test
    watches to learn when the code under test first waited."""
    from celery.result import AsyncResult, ResultSet

    return (
        (AsyncResult, ("get", "wait", "ready", "successful", "failed")),
        (ResultSet, ("get", "join", "join_native", "ready")),
    )
