# mypy: disable-error-code="untyped-decorator"
# (Celery ships no type hints, so each @app.task would make its function untyped to mypy.)
"""Celery canvas: chains, groups, chords and callbacks, built as signatures and run by workers.

The tests start this module's app in a real worker process (`celery -A celery_canvas worker`,
3 processes) against a real Redis server that the test run starts. Given, and not yours to
change: `settings()` (broker and result backend from KATA_BROKER_URL, JSON only, and the queue
named in KATA_CANVAS_QUEUE as every task's default queue, so that the tasks a worker sends on
your behalf, the next step of a chain, a chord's body, a callback, reach the tests' worker too),
`app`, and three tasks: `add(x, y)` returns x + y, `mul(x, y)` returns x * y, and `fib(n)`
returns the n-th Fibonacci number (fib(0) = 0, fib(1) = 1) and raises ValueError, with n in its
message, for a negative n.

A signature (`fib.s(10)`) is a task call written down but not sent: its name, its arguments,
its options. A canvas is a signature built from signatures (a chain, a group, a chord); it is
sent with `apply_async()` and answers with an AsyncResult (a GroupResult for a group).

§1 `total(values)` is a task registered as "celery_canvas.total" that takes one argument, a
  list of numbers, and returns their sum: a chord calls its body with a single argument, the
  list of its header's results.
§2 `remember_result(value, folder)` is a bound task registered as
  "celery_canvas.remember_result", meant as a `link` callback: it writes the JSON object
  {"id": the id of the task whose result it received (`self.request.parent_id`), "value":
  value} to the file `<folder>/<that id>.json`.
§3 `remember_failure(request, exc, traceback, folder)` is a task registered as
  "celery_canvas.remember_failure", meant as a `link_error` callback: it writes the JSON object
  {"id": request.id, "task": request.task, "error": the exception's class name, "message":
  str(exc)} to the file `<folder>/<request.id>.json`.
§4 The builders `pipeline`, `one_after_another`, `fan_out`, `fib_sum` and `with_callbacks`
  send nothing: each returns its canvas unsent, for the caller to send with `apply_async()`.
§5 `pipeline(x)` returns the chain add(x, 4), then mul(previous, 10), then add(previous, -1),
  in which each step receives the result of the step before as its first argument (`.s()`):
  its result is (x + 4) * 10 - 1.
§6 `one_after_another(ns)` returns a chain of fib(n) for each n in ns, in that order, in which
  each step starts only after the step before has finished and receives nothing from it
  (immutable signatures, `.si()`): its result is fib of the last n, and the result of each
  step before it is reachable through `.parent`.
§7 `fan_out(ns)` returns a group of one fib(n) for each n in ns, duplicates included: its
  results come as a list in the order of ns. `ns` may be any iterable, a generator included.
§8 `fib_sum(n)` returns a chord whose header is the group fib(0), fib(1), ..., fib(n - 1) and
  whose body is `total`: its result is fib(0) + fib(1) + ... + fib(n - 1).
§9 `with_callbacks(n, folder)` returns the signature of fib(n) with the callback
  remember_result(folder) as its `link`, which a worker runs when fib succeeds, and
  remember_failure(folder) as its `link_error`, which a worker runs when fib fails.
§10 `fib_strict(ns, timeout)` sends fan_out(ns) and returns [fib(n) for n in ns]; when a member
  fails, `fib_strict` raises that member's exception (ValueError for a negative n).
§11 `fib_table(ns, timeout)` sends fan_out(ns) and returns {n: fib(n)} for every n in ns, with
  None for each n whose task failed: one failed member does not lose the other members'
  values. `ns` may be any iterable, a generator included.
§12 `fib_strict` and `fib_table` never wait without a timeout: each waits at most `timeout`
  seconds for the group (celery.exceptions.TimeoutError after that).

(A group's get() looks for its members' results every `interval` seconds, 0.5 unless told:
`get(timeout=..., interval=0.01)` returns as soon as they are all in.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from celery import Celery, Task, chain, chord, group
from celery.canvas import Signature

BROKER_VARIABLE = "KATA_BROKER_URL"
QUEUE_VARIABLE = "KATA_CANVAS_QUEUE"


def settings() -> dict[str, Any]:
    """The configuration of `app` (given)."""
    url = os.environ[BROKER_VARIABLE]
    return {
        "broker_url": url,
        "result_backend": url,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # Where a task goes when its signature names no queue: the tests' worker's queue.
        "task_default_queue": os.environ.get(QUEUE_VARIABLE, "celery"),
    }


app = Celery("celery_canvas")
app.add_defaults(settings)


@app.task(name="celery_canvas.add", shared=False)
def add(x: int, y: int) -> int:
    """x + y (given)."""
    return x + y


@app.task(name="celery_canvas.mul", shared=False)
def mul(x: int, y: int) -> int:
    """x * y (given)."""
    return x * y


@app.task(name="celery_canvas.fib", shared=False)
def fib(n: int) -> int:
    """The n-th Fibonacci number (given)."""
    if n < 0:
        raise ValueError(f"fib(n) needs n >= 0, got n = {n}")
    previous, current = 0, 1
    for _ in range(n):
        previous, current = current, previous + current
    return previous


@app.task(name="celery_canvas.total", shared=False)
def total(values: list[int]) -> int:
    """The sum of a chord header's results."""
    # One parameter: the chord's body is called once, with the whole list of results.
    return sum(values)


