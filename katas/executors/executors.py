"""Kata `executors`: concurrent.futures with thread and process pools, and a two-stage crawler.

Contract (the tests check each point):

- `completion_order(executor, function, items, timeout)` submits `function(item)` for every
  item to the given executor.
  §1 `completion_order` returns the results in the order the tasks *finish*, not the order of
  `items`.
  §2 `completion_order` raises, in the caller, the exception of a task that raised.
  §3 `completion_order` raises `TimeoutError` when the tasks are not all finished `timeout`
  seconds after the call began: one deadline for all the tasks together, not one per task.
- `first_result(executor, function, items, timeout)` submits every item.
  §4 `first_result` returns the result (the value, not its future) of the first task to
  finish, without waiting for the others.
  §5 `first_result` cancels every task that has not started yet when it returns, so that
  task never runs.
  §6 `first_result` raises `TimeoutError` when no task finishes within `timeout` seconds.
  §7 `first_result`, when it times out, cancels every task that has not started before it
  raises `TimeoutError`, so those tasks never run either.
- §8 `run_bounded(function, items, max_workers)` runs `function(item)` for every item in a
  `ThreadPoolExecutor` of its own with `max_workers` threads: exactly `max_workers` tasks run
  at the same time when there is enough work, never more.
  §9 `run_bounded` returns a list of the results in the order of `items`.
- §10 `cpu_map(function, items, max_workers=2)` computes `function(item)` for every item in the
  worker processes of a `ProcessPoolExecutor` (CPU-bound work that threads cannot speed up)
  and returns a list of the results in the order of `items`.
  §11 `cpu_map` runs `max_workers` items at the same time, each in a process of its own.
  §12 `cpu_map` raises the error of `pickle` (`PicklingError`, or `AttributeError` for a
  function defined inside another one) when it is given a function that cannot be sent to a
  worker process, such as a lambda.
- `crawl(start_urls, max_workers=3, timeout=5.0)` is B2 ch.4's two-stage crawler.
  §13 `crawl`'s stage 1 groups the start URLs: each distinct URL is fetched once, duplicates
  dropped.
  §14 `crawl`'s stage 2 fetches the grouped URLs with `fetch_links` (given) in a
  `ThreadPoolExecutor(max_workers)`: several at once, never more than `max_workers` at a time.
  §15 `crawl` returns `{url: fetch_links(url, timeout)}` for every distinct URL, each page's
  links filed under that page's own URL whatever order the fetches complete in
  (`as_completed`).
  §16 `crawl` passes its `timeout` on to every `fetch_links` call, so a page slower than
  `timeout` seconds makes it raise.
  §17 `crawl` raises the error of a page that cannot be fetched (e.g.
  `urllib.error.HTTPError` for a 404), never drops it.

`whoami` and `meet` are given worker functions for the process pool; they live at module level
because a worker process finds the function to run by its module and name.
"""

from __future__ import annotations

import os
import re
import time
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from pathlib import Path
from typing import TypeVar
from urllib.parse import urljoin

T = TypeVar("T")
R = TypeVar("R")

# How long `meet` waits for its partner. Starting a worker process takes milliseconds, so the
# wait only runs out when the two meeting tasks are not running at the same time.
MEETING_SECONDS = 3.0
# A link on a page: the target of href="...".
LINK = re.compile(r'href="([^"]+)"')
# Talk to the server directly even when the environment configures an HTTP proxy.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# -- given ------------------------------------------------------------------------------------


def whoami(number: int) -> tuple[int, int]:
    """(the pid of the process that computed it, number * number)."""
    return os.getpid(), number * number


def meet(task: tuple[int, str, int]) -> int:
    """For task = (value, folder, together): wait until `together` tasks (this one included)
    have arrived in `folder` (at most MEETING_SECONDS). Returns 1 if they all met, else 0."""
    value, folder, together = task
    Path(folder, f"arrived-{value}").touch()
    deadline = time.monotonic() + MEETING_SECONDS
    while time.monotonic() < deadline:
        if len(os.listdir(folder)) >= together:
            return 1
        time.sleep(0.005)
    return 0


def fetch_links(url: str, timeout: float = 5.0) -> list[str]:
    """Download the page at `url`; return the absolute URLs of its links, in page order."""
    with _DIRECT.open(url, timeout=timeout) as response:
        page = response.read().decode("utf-8")
    return [urljoin(url, link) for link in LINK.findall(page)]


# -- the kata ---------------------------------------------------------------------------------


def completion_order(
    executor: Executor, function: Callable[[T], R], items: Iterable[T], timeout: float
) -> list[R]:
    """Results in the order the tasks finish; a task's exception is raised; TimeoutError."""
    # TODO(kata): submit every item, then collect future.result() from as_completed(futures,
    # timeout=timeout).
    raise NotImplementedError


def first_result(
    executor: Executor, function: Callable[[T], R], items: Iterable[T], timeout: float
) -> R:
    """The result of the first task to finish; cancel the tasks that have not started."""
    # TODO(kata): submit every item, wait(futures, timeout, return_when=FIRST_COMPLETED), cancel
    # every future not done, then return a done future's result (or raise TimeoutError).
    raise NotImplementedError


def run_bounded(function: Callable[[T], R], items: Iterable[T], max_workers: int) -> list[R]:
    """function(item) for every item, at most `max_workers` at a time, results in item order."""
    # TODO(kata): open a ThreadPoolExecutor(max_workers=max_workers) in a with-block and return
    # the list of its map().
    raise NotImplementedError


def cpu_map(function: Callable[[T], R], items: Iterable[T], max_workers: int = 2) -> list[R]:
    """function(item) for every item, computed in worker processes, results in item order."""
    # TODO(kata): the same as run_bounded, with a ProcessPoolExecutor.
    raise NotImplementedError


def crawl(
    start_urls: Iterable[str], max_workers: int = 3, timeout: float = 5.0
) -> dict[str, list[str]]:
    """B2 ch.4's crawler: group the distinct URLs, then fetch them on a thread pool."""
    # TODO(kata): stage 1: drop duplicate URLs; stage 2: submit fetch_links(url, timeout) for each
    # to a ThreadPoolExecutor(max_workers), map each future back to its URL, and fill the
    # result dict from as_completed(), calling result() on every future.
    raise NotImplementedError
