"""Kata `celery_routing`: queues per kind of task, routes in the settings, a worker per role."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import celery.exceptions
import pytest
from celery import Celery
from celery.result import AsyncResult

from plugins.celery_workers import Worker, check_app, sent_key

# The queue names' prefix, in the environment before the kata module is imported: pytest reads
# every name of this module while it collects it, which makes Celery evaluate the tasks, the
# app, and so settings(), then and there. KATA_RUN_ID is this run's id (plugins/isolation.py),
# so no other run uses these queues; the workers inherit the variable.
PREFIX_VARIABLE = "KATA_QUEUE_PREFIX"
PREFIX = f"routing-{os.environ['KATA_RUN_ID']}"
os.environ[PREFIX_VARIABLE] = PREFIX

# Imported after the prefix is set (see above), hence E402.
from celery_routing import (  # noqa: E402
    Job,
    Ran,
    app,
    digest,
    fib,
    pause,
    queue_name,
    report,
    run_batch,
    settings,
    worker_queues,
)

# Every wait below is bounded: a task that never comes back fails its test within this many
# seconds, naming the task, its state and its queue (the get_result fixture).
WAIT = 5.0
KINDS = ("cpu", "io", "default")
# Which worker serves each kind of queue, and so must run each kind of task.
ROLE_OF = {"cpu": "cpu", "io": "io", "default": "io"}


@pytest.fixture(scope="module", autouse=True)
def prefix() -> Iterator[str]:
    """The queue prefix, taken out of the environment when the module is done."""
    yield PREFIX
    os.environ.pop(PREFIX_VARIABLE, None)


@pytest.fixture(scope="module")
def workers(celery_workers: Callable[..., list[Worker]], prefix: str) -> dict[str, Worker]:
    """The cpu worker and the io worker, each consuming the queues worker_queues names."""
    roles = ("cpu", "io")
    for role in roles:
        queues = worker_queues(role)
        if not queues or not all(isinstance(q, str) and q for q in queues):
            pytest.fail(
                f"worker_queues({role!r}) returned {queues!r}: the tests start the {role} worker "
                "with -Q and these names, so it needs a list of queue names",
                pytrace=False,
            )
    # Started side by side, 3 processes each, not Celery's default of one per core (2 here).
    specs = [
        {"queues": worker_queues(role), "concurrency": 3, "app": app, "name": role}
        for role in roles
    ]
    return dict(zip(roles, celery_workers("celery_routing", specs), strict=True))


@pytest.fixture
def sent_to(pytestconfig: pytest.Config) -> Callable[[AsyncResult], str]:
    """The queue a task was sent to, as Celery's before_task_publish signal saw it."""
    sent = pytestconfig.stash.setdefault(sent_key, {})

    def where(result: AsyncResult) -> str:
        record = sent.get(result.id)
        return record[1] if record else "nowhere (it was not sent from this process)"

    return where


def routed_queue(config: dict[str, Any], name: str) -> str:
    """The queue that an app with `config` picks for a task named `name`, sent with no queue
    (Celery's own router, in a throwaway app: nothing is sent)."""
    probe = Celery("celery_routing_probe", set_as_current=False)
    probe.conf.update(config)
    queue = probe.amqp.router.route({}, name)["queue"]
    return str(getattr(queue, "name", queue))


def why_elsewhere(name: str, got: str, kind: str, went: str = "was sent") -> str:
    """A sentence on why task `name` went to queue `got` instead of the `kind` queue."""
    wanted = queue_name(kind)
    if got == "celery":
        cause = (
            "that is Celery's own default queue, which no worker here serves, so the task "
            "waits there for ever: set task_default_queue to queue_name('default')"
        )
        if kind != "default":
            cause += ", and route the task by its registered name"
    elif got == queue_name("default"):
        cause = (
            "the default queue, so no route sent it elsewhere: either no key of task_routes "
            "matches its registered name (keys are registered names such as "
            "'celery_routing.cpu.fib', or globs over them such as 'celery_routing.cpu.*', not "
            "function names), or a glob to the default queue is listed before the right one "
            "(Celery takes the first glob that matches)"
        )
    elif got in (queue_name(k) for k in KINDS):
        cause = (
            "the queue of another kind of task: check which glob sends where (a glob must "
            "match the names that start with 'celery_routing.cpu.' or 'celery_routing.io.', "
            "dot included, and no others)"
        )
    else:
        cause = "a queue that no worker serves: build every name with queue_name(kind)"
    return f"{name} {went} to queue {got!r}, not the {kind} queue {wanted!r}: {cause}"


