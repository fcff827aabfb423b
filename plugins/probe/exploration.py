"""One exploration loop for every mode: seeded schedules, shrinking, and the report.

A mode (threads in ``api.py``, asyncio in ``asyncio_loop.py``) supplies only how to execute one
schedule under a strategy and how its replay call reads; the budget loop, the timing stats,
the k-estimate for PCT, the shrinker and the learner-facing report live here, once.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NoReturn, TypeVar

from . import report
from .clock import REAL_PERF_COUNTER
from .finding import Failure
from .strategies import Replay, Strategy, make_strategy

W = TypeVar("W")

SHRINK_LIMIT = 300


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
    decisions: int
    results: list[object]
    # Preemptions to announce in the report; None counts the "preempted" switches in events
    # (threads). asyncio has no preemption events: every non-zero choice is one.
    switches: int | None = None


# A mode's "run one schedule under this strategy", and its replay call for a schedule.
Execute = Callable[[Strategy], Outcome]
ReplayCall = Callable[[list[int]], str]


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


def shrink(
    choices: list[int],
    failure: Failure,
    rerun: Callable[[list[int]], Outcome],
    limit: int = SHRINK_LIMIT,
) -> tuple[Outcome | None, list[int], int]:
    """Greedy: cut the tail, zero entries, lower values; keep only same-kind failures."""
    best = _strip(choices)
    best_out: Outcome | None = None
    runs = 0

    def better(candidate: list[int]) -> bool:
        nonlocal best, best_out, runs
        if runs >= limit:
            return False
        runs += 1
        out = rerun(candidate)
        if not failure.same_as(out.failure):
            return False
        got = _strip(out.choices)
        if _size(got) >= _size(best) and best_out is not None:
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
    if best_out is not None and runs < limit:
        fewer, tries = fewest_preemptions(best, best_out, failure, rerun, limit - runs)
        runs += tries
        if fewer is not None:
            best_out, best = fewer, _strip(fewer.choices)
    return best_out, best, runs


def preemptions(outcome: Outcome) -> int:
    """How many times the report will say a running worker was preempted."""
    if outcome.switches is not None:
        return outcome.switches
    return sum(1 for e in outcome.events if e[0] == "x" and e[3] == "preempted")


def fewest_preemptions(
    choices: list[int],
    outcome: Outcome,
    failure: Failure,
    rerun: Callable[[list[int]], Outcome],
    limit: int,
) -> tuple[Outcome | None, int]:
    """Greedy cuts keep a schedule's shape, so a failure that needs one preemption could be
    shown with three. Try every schedule with fewer switches than it, fewest first: one switch
    at each decision, then two, ... (the k-th other worker for each), and keep the first that
    fails the same way. Within ``limit`` re-runs the result has the fewest switches of any
    failing schedule of this length; past it, the fewest found."""
    target = preemptions(outcome)
    span = min(len(outcome.choices), 60)
    values = range(1, max(choices, default=1) + 1)
    runs = 0
    for count in range(0, target):
        for positions in itertools.combinations(range(span), count):
            for picks in itertools.product(values, repeat=count):
                if runs >= limit:
                    return None, runs
                candidate = [0] * span
                for position, pick in zip(positions, picks, strict=True):
                    candidate[position] = pick
                runs += 1
                out = rerun(_strip(candidate))
                if failure.same_as(out.failure) and preemptions(out) < target:
                    return out, runs
    return None, runs


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


def explore_schedules(
    execute: Execute, replay_call: ReplayCall, *, budget: int, seed: int, strategies: str
) -> ExploreStats:
    """Run ``budget`` seeded schedules; raise ProbeFailure (shrunk) on the first failing one."""
    started = REAL_PERF_COUNTER()
    times: list[float] = []
    k_estimate = 0
    max_seen = 0
    for index in range(budget):
        strategy = make_strategy(strategies, seed, index, k_estimate)
        t0 = REAL_PERF_COUNTER()
        out = execute(strategy)
        times.append(REAL_PERF_COUNTER() - t0)
        k_estimate = max(k_estimate, out.decisions)
        max_seen = max(max_seen, out.steps)
        if out.failure is None:
            continue
        failure = out.failure
        shrunk, schedule, runs = shrink(
            out.choices, failure, lambda choices: execute(Replay(choices))
        )
        final = shrunk or out
        stats = ExploreStats(
            schedules=index + 1,
            median_ms=statistics.median(times) * 1000,
            total_s=REAL_PERF_COUNTER() - started,
            max_steps=max_seen,
            seed=seed,
            strategies=strategies,
            first_failure=index,
            shrink_runs=runs,
        )
        origin = (
            f"found by: seed={seed}, strategy={strategy.name}, schedule #{index} of {budget}; "
            f"shrunk from {len(_strip(out.choices))} to {len(schedule)} choices "
            f"in {runs} re-runs"
        )
        raise_report(
            final, final.failure or failure, schedule, replay_call(schedule), origin, stats
        )
    return ExploreStats(
        schedules=budget,
        median_ms=statistics.median(times) * 1000 if times else 0.0,
        total_s=REAL_PERF_COUNTER() - started,
        max_steps=max_seen,
        seed=seed,
        strategies=strategies,
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
