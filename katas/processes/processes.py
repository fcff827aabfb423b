"""Kata `processes`: start child processes, name them, and get their results back.

Contract (the tests check each point):

- §1 `run_in_processes(function, inputs, *, start_method="spawn", timeout=10.0)` calls
  `function(item)` once per item of `inputs`, each call in a child process of its own, and
  returns the results.
  §2 `run_in_processes` runs all its children at the same time: it starts every child before
  it waits for any.
  §3 `run_in_processes` returns the results in the order of `inputs`, not in the order the
  children finish.
  §4 A child works on *copies* of everything it was given: its result comes back through a
  channel (a `Queue` of the chosen context), never through a list the parent passed it.
  §5 `run_in_processes` uses the start method it is given, `"spawn"` when none is given
  (`multiprocessing.get_context(start_method)`): `"spawn"` starts each child as a fresh
  interpreter that imports this module again.
  §6 A function a child could not import by name (a lambda, a function defined inside another
  function) is refused with `TypeError` before any process starts, whatever the start
  method: such code only works by accident under `fork`.
  §7 When the results are not all back within `timeout` seconds of the call (one deadline for
  all of them, not one per result), `run_in_processes` stops every child it started and
  raises `TimeoutError`.
  §8 `run_in_processes` joins every child it started before it returns or raises: it never
  leaves a child process running, nor an ended one unjoined.
- §9 `run_named(names, *, start_method="spawn", timeout=10.0)` starts one process per name,
  carrying that name; each child sends back the name it sees for itself
  (`multiprocessing.current_process().name`) and its process id (`os.getpid()`).
  §10 `run_named` returns `{name: pid}` once every child has reported and has been joined.
  §11 When not every child has reported within `timeout` seconds, `run_named` stops every
  child it started and raises `TimeoutError`.

The functions at the bottom of this file (`square`, `whose_pid`, `read_marker`, `meet`,
`sleep_then_return`) are given: the tests send them to your child processes. A child can only
run a function it can import by module and name, so they live here, at module level.
"""

from __future__ import annotations

import multiprocessing  # noqa: F401  (imported for you: your code will need it)
import os
import pickle  # noqa: F401  (imported for you: your code will need it)
import queue  # noqa: F401  (imported for you: your code will need it)
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any, Literal

# The start methods a caller may choose (`fork` and `forkserver` exist on POSIX only).
StartMethod = Literal["spawn", "fork", "forkserver"]


def _check_importable(function: Callable[..., Any]) -> None:
    """Raise TypeError unless a child process could import `function` by module and name."""
    # TODO(kata): try pickle.dumps(function); if that fails, raise TypeError (from the error)
    # saying the function must be defined at module level.
    raise NotImplementedError


def _call_and_send(
    function: Callable[[Any], Any], index: int, item: Any, results: Queue[tuple[int, Any]]
) -> None:
    """Runs in the child: compute `function(item)` and send it back with its index."""
    # TODO(kata): put (index, function(item)) on the results queue; only what goes through it
    # reaches the parent.
    raise NotImplementedError


def run_in_processes(
    function: Callable[[Any], Any],
    inputs: Sequence[Any],
    *,
    start_method: StartMethod = "spawn",
    timeout: float = 10.0,
) -> list[Any]:
    """Call `function(item)` for every item, each in its own child process; results in order."""
    # TODO(kata): check the function; get a context for start_method; start one Process per item
    # running _call_and_send; get() each result with what is left of one deadline (TimeoutError
    # on queue.Empty) and place it by its index; join; in a `finally`, kill and join any child
    # still alive.
    raise NotImplementedError


def _send_identity(reports: Queue[tuple[str, int]]) -> None:
    """Runs in the child: report the name this process sees for itself and its process id."""
    # TODO(kata): put (multiprocessing.current_process().name, os.getpid()) on the queue.
    raise NotImplementedError


def run_named(
    names: Sequence[str], *, start_method: StartMethod = "spawn", timeout: float = 10.0
) -> dict[str, int]:
    """Start one process per name, carrying that name; return {name it reported: its pid}."""
    # TODO(kata): start one Process(name=name) per name running _send_identity; get() one report
    # per child with a timeout (TimeoutError on queue.Empty); join them; in a `finally`, kill
    # and join any child still alive.
    raise NotImplementedError


# -- given: the functions the tests send to your child processes -----------------------------

# Set when this module is imported; the tests change it in the parent afterwards.
MARKER = "as imported"
# How long `meet` waits for the other children at the barrier (forked children meet within
# milliseconds).
MEET_SECONDS = 2.0


def square(number: int) -> int:
    """The square of `number`."""
    return number * number


def whose_pid(_: object) -> int:
    """The process id of the process that runs this call."""
    return os.getpid()


def read_marker(_: object) -> str:
    """The value of MARKER as this process sees it."""
    return MARKER


def meet(barrier: Barrier) -> str:
    """Wait for the barrier's other parties: "met" if they all came in time, else "alone"."""
    try:
        barrier.wait(MEET_SECONDS)
    except threading.BrokenBarrierError:
        return "alone"
    return "met"


def sleep_then_return(pair: tuple[Any, float]) -> Any:
    """Sleep `pair[1]` seconds, then return `pair[0]`."""
    value, seconds = pair
    time.sleep(seconds)
    return value


if __name__ == "__main__":
    # The guard: a spawned child imports this file again (as `__mp_main__`), and must not start
    # processes of its own while doing so. Code that starts processes belongs under it.
    print(run_in_processes(square, [2, 3], start_method="spawn", timeout=5.0))
