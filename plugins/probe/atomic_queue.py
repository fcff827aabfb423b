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
- a learner who takes ``q.mutex`` by hand still makes the method wait for it.

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

from .scheduler import active_run
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

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> R:
        run = active_run()
        w = run.current_worker() if run is not None else None
        if w is None or type(self) not in PLAIN:
            return method(self, *args, **kwargs)
        assert run is not None
        if past_wrappers(getframe(1)).f_code.co_filename not in run.learner_files:
            run.step(w, run.site())  # no call instruction of the learner's came before
        w.atomic += 1
        try:
            return method(self, *args, **kwargs)
        finally:
            w.atomic -= 1

    return call


# Made once: the Patch of every schedule swaps these in (only where a learner module imports
# queue) and puts queue.Queue's own back after. On 3.11 a plain queue's methods also run with
# the settrace hook off (``untraced_if``): each of their frames cost a call of it.
SWAPS = {name: untraced_if(_plain)(_one_step(vars(queue.Queue)[name])) for name in METHODS}
# Making a plain queue is no step (nobody else can see it yet), but on 3.11 its mutex's and
# three conditions' constructors ran traced: a tenth of the pipeline's schedule.
SWAPS["__init__"] = untraced_if(_plain)(queue.Queue.__init__)
