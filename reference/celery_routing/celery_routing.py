# mypy: disable-error-code="untyped-decorator"
# (Celery ships no type hints, so each @app.task would make its function untyped to mypy.)
"""Celery routing: a queue per kind of task, the routes in the app's settings, and workers that
each serve their own queues.

The tests start this module's app in two real worker processes, "cpu" and "io"
(`celery -A celery_routing worker -Q <the queues worker_queues(role) names>`), against a real
Redis server that the test run starts; its URL is in the environment variable KATA_BROKER_URL.
Queue names belong to the deployment, not to the code: `queue_name(kind)` (given) is the prefix
in the environment variable KATA_QUEUE_PREFIX, a dot, and the kind ("cpu", "io" or "default").
`app` is given and reads its configuration from `settings()` the first time it needs it. The
four tasks are given too: "celery_routing.cpu.fib" and "celery_routing.cpu.digest" keep a
processor busy, "celery_routing.io.pause" waits as a network call would, and
"celery_routing.report" is neither.

§1 `settings()` returns a dict in which `broker_url` and `result_backend` are both the URL in
  KATA_BROKER_URL, read when `settings()` is called, and which sends and accepts JSON only
  (`task_serializer` and `result_serializer` "json", `accept_content` and
  `result_accept_content` ["json"]).
§2 `settings()` sets `result_extended` to True, so that each result records the worker that ran
  the task and the queue it took it from (`AsyncResult.worker`, `AsyncResult.queue`).
§3 `settings()` sets `task_routes` so that every task whose registered name starts with
  "celery_routing.cpu." goes to the queue `queue_name("cpu")`, and every task whose name starts
  with "celery_routing.io." to `queue_name("io")`, with one glob pattern per kind (a cpu task
  added later is routed too), whoever sends it and however (`delay`, `apply_async`,
  `send_task`), with no queue named where it is sent.
§4 `settings()` sets `task_default_queue` to `queue_name("default")`: a task that no route
  matches goes there, not to Celery's own default queue "celery", which no worker here serves.
§5 `worker_queues(role)` returns the names of the queues that a worker of that role consumes
  (what its `-Q` says): the cpu queue alone for "cpu"; the io queue and the default queue for
  "io"; ValueError, naming the role, for any other role.
§6 `run_batch(jobs, timeout)` sends every job by its name with `app.send_task`, all of them
  before it waits for any result: with `queue=job.queue` when the job names a queue (which
  overrides the job's route), and with no queue otherwise, so that the routes choose.
§7 `run_batch` returns one `Ran` per job, in the order of `jobs`: the job's name, the task's
  return value, and the worker that ran it and the queue it came from, as its result records
  them (`result_extended`).
§8 `run_batch` raises celery.exceptions.TimeoutError when a result is not in within `timeout`
  seconds (no `get()` without a timeout), and lets a task's own exception reach its caller.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery

BROKER_VARIABLE = "KATA_BROKER_URL"
QUEUE_PREFIX_VARIABLE = "KATA_QUEUE_PREFIX"


def queue_name(kind: str) -> str:
    """The name of this deployment's queue for `kind`: "<KATA_QUEUE_PREFIX>.<kind>"."""
    return f"{os.environ[QUEUE_PREFIX_VARIABLE]}.{kind}"


@dataclass(frozen=True)
class Job:
    """A task to run: its registered name, its positional arguments, and the queue to send it
    to when the job overrides its route (None: the routes choose)."""

    name: str
    args: tuple[Any, ...] = ()
    queue: str | None = None


@dataclass(frozen=True)
class Ran:
    """What became of a job: its task's name, the value it returned, the worker that ran it and
    the queue that worker took it from."""

    name: str
    value: Any
    worker: str
    queue: str


def settings() -> dict[str, Any]:
    """The configuration of `app`: broker, results, JSON, and where each task goes."""
    # Read at call time, not import time: the run's broker exists only once the tests started it.
    url = os.environ[BROKER_VARIABLE]
    return {
        "broker_url": url,
        # The results travel back through the same Redis; without a backend get() can never work.
        "result_backend": url,
        # JSON can only carry data; pickle can carry code that the worker would run.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # Each result then names the worker that ran it and the queue it came from.
        "result_extended": True,
        # Keyed by registered names, one glob per kind: a new cpu task is routed with no new line.
        "task_routes": {
            "celery_routing.cpu.*": {"queue": queue_name("cpu")},
            "celery_routing.io.*": {"queue": queue_name("io")},
        },
        # Celery's own default is "celery": a queue no worker here serves would keep them for ever.
        "task_default_queue": queue_name("default"),
    }


app = Celery("celery_routing")
app.add_defaults(settings)
# The tasks are given: this kata is about where they run, not what they do. (shared=False:
# only `app` has them.)


@app.task(name="celery_routing.cpu.fib", shared=False)
def fib(n: int) -> int:
    """The n-th Fibonacci number (fib(0) = 0), added up in a loop."""
    if n < 0:
        raise ValueError(f"fib(n) needs n >= 0, got n = {n}")
    previous, current = 0, 1
    for _ in range(n):
        previous, current = current, previous + current
    return previous


@app.task(name="celery_routing.cpu.digest", shared=False)
def digest(text: str) -> str:
    """The SHA-256 of the text's UTF-8 bytes, in hex."""
    return hashlib.sha256(text.encode()).hexdigest()


@app.task(name="celery_routing.io.pause", shared=False)
def pause(seconds: float) -> float:
    """Waits `seconds`, as a call to another server would, and returns them."""
    time.sleep(seconds)
    return seconds


@app.task(name="celery_routing.report", shared=False)
def report(title: str) -> str:
    """A line of a report: neither a processor's work nor a wait."""
    return f"report: {title}"


def worker_queues(role: str) -> list[str]:
    """The queues a worker of `role` ("cpu" or "io") consumes: what its -Q says."""
    # The cpu worker takes nothing else, so a burst of small tasks never waits behind its work.
    if role == "cpu":
        return [queue_name("cpu")]
    # The io worker mostly waits, so it has time for the tasks no route claims.
    if role == "io":
        return [queue_name("io"), queue_name("default")]
    raise ValueError(f"no worker role {role!r}: the roles are 'cpu' and 'io'")


def run_batch(jobs: Sequence[Job], timeout: float) -> list[Ran]:
    """Run every job on the worker its route (or its own queue) picks; say who ran each."""
    # All sent first, so the two workers run them side by side; queue=None lets the routes choose.
    results = [app.send_task(job.name, args=list(job.args), queue=job.queue) for job in jobs]
    ran = []
    for job, result in zip(jobs, results, strict=True):
        value = result.get(timeout=timeout)
        # The worker wrote these beside the value (result_extended): the record, not a guess.
        ran.append(Ran(job.name, value, str(result.worker), str(result.queue)))
    return ran
