"""On 3.11, during a run, a plain ``queue.Queue``'s methods and a Condition over the harness's
own lock run with the trace hook off (each of their frames cost a call of the hook). A
PriorityQueue compares the learner's items, and a Condition may wrap a learner's lock-like
object: that code keeps its switch points."""

from __future__ import annotations

import queue

import pytest

from plugins.probe import ProbeFailure, explore
from tests.probe.samples import inside_primitives
from tests.probe.samples.inside_primitives import Board, Gated


def _never_half_done(board: Board, results: list[object]) -> None:
    assert "half" not in board.seen, "a look saw a comparison half done"


def test_a_comparison_inside_priority_queue_put_keeps_its_switch_points() -> None:
    with pytest.raises(ProbeFailure) as caught:
        explore(
            Board,
            [Board.add, Board.look],
            _never_half_done,
            modules=[inside_primitives],
            budget=250,
            seed=0,
        )
    assert "half done" in str(caught.value), str(caught.value)


def test_the_queue_methods_are_put_back_after_the_run() -> None:
    before = {name: vars(queue.Queue)[name] for name in ("put", "get", "task_done", "join")}
    explore(Board, [Board.look], modules=[inside_primitives], budget=3, seed=0)
    after = {name: vars(queue.Queue)[name] for name in before}
    assert after == before, "a run left queue.Queue's methods swapped"


def _gate_never_half_done(gated: Gated, results: list[object]) -> None:
    assert "half" not in gated.seen, "a look saw the gate's acquire half done"


def test_a_condition_over_a_learners_lock_keeps_its_switch_points() -> None:
    with pytest.raises(ProbeFailure) as caught:
        explore(
            Gated,
            [Gated.enter, Gated.look],
            _gate_never_half_done,
            modules=[inside_primitives],
            budget=250,
            seed=0,
        )
    assert "half done" in str(caught.value), str(caught.value)
