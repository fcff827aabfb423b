"""Code of the learner's that a primitive runs keeps its switch points. On 3.11, during a run,
``Barrier.wait``, a plain ``queue.Queue``'s methods and a Condition over the harness's own lock
run with the trace hook off (each of their frames cost a call of the hook): a barrier's action
runs with it back on; a PriorityQueue compares the learner's items, and a Condition may wrap a
learner's lock-like object, so those stay traced. Each sample makes two stores a look can come
between, in code run from inside the primitive: found only if that code has switch points."""

from __future__ import annotations

import queue
import sys
from collections.abc import Callable
from types import FrameType
from typing import Protocol

import pytest

from plugins.probe import ProbeFailure, explore, instrument, tracing
from plugins.probe.locks import Lock
from plugins.probe.signals import Barrier
from tests.probe.samples import counter_locked, inside_primitives
from tests.probe.samples.inside_primitives import Board, Gated, Rounds


class _Looked(Protocol):
    seen: list[str]  # what each look saw


def _never_half_done(state: _Looked, results: list[object]) -> None:
    assert "half" not in state.seen, "a look saw the learner's code inside a primitive half done"


def _half_done_is_found(setup: Callable[[], _Looked], workers: list[Callable[..., None]]) -> None:
    with pytest.raises(ProbeFailure) as caught:
        explore(
            setup,
            workers,
            _never_half_done,
            modules=[inside_primitives],
            budget=250,
            seed=0,
        )
    assert "half done" in str(caught.value), str(caught.value)


def test_a_comparison_inside_priority_queue_put_keeps_its_switch_points() -> None:
    _half_done_is_found(Board, [Board.add, Board.look])


def test_a_condition_over_a_learners_lock_keeps_its_switch_points() -> None:
    _half_done_is_found(Gated, [Gated.enter, Gated.look])


def test_a_barriers_action_keeps_its_switch_points() -> None:
    _half_done_is_found(Rounds, [Rounds.arrive, Rounds.arrive, Rounds.look])


def test_the_queue_methods_are_put_back_after_the_run() -> None:
    before = {name: vars(queue.Queue)[name] for name in ("put", "get", "task_done", "join")}
    explore(Board, [Board.look], modules=[inside_primitives], budget=3, seed=0)
    after = {name: vars(queue.Queue)[name] for name in before}
    assert after == before, "a run left queue.Queue's methods swapped"


def test_a_barrier_made_outside_a_run_calls_its_action_under_the_callers_trace_hook() -> None:
    # Outside a run the barrier wraps a real one, and the caller's hook (a debugger's, a
    # coverage tool's) must still see the action: only a run's workers drop the hook.
    calls: list[str] = []

    def action() -> None:
        calls.append("action")

    def hook(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code is action.__code__:
            calls.append("seen by the hook")

    barrier = Barrier(1, action=action)
    outer = sys.gettrace()  # a coverage tool's, under one: given back afterwards
    sys.settrace(hook)
    try:
        barrier.wait()
    finally:
        sys.settrace(outer)
    assert calls == ["seen by the hook", "action"], f"the caller's trace hook saw {calls}"


@pytest.mark.skipif(not instrument.AVAILABLE, reason="3.11 only: 3.12+ makes no wrapper")
def test_only_a_run_with_a_trace_hook_calls_the_wrappers_that_turn_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A sampled run on rewritten code sets no hook: its primitives' methods are the ones the
    # wrappers call (the wrappers only found no hook to turn off). A settrace run sets one.
    seen: list[bool] = []

    def look_then_increment(counter: counter_locked.Counter) -> None:
        seen.append(Lock.acquire.__code__ is tracing.wrapper_code())
        counter.increment()

    def explored() -> list[bool]:
        seen.clear()
        workers = [look_then_increment, look_then_increment]
        explore(counter_locked.Counter, workers, modules=[counter_locked], budget=3)
        return sorted(set(seen))

    # Whatever this process was started with (`PROBE_TRACER=settrace pytest tests/probe`
    # makes every run hooked): the first look is at the default, rewritten runs.
    monkeypatch.delenv("PROBE_TRACER", raising=False)
    assert explored() == [False], "a run with no trace hook went through the wrappers"
    monkeypatch.setenv("PROBE_TRACER", "settrace")
    assert explored() == [True], "a run with settrace's hook ran without the wrappers"
    monkeypatch.delenv("PROBE_TRACER")
    assert explored() == [False], "the wrappers stayed on after the settrace run"
