"""Kata `threads`: start, join, name and subclass threads.

Contract (the tests check each point):

- `run_all(function, argument_lists)` runs `function(*arguments)` once per entry of
  `argument_lists`, each call in its own thread, all threads running at the same time, and
  returns the results in the order of `argument_lists` (not the order the threads finish in).
- `run_named(names, function)` starts one thread per name, with that name, each running
  `function()`, waits for all of them, and returns nothing.
- `Countdown` is a `threading.Thread` subclass: `Countdown(start)` counts from `start` down to 1
  in its own thread, appending each number to `self.counted`, and records the identity of the
  thread it ran in as `self.ran_in` (use `threading.get_ident()`).
- `start_daemon(function)` starts `function()` in a daemon thread and returns that thread
  without waiting for it: a daemon thread never keeps the program from exiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


def run_all(function: Callable[..., Any], argument_lists: Sequence[Sequence[Any]]) -> list[Any]:
    """Run `function(*arguments)` for every entry, all in parallel threads; results in order."""
    results: list[Any] = [None] * len(argument_lists)

    def call(index: int, arguments: Sequence[Any]) -> None:
        results[index] = function(*arguments)

    # Every thread is started before any is joined, so they all run at the same time; each
    # writes to its own slot, so the order of finishing does not matter.
    threads = [
        threading.Thread(target=call, args=(index, arguments))
        for index, arguments in enumerate(argument_lists)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def run_named(names: Sequence[str], function: Callable[[], Any]) -> None:
    """Run `function()` in one thread per name, each thread carrying that name; wait for all."""
    threads = [threading.Thread(target=function, name=name) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class Countdown(threading.Thread):
    """A thread that counts from `start` down to 1 into `self.counted`."""

    def __init__(self, start: int) -> None:
        super().__init__()
        self.start_at = start
        self.counted: list[int] = []
        self.ran_in: int | None = None

    def run(self) -> None:
        """Runs in the new thread once `start()` is called."""
        # run() is the thread's body; start() (inherited) is what creates the thread.
        self.ran_in = threading.get_ident()
        for number in range(self.start_at, 0, -1):
            self.counted.append(number)


def start_daemon(function: Callable[[], Any]) -> threading.Thread:
    """Start `function()` in a daemon thread and return the thread, without joining it."""
    thread = threading.Thread(target=function, daemon=True)
    thread.start()
    return thread
