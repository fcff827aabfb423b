"""Kata `gil`: threads speed up waiting, not pure-Python computing.

Contract (the tests check each point; those marked `timing` measure real time, with bounds
explained in the test file):

- §1 `timed(function)` calls `function()` exactly once and returns how many seconds of
  wall-clock time that took, as a float, measured with `time.perf_counter()` (a waiting call
  counts its waiting).
- §2 `serially(tasks)` calls each task (a function of no arguments) in turn, in the calling
  thread, and returns a list of their results in the order of `tasks`: every task has run
  when it returns.
- §3 `in_threads(tasks)` calls each task in a thread of its own, never in the calling thread.
  §4 `in_threads` runs all its threads at the same time: every thread is started before any
  is joined.
  §5 `in_threads` waits for all its threads before it returns, and returns their results in
  the order of `tasks`, whatever order the threads finish in.
- §6 `speedup(tasks)` times the tasks once serially and once in threads (with `timed`, which
  takes a function to call), and returns the serial time divided by the threaded time:
  above 1 when threads helped.
- `wait_for_io(seconds)` (given) stands for a blocking call (a network or disk wait): it sleeps,
  and the GIL is released while it does. `count_down(n)` (given) is pure-Python computation:
  it holds the GIL all the time it runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


def wait_for_io(seconds: float) -> float:
    """A blocking call: sleep `seconds` (the GIL is free meanwhile) and return them."""
    time.sleep(seconds)
    return seconds


def count_down(n: int) -> int:
    """Pure-Python work: count from n down to 0 (the GIL is held throughout); return n."""
    left = n
    while left > 0:
        left -= 1
    return n


def timed(function: Callable[[], object]) -> float:
    """Wall-clock seconds that `function()` takes."""
    # perf_counter is wall-clock time: it counts waiting too (process_time would not).
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def serially(tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """Call the tasks one after another in this thread; results in task order."""
    return [task() for task in tasks]


def in_threads(tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """Call each task in its own thread, all at once; results in task order."""
    results: list[Any] = [None] * len(tasks)

    def run(index: int, task: Callable[[], Any]) -> None:
        results[index] = task()

    # The task itself goes in args: target=task() would run it here, in the caller.
    threads = [threading.Thread(target=run, args=(i, task)) for i, task in enumerate(tasks)]
    # All started before any is joined, so their waits overlap.
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def speedup(tasks: Sequence[Callable[[], Any]]) -> float:
    """Serial time divided by threaded time for the same tasks."""
    serial = timed(lambda: serially(tasks))
    threaded = timed(lambda: in_threads(tasks))
    return serial / threaded
