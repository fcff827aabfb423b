"""Shared probe scenarios over the sample modules (buggy and correct), used by the tests."""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.probe.samples import (
    backoff,
    bounded_buffer,
    cache,
    counter_locked,
    counter_unlocked,
    phases,
    pipeline,
    pool,
    pulse,
    threads,
    transfer,
)


@dataclass
class Scenario:
    name: str
    setup: Callable[[], Any]
    workers: list[Callable[[Any], object]]
    check: Callable[[Any, list[object]], None] | None
    module: types.ModuleType
    expect: str = ""  # expected failure kind for bugs
    extra: dict[str, Any] = field(default_factory=dict)


def _inc_twice(c: Any) -> None:
    c.increment()
    c.increment()


def _counter_check(c: Any, results: list[object]) -> None:
    assert c.v == 4, f"lost update: counter is {c.v} after 4 increments"


def _cache_check(c: Any, results: list[object]) -> None:
    assert c.computations == 1, f"value computed {c.computations} times for one key"


def _accounts() -> tuple[transfer.Account, transfer.Account]:
    return transfer.Account(1, 100), transfer.Account(2, 100)


def _money(s: Any, results: list[object]) -> None:
    assert s[0].balance + s[1].balance == 200, "money was created or destroyed"


def _consume(b: Any) -> object:
    return b.get()


def _produce_two(b: Any) -> None:
    b.put(1)
    b.put(2)


def _buffer_check(b: Any, results: list[object]) -> None:
    assert sorted(r for r in results if r is not None) == [1, 2], f"got {results}"


def _pool_check(p: Any, results: list[object]) -> None:
    assert p.peak <= 2, f"{p.peak} users at once in a pool of 2"


def _pipeline_check(p: Any, results: list[object]) -> None:
    assert p.seen == [0, 1, 2, 3], f"consumer saw {p.seen}"


def _backoff_check(r: Any, results: list[object]) -> None:
    assert r.log == ["holder", "user"] or r.log == ["user", "holder"], r.log


def _tally_check(t: Any, results: list[object]) -> None:
    assert t.total == 2, f"two threads added, total is {t.total}"


BUGS = [
    Scenario(
        "counter",
        counter_unlocked.Counter,
        [_inc_twice, _inc_twice],
        _counter_check,
        counter_unlocked,
        "invariant",
    ),
    Scenario(
        "check_then_act",
        cache.RacyCache,
        [lambda c: c.get("k")] * 3,
        _cache_check,
        cache,
        "invariant",
    ),
    Scenario(
        "transfer",
        _accounts,
        [lambda s: transfer.transfer(s[0], s[1], 10), lambda s: transfer.transfer(s[1], s[0], 5)],
        _money,
        transfer,
        # At seed 0 the first schedule takes both locks in one worker, then both in the other
        # order in the other: the lock-order check flags the cycle before any run deadlocks.
        "lock-order",
    ),
    Scenario(
        "bounded_buffer_if",
        lambda: bounded_buffer.BufferIf(1),
        [_produce_two, _consume, _consume],
        _buffer_check,
        bounded_buffer,
        "exception",
    ),
    Scenario(
        "missed_wakeup",
        pulse.Pulse,
        [lambda p: p.wait(), lambda p: p.fire()],
        None,
        pulse,
        "deadlock",
    ),
    Scenario(
        "double_release",
        lambda: pool.Pool(2),
        [lambda p: p.use()] * 3,
        _pool_check,
        pool,
        "misuse",
    ),
    Scenario(
        "barrier_parties",
        lambda: phases.Phases(3),
        [lambda p: p.step("a"), lambda p: p.step("b")],
        None,
        phases,
        "deadlock",
    ),
    Scenario(
        "thread_subclass",
        threads.Tally,
        [threads.run_two],
        _tally_check,
        threads,
        "invariant",
    ),
]

CORRECT = [
    Scenario(
        "counter_locked",
        counter_locked.Counter,
        [_inc_twice, _inc_twice],
        _counter_check,
        counter_locked,
    ),
    Scenario("safe_cache", cache.SafeCache, [lambda c: c.get("k")] * 3, _cache_check, cache),
    Scenario(
        "transfer_ordered",
        _accounts,
        [
            lambda s: transfer.transfer_ordered(s[0], s[1], 10),
            lambda s: transfer.transfer_ordered(s[1], s[0], 5),
        ],
        _money,
        transfer,
    ),
    Scenario(
        "bounded_buffer_while",
        lambda: bounded_buffer.BufferWhile(1),
        [_produce_two, _consume, _consume],
        _buffer_check,
        bounded_buffer,
    ),
    Scenario("latch", pulse.Latch, [lambda p: p.wait(), lambda p: p.fire()], None, pulse),
    Scenario(
        "barrier_right_parties",
        lambda: phases.Phases(2),
        [lambda p: p.step("a"), lambda p: p.step("b")],
        None,
        phases,
    ),
    Scenario(
        "queue_pipeline",
        pipeline.Pipeline,
        [lambda p: p.produce(4), lambda p: p.consume()],
        _pipeline_check,
        pipeline,
    ),
    Scenario(
        "backoff",
        backoff.Resource,
        [lambda r: r.hold(5.0), lambda r: r.use_with_backoff()],
        _backoff_check,
        backoff,
    ),
]


_SHOWN = re.compile(r"interleaving that fails \((\d+) preemptions?;")


def preemptions_shown(report: str) -> int | None:
    """The preemptions a probe report's interleaving shows, or None for a text with none."""
    found = _SHOWN.search(report)
    return None if found is None else int(found.group(1))
