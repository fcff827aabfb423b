"""One exploration loop for every mode: seeded schedules, shrinking, and the report.

A mode (threads in ``api.py``, asyncio in ``asyncio_loop.py``) supplies only how to execute one
schedule under a strategy and how its replay call reads; the budget loop, the timing stats,
the k-estimate for PCT, the shrinker and the learner-facing report live here, once.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NoReturn, TypeVar

from . import exhaustive as exhaustive_search
from . import report
from .clock import REAL_PERF_COUNTER
from .exhaustive import Tracker
from .finding import Failure
from .strategies import Anchor, Anchored, Replay, Strategy, make_strategy

W = TypeVar("W")

SHRINK_LIMIT = 300
VERDICT_ONLY_VARIABLE = "KATA_VERDICT_ONLY"  # plugins.settings names it too (no pytest here)
# Re-runs the search for fewer preemptions may spend on one failure: a count, so that the report
# is the same on every machine. It rules out every schedule with up to 2 preemptions of the
# three-preemption pair (207-300 runs), and proves the shipped mutants minimal but two: at 500,
# three semaphores and readers_writers mutants were short (they need 650-850 re-runs in all,
# about 0.4 s more). The seconds are a safety net that a slow scenario still meets: queues'
# pipeline (about 7 ms a run) stops there, unproved, and deadlock's livelock mutant shows 7
# preemptions (the fewest: two per colliding attempt but the last, tests/probe/samples/
# lockstep.py) that no affordable enumeration rules out.
FEWEST_RUNS = 1000
FEWEST_SECONDS = 5.0
# Real seconds the exhaustive search may take before the exploration samples instead: only a
# safety net. Whether a scenario is proved must not depend on the machine's speed (a proof
# skips the sampled schedules, so a slower machine would run other schedules): callers cap
# the search by its number of runs, which this never cuts at those caps.
EXHAUSTIVE_SECONDS = 5.0


@dataclass(frozen=True)
class ExploreStats:
    """What an exploration did; ``first_failure`` is the index of the first failing schedule."""

    schedules: int
    median_ms: float
    total_s: float
    max_steps: int
    seed: int = 0
    strategies: str = "portfolio"
    first_failure: int | None = None
    shrink_runs: int = 0
    # The exhaustive search covered every distinct interleaving (``interleavings`` of them,
    # in ``exhaustive_runs`` runs); otherwise ``schedules`` were sampled after it gave up.
    proved: bool = False
    interleavings: int = 0
    exhaustive_runs: int = 0

    @property
    def verdict(self) -> str:
        """What a pass means, in words: a proof or a sample."""
        if self.proved:
            return f"all {self.interleavings} distinct interleavings checked"
        return f"{self.schedules} sampled schedules passed"


class ProbeFailure(AssertionError):
    """A schedule broke the code under test; the message is the learner-facing report."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        schedule: list[int],
        stats: ExploreStats,
        picture: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.schedule = schedule
        self.stats = stats
        # The same failure as data for a drawing (plugins/html_report.py): headline, workers,
        # steps (report.picture) and a deadlock's wait-for graph.
        self.picture = picture


@dataclass
class Outcome:
    """One executed schedule, in any mode."""

    failure: Failure | None
    choices: list[int]
    events: list[tuple[str, int, Any, str]]
    names: list[str]
    steps: int
    # Decision points, each counted by the switch points it stands for (threads: ``Run.spread``):
    # the span a later schedule's PCT draws its change points over.
    decisions: int
    results: list[object]
    # Preemptions to announce in the report; None counts the "preempted" switches in events
    # (threads). asyncio has no preemption events: every non-zero choice is one.
    switches: int | None = None


# A mode's "run one schedule under this strategy", and its replay call for a schedule.
Execute = Callable[[Strategy], Outcome]
ReplayCall = Callable[[list[int]], str]


