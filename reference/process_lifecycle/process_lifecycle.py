"""Kata `process_lifecycle`: subclassing Process, watchdogs, exit codes and daemon processes.

Contract (the tests check each point):

- §1 `SumWorker(numbers, results)` is a `multiprocessing.Process` subclass whose `__init__`
  lets `Process` initialize itself first (`super().__init__()`).
  §2 `SumWorker.__init__` stores both arguments as `self.numbers` and `self.results` and sets
  `self.total = None`.
  §3 `SumWorker.run()`, which executes in the child, computes `sum(self.numbers)`, stores it in
  `self.total` and puts it on `self.results`.
  Attributes travel one way only: they reach the child (copied under fork, pickled under
  spawn), but what the child stores in `self.total` stays in the child's copy.
- §4 `sum_in_subprocess(numbers, *, timeout=5.0)` runs a `SumWorker` (with a
  `multiprocessing.Queue`; a subclass of `multiprocessing.Process` uses the default start
  method) and returns the sum the worker sent back.
  §5 `sum_in_subprocess` joins the worker before it returns.
  §6 `sum_in_subprocess` raises `TimeoutError` if no sum comes within `timeout` seconds, and
  then stops and joins the worker: it never leaves a worker running.
- §7 `run_with_deadline(function, args, *, seconds, grace=1.0, start_method="fork")` runs
  `function(*args)` in a child process started with `start_method`, and returns its exit code
  as soon as the child ends.
  §8 A child still running after `seconds` is asked to stop with `terminate()` (SIGTERM).
  §9 A child still running `grace` seconds after `terminate()` is stopped with `kill()`
  (SIGKILL).
  §10 `run_with_deadline` always joins the child, so the exit code it returns is known: 0 for a
  normal end, the code passed to `sys.exit`, 1 for an uncaught exception, and minus the
  signal's number for a child stopped by a signal (`-signal.SIGTERM`, `-signal.SIGKILL`).
- §11 `start_heartbeat(beats, interval, *, start_method="fork")` starts a *daemon* process
  running `beat(beats, interval)`: a daemon child is stopped automatically when the program
  that started it exits.
  §12 `start_heartbeat` returns the started process at once, without waiting for it.

The child functions at the bottom of the file are given: the tests run them in your processes.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import Any, Literal

# The start methods a caller may choose (`fork` and `forkserver` exist on POSIX only).
StartMethod = Literal["spawn", "fork", "forkserver"]


class SumWorker(multiprocessing.Process):
    """A process that sums `numbers` and sends the total back on `results`."""

    def __init__(self, numbers: Sequence[int], results: Queue[int]) -> None:
        # Process sets up its own state (name, target, the pipe to the child) here.
        super().__init__()
        self.numbers = numbers
        self.results = results
        self.total: int | None = None

    def run(self) -> None:
        """Runs in the child once `start()` is called."""
        # This assignment changes the child's copy only; the queue is what reaches the parent.
        self.total = sum(self.numbers)
        self.results.put(self.total)


def sum_in_subprocess(numbers: Sequence[int], *, timeout: float = 5.0) -> int:
    """The sum of `numbers`, computed by a SumWorker in a child process."""
    # SumWorker derives from multiprocessing.Process, so it uses the default start method;
    # its queue must come from the same (default) context.
    results: Queue[int] = multiprocessing.Queue()
    worker = SumWorker(numbers, results)
    deadline = time.monotonic() + timeout
    worker.start()
    try:
        # The total comes through the queue: the parent's `worker.total` is never updated.
        return results.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"no sum arrived within {timeout} s") from None
    finally:
        # Joined on every path: a worker that sent its sum is ending; one that overran is
        # killed once the deadline has passed.
        worker.join(max(deadline - time.monotonic(), 0.0))
        if worker.is_alive():
            worker.kill()
            worker.join()


def run_with_deadline(
    function: Callable[..., Any],
    args: Sequence[Any],
    *,
    seconds: float,
    grace: float = 1.0,
    start_method: StartMethod = "fork",
) -> int:
    """Run `function(*args)` in a child; stop it if it overruns; return its exit code."""
    context = multiprocessing.get_context(start_method)
    # (typeshed's BaseContext lacks `Process`, which every real context has: hence the ignore)
    child: BaseProcess = context.Process(target=function, args=tuple(args))  # type: ignore[attr-defined]
    child.start()
    # join(timeout) returns as soon as the child ends, or after `seconds` at the latest.
    child.join(seconds)
    if child.is_alive():
        # Ask politely first: SIGTERM can be caught by a child that wants to clean up.
        child.terminate()
        child.join(grace)
    if child.is_alive():
        # SIGKILL cannot be caught or ignored.
        child.kill()
        child.join()
    # Joined, so the exit code is known (negative: the number of the signal that stopped it).
    assert child.exitcode is not None
    return child.exitcode


def start_heartbeat(
    beats: Queue[float], interval: float, *, start_method: StartMethod = "fork"
) -> BaseProcess:
    """Start a daemon process running beat(beats, interval); return it without waiting."""
    context = multiprocessing.get_context(start_method)
    # daemon=True: the program's exit stops this child instead of waiting for it forever.
    heart: BaseProcess = context.Process(  # type: ignore[attr-defined]  # see run_with_deadline
        target=beat, args=(beats, interval), daemon=True
    )
    heart.start()
    return heart


# -- given: the functions the tests run in your child processes -------------------------------


def sleep_for(seconds: float) -> None:
    """Sleep, then end normally (exit code 0)."""
    time.sleep(seconds)


def exit_with(code: int) -> None:
    """End at once with exit code `code`."""
    sys.exit(code)


# The exit code of `exit_with_module_code`; the tests change it in the parent afterwards.
MODULE_CODE = 4


def exit_with_module_code() -> None:
    """End at once with exit code MODULE_CODE, as this process sees it (a spawned child
    imports the module afresh and sees the value it was imported with)."""
    sys.exit(MODULE_CODE)


def ignore_sigterm_then_sleep(seconds: float) -> None:
    """Ignore SIGTERM (as a stubborn program might), then sleep."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(seconds)


def beat(beats: Queue[float], interval: float) -> None:
    """Put the current time on `beats` every `interval` seconds, forever."""
    while True:
        beats.put(time.monotonic())
        time.sleep(interval)
