"""Code of the learner's that a primitive runs keeps its switch points. On 3.11, during a run,
``Barrier.wait``, a plain ``queue.Queue``'s methods and a Condition over the harness's own lock
run with the trace hook off (each of their frames cost a call of the hook): a barrier's action
runs with it back on; a PriorityQueue compares the learner's items, and a Condition may wrap a
learner's lock-like object, so those stay traced. Each sample makes two stores a look can come
between, in code run from inside the primitive: found only if that code has switch points."""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Protocol

import pytest

from plugins.probe import ProbeFailure, explore
from tests.probe.samples import inside_primitives
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
