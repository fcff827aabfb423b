"""Reliable Celery tasks: retries with backoff, late acknowledgement, idempotence, revoking and
time limits.

The tests start this module's app in real worker processes (`celery -A celery_reliability
worker`) against a real Redis server that the test run starts; its URL is in the environment
variable KATA_BROKER_URL. The tasks record what they do in that same Redis, through `store()`,
under keys made from a name the test passes in. `app`, `store`, `flaky_service`, `notify`,
`work_step` and the task `stubborn` are given; the constants are the numbers the tests hold
you to.

§1 `settings()` returns a dict in which `broker_url` and `result_backend` are both the URL in
  the environment variable KATA_BROKER_URL, read when `settings()` is called, and which makes
  the app send and accept JSON only (`task_serializer` and `result_serializer` "json",
  `accept_content` and `result_accept_content` ["json"]).
§2 `settings()` sets `task_acks_late` to True: a worker acknowledges a task's message when the
  task has finished, not when it starts, so the message of a task whose worker dies mid-task
  is not lost.
§3 `settings()` sets `task_reject_on_worker_lost` to True: when the pool process running a
  task dies, its worker puts the message back in the queue, so the task runs again instead of
  failing with WorkerLostError.
§4 `settings()` sets `broker_transport_options` to {"visibility_timeout": VISIBILITY_TIMEOUT}:
  a message taken by a worker that died without acknowledging it can be delivered again once
  it has waited that many seconds (Redis has no acknowledgements of its own; the default wait
  is an hour).
§5 `fetch(key, failures, error="ConnectionError")` is a bound task that returns what
  `flaky_service(key, failures, error)` returns, and retries with `self.retry(exc=...,
  countdown=..., max_retries=MAX_RETRIES)` when that raises ConnectionError (a network failure,
  which may be gone by the next attempt).
§6 `fetch` backs off exponentially: its n-th retry is due BACKOFF * 2 ** (n - 1) seconds after
  the attempt that failed (0.05, 0.1, 0.2 and 0.4 s).
§7 `fetch` retries at most MAX_RETRIES times (MAX_RETRIES + 1 attempts in all), then fails with
  the last ConnectionError, which the caller's `get()` raises.
§8 `fetch` retries no other exception: a ValueError (a bad request, or a bug, which no retry
  can fix) fails the task at once.
§9 `deposit(account, payment_id, amount)` is idempotent: it records `amount` under `payment_id`
  in the Redis hash f"{account}:payments" only when that payment_id is not there yet (HSETNX),
  then calls `notify(account, payment_id)`, then returns the account's balance, the sum of the
  amounts in that hash; running it again with the same payment_id, as happens when its worker
  died mid-task, changes nothing.
§10 `cancel(result)` revokes the task of `result` by its id (`app.control.revoke`), so that a
  worker that receives it afterwards does not run it: its state becomes REVOKED.
§11 `cancel` never terminates a task that has already started (no `terminate=True`): the signal
  would go to a pool process, which may be running another task by then; a task that has
  started runs to its end.
§12 `convert(key, items)` is a task that calls `work_step(key, i)` for i = 0, 1, ..., items - 1
  (each appends i to the Redis list f"{key}:partial"), then renames that list to
  f"{key}:output" and returns `items` (items >= 1).
§13 `convert` cleans up when SoftTimeLimitExceeded is raised inside it: it deletes
  f"{key}:partial" and raises the exception again, so the task fails with SoftTimeLimitExceeded
  and leaves no half-done output behind.
§14 `submit_limited(task, args, queue)` sends `task` with positional `args` to `queue` with a
  soft time limit of SOFT_TIME_LIMIT seconds (SoftTimeLimitExceeded is raised inside the task)
  and a hard time limit of TIME_LIMIT seconds (the worker kills the process running the task,
  which fails with TimeLimitExceeded), and returns its AsyncResult at once.
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any

import redis
from celery import Celery, Task, current_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.result import AsyncResult

BROKER_VARIABLE = "KATA_BROKER_URL"
BACKOFF = 0.05  # seconds before the first retry; each next retry waits twice as long
MAX_RETRIES = 4  # retries after the first attempt
VISIBILITY_TIMEOUT = 1  # seconds before Redis hands a dead worker's message to another
SOFT_TIME_LIMIT = 0.3  # seconds: SoftTimeLimitExceeded is raised inside the task
TIME_LIMIT = 0.6  # seconds: the process running the task is killed
STEP_SECONDS = 0.05  # one work_step
HOLD_SECONDS = 3.0  # the longest that notify() waits while f"{account}:hold" exists


def settings() -> dict[str, Any]:
    """The configuration of `app`."""
    # TODO(kata): return the URL, JSON, acks-late, reject-on-worker-lost and visibility settings
    raise NotImplementedError


app = Celery("celery_reliability")
app.add_defaults(settings)


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def store() -> redis.Redis:
    """A client of this run's Redis (the broker's URL), for the tasks' records."""
    return _client(os.environ[BROKER_VARIABLE])


