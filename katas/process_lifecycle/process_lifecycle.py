"""Kata `process_lifecycle`: subclassing Process, watchdogs, exit codes and daemon processes.

Contract (the tests check each point):

- `SumWorker(numbers, results)` is a `multiprocessing.Process` subclass. Its `__init__` stores
  both arguments as `self.numbers` and `self.results` and sets `self.total = None` (it must let
  `Process` initialize itself too). Its `run()`, which executes in the child, computes
  `sum(self.numbers)`, stores it in `self.total` and puts it on `self.results`. Attributes
  travel one way only: they reach the child (copied under fork, pickled under spawn), but what
  the child stores in `self.total` stays in the child's copy.
- `sum_in_subprocess(numbers, *, timeout=5.0)` runs a `SumWorker` (with a `multiprocessing.Queue`;
  a subclass of `multiprocessing.Process` uses the default start method) and returns the sum
  the worker sent back; it joins the worker before returning and raises `TimeoutError` if no
  sum comes within `timeout`.
- `run_with_deadline(function, args, *, seconds, grace=1.0, start_method="fork")` runs
  `function(*args)` in a child process and returns its exit code, as soon as it ends. A child
  still running after `seconds` is asked to stop with `terminate()` (SIGTERM); one still running
  `grace` seconds later is stopped with `kill()` (SIGKILL). The child is always joined, so the
  exit code is known: 0 for a normal end, the code passed to `sys.exit`, 1 for an uncaught
  exception, and minus the signal's number for a child stopped by a signal
  (`-signal.SIGTERM`, `-signal.SIGKILL`).
- `start_heartbeat(beats, interval, *, start_method="fork")` starts a *daemon* process running
  `beat(beats, interval)` and returns it at once, without waiting: a daemon child is stopped
  automatically when the program that started it exits.

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
    # (TimeoutError on queue.Empty); in a `finally`, join it (and kill it if still alive).
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


def ignore_sigterm_then_sleep(seconds: float) -> None:
    """Ignore SIGTERM (as a stubborn program might), then sleep."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(seconds)


def beat(beats: Queue[float], interval: float) -> None:
    """Put the current time on `beats` every `interval` seconds, forever."""
    while True:
        beats.put(time.monotonic())
        time.sleep(interval)