@dataclass(frozen=True)
class Mode:
    """How the exhaustive searches may treat a mode's decisions. ``reduce``: its runs report
    what each step touched (threads), so commuting steps are tried in one order only.
    ``every_switch_preempts``: every choice other than 0 is a preemption (asyncio)."""

    reduce: bool
    every_switch_preempts: bool


THREADS = Mode(reduce=True, every_switch_preempts=False)
ASYNCIO = Mode(reduce=False, every_switch_preempts=True)


@dataclass(frozen=True)
class Exhaustive:
    """Try every distinct interleaving first, up to ``max_runs`` runs and ``max_seconds``;
    past either the exploration samples its budget as if this had not run."""

    max_runs: int
    max_seconds: float


def named_workers(workers: Sequence[W] | Mapping[str, W]) -> list[tuple[str, W]]:
    """A mapping keeps its names; a list is named ``worker-1``, ``worker-2``, …"""
    if isinstance(workers, Mapping):
        return [(str(k), v) for k, v in workers.items()]
    return [(f"worker-{i}", fn) for i, fn in enumerate(workers, 1)]


def _strip(choices: list[int]) -> list[int]:
    out = list(choices)
    while out and out[-1] == 0:
        out.pop()
    return out


def _size(choices: list[int]) -> tuple[int, int, int]:
    return (sum(1 for c in choices if c), len(choices), sum(choices))


