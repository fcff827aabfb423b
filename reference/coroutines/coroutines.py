"""Kata `coroutines`: async def, await, a state machine of coroutines, one-by-one vs all at once.

Contract (the tests check each point, timings on a virtual clock where sleeping costs nothing;
it does not start at 0):

- §1 `double_after(delay, value)` returns `value * 2`.
  §2 `double_after` first waits `delay` seconds of loop time *without blocking the event loop*
  (`await asyncio.sleep(delay)`, never `time.sleep`): other coroutines run meanwhile.
- §3 `settle(value)` returns `value` unchanged when it is not awaitable.
  §4 `settle(value)` awaits a `value` that is awaitable (a coroutine, a Task, a Future, any
  object with `__await__`: whatever `inspect.isawaitable` accepts) and returns what awaiting it
  gives; a coroutine handed to `settle` is always awaited, never left un-awaited.
- `run_machine(states, start, max_steps=100)` runs a finite-state machine whose states are
  coroutine functions: `states[name]()` returns a coroutine that does the state's work and
  gives the next state's name, or `None` to end.
  §5 `run_machine` starts at `start` and runs one state at a time, each to completion before
  the next, until a state gives `None`.
  §6 `run_machine` returns the names of the states it ran, in order.
  §7 `run_machine` raises `ValueError` for a name missing from `states`, `start` included,
  instead of running it.
  §8 A machine that has run `max_steps` states and still names a next one makes
  `run_machine` raise `RuntimeError` without running that next state; a machine of exactly
  `max_steps` states completes.
  §9 `run_machine`'s `max_steps` is 100 unless the caller says otherwise.
- §10 `fetch_all(fetch, keys)` awaits `fetch(key)` for every key *at the same time*, so it
  takes as long as the slowest fetch, not the sum of them all.
  §11 `fetch_all` returns the results in the order of `keys`, whatever order they finish in.
  §12 If the task awaiting `fetch_all` is cancelled, every fetch it started is cancelled too:
  by the time the `CancelledError` reaches the caller, no fetch is still running.
- §13 `fetch_one_by_one(fetch, keys)` awaits `fetch(key)` for each key strictly one after
  another (the server takes one request at a time): a request starts only after the previous
  one has finished.
  §14 `fetch_one_by_one` returns the results in the order of `keys`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

K = TypeVar("K")
T = TypeVar("T")
V = TypeVar("V")

# A state: calling it gives a coroutine that does the state's work and names the next state.
State = Callable[[], Awaitable[str | None]]


async def double_after(delay: float, value: int) -> int:
    """Wait `delay` seconds without blocking the loop, then return `value * 2`."""
    # asyncio.sleep suspends only this coroutine; the loop runs others meanwhile.
    await asyncio.sleep(delay)
    return value * 2


async def settle(value: T | Awaitable[T]) -> T:
    """Return `value`, or what awaiting it gives when it is awaitable."""
    # isawaitable covers coroutines, Tasks and Futures alike; iscoroutine would miss the last two.
    if inspect.isawaitable(value):
        return await value
    return value


async def run_machine(states: Mapping[str, State], start: str, max_steps: int = 100) -> list[str]:
    """Run the machine from `start` until a state returns None; return the states run, in order."""
    path: list[str] = []
    current: str | None = start
    while current is not None:
        if current not in states:
            raise ValueError(f"unknown state {current!r} (after {path})")
        # Refuse before running: a cycle must not run a single state past the budget.
        if len(path) == max_steps:
            raise RuntimeError(f"no end after {max_steps} states; the last ones: {path[-3:]}")
        path.append(current)
        # Calling the state only creates a coroutine; awaiting it runs it and gives its result.
        current = await states[current]()
    return path


async def fetch_all(
    fetch: Callable[[K], Coroutine[Any, Any, V]], keys: Sequence[K]
) -> list[V]:
    """Fetch every key at the same time; results in the order of `keys`."""
    # Every fetch becomes a task of the group at once, so they all wait side by side. A group
    # cancelled from outside cancels its tasks and waits until each has stopped; plain gather
    # would pass the CancelledError on as soon as the first of them has stopped.
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(fetch(key)) for key in keys]
    # The tasks are kept in the order of `keys`, whatever order they finished in.
    return [task.result() for task in tasks]


async def fetch_one_by_one(fetch: Callable[[K], Awaitable[V]], keys: Sequence[K]) -> list[V]:
    """Fetch the keys strictly one after another; results in the order of `keys`."""
    # Awaiting inside the loop finishes each request before the next one is even created.
    return [await fetch(key) for key in keys]
