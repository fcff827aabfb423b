"""A plain ``queue.Queue``'s methods, each one step of the worker that calls it.

In a run, ``queue.Queue`` is the standard library's code over the harness's cooperative Lock
and Conditions, whose every acquire, notify and release was a switch point: three steps for
a put or a get, a third of a pipeline's steps. No other worker can see a plain queue halfway
through a method: only the queue's methods take its mutex, and none of them holds it across
a switch point. Those steps only multiplied the schedules (and the re-runs of a search for
the fewest preemptions). Now a controlled worker runs a plain Queue's or LifoQueue's
method as one step:

- the switch point before it is the learner's call (every call instruction is one); called
  from code that is not the learner's (a test's own worker, ``map(q.put, items)``), the
  method first takes one step of its own;
- inside, taking the free mutex, notifying and releasing are not switch points
  (``Worker.atomic``); waiting is, as before: a get on an empty queue, a put on a full
  one and ``join`` block, and wake in the order the real queue wakes them;
- a learner who takes ``q.mutex`` by hand still makes the method wait for it;
- a put, a get or a task_done that can neither wait nor raise does what the standard
  library's code does then (the item moves, the longest waiter is woken) without taking the
  free mutex and calling the Conditions: a tenth of a pipeline's schedule. Anything else
  runs the standard library's code.

A PriorityQueue (it compares the learner's items) and a subclass (it may override ``_put``)
keep every switch point. On 3.11 the methods also run with the settrace hook off (each of
their frames cost a call of it); the learner's code never runs inside them.
"""

from __future__ import annotations

import functools
import queue
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from greenlet import getcurrent

from .conditions import Condition
from .locks import Lock
from .scheduler import ACTIVE
from .tracing import past_wrappers, untraced_if

R = TypeVar("R")

PLAIN = (queue.Queue, queue.LifoQueue)
METHODS = ("put", "get", "put_nowait", "get_nowait", "task_done", "join", "qsize", "empty", "full")


def _plain(q: object) -> bool:
    """A Queue or LifoQueue: its methods call no learner code (a PriorityQueue compares the
    learner's items; a subclass may override ``_put`` or ``_get``)."""
    return type(q) in PLAIN


def _one_step(method: Callable[..., R]) -> Callable[..., R]:
    """``method`` of queue.Queue, run as one step by a controlled worker on a plain queue."""
    getframe = sys._getframe
    quick = _QUICK.get(method.__name__)

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> R:
        # ``active_run()`` and ``run.current_worker()``, written out: two calls less at every
        # method of a plain queue (a put/get pair: 28.0k -> 27.1k instructions).
        run = ACTIVE[0]
        if run is None or type(self) not in PLAIN:
            return method(self, *args, **kwargs)
        w = run.current
        if w is None or run.closed or w.glet is not getcurrent():
            return method(self, *args, **kwargs)
        if past_wrappers(getframe(1)).f_code.co_filename not in run.learner_files:
            run.step(w, run.site())  # no call instruction of the learner's came before
        if quick is not None:
            try:
                done, value = quick(self, *args, **kwargs)
            except TypeError:  # arguments put() does not take: its own code says so
                done, value = _NOT_DONE
            if done:
                return value  # type: ignore[no-any-return]
        w.atomic += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            w.atomic -= 1

    return call


def _free_waiters(q: Any, name: str) -> list[list[bool]] | None:
    """The waiters of the queue's condition ``name``, if its mutex is the run's cooperative
    Lock, free, and ``name`` the harness's Condition over it; else None, and the method runs
    the slow way (a learner who holds the mutex by hand makes the method wait for it)."""
    fields = q.__dict__
    mutex = fields.get("mutex")
    cond = fields.get(name)
    if (
        type(mutex) is Lock
        and mutex._real is None
        and mutex._owner is None
        and type(cond) is Condition
        and cond._coop is mutex
    ):
        return cond._waiters
    return None


def _wake(waiters: list[list[bool]], n: int) -> None:
    """``Condition.notify(n)``'s effect: the longest-waiting ``n`` are woken."""
    for waiter in waiters[:n]:
        waiter[0] = True
    del waiters[:n]


_NOT_DONE = (False, None)


def _put(q: Any, item: Any, block: bool = True, timeout: Any = None) -> tuple[bool, Any]:
    """``Queue.put`` where it cannot wait or raise: what the stdlib's code does then, without
    taking the free mutex and calling the Conditions (a tenth of a pipeline's schedule)."""
    if q.maxsize > 0 and (q._qsize() >= q.maxsize or (block and timeout is not None)):
        return _NOT_DONE
    waiters = _free_waiters(q, "not_empty")
    if waiters is None:
        return _NOT_DONE
    q._put(item)
    q.unfinished_tasks += 1
    if waiters:  # notify(): the longest waiter, written out (a queue's every put)
        waiters[0][0] = True
        del waiters[0]
    return True, None


def _get(q: Any, block: bool = True, timeout: Any = None) -> tuple[bool, Any]:
    """``Queue.get`` with an item there and no timeout to check."""
    if (block and timeout is not None) or not q._qsize():
        return _NOT_DONE
    waiters = _free_waiters(q, "not_full")
    if waiters is None:
        return _NOT_DONE
    item = q._get()
    if waiters:
        waiters[0][0] = True
        del waiters[0]
    return True, item


def _task_done(q: Any) -> tuple[bool, Any]:
    """``Queue.task_done`` that does not raise."""
    if q.unfinished_tasks < 1:
        return _NOT_DONE
    waiters = _free_waiters(q, "all_tasks_done")
    if waiters is None:
        return _NOT_DONE
    unfinished = q.unfinished_tasks - 1
    if unfinished == 0:
        _wake(waiters, len(waiters))
    q.unfinished_tasks = unfinished
    return True, None


_QUICK: dict[str, Callable[..., tuple[bool, Any]]] = {
    "put": _put,
    "get": _get,
    "task_done": _task_done,
}


# Made once: the Patch of every schedule swaps these in (only where a learner module imports
# queue) and puts queue.Queue's own back after. On 3.11 a plain queue's methods also run with
# the settrace hook off (``untraced_if``): each of their frames cost a call of it.
SWAPS = {name: untraced_if(_plain)(_one_step(vars(queue.Queue)[name])) for name in METHODS}
# Making a plain queue is no step (nobody else can see it yet), but on 3.11 its mutex's and
# three conditions' constructors ran traced: a tenth of the pipeline's schedule.
SWAPS["__init__"] = untraced_if(_plain)(queue.Queue.__init__)
# For a run with no settrace hook (3.11's rewritten code): the same without the wrapper that
# turns the hook off, a frame of its own at every call of a queue's method.
SWAPS_UNHOOKED = {name: _one_step(vars(queue.Queue)[name]) for name in METHODS}
