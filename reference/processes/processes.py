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

import multiprocessing
import os
import pickle
import queue
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
    # Pickle stores a function as "module + name" and fails when that name does not lead back
    # to the same object, exactly the case in which a spawned child could not find it.
    try:
        pickle.dumps(function)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise TypeError(
            f"{function!r} cannot be sent to a child process: define it at module level, so "
            f"that the child can import it by name (lambdas and nested functions cannot)"
        ) from error


def _call_and_send(
    function: Callable[[Any], Any], index: int, item: Any, results: Queue[tuple[int, Any]]
) -> None:
    """Runs in the child: compute `function(item)` and send it back with its index."""
    # The child's memory is its own; only what goes through the queue reaches the parent.
    results.put((index, function(item)))


def run_in_processes(
    function: Callable[[Any], Any],
    inputs: Sequence[Any],
    *,
    start_method: StartMethod = "spawn",
    timeout: float = 10.0,
) -> list[Any]:
    """Call `function(item)` for every item, each in its own child process; results in order."""
    # Refuse early: under spawn the child would fail to import it, under fork it only seems to work.
    _check_importable(function)
    context = multiprocessing.get_context(start_method)
    results: Queue[tuple[int, Any]] = context.Queue()
    # (typeshed's BaseContext lacks `Process`, which every real context has: hence the ignore)
    processes = [
        context.Process(target=_call_and_send, args=(function, index, item, results))  # type: ignore[attr-defined]
        for index, item in enumerate(inputs)
    ]
    ordered: list[Any] = [None] * len(processes)
    deadline = time.monotonic() + timeout
    try:
        # Every child is started before we wait for any, so they all run at the same time.
        for process in processes:
            process.start()
        for _ in processes:
            try:
                index, result = results.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                raise TimeoutError(
                    f"not every child reported within {timeout} s; the rest were stopped"
                ) from None
            # The index travels with the result: children finish in any order.
            ordered[index] = result
        for process in processes:
            process.join(timeout=max(deadline - time.monotonic(), 0.0))
    finally:
        # Whatever happened above, no child outlives this call.
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
    return ordered


def _send_identity(reports: Queue[tuple[str, int]]) -> None:
    """Runs in the child: report the name this process sees for itself and its process id."""
    # current_process() inside the child is the child's own Process object, name included.
    reports.put((multiprocessing.current_process().name, os.getpid()))


def run_named(
    names: Sequence[str], *, start_method: StartMethod = "spawn", timeout: float = 10.0
) -> dict[str, int]:
    """Start one process per name, carrying that name; return {name it reported: its pid}."""
    context = multiprocessing.get_context(start_method)
    reports: Queue[tuple[str, int]] = context.Queue()
    # name= is given at construction; the child sees it as current_process().name.
    processes = [
        context.Process(target=_send_identity, args=(reports,), name=name)  # type: ignore[attr-defined]  # see above
        for name in names
    ]
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            process.start()
        identities: dict[str, int] = {}
        for _ in processes:
            try:
                name, pid = reports.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                raise TimeoutError(
                    f"{len(processes) - len(identities)} children did not report within "
                    f"{timeout} s; they were stopped"
                ) from None
            identities[name] = pid
        for process in processes:
            process.join(timeout=max(deadline - time.monotonic(), 0.0))
    finally:
        # No child outlives this call, even when a report never came.
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
    return identities


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