@app.task(name="celery_canvas.remember_result", bind=True, shared=False)
def remember_result(self: Task, value: Any, folder: str) -> None:
    """A link callback: record the result it received, under the id of the task it came from."""
    # A link callback is sent by the worker that ran the parent, with the parent's id as its
    # parent_id; its own id is a new one.
    parent = str(self.request.parent_id)
    Path(folder, f"{parent}.json").write_text(json.dumps({"id": parent, "value": value}))


@app.task(name="celery_canvas.remember_failure", shared=False)
def remember_failure(request: Any, exc: BaseException, traceback: Any, folder: str) -> None:
    """A link_error callback: record which task failed, and how."""
    # The worker calls an error callback that takes (request, exc, traceback) itself, at once,
    # with the failed task's request: request.id is the failed task's id.
    record = {
        "id": request.id,
        "task": request.task,
        "error": type(exc).__name__,
        "message": str(exc),
    }
    Path(folder, f"{request.id}.json").write_text(json.dumps(record))


def pipeline(x: int) -> Signature:
    """add(x, 4) -> mul(., 10) -> add(., -1), each step fed the result before it."""
    # .s(): a mutable signature, so the worker prepends the previous result to its arguments.
    canvas: Signature = chain(add.s(x, 4), mul.s(10), add.s(-1))
    return canvas


def one_after_another(ns: list[int]) -> Signature:
    """fib(n) for each n in ns, one after another, none fed the result before it."""
    # .si(): an immutable signature ignores the previous result; .s() would call fib(prev, n).
    canvas: Signature = chain([fib.si(n) for n in ns])
    return canvas


def fan_out(ns: Iterable[int]) -> Signature:
    """fib(n) for every n in ns, side by side."""
    # A group runs its members in parallel; its results keep the order of its members.
    canvas: Signature = group([fib.s(n) for n in ns])
    return canvas


def fib_sum(n: int) -> Signature:
    """fib(0) + ... + fib(n - 1): a map (the header) and a reduce (the body)."""
    # Header first, body second: the body runs once, on the list of the header's results.
    canvas: Signature = chord([fib.s(i) for i in range(n)], total.s())
    return canvas


def with_callbacks(n: int, folder: str) -> Signature:
    """fib(n), with a callback for its success and one for its failure."""
    # Mutable signatures: the worker adds the result (link) or request, exc, traceback
    # (link_error) in front of `folder`.
    canvas: Signature = fib.s(n).set(
        link=remember_result.s(folder), link_error=remember_failure.s(folder)
    )
    return canvas


def fib_strict(ns: Iterable[int], timeout: float) -> list[int]:
    """[fib(n) for n in ns] from one group; a failed member's error is raised."""
    # get() of a group raises the first failure it meets (propagate=True is the default); it
    # looks for results every `interval` seconds, 0.5 unless told.
    values: list[int] = fan_out(ns).apply_async().get(timeout=timeout, interval=0.01)
    return values


def fib_table(ns: Iterable[int], timeout: float) -> dict[int, int | None]:
    """{n: fib(n)} from one group, None where the member failed."""
    # Read ns once: a generator would be empty again when zip() came back to it.
    ns = list(ns)
    result = fan_out(ns).apply_async()
    # propagate=False: a failed member's exception comes back in its place in the list.
    values = result.get(timeout=timeout, propagate=False, interval=0.01)
    pairs = zip(ns, values, strict=True)
    return {n: None if isinstance(value, BaseException) else value for n, value in pairs}