def _this_run() -> dict[str, Any]:
    """What a task's records say about the run they come from."""
    request = current_task.request if current_task else None
    return {
        "at": time.time(),
        "pid": os.getpid(),
        "worker": getattr(request, "hostname", None),
        "retries": getattr(request, "retries", None),
        "eta": getattr(request, "eta", None),
    }


def flaky_service(key: str, failures: int, error: str = "ConnectionError") -> int:
    """A service that fails `failures` times for `key`, then works: the n-th call raises
    ConnectionError (or ValueError, when `error` is "ValueError") while n <= failures, and
    returns n after that. Each call is recorded in the Redis list f"{key}:attempts"."""
    attempt = store().rpush(f"{key}:attempts", json.dumps(_this_run()))
    if attempt <= failures:
        kind = ValueError if error == "ValueError" else ConnectionError
        raise kind(f"{key}: attempt {attempt} failed ({failures} failures planned)")
    return int(attempt)


def notify(account: str, payment_id: str) -> None:
    """Tell the rest of the world about a deposit: records this run (its process and worker) in
    the Redis list f"{account}:runs", then waits while the key f"{account}:hold" exists (at most
    HOLD_SECONDS), which lets a test catch a deposit in the middle."""
    client = store()
    client.rpush(f"{account}:runs", json.dumps({**_this_run(), "payment_id": payment_id}))
    deadline = time.monotonic() + HOLD_SECONDS
    while client.exists(f"{account}:hold") and time.monotonic() < deadline:
        time.sleep(0.01)


def work_step(key: str, i: int) -> None:
    """One step of a conversion: STEP_SECONDS of work, then i appended to f"{key}:partial"."""
    time.sleep(STEP_SECONDS)
    store().rpush(f"{key}:partial", i)


@app.task(name="celery_reliability.stubborn", shared=False)
def stubborn(key: str) -> str:
    """A task that a soft time limit cannot stop (it stands for a long call into C code, which
    a signal interrupts only once the call returns): it works for a second, then records
    f"{key}:finished"."""
    client = store()
    client.rpush(f"{key}:runs", json.dumps(_this_run()))
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            time.sleep(0.01)
        except SoftTimeLimitExceeded:
            client.set(f"{key}:soft-limit-seen", 1)
    client.set(f"{key}:finished", 1)
    return "finished"


# The tasks below are the kata. max_retries=None on fetch: no limit unless the task gives one
# (Celery's default would be 3).


@app.task(name="celery_reliability.fetch", bind=True, max_retries=None, shared=False)
def fetch(self: Task, key: str, failures: int, error: str = "ConnectionError") -> int:
    """The flaky service's answer, retried with exponential backoff on ConnectionError."""
    # TODO(kata): call flaky_service; on ConnectionError raise self.retry(exc=..., countdown=..., max_retries=...)
    raise NotImplementedError


@app.task(name="celery_reliability.deposit", shared=False)
def deposit(account: str, payment_id: str, amount: int) -> int:
    """Record a payment once, however many times the task runs, and return the balance."""
    # TODO(kata): HSETNX the payment, call notify(account, payment_id), return the sum of the payments
    raise NotImplementedError


def cancel(result: AsyncResult) -> None:
    """Make sure the task of `result` never runs, if no worker has started it yet."""
    # TODO(kata): revoke the task by its id (never terminate it)
    raise NotImplementedError


@app.task(name="celery_reliability.convert", shared=False)
def convert(key: str, items: int) -> int:
    """Convert `items` items step by step; all the output, or none of it."""
    # TODO(kata): work_step for each item, then rename; on SoftTimeLimitExceeded delete the partial and re-raise
    raise NotImplementedError


def submit_limited(task: Task, args: list[Any], queue: str) -> AsyncResult:
    """Send `task` to `queue` under a soft and a hard time limit."""
    # TODO(kata): task.apply_async(...) with the queue, soft_time_limit and time_limit
    raise NotImplementedError
