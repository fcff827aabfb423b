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
import queue  # noqa: F401  (imported for you: your code will need it)
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
        # TODO(kata): call super().__init__() first; then store numbers, results, total = None.
        raise NotImplementedError

    def run(self) -> None:
        """Runs in the child once `start()` is called."""
        # TODO(kata): set self.total = sum(self.numbers) and put it on self.results.
        raise NotImplementedError


def sum_in_subprocess(numbers: Sequence[int], *, timeout: float = 5.0) -> int:
    """The sum of `numbers`, computed by a SumWorker in a child process."""
    # TODO(kata): a multiprocessing.Queue; start a SumWorker; return results.get(timeout=...)
    # (TimeoutError on queue.Empty); in a `finally`, join it with what is left of the timeout,
    # then kill and join it if it is still alive.
    raise NotImplementedError


def run_with_deadline(
    function: Callable[..., Any],
    args: Sequence[Any],
    *,
    seconds: float,
    grace: float = 1.0,
    start_method: StartMethod = "fork",
) -> int:
    """Run `function(*args)` in a child; stop it if it overruns; return its exit code."""
    # TODO(kata): start a Process; join(seconds); still alive: terminate(), join(grace); still
    # alive: kill(), join(); return child.exitcode.
    raise NotImplementedError


def start_heartbeat(
    beats: Queue[float], interval: float, *, start_method: StartMethod = "fork"
) -> BaseProcess:
    """Start a daemon process running beat(beats, interval); return it without waiting."""
    # TODO(kata): a Process(target=beat, args=(beats, interval), daemon=True); start and return it.
    raise NotImplementedError


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
