"""Celery tasks: an app, its tasks, and a client that sends them and waits for their results.

The tests start this module's app in a real worker process (`celery -A celery_tasks worker`)
against a real Redis server that the test run starts; its URL is in the environment variable
KATA_BROKER_URL. `app` and `client` are given: both read their configuration from `settings()`
the first time they need it (Celery's `add_defaults` with a function is lazy).

§1 `settings()` returns a dict in which `broker_url` and `result_backend` are both the URL in
  the environment variable KATA_BROKER_URL, read when `settings()` is called: without a result
  backend a worker runs the tasks but nobody can ever read a result.
§2 `settings()` makes the app send and accept JSON only: `task_serializer` and
  `result_serializer` are "json", `accept_content` and `result_accept_content` are ["json"] (a
  worker that accepts pickle runs whatever code a message carries).
§3 `add(x, y)` is a task registered as "celery_tasks.add" that returns x + y.
§4 `fib(n)` is a task registered as "celery_tasks.fib" that returns the n-th Fibonacci number
  (fib(0) = 0, fib(1) = 1, fib(2) = 1, fib(10) = 55), adding in a loop: fib(5000) takes well
  under a second.
§5 `fib(n)` raises ValueError, with n in its message, when n is negative; the caller's `get()`
  raises that ValueError again.
§6 `whoami()` is a bound task registered as "celery_tasks.whoami" that returns {"id": its own
  task id, from `self.request.id`, "worker": the name of the worker that ran it, from
  `self.request.hostname`}.
§7 `submit_add(x, y, queue, countdown=None, expires=None)` sends `add(x, y)` with
  `apply_async` to the queue named `queue` and returns its AsyncResult at once, without
  waiting for it.
§8 `submit_add` with `countdown=c` makes the worker start `add` no sooner than c seconds after
  it was sent.
§9 `submit_add` with `expires=e` makes a task that is still waiting in its queue e seconds after
  it was sent never run: a worker that receives it later revokes it (its state becomes
  REVOKED).
§10 `fib_terms(n, queue, timeout)` returns [fib(0), fib(1), ..., fib(n - 1)], computed by n
  `fib` tasks sent to `queue`: all n are sent before it waits for the first result, so they
  run side by side instead of one after another.
§11 `fib_terms` raises celery.exceptions.TimeoutError when the n results are not all in
  `timeout` seconds after it started waiting: `timeout` bounds the whole call, not each
  result.
§12 `call_by_name(name, args, queue, timeout)` sends the task registered as `name` with
  positional `args` to `queue` through `client` (`client.send_task`), which knows no task
  code, and returns the task's result, waiting at most `timeout` seconds
  (celery.exceptions.TimeoutError after that).
§13 `call_by_name` lets the task's own error reach its caller: an unknown `name` raises
  celery.exceptions.NotRegistered (the worker refuses a task it does not know), and a task
  that fails raises the task's exception.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from celery.result import AsyncResult

BROKER_VARIABLE = "KATA_BROKER_URL"


def settings() -> dict[str, Any]:
    """The configuration of `app` and `client`."""
    # TODO(kata): return {"broker_url": ..., "result_backend": ..., and the four JSON settings}
    raise NotImplementedError


app = Celery("celery_tasks")
app.add_defaults(settings)

client = Celery("celery_tasks_client")
client.add_defaults(settings)
# The tasks below say shared=False: only `app` has them. (By default Celery gives every task to
# every app in the process, and `client` stands for a program that has no task code.)


@app.task(name="celery_tasks.add", shared=False)
def add(x: int, y: int) -> int:
    """x + y, on a worker."""
    # TODO(kata): return the sum
    raise NotImplementedError


@app.task(name="celery_tasks.fib", shared=False)
def fib(n: int) -> int:
    """The n-th Fibonacci number, on a worker."""
    # TODO(kata): ValueError for a negative n; otherwise add in a loop
    raise NotImplementedError


@app.task(name="celery_tasks.whoami", bind=True, shared=False)
def whoami(self: Task) -> dict[str, str]:
    """This task's own id and the worker that ran it."""
    # TODO(kata): return {"id": ..., "worker": ...} from self.request
    raise NotImplementedError


def submit_add(
    x: int,
    y: int,
    queue: str,
    countdown: float | None = None,
    expires: float | None = None,
) -> AsyncResult:
    """Send add(x, y) to `queue` and return at once."""
    # TODO(kata): add.apply_async(...) with the queue, countdown and expires
    raise NotImplementedError


def fib_terms(n: int, queue: str, timeout: float) -> list[int]:
    """fib(0) ... fib(n - 1), computed by n tasks side by side."""
    # TODO(kata): send n fib tasks, then read each result within what is left of one deadline
    raise NotImplementedError


def call_by_name(name: str, args: list[Any], queue: str, timeout: float) -> Any:
    """The result of the task registered as `name`, run by whichever worker serves `queue`."""
    # TODO(kata): client.send_task(...), then get its result within timeout
    raise NotImplementedError
