"""Cost per schedule (printed; run with -s to see it) and the tracer's opcode coverage."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import pytest

from plugins.probe import explore, tracing
from plugins.probe.tracing import described, line_of, sites_of, switch_points
from tests.probe.samples import counter_unlocked
from tests.probe.scenarios import CORRECT, Scenario

# The bar is 1 ms per schedule (`python -m plugins.probe_bench`); these scenarios take 0.1-0.8 ms
# on an idle 2-core machine and up to three times that while other jobs share it. 5 ms catches a
# hot path gone wrong (a frame walk or a label per step, the harness traced again) without
# failing on a busy machine: it is a median over 200 schedules, so a stall or two cannot move it.
MEDIAN_BOUND_MS = 5.0
TIMED = [s for s in CORRECT if s.name != "latch"]  # locks, Condition, Barrier, Queue, sleep


@pytest.mark.parametrize("scenario", TIMED, ids=lambda s: s.name)
def test_median_cost_per_schedule_stays_in_the_low_milliseconds(scenario: Scenario) -> None:
    stats = explore(
        scenario.setup, scenario.workers, scenario.check, modules=[scenario.module], budget=200
    )
    print(
        f"\n{sys.version_info[0]}.{sys.version_info[1]} {scenario.name}: "
        f"{stats.median_ms:.3f} ms/schedule, max {stats.max_steps} steps"
    )
    assert stats.median_ms < MEDIAN_BOUND_MS, (
        f"{scenario.name}: {stats.median_ms:.2f} ms per schedule, past {MEDIAN_BOUND_MS} ms "
        "(the bar is 1 ms): profile it with one seed"
    )


HARNESS = str(Path(__file__).resolve().parents[2] / "plugins" / "probe")


@pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="3.12+ uses sys.monitoring, which never sees the harness"
)
@pytest.mark.parametrize("name", ["counter_locked", "bounded_buffer_while"])
def test_the_trace_hook_skips_the_harness_inside_a_primitive(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On 3.11 each frame a worker enters calls the trace hook; a Lock or Condition call ran
    five to seven harness frames through it per switch point (the scheduler's own, the walk to
    the learner's line), most of a switch point's cost. Primitives now run with the hook off.
    Counted, not timed: the same seed runs the same schedules, so this never flakes. (A
    sampled run uses no trace hook at all now, unless asked to: plugins/probe/instrument.)"""
    monkeypatch.setenv("PROBE_TRACER", "settrace")
    real_settrace = sys.settrace
    frames = harness_frames = 0

    def counting_settrace(hook: Callable[[FrameType, str, Any], Any] | None) -> None:
        if hook is None:
            real_settrace(None)
            return
        inner = hook

        def counted(frame: FrameType, event: str, arg: Any) -> Any:
            nonlocal frames, harness_frames
            frames += 1
            if frame.f_code.co_filename.startswith(HARNESS):
                harness_frames += 1
            return inner(frame, event, arg)

        real_settrace(counted)

    monkeypatch.setattr(sys, "settrace", counting_settrace)
    scenario = next(s for s in CORRECT if s.name == name)
    budget = 50
    stats = explore(
        scenario.setup, scenario.workers, scenario.check, modules=[scenario.module], budget=budget
    )
    per_schedule = harness_frames / budget
    assert frames > 0, "the workers' trace hook never ran: this test no longer measures anything"
    assert per_schedule < stats.max_steps, (
        f"{per_schedule:.0f} harness frames went through the trace hook per schedule, for at "
        f"most {stats.max_steps} switch points: a primitive runs with the hook on again"
    )


