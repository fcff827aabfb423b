"""Run the harness once on a small scenario of its own, in a process that will fork runs.

A probe test's first schedule in a fresh process cost 0.4-0.6 ms more than its later ones
(locks' transfer pair: 1.06 ms, then 0.64, then 0.45): CPython 3.11 specializes a function's
bytecode only after it has run a few times, the standard library's regular expressions and
``dis`` tables are built on first use, and the harness's caches of file facts start empty.
In a one-schedule probe test that first schedule is the whole test. The self-check's warm
worker calls ``warm()`` once before it forks its runs, which inherit all of it. Nothing of
the scenario outlives it: the code analysis it caches is this module's own, the run's
thread retires before the fork (threadpool), and the next exploration replaces the last
code walk. A learner's plain ``pytest katas/x`` pays the first-schedule cost itself, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sys
import threading
import time

from .api import explore
from .asyncio_loop import explore_async
from .exploration import ProbeFailure

ROUNDS = 3  # specialization needs a function to run a few times


class _Shop:
    """A bit of every primitive: a lock, a condition, a semaphore, an event, a barrier, a
    queue, threads and a sleep."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rlock = threading.RLock()
        self.ready = threading.Condition(self.lock)
        self.slots = threading.Semaphore(1)
        self.done = threading.Event()
        self.gate = threading.Barrier(2)
        self.jobs: queue.Queue[int] = queue.Queue(maxsize=1)
        self.stock = 0
        self.sold: list[int] = []

    def make(self) -> None:
        with self.ready:
            self.stock += 1
            self.ready.notify()
        with self.rlock, self.rlock:
            self.jobs.put(1)
        self.gate.wait()

    def sell(self) -> None:
        with self.ready:
            while self.stock == 0:
                self.ready.wait(1.0)
            self.stock -= 1
        with self.slots:
            self.sold.append(self.jobs.get())
            self.jobs.task_done()
        helper = threading.Thread(target=time.sleep, args=(0.5,))
        helper.start()
        helper.join()
        self.gate.wait()
        self.done.set()

    def count(self) -> None:
        self.stock += 1  # unlocked: a lost update, the warm-up's failing scenario


def _sold_one(shop: _Shop, results: list[object]) -> None:
    assert shop.sold == [1] and shop.done.is_set(), shop.sold


def _counted_twice(shop: _Shop, results: list[object]) -> None:
    assert shop.stock == 2, "a lost update"


class _Tally:
    def __init__(self) -> None:
        self.total = 0


async def _add(tally: _Tally) -> None:
    seen = tally.total
    await asyncio.sleep(0)
    tally.total = seen + 1


def _both_added(tally: _Tally, results: list[object]) -> None:
    assert tally.total == 2, "a lost update"


def warm() -> None:
    """A few explorations of each kind: sampled, proved (tracked), failing, asyncio."""
    here = [sys.modules[__name__]]
    pair = [_Shop.make, _Shop.sell]
    for seed in range(ROUNDS):
        explore(_Shop, pair, _sold_one, modules=here, budget=5, seed=seed)
        explore(_Shop, pair, _sold_one, modules=here, budget=20, seed=seed, exhaustive=4)
        with contextlib.suppress(ProbeFailure):  # the failure path: found, shrunk, reported
            both = [_Shop.count, _Shop.count]
            explore(_Shop, both, _counted_twice, modules=here, budget=20, seed=seed, exhaustive=5)
        with contextlib.suppress(ProbeFailure):
            explore_async(_Tally, [_add, _add], _both_added, modules=here, budget=5, seed=seed)


def touch() -> None:
    """One short exploration of each kind (sampled, tracked, asyncio), in a process forked
    from one that called ``warm()``: the harness's memory pages are shared with that process
    until written, and a run writes to hundreds of them (reference counts), each copied on
    its first write. Done here, before the tests, the copying is not in a test's first
    schedule (queues' first probe test: 0.81 ms with 78 page faults; the same schedule again,
    0.27 ms)."""
    here = [sys.modules[__name__]]
    explore(_Shop, [_Shop.make, _Shop.sell], _sold_one, modules=here, budget=1, exhaustive=1)
    explore_async(_Tally, [_add], None, modules=here, budget=1)
