"""The workers of a run are greenlets on one OS thread; each is still told it is a thread of
its own: its own ``threading.get_ident()`` and its own ``threading.local`` attributes."""

from __future__ import annotations

import random
import threading
from typing import Any

from plugins.probe import api, explore, strategies
from tests.probe.samples import identity


def _record(tag: str) -> Any:
    return lambda seen: seen.record(tag)


def test_each_worker_has_its_own_ident_and_current_thread_agrees() -> None:
    def check(seen: identity.Seen, results: list[object]) -> None:
        (a, a_thread), (b, b_thread) = seen.idents["a"], seen.idents["b"]
        assert a != b, "two workers were told the same threading.get_ident()"
        assert (a, b) == (a_thread, b_thread), (
            f"threading.get_ident() {a}, {b} differs from current_thread().ident "
            f"{a_thread}, {b_thread}"
        )
        assert threading.get_ident() not in (a, b), "a worker was told the test thread's ident"

    stats = explore(
        identity.Seen, [_record("a"), _record("b")], check, modules=[identity], budget=20
    )
    assert stats.schedules == 20


def test_a_local_made_in_the_setup_keeps_each_workers_attributes_apart() -> None:
    def check(seen: identity.Seen, results: list[object]) -> None:
        assert not seen.leaks, f"threading.local was shared between workers: {seen.leaks}"

    explore(
        identity.Seen,
        [_record("a"), _record("b"), _record("c")],
        check,
        modules=[identity],
        budget=60,
        strategies="random",
    )


def test_a_worker_switched_to_from_inside_a_primitive_keeps_every_switch_point() -> None:
    """Thread.start and join run with the 3.11 trace hook off and may switch to another
    worker there: the worker switched to, parked at a switch point, must get its own hook
    back, or it runs the rest of its code with no switch point at all."""
    execute = api._executor(
        identity.Tally,
        [lambda t: t.add(12), lambda t: t.start_and_join(4)],
        None,
        [identity],
        20_000,
        2.0,
    )

    def adder_points(outcome: Any) -> int:
        return sum(1 for kind, who, *_ in outcome.events if kind == "s" and who == 0)

    alone = adder_points(execute(strategies.Replay([])))
    for seed in range(30):
        points = adder_points(execute(strategies.RandomWalk(random.Random(seed))))
        assert points == alone, (
            f"seed {seed}: the adder stopped at {points} switch points instead of its {alone}: "
            "it ran untraced after a switch made inside a primitive"
        )


def test_each_worker_starts_in_a_fresh_context_as_a_new_thread_does() -> None:
    def check(seen: identity.Seen, results: list[object]) -> None:
        assert seen.inherited is None, (
            f"a worker started with a context variable set to {seen.inherited!r}: it ran in "
            "a context a worker of an earlier schedule had used"
        )

    explore(identity.Seen, [_record("a")], check, modules=[identity], budget=5)
