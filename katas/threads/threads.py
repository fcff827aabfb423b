"""Kata `threads`: start, join, name and subclass threads.

Contract (the tests check each point; some run your threads under a controlled scheduler that
tries many interleavings):

- §1 `run_all(function, argument_lists)` calls `function(*arguments)` exactly once per entry of
  `argument_lists` (the entry's items are the call's positional arguments).
  §2 `run_all` makes each call in a new thread of its own, never in the caller's thread.
  §3 `run_all` runs all its threads at the same time: it starts every thread before it joins
  any.
  §4 `run_all` returns the results in the order of `argument_lists`, not in the order the
  threads finish in.
  §5 `run_all` returns only after every call has finished, with every result in place.
- §6 `run_named(names, function)` starts one thread per name, carrying that name, each running
  `function()` outside the caller's thread.
  §7 `run_named` runs all its threads at the same time: it starts every thread before it joins
  any.
  §8 `run_named` returns `None`, and only after every one of its threads has finished.
- `Countdown(start)` is a `threading.Thread` subclass (given: its `__init__` sets `start_at`,
  an empty `counted` list and `ran_in = None`; `start()` and `join()` are inherited).
  §9 `Countdown.run` appends `start_at`, `start_at - 1`, ... down to 1 (0 excluded) to
  `self.counted`.
  §10 `Countdown.run` records the identity of the thread it runs in as `self.ran_in`
  (`threading.get_ident()`, called): after `start()` that is the new thread, `self.ident`.
- §11 `start_daemon(function)` starts `function()` in a new daemon thread and returns that
  thread: a daemon thread never keeps the program from exiting.
  §12 `start_daemon` returns at once, while `function()` still runs: it never joins the thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


def run_all(function: Callable[..., Any], argument_lists: Sequence[Sequence[Any]]) -> list[Any]:
    """Run `function(*arguments)` for every entry, all in parallel threads; results in order."""
    # TODO(kata): start one thread per entry, all of them before joining any; collect results by index.
    raise NotImplementedError


def run_named(names: Sequence[str], function: Callable[[], Any]) -> None:
    """Run `function()` in one thread per name, each thread carrying that name; wait for all."""
    # TODO(kata): pass name= to each Thread, start them all, then join them all.
    raise NotImplementedError


class Countdown(threading.Thread):
    """A thread that counts from `start` down to 1 into `self.counted`."""

    def __init__(self, start: int) -> None:
        super().__init__()
        self.start_at = start
        self.counted: list[int] = []
        self.ran_in: int | None = None

    def run(self) -> None:
        """Runs in the new thread once `start()` is called."""
        # TODO(kata): record threading.get_ident() in self.ran_in, then count down into self.counted.
        raise NotImplementedError


def start_daemon(function: Callable[[], Any]) -> threading.Thread:
    """Start `function()` in a daemon thread and return the thread, without joining it."""
    # TODO(kata): create the thread with daemon=True, start it and return it.
    raise NotImplementedError
