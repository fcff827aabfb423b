"""Where a worker is parked (``locations.Loc``), made from its last Loc, is the Loc a walk down
the whole stack makes: the exhaustive search reuses the frames below a call that is still
running (a call made since, a return, a generator resumed from elsewhere all change them).
A run that only counts preemptions (the search for the fewest) works out no Loc at all."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from plugins.probe import api, locations, scheduler
from plugins.probe.exhaustive import Tracker, fewest_preemptions
from plugins.probe.threadpool import POOL
from reference.barriers import barriers
from tests.probe.samples import nested
from tests.probe.samples.nested import Nest
from tests.probe.scenarios import BUGS, CORRECT, Scenario


def _nested(nest: Nest) -> None:
    nest.deep(2)
    shared = nest.each()
    nest.consume(shared)
    nest.sorted_values()
    nest.locked()


def _first(items: Iterator[int]) -> int:
    return next(items)


def _second(items: Iterator[int]) -> int:
    return next(items)


def _resumed_elsewhere(nest: Nest) -> None:
    # The same generator frame, resumed from two different calls of this untraced module
    # with no switch point in between: the frames below it differ from one step to the next.
    shared = nest.each()
    _first(shared)
    _second(shared)
    nest.consume(shared)
    # A generator below another one, both resumed from elsewhere: the walk down from the
    # inner one meets the outer one, whose callers changed.
    nested = nest.outer()
    _first(nested)
    _second(nested)


def _nothing(nest: Nest, results: list[object]) -> None:
    pass


def _party(n: int) -> Callable[[barriers.Simulation], object]:
    return lambda sim: sim.run_party(n, 2)


_NEST = Scenario("nest", Nest, [_nested, _resumed_elsewhere, _nested], _nothing, nested)
_BARRIERS = Scenario(
    "barriers",
    lambda: barriers.Simulation([1, 0, 1, 1, 0, 1], 3),
    [_party(n) for n in range(3)],
    None,
    barriers,
)


def _shape(loc: locations.Loc | None) -> object:
    if loc is None:
        return None
    return (
        loc.kind,
        id(loc.frame),
        loc.offset,
        tuple((id(frame), offset) for frame, offset in loc.callers),
        loc.outermost,
        loc.arrive,
        loc.leave,
        id(loc.acquiring),
        loc.blocks,
        loc.effect,
    )


@pytest.mark.parametrize(
    "scenario",
    [_NEST, _BARRIERS, *BUGS, *CORRECT],
    ids=lambda s: s.name,
)
def test_a_loc_made_from_the_last_one_is_the_one_a_full_walk_makes(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Compared inside the run, reported after it: an assertion raised in a worker's trace hook
    # would only end that run as the code under test's exception.
    compared = [0]
    mismatches: list[str] = []
    reused_plain: list[tuple[frozenset[object], frozenset[object]]] = []

    def checked_op(
        frame: object, offset: int, files: frozenset[str], previous: locations.Loc | None = None
    ) -> locations.Loc:
        fast = locations.op_loc(frame, offset, files, previous)  # type: ignore[arg-type]
        walked = locations.op_loc(frame, offset, files)  # type: ignore[arg-type]
        if _shape(fast) != _shape(walked):
            mismatches.append(f"op at {offset}: {fast} != {walked}")
        reused_plain.append((fast.plain, walked.plain))
        compared[0] += 1
        return fast

    def checked_sync(
        start: object,
        files: frozenset[str],
        number: locations.Number,
        timed: bool = False,
        blocks: bool = False,
        previous: locations.Loc | None = None,
    ) -> locations.Loc | None:
        args = (start, files, number, timed, blocks)
        fast = locations.sync_loc(*args, previous)  # type: ignore[arg-type]
        walked = locations.sync_loc(*args)  # type: ignore[arg-type]
        if _shape(fast) != _shape(walked):
            mismatches.append(f"sync: {fast} != {walked}")
        if fast is not None and walked is not None:
            reused_plain.append((fast.plain, walked.plain))
        compared[0] += 1
        return fast

    monkeypatch.setattr(scheduler, "op_loc", checked_op)
    monkeypatch.setattr(scheduler, "sync_loc", checked_sync)
    execute = api._executor(
        scenario.setup, scenario.workers, scenario.check, [scenario.module], 20_000, 2.0
    )
    with POOL.on_one_core():
        for prefix in ([], [1], [2, 1], [1, 2, 0, 1], [2, 2, 1, 0, 2]):
            execute(Tracker(prefix))
    assert not mismatches, "\n".join(mismatches[:3])
    assert compared[0] > 20, f"only {compared[0]} switch points were compared"
    for fast_plain, walked_plain in reused_plain:
        # Reused, the untraced codes below may include some of an earlier stack: harmless,
        # since a code is untraced or not whatever stack it is in.
        assert fast_plain >= walked_plain
        learner = {
            c for c in fast_plain - walked_plain if c.co_filename == scenario.module.__file__
        }  # type: ignore[attr-defined]
        assert not learner, f"traced codes counted as untraced: {learner}"


def test_a_run_that_only_counts_preemptions_works_out_no_footprints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = {"op_loc": 0, "sync_loc": 0, "footprint": 0}

    def counted(name: str) -> Callable[..., object]:
        real = getattr(scheduler, name)

        def call(*args: object) -> object:
            calls[name] += 1
            return real(*args)

        return call

    for name in calls:
        monkeypatch.setattr(scheduler, name, counted(name))
    execute = api._executor(
        _BARRIERS.setup, _BARRIERS.workers, _BARRIERS.check, [barriers], 20_000, 2.0
    )
    with POOL.on_one_core():
        counting = Tracker([1, 2], footprints=False)
        execute(counting)
        assert calls == {"op_loc": 0, "sync_loc": 0, "footprint": 0}, calls
        tracked = Tracker([1, 2])
        execute(tracked)
    assert calls["op_loc"] > 100 and calls["sync_loc"] > 5 and calls["footprint"] > 100, calls
    # The same schedule either way: the same decisions, options and choices (a run without
    # footprints need not record a point where only the running worker could go on).
    decisions = [
        [(p.options, p.chosen, p.decision) for p in t.points if p.decision is not None]
        for t in (counting, tracked)
    ]
    assert decisions[0] == decisions[1] and len(decisions[0]) > 10
    assert all(p.footprint is None for p in counting.points)


def test_the_search_for_the_fewest_preemptions_asks_for_no_footprints() -> None:
    asked: list[bool] = []

    def run(tracker: Tracker) -> tuple[bool, object]:
        asked.append(tracker.footprints)
        return False, None

    fewest_preemptions(run, 2, max_runs=10, max_seconds=5.0, every_switch_preempts=False)
    assert asked and not any(asked), asked
