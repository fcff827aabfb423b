"""Kata `pools`: a pool of worker processes with map, imap_unordered, starmap and apply_async.

Contract (the tests check each point):

- Every function below (`parallel_map`, `in_completion_order`, `starmap_all`, `collect_async`,
  `checked_map`):
  §1 Each function starts one `multiprocessing.Pool` of `processes` workers (2 when the caller
  does not say) and leaves no worker process behind when it returns or raises.
- `parallel_map(function, items, processes=2, chunksize=1)`:
  §2 `parallel_map` returns `[function(item) for item in items]`, in the order of `items`.
  §3 `parallel_map` computes the items in the pool's worker processes, never in the caller,
  several items at the same time.
  §4 `parallel_map` hands the items to the workers in runs of `chunksize` consecutive items:
  one worker computes a whole run.
- `in_completion_order(function, items, processes=2)`:
  §5 `in_completion_order` returns the same results, but in the order in which the workers
  *finished* them: a quick item is not kept waiting behind a slow one.
- `starmap_all(function, argument_tuples, processes=2)`:
  §6 `starmap_all` returns `[function(*arguments) for arguments in argument_tuples]`, in
  order, computed by the pool.
- `collect_async(function, argument_tuples, processes=2)`:
  §7 `collect_async` submits `function(*arguments)` for every tuple, one task each, and returns
  `(results, errors)`, gathered by callbacks: every result that a task returned and every
  exception that a task raised, each list in any order.
  §8 `collect_async` returns only when every task has ended and its callback has run.
- `checked_map(function, items, processes=2, timeout=5.0)` is `parallel_map` with checks:
  §9 `checked_map` raises again, in the caller, an exception that `function` raised in a
  worker.
  §10 `checked_map` raises `multiprocessing.TimeoutError` when the results are not all in
  `timeout` seconds after the call began: the timeout bounds the whole call, not each item.
- `Service(processes=2)` (given) owns one long-lived pool (`service.pool`) that many callers
  share through `submit(function, *args)` (given).
  §11 `Service.close()` lets the work already submitted run to its end.
  §12 When `Service.close()` returns, every worker process of the pool has exited.
  §13 After `Service.close()`, `submit` raises `ValueError`.

The worker functions (`square`, `power`, `divide`, `reciprocal`, `echo_after`, `meet`) are
given. They live here, at module level, because a worker process finds the function to run
by its module and name: a lambda or a function defined inside another one cannot be sent.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from multiprocessing.pool import AsyncResult
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# How long `meet` waits for its partners. Starting a worker process takes milliseconds, so the
# wait only runs out when the meeting tasks are not all running at the same time.
MEETING_SECONDS = 3.0


# -- worker functions (given) -----------------------------------------------------------------


def square(number: int) -> int:
    """number * number."""
    return number * number


def power(base: int, exponent: int) -> int:
    """base ** exponent: a function of two arguments, for starmap."""
    return int(base**exponent)


def divide(numerator: float, denominator: float, delay: float = 0.0) -> float:
    """numerator / denominator after sleeping `delay` seconds; ZeroDivisionError for 0."""
    time.sleep(delay)
    return numerator / denominator


def reciprocal(number: float) -> float:
    """1 / number; raises ZeroDivisionError for 0."""
    return 1 / number


def echo_after(task: tuple[str, float]) -> str:
    """Sleep `delay` seconds, then return `value`, for task = (value, delay)."""
    value, delay = task
    time.sleep(delay)
    return value


def meet(task: tuple[int, int, str]) -> tuple[int, bool]:
    """For task = (value, party, folder): when `party` is not 0, wait until `party` meeting
    tasks, this one included, have arrived in `folder` (at most MEETING_SECONDS). Returns
    (this process's pid, met)."""
    value, party, folder = task
    if not party:
        return os.getpid(), False
    Path(folder, f"arrived-{value}").touch()
    deadline = time.monotonic() + MEETING_SECONDS
    while time.monotonic() < deadline:
        if len(os.listdir(folder)) >= party:
            return os.getpid(), True
        time.sleep(0.005)
    return os.getpid(), False


# -- the kata ---------------------------------------------------------------------------------


def parallel_map(
    function: Callable[[T], R], items: Iterable[T], processes: int = 2, chunksize: int = 1
) -> list[R]:
    """[function(item) for item in items], computed by a pool, in the order of `items`."""
    # map() blocks until every result is in, so leaving the with-block (which terminates the
    # workers) loses nothing; chunksize sets how many consecutive items one task carries.
    with multiprocessing.Pool(processes) as pool:
        return pool.map(function, items, chunksize=chunksize)


def in_completion_order(
    function: Callable[[T], R], items: Iterable[T], processes: int = 2
) -> list[R]:
    """The results of function(item) in the order the workers finish them."""
    # imap_unordered hands each result over as soon as its worker finishes it.
    with multiprocessing.Pool(processes) as pool:
        return list(pool.imap_unordered(function, items))


def starmap_all(
    function: Callable[..., R], argument_tuples: Iterable[tuple[Any, ...]], processes: int = 2
) -> list[R]:
    """[function(*arguments) for arguments in argument_tuples], computed by a pool."""
    # starmap calls function(*arguments); map would pass the whole tuple as one argument.
    with multiprocessing.Pool(processes) as pool:
        return pool.starmap(function, argument_tuples)


def collect_async(
    function: Callable[..., R], argument_tuples: Iterable[tuple[Any, ...]], processes: int = 2
) -> tuple[list[R], list[BaseException]]:
    """Submit one task per tuple; return (results, errors) gathered by callbacks."""
    results: list[R] = []
    errors: list[BaseException] = []
    with multiprocessing.Pool(processes) as pool:
        for arguments in argument_tuples:
            # The callbacks run in this process (the pool's result thread), so they can append
            # to our lists; a failed task calls error_callback instead of callback.
            pool.apply_async(
                function, arguments, callback=results.append, error_callback=errors.append
            )
        # Leaving the with-block terminates the workers: close() and join() first, so every
        # submitted task ends and its callback has run.
        pool.close()
        pool.join()
    return results, errors


def checked_map(
    function: Callable[[T], R], items: Iterable[T], processes: int = 2, timeout: float = 5.0
) -> list[R]:
    """parallel_map that re-raises a worker's exception and gives up after `timeout` seconds."""
    # get() re-raises the worker's exception here, and its timeout bounds the wait; leaving
    # the with-block then terminates any worker still busy.
    with multiprocessing.Pool(processes) as pool:
        return pool.map_async(function, items).get(timeout)


class Service:
    """One long-lived pool shared by many callers."""

    def __init__(self, processes: int = 2) -> None:
        self.pool = multiprocessing.Pool(processes)

    def submit(self, function: Callable[..., R], *args: Any) -> AsyncResult[R]:
        """Run function(*args) in the pool; the AsyncResult's get() gives the result."""
        return self.pool.apply_async(function, args)

    def close(self) -> None:
        """Let submitted work finish, wait until every worker has exited, refuse new work."""
        # close() lets queued work finish (terminate() would kill it); join() waits for the exits.
        self.pool.close()
        self.pool.join()