def _functions(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _functions(const)


def test_switch_points_read_from_the_bytecode_are_the_ones_dis_describes() -> None:
    """The fast reading of the bytecode must find the same switch points, in the same words, as
    ``dis`` (a wrong word misleads a report; a missed point loses interleavings)."""
    root = Path(__file__).resolve().parents[2]
    sources = [
        *sorted((root / "reference").rglob("*.py")),
        *sorted((root / "tests" / "probe" / "samples").glob("*.py")),
        Path(threading.__file__),
        Path(queue.__file__),
    ]
    checked = 0
    for source in sources:
        module = compile(source.read_text(encoding="utf-8"), str(source), "exec")
        for code in _functions(module):
            assert switch_points(code) == described(code), f"{source}: {code.co_name}"
            lines = {
                offset: (code.co_filename, line_of(code, offset)) for offset in described(code)
            }
            assert sites_of(code) == lines, f"{source}: {code.co_name}: a switch point's line"
            checked += 1
    assert checked > 500  # the references alone hold more functions than that


def test_the_one_line_increment_has_a_switch_point_between_its_read_and_its_write() -> None:
    points = switch_points(counter_unlocked.Counter.increment.__code__)
    words = list(points.values())
    assert "reads .v" in words
    assert "writes .v" in words
    assert words.index("reads .v") < words.index("writes .v")


def test_the_monitored_code_objects_are_found_again_when_a_module_rebinds_a_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each schedule asks for the learner's code objects (3.12+ monitors each one): the last
    answer is reused while the module holds the same functions and classes, never after."""
    first = tracing.learner_codes_again([counter_unlocked])
    assert tracing.learner_codes_again([counter_unlocked]) is first, "the walk was not reused"
    source = "class Counter:\n    def increment(self):\n        self.v = self.v + 2\n"
    namespace: dict[str, Any] = {"__name__": counter_unlocked.__name__}
    exec(compile(source, counter_unlocked.__file__, "exec"), namespace)
    monkeypatch.setattr(counter_unlocked, "Counter", namespace["Counter"])
    again = tracing.learner_codes_again([counter_unlocked])
    rebound = namespace["Counter"].increment.__code__
    assert rebound in again, "a class rebound after the last walk kept the old class's code"


@pytest.mark.parametrize("kind", ["random", "pct-d3"])
def test_the_written_out_strategies_choose_what_their_choose_method_would(kind: str) -> None:
    import random

    from plugins.probe import api, strategies
    from reference.barriers import barriers

    def make(seed: int, asked: bool) -> strategies.Strategy:
        rng = random.Random(seed)
        if kind == "random":
            walk = AskedWalk if asked else strategies.RandomWalk
            return walk(rng)
        return (AskedPCT if asked else strategies.PCT)(rng, 3, 40)

    class AskedWalk(strategies.RandomWalk):
        """The same walk, asked through choose() like any other strategy."""

    class AskedPCT(strategies.PCT):
        """The same PCT, asked through choose()."""

    def party(n: int) -> Callable[[barriers.Simulation], object]:
        return lambda sim: sim.run_party(n, 2)

    execute = api._executor(
        lambda: barriers.Simulation([1, 0, 1, 1], 3),
        [party(n) for n in range(3)],
        None,
        [barriers],
        20_000,
        2.0,
    )
    for seed in range(5):
        fast = execute(make(seed, asked=False))
        asked = execute(make(seed, asked=True))
        assert fast.choices == asked.choices and len(fast.choices) > 20, (
            f"seed {seed}: the scheduler's own {kind} chose differently from the strategy's choose"
        )


def test_pct_chooses_the_same_through_either_method_when_every_rank_was_lowered() -> None:
    # Depth 5 over 8 decisions: most ranks are dropped below all, often every option's.
    import random
    from dataclasses import dataclass

    from plugins.probe import strategies

    @dataclass
    class Worker:
        index: int

    workers = [Worker(n) for n in range(4)]
    for seed in range(200):
        by_key = strategies.PCT(random.Random(seed), 5, 8)
        by_index = strategies.PCT(random.Random(seed), 5, 8)
        draw = random.Random(-seed)
        for step in range(30):
            running = draw.randrange(4)
            others = [n for n in range(4) if n != running and draw.random() < 0.6]
            keys = [running, *others]
            assert by_key.choose(running, keys, step) == by_index.choose_indexed(
                running, [workers[n] for n in keys], step
            ), f"seed {seed}, decision {step}: choose_indexed picked another worker"