def ran_on(result: AsyncResult) -> str:
    """The worker that ran the task, as its result records it."""
    __tracebackhide__ = True
    worker = result.worker
    if worker is None:
        pytest.fail(
            f"the result of {result.name or 'the task'} does not say which worker ran it: "
            "settings() must set result_extended = True, so that results record their worker "
            "and queue",
            pytrace=False,
        )
    return str(worker)


# -- the settings ----------------------------------------------------------------------------


@pytest.mark.clause(1)
def test_settings_reads_the_broker_from_the_environment_and_speaks_json_only(
    monkeypatch: pytest.MonkeyPatch, broker: Any
) -> None:
    elsewhere = "redis://:another-password@127.0.0.1:6399/3"
    monkeypatch.setenv("KATA_BROKER_URL", elsewhere)
    got = settings()
    for key in ("broker_url", "result_backend"):
        assert got.get(key) == elsewhere, (
            f"with KATA_BROKER_URL={elsewhere!r}, settings() gave {key} {got.get(key)!r}: read "
            "os.environ['KATA_BROKER_URL'] inside settings(), for the broker and the results"
        )
    for key, wanted in (
        ("task_serializer", "json"),
        ("result_serializer", "json"),
        ("accept_content", ["json"]),
        ("result_accept_content", ["json"]),
    ):
        assert got.get(key) == wanted, (
            f"settings()[{key!r}] is {got.get(key)!r}, not {wanted!r}: a worker that accepts "
            "pickle runs whatever code a message carries"
        )
    monkeypatch.setenv("KATA_BROKER_URL", broker.url)
    check_app(app, broker)


@pytest.mark.clause(2)
def test_each_result_records_the_worker_that_ran_it_and_its_queue(
    workers: dict[str, Worker], get_result: Callable[..., Any]
) -> None:
    assert settings().get("result_extended") is True, (
        f"settings()['result_extended'] is {settings().get('result_extended')!r}: set it to True, "
        "so that a result records the worker that ran the task and the queue it came from"
    )
    result = fib.apply_async((12,), queue=queue_name("cpu"))
    assert get_result(result, WAIT) == 144
    assert ran_on(result) == workers["cpu"].hostname, (
        f"the result says {result.worker!r} ran fib, but only {workers['cpu'].hostname} serves "
        "the cpu queue"
    )
    assert result.queue == queue_name("cpu"), (
        f"the result says fib came from queue {result.queue!r}, not {queue_name('cpu')!r}"
    )