def _greedy(
    best: list[int],
    best_out: Outcome | None,
    failure: Failure,
    rerun: Callable[[list[int]], Outcome],
    limit: int,
) -> tuple[Outcome | None, list[int], int]:
    """Cut the tail, zero entries, lower values; keep a change only if the run still fails the
    same way with no more preemptions and a smaller schedule."""
    runs = 0

    def key(out: Outcome, choices: list[int]) -> tuple[int, int, int, int]:
        return (preemptions(out), *_size(choices))

    def better(candidate: list[int]) -> bool:
        nonlocal best, best_out, runs
        if runs >= limit:
            return False
        runs += 1
        out = rerun(candidate)
        if not failure.same_as(out.failure):
            return False
        got = _strip(out.choices)
        if best_out is not None and key(out, got) >= key(best_out, best):
            return False
        best, best_out = got, out
        return True

    progress = True
    while progress and runs < limit:
        progress = False
        n = len(best)
        for k in sorted({0, n // 4, n // 2, (3 * n) // 4}):
            if k < n and better(best[:k]):
                progress = True
                break
        if progress:
            continue
        for i in reversed(range(len(best))):
            if best[i] and better([*best[:i], 0, *best[i + 1 :]]):
                progress = True
                break
        if progress:
            continue
        for i in range(len(best)):
            if best[i] > 1 and better([*best[:i], best[i] - 1, *best[i + 1 :]]):
                progress = True
                break
    return best_out, best, runs


# A move: the switches it takes out, and the ones it puts in (an anchor, and which taken-out
# switch's target it keeps).
Move = tuple[set[Anchor], list[tuple[Anchor, Anchor]]]
# How far a kept switch may slide along its worker's steps when a pair is replaced by it.
_SLIDES = (1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, -4)


def _drop_one(order: list[Anchor]) -> Iterator[Move]:
    for anchor in reversed(order):
        yield {anchor}, []


def _drop_pair(order: list[Anchor]) -> Iterator[Move]:
    """Two workers preempting each other in turn: a round of a livelock's dance."""
    for n in reversed(range(len(order) - 1)):
        yield {order[n], order[n + 1]}, []


def _pair_to_one(order: list[Anchor]) -> Iterator[Move]:
    """Two switches in a row become one of them, a few of its worker's steps later or
    earlier: where the first worker is preempted before it takes a lock and the second
    after, one preemption after the first's take does what both did."""
    for n in reversed(range(len(order) - 1)):
        pair = {order[n], order[n + 1]}
        for was in (order[n], order[n + 1]):
            worker, step, _ = was
            for slide in _SLIDES:
                if step + slide > 0:
                    yield pair, [((worker, step + slide, 0), was)]


_MOVES: tuple[Callable[[list[Anchor]], Iterator[Move]], ...] = (_drop_one, _drop_pair, _pair_to_one)


def _drop_switches(
    best: list[int],
    best_out: Outcome,
    failure: Failure,
    execute: Execute,
    limit: int,
) -> tuple[Outcome, list[int], int]:
    """Take the schedule's switches out, each tied to its worker's own progress
    (``Anchored``), by the ``_MOVES`` in turn: the others stay where they were in each
    worker's code, where zeroing one choice index shifts every later one (``_greedy`` then
    sticks at a local minimum: a livelock of four colliding retries stayed at 25 preemptions,
    where 7 do). Keeps a move only if the run still fails the same way with fewer
    preemptions, or as many and fewer switches; after any gain, single drops again."""
    recorder = Anchored({}, replay=best)
    out = execute(recorder)
    runs = 1
    if not failure.same_as(out.failure):
        return best_out, best, runs
    switches, resumes = recorder.recorded, frozenset(recorder.resumed)
    best_out, best = out, _strip(out.choices)

    def key(o: Outcome, n: int) -> tuple[int, int, int]:
        return (preemptions(o), n, len(_strip(o.choices)))

    phase = 0
    while runs < limit and phase < len(_MOVES):
        progress = False
        for gone, added in _MOVES[phase](list(switches)):
            if runs >= limit:
                break
            if not gone <= switches.keys():
                continue  # an earlier move of this pass took one of them already
            kept = {a: t for a, t in switches.items() if a not in gone}
            trial = Anchored({**kept, **{a: switches[was] for a, was in added}}, resumes)
            out = execute(trial)
            runs += 1
            if failure.same_as(out.failure) and key(out, len(trial.recorded)) < key(
                best_out, len(switches)
            ):
                switches, best_out, best = trial.recorded, out, _strip(out.choices)
                resumes = frozenset(trial.resumed)
                progress = True
        phase = 0 if progress else phase + 1
    return best_out, best, runs


@dataclass
class Shrunk:
    outcome: Outcome | None
    schedule: list[int]
    runs: int
    fewest: bool  # no schedule with fewer preemptions fails (every one was run)


def shrink(
    first: Outcome,
    failure: Failure,
    execute: Execute,
    mode: Mode,
    limit: int = SHRINK_LIMIT,
) -> Shrunk:
    """The fewest preemptions first (every schedule with fewer is run, by bound 0, 1, …),
    then the fewest choices (greedy)."""
    rerun: Callable[[list[int]], Outcome] = lambda c: execute(Replay(c))  # noqa: E731
    best, runs = _strip(first.choices), 0
    best_out: Outcome | None = first
    if not mode.every_switch_preempts:  # threads: anchors are the workers' own steps
        best_out, best, runs = _drop_switches(best, first, failure, execute, limit)
    best_out, best, trimmed = _greedy(best, best_out, failure, rerun, limit)
    runs += trimmed
    fewest = False
    if best_out is not None:
        target = preemptions(best_out)

        def run(tracker: Tracker) -> tuple[bool, object]:
            out = execute(tracker)
            return failure.same_as(out.failure) and preemptions(out) < target, out

        found, tries, checked = exhaustive_search.fewest_preemptions(
            run,
            target,
            max_runs=FEWEST_RUNS,
            max_seconds=FEWEST_SECONDS,
            every_switch_preempts=mode.every_switch_preempts,
        )
        runs += tries
        if isinstance(found, Outcome):
            fewer = preemptions(found)
            fewest = fewer == 0 or checked == fewer - 1
            more_out, more, extra = _greedy(_strip(found.choices), found, failure, rerun, limit)
            runs += extra
            best_out, best = more_out or found, more
        else:
            fewest = target == 0 or checked == target - 1
    return Shrunk(best_out, best, runs, fewest)


def preemptions(outcome: Outcome) -> int:
    """How many times the report will say a running worker was preempted."""
    if outcome.switches is not None:
        return outcome.switches
    return sum(1 for e in outcome.events if e[0] == "x" and e[3] == "preempted")


def raise_report(
    outcome: Outcome,
    failure: Failure,
    schedule: list[int],
    replay: str,
    origin: str,
    stats: ExploreStats,
) -> NoReturn:
    """Raise the learner-facing report of a failing run, chained to the worker's own exception
    (so "not implemented yet" and similar causes stay visible to pytest plugins)."""
    message = report.render(
        failure.headline,
        failure.details,
        outcome.events,
        outcome.names,
        schedule,
        replay,
        origin,
        switches=outcome.switches,
    )
    drawing = {
        "headline": report.clean(failure.headline),
        "kind": failure.kind,
        "workers": list(outcome.names),
        "preemptions": preemptions(outcome),
        "steps": report.picture(outcome.events, outcome.names),
        "graph": [list(edge) for edge in failure.graph],
    }
    raise ProbeFailure(
        message, kind=failure.kind, schedule=schedule, stats=stats, picture=drawing
    ) from failure.error


def _why_not_shrink() -> str:
    """Why this failure's schedule is reported as found ("" when it is shrunk): the self-check's
    runs need only the verdict, and Hypothesis tries many scenarios before it replays the
    smallest failing one (its final run, whose report the learner reads): shrinking each of
    those schedules made one drawn-scenario test take 10 s instead of 0.3 s."""
    if os.environ.get(VERDICT_ONLY_VARIABLE, "") == "1":
        return f"{VERDICT_ONLY_VARIABLE}=1"
    try:
        from hypothesis.control import current_build_context, currently_in_test_context
    except ImportError:  # the probe works without Hypothesis
        return ""
    if currently_in_test_context() and not current_build_context().is_final:
        return "a scenario Hypothesis tries before its final, smallest one"
    return ""


def _recorded(out: Outcome, schedule: list[int], record: Execute | None) -> Outcome:
    """The reported run with its line-by-line events: ``record`` runs ``schedule`` again
    with them, where the search ran without (asyncio: a trace hook on every call it makes
    was two thirds of each schedule). Kept as it is if the run did not fail the same way."""
    if record is None or out.failure is None:
        return out
    again = record(Replay(schedule))
    return again if out.failure.same_as(again.failure) else out


def _fail(
    out: Outcome,
    execute: Execute,
    mode: Mode,
    replay_call: ReplayCall,
    found_by: str,
    stats: ExploreStats,
    record: Execute | None = None,
) -> NoReturn:
    """Shrink a failing run and raise its report."""
    failure = out.failure
    assert failure is not None
    why_not = _why_not_shrink()
    if why_not:
        # Only the verdict is needed here, and shrinking never changes it.
        executed = _strip(out.choices)
        origin = f"found by: {found_by}; not shrunk ({why_not})"
        out = _recorded(out, executed, record)
        raise_report(out, out.failure or failure, executed, replay_call(executed), origin, stats)
    shrunk = shrink(out, failure, execute, mode)
    final = shrunk.outcome or out
    fewest = (
        "; no schedule with fewer preemptions fails"
        if shrunk.fewest
        else "; fewer preemptions not ruled out within the re-run limit"
    )
    origin = (
        f"found by: {found_by}; shrunk from {len(_strip(out.choices))} to "
        f"{len(shrunk.schedule)} choices in {shrunk.runs} re-runs{fewest}"
    )
    stats = replace(stats, shrink_runs=shrunk.runs)
    final = _recorded(final, shrunk.schedule, record)
    raise_report(
        final,
        final.failure or failure,
        shrunk.schedule,
        replay_call(shrunk.schedule),
        origin,
        stats,
    )


def explore_schedules(
    execute: Execute,
    replay_call: ReplayCall,
    *,
    budget: int,
    seed: int,
    strategies: str,
    mode: Mode = THREADS,
    exhaustive: Exhaustive | None = None,
    record: Execute | None = None,
) -> ExploreStats:
    """With ``exhaustive``, first try to check every distinct interleaving; if that is too
    big, or without it, run ``budget`` seeded schedules. Raise ProbeFailure (shrunk) on the
    first failing run; ``record``, if given, runs the reported schedule once more for the
    report's events."""
    started = REAL_PERF_COUNTER()
    times: list[float] = []
    max_seen = 0
    tried = 0
    if exhaustive is not None and budget > 0:

        def run(tracker: Tracker) -> tuple[bool, object]:
            nonlocal max_seen
            t0 = REAL_PERF_COUNTER()
            out = execute(tracker)
            times.append(REAL_PERF_COUNTER() - t0)
            max_seen = max(max_seen, out.steps)
            return out.failure is not None, out

        search = exhaustive_search.prove(
            run,
            max_runs=exhaustive.max_runs,
            max_seconds=exhaustive.max_seconds,
            reduce=mode.reduce,
            every_switch_preempts=mode.every_switch_preempts,
        )
        tried = search.runs
        stats = ExploreStats(
            schedules=search.runs,
            median_ms=statistics.median(times) * 1000 if times else 0.0,
            total_s=REAL_PERF_COUNTER() - started,
            max_steps=max_seen,
            seed=seed,
            strategies="exhaustive",
            proved=search.complete,
            interleavings=search.distinct if search.complete else 0,
            exhaustive_runs=search.runs,
        )
        if isinstance(search.failing, Outcome):
            found_by = f"exhaustive search, interleaving #{search.runs}"
            _fail(
                search.failing,
                execute,
                mode,
                replay_call,
                found_by,
                replace(stats, first_failure=search.runs - 1),
                record,
            )
        if search.complete:
            return stats
        times.clear()
    k_estimate = 0
    for index in range(budget):
        strategy = make_strategy(strategies, seed, index, k_estimate)
        t0 = REAL_PERF_COUNTER()
        out = execute(strategy)
        times.append(REAL_PERF_COUNTER() - t0)
        k_estimate = max(k_estimate, out.decisions)
        max_seen = max(max_seen, out.steps)
        if out.failure is None:
            continue
        stats = ExploreStats(
            schedules=index + 1,
            median_ms=statistics.median(times) * 1000,
            total_s=REAL_PERF_COUNTER() - started,
            max_steps=max_seen,
            seed=seed,
            strategies=strategies,
            first_failure=index,
            exhaustive_runs=tried,
        )
        found_by = f"seed={seed}, strategy={strategy.name}, schedule #{index} of {budget}"
        _fail(out, execute, mode, replay_call, found_by, stats, record)
    return ExploreStats(
        schedules=budget,
        median_ms=statistics.median(times) * 1000 if times else 0.0,
        total_s=REAL_PERF_COUNTER() - started,
        max_steps=max_seen,
        seed=seed,
        strategies=strategies,
        exhaustive_runs=tried,
    )


def replay_schedule(
    execute: Execute,
    replay_call: ReplayCall,
    schedule: Sequence[int],
    *,
    seed: int = 0,
    strategies: str = "portfolio",
) -> tuple[Outcome, ExploreStats]:
    """Replay one schedule exactly, unshrunk; raise ProbeFailure if it fails."""
    started = REAL_PERF_COUNTER()
    out = execute(Replay(list(schedule)))
    elapsed = REAL_PERF_COUNTER() - started
    stats = ExploreStats(1, elapsed * 1000, elapsed, out.steps, seed=seed, strategies=strategies)
    if out.failure is None:
        return out, stats
    executed = _strip(out.choices)
    failed = replace(stats, first_failure=0)
    raise_report(out, out.failure, executed, replay_call(executed), "", failed)
