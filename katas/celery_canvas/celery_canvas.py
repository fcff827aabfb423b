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

import os
from collections.abc import Iterable
from typing import Any

from celery import Celery, Task
from celery.canvas import Signature

# You will need more: `from celery import chain, chord, group`, `json` and `pathlib.Path`.

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
    # TODO(kata): return the sum of the list
    raise NotImplementedError


@app.task(name="celery_canvas.remember_result", bind=True, shared=False)
def remember_result(self: Task, value: Any, folder: str) -> None:
    """A link callback: record the result it received, under the id of the task it came from."""
    # TODO(kata): write {"id": parent id, "value": value} to <folder>/<parent id>.json
    raise NotImplementedError


@app.task(name="celery_canvas.remember_failure", shared=False)
def remember_failure(request: Any, exc: BaseException, traceback: Any, folder: str) -> None:
    """A link_error callback: record which task failed, and how."""
    # TODO(kata): write {"id", "task", "error", "message"} to <folder>/<request.id>.json
    raise NotImplementedError


def pipeline(x: int) -> Signature:
    """add(x, 4) -> mul(., 10) -> add(., -1), each step fed the result before it."""
    # TODO(kata): return chain(add.s(...), mul.s(...), add.s(...))
    raise NotImplementedError


def one_after_another(ns: list[int]) -> Signature:
    """fib(n) for each n in ns, one after another, none fed the result before it."""
    # TODO(kata): return a chain of immutable fib signatures
    raise NotImplementedError


def fan_out(ns: Iterable[int]) -> Signature:
    """fib(n) for every n in ns, side by side."""
    # TODO(kata): return a group of fib signatures
    raise NotImplementedError


def fib_sum(n: int) -> Signature:
    """fib(0) + ... + fib(n - 1): a map (the header) and a reduce (the body)."""
    # TODO(kata): return chord(header, body)
    raise NotImplementedError


def with_callbacks(n: int, folder: str) -> Signature:
    """fib(n), with a callback for its success and one for its failure."""
    # TODO(kata): return fib.s(n) with link and link_error set
    raise NotImplementedError


def fib_strict(ns: Iterable[int], timeout: float) -> list[int]:
    """[fib(n) for n in ns] from one group; a failed member's error is raised."""
    # TODO(kata): send fan_out(ns) and get its results within timeout
    raise NotImplementedError


def fib_table(ns: Iterable[int], timeout: float) -> dict[int, int | None]:
    """{n: fib(n)} from one group, None where the member failed."""
    # TODO(kata): send fan_out(ns) and map each n to its value, or None if it failed
    raise NotImplementedError