@pytest.mark.clause(3)
def test_the_routes_send_each_kind_to_its_queue_by_registered_name_and_glob(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another deployment's prefix: the queue names must be read when settings() is called.
    monkeypatch.setenv(PREFIX_VARIABLE, "elsewhere-7")
    config = settings()
    cases = {
        "celery_routing.cpu.fib": "cpu",
        "celery_routing.cpu.digest": "cpu",
        "celery_routing.io.pause": "io",
        # Tasks that do not exist yet: one glob per kind routes them too.
        "celery_routing.cpu.resize_image": "cpu",
        "celery_routing.io.download": "io",
        # Names that only look alike: no route of this app may claim them.
        "celery_routing.report": "default",
        "celery_routing.cpuinfo.read": "default",
        "other_app.cpu.fib": "default",
    }
    assert "task_routes" in config, (
        f"settings() has no 'task_routes' key (its keys: {sorted(config)}): then no task is "
        "routed, and every call site that does not name a queue sends to the default queue "
        "(Celery ignores a key it does not know, so a misspelt one routes nothing either)"
    )
    for name, kind in cases.items():
        got = routed_queue(config, name)
        assert got == queue_name(kind), why_elsewhere(name, got, kind, "would go") + (
            " (a task added later must need no new route: one glob, 'celery_routing.cpu.*', "
            "covers every name that starts with 'celery_routing.cpu.')"
            if name.endswith(("resize_image", "download"))
            else ""
        )
    assert "elsewhere-7.cpu" in repr(config.get("task_routes")), (
        "with KATA_QUEUE_PREFIX=elsewhere-7, task_routes does not name the queue "
        "'elsewhere-7.cpu': call queue_name(kind) inside settings()"
    )


@pytest.mark.clause(3)
def test_tasks_sent_with_no_queue_land_on_their_kinds_worker(
    workers: dict[str, Worker],
    get_result: Callable[..., Any],
    sent_to: Callable[[AsyncResult], str],
) -> None:
    # Three ways of sending, none naming a queue: the app's settings must route them all.
    sent = {
        "fib.delay": ("cpu", fib.delay(20), 6765),
        "digest.apply_async": (
            "cpu",
            digest.apply_async(("route me",)),
            hashlib.sha256(b"route me").hexdigest(),
        ),
        "pause.delay": ("io", pause.delay(0.01), 0.01),
        "app.send_task": ("cpu", app.send_task("celery_routing.cpu.fib", args=[10]), 55),
    }
    for how, (kind, result, _) in sent.items():
        got = sent_to(result)
        assert got == queue_name(kind), why_elsewhere(how, got, kind) + (
            " (the route belongs in settings(): a call site that names no queue must be "
            "routed all the same)"
        )
    for how, (kind, result, value) in sent.items():
        assert get_result(result, WAIT) == value, f"{how} returned a wrong value"
        worker = ran_on(result)
        assert worker == workers[ROLE_OF[kind]].hostname, (
            f"{how} was run by {worker}, not by the {ROLE_OF[kind]} worker "
            f"{workers[ROLE_OF[kind]].hostname}, the only one that serves the {kind} queue"
        )


@pytest.mark.clause(4)
def test_a_task_no_route_matches_goes_to_the_default_queue_and_the_io_worker_runs_it(
    workers: dict[str, Worker],
    get_result: Callable[..., Any],
    sent_to: Callable[[AsyncResult], str],
) -> None:
    assert settings().get("task_default_queue") == queue_name("default"), (
        f"settings()['task_default_queue'] is {settings().get('task_default_queue')!r}, not "
        f"{queue_name('default')!r}: without it, a task no route claims goes to Celery's own "
        "queue 'celery', which no worker here serves"
    )
    result = report.delay("quarterly")
    got = sent_to(result)
    assert got == queue_name("default"), why_elsewhere("report.delay", got, "default")
    assert get_result(result, WAIT) == "report: quarterly"
    assert ran_on(result) == workers["io"].hostname, (
        f"report was run by {result.worker}, not by the io worker {workers['io'].hostname}, "
        "which serves the default queue"
    )


# -- the workers -----------------------------------------------------------------------------


@pytest.mark.clause(5)
def test_worker_queues_gives_the_cpu_worker_its_queue_alone_and_the_io_worker_two() -> None:
    wanted = {
        "cpu": [queue_name("cpu")],
        "io": sorted([queue_name("io"), queue_name("default")]),
    }
    reasons = {
        "cpu": "the cpu worker serves the cpu queue alone: any other queue it takes would put "
        "its tasks behind long computations (or take cpu tasks away from it)",
        "io": "the io worker serves the io queue and the default queue (the tasks no route "
        "claims); a queue no worker serves keeps its tasks for ever",
    }
    for role, queues in wanted.items():
        got = worker_queues(role)
        assert isinstance(got, list) and sorted(got) == queues and len(set(got)) == len(got), (
            f"worker_queues({role!r}) is {got!r}, not {queues!r} (in any order): {reasons[role]}"
        )


@pytest.mark.clause(5)
def test_worker_queues_refuses_a_role_it_does_not_know() -> None:
    got: object = None
    raised: ValueError | None = None
    try:
        got = worker_queues("gpu")
    except ValueError as error:
        raised = error
    assert raised is not None, (
        f"worker_queues('gpu') returned {got!r} instead of raising ValueError: a worker started "
        "for a role nobody planned would quietly take tasks from those queues"
    )
    assert "gpu" in str(raised), f"the ValueError says {str(raised)!r}: name the role, 'gpu'"


# -- a mixed batch ---------------------------------------------------------------------------


@pytest.mark.clause(6, 7)
def test_run_batch_lets_the_routes_pick_each_jobs_worker_and_says_who_ran_it(
    workers: dict[str, Worker],
) -> None:
    jobs = [
        Job("celery_routing.cpu.fib", (30,)),
        Job("celery_routing.report", ("a",)),
        Job("celery_routing.io.pause", (0.02,)),
        Job("celery_routing.cpu.digest", ("b",)),
        Job("celery_routing.cpu.fib", (31,)),
        Job("celery_routing.report", ("c",)),
    ]
    kinds = ["cpu", "default", "io", "cpu", "cpu", "default"]
    values = [832040, "report: a", 0.02, hashlib.sha256(b"b").hexdigest(), 1346269, "report: c"]
    ran = run_batch(jobs, WAIT)
    assert isinstance(ran, list) and len(ran) == len(jobs), (
        f"run_batch returned {ran!r} for {len(jobs)} jobs: one Ran per job, in a list"
    )
    for index, (job, kind, value, got) in enumerate(zip(jobs, kinds, values, ran, strict=True)):
        assert isinstance(got, Ran), f"run_batch's item {index} is {got!r}, not a Ran"
        assert (got.name, got.value) == (job.name, value), (
            f"item {index} of run_batch is {got.name} -> {got.value!r}, not {job.name} -> "
            f"{value!r}: one Ran per job, in the order of the jobs"
        )
        assert got.queue == queue_name(kind), (
            f"{job.name} was taken from queue {got.queue!r}, not {queue_name(kind)!r}: send a "
            "job that names no queue with no queue (queue=None), so that the routes in "
            "settings() choose, and report the queue its result records (result.queue)"
        )
        role = ROLE_OF[kind]
        assert got.worker == workers[role].hostname, (
            f"run_batch says {got.worker!r} ran {job.name}, but the {role} worker "
            f"{workers[role].hostname} serves the {kind} queue: report result.worker"
        )


@pytest.mark.clause(6, 7)
def test_a_job_that_names_a_queue_overrides_its_route(workers: dict[str, Worker]) -> None:
    jobs = [
        Job("celery_routing.cpu.fib", (9,), queue=queue_name("io")),
        Job("celery_routing.report", ("moved",), queue=queue_name("cpu")),
    ]
    ran = run_batch(jobs, WAIT)
    for job, got, role in zip(jobs, ran, ("io", "cpu"), strict=True):
        assert (got.worker, got.queue) == (workers[role].hostname, job.queue), (
            f"{job.name} sent with queue={job.queue!r} was run by {got.worker!r} from queue "
            f"{got.queue!r}: pass queue=job.queue to send_task; an explicit queue wins over "
            "the route"
        )


@pytest.mark.clause(6)
def test_run_batch_sends_every_job_before_it_waits_for_the_first(
    workers: dict[str, Worker], published: list[str], sent_at_first_wait: list[int]
) -> None:
    jobs = [Job("celery_routing.io.pause", (0.01,)), Job("celery_routing.cpu.fib", (5,))] * 2
    ran = run_batch(jobs, WAIT)
    assert [r.value for r in ran] == [0.01, 5, 0.01, 5], f"run_batch returned {ran}"
    assert published == [job.name for job in jobs], f"run_batch sent {published}"
    assert sent_at_first_wait and sent_at_first_wait[0] == len(jobs), (
        f"run_batch had sent {sent_at_first_wait[0] if sent_at_first_wait else '?'} of its "
        f"{len(jobs)} jobs when it first waited for a result: send them all first, so that "
        "both workers run them side by side"
    )


@pytest.mark.clause(8)
def test_run_batch_gives_up_on_a_result_that_does_not_come_in_time(
    idle_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeout = 0.4
    timeouts: list[float | None] = []

    def get(self: AsyncResult, timeout: float | None = None, *args: Any, **kwargs: Any) -> Any:
        # As a real get() would end for a task nobody runs, only sooner.
        timeouts.append(timeout)
        if timeout is None:
            pytest.fail(
                "run_batch called get() without a timeout: a job in a queue that no worker "
                "serves would keep it waiting for ever",
                pytrace=False,
            )
        raise celery.exceptions.TimeoutError("the operation timed out")

    monkeypatch.setattr(AsyncResult, "get", get)
    started = time.monotonic()
    with pytest.raises(celery.exceptions.TimeoutError):
        run_batch([Job("celery_routing.report", ("lost",), queue=idle_queue)], timeout)
    # A real Redis result backend notices a missed deadline only at the next whole second.
    assert time.monotonic() - started < timeout + 1.5, "run_batch waited far past its timeout"
    assert all(t is not None and t <= timeout for t in timeouts), (
        f"run_batch(..., timeout={timeout}) waited with get(timeout=...) {timeouts}: never "
        "longer than its timeout"
    )


@pytest.mark.clause(8)
def test_run_batch_lets_a_tasks_own_error_reach_its_caller(workers: dict[str, Worker]) -> None:
    ran: object = None
    raised: ValueError | None = None
    try:
        ran = run_batch([Job("celery_routing.cpu.fib", (-4,))], WAIT)
    except ValueError as error:
        raised = error
    assert raised is not None, (
        f"run_batch returned {ran!r} for fib(-4), which raises ValueError on its worker: let "
        "get() raise the task's exception (propagate=False, or catching it, makes a failure "
        "look like a result)"
    )
    assert "-4" in str(raised), f"the ValueError says {str(raised)!r}, not fib's own message"
