"""Public entry points: explore (seeded portfolio + shrinking), run_schedule, schedules."""

from __future__ import annotations

import _thread
import functools
import os
import statistics
import types
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from . import report
from .clock import REAL_PERF_COUNTER
from .patching import Patch
from .primitives import Lock, Semaphore, Thread, _Prim
from .scheduler import Failure, Run, set_active
from .sites import short, source, traceback_site
from .strategies import Replay, Strategy, make_strategy
from .tracing import Monitor

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

S = TypeVar("S")
Workers = Sequence[Callable[[S], object]] | Mapping[str, Callable[[S], object]]
Check = Callable[[S, list[object]], None] | None

SHRINK_LIMIT = 300
# Patching is process-wide, so two explorations must never overlap.
_EXCLUSIVE = _thread.allocate_lock()


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
        self, message: str, *, kind: str, schedule: list[int], stats: ExploreStats
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.schedule = schedule
        self.stats = stats


@dataclass
class _Outcome:
    failure: Failure | None
    choices: list[int]
    events: list[tuple[str, int, Any, str]]
    names: list[str]
    steps: int
    decisions: int
    results: list[object]


def _named(workers: Workers[S]) -> list[tuple[str, Callable[[S], object]]]:
    if isinstance(workers, Mapping):
        return [(str(k), v) for k, v in workers.items()]
    return [(f"worker-{i}", fn) for i, fn in enumerate(workers, 1)]


def _files(modules: Sequence[types.ModuleType]) -> frozenset[str]:
    files: set[str] = set()
    for mod in modules:
        path = getattr(mod, "__file__", None)
        if not path:
            raise ValueError(f"module {mod.__name__} has no source file to trace")
        files.update({path, os.path.abspath(path), os.path.realpath(path)})
    return frozenset(files)


def name_objects(state: object, limit: int = 2000) -> dict[int, str]:
    """Shortest attribute path from the setup() result to each primitive ('state.a.lock')."""
    out: dict[int, str] = {}
    seen: set[int] = set()
    todo: deque[tuple[object, str, int]] = deque([(state, "state", 0)])
    while todo and len(seen) < limit:
        obj, path, depth = todo.popleft()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, (_Prim, Thread)):
            out[id(obj)] = path
            continue
        if depth >= 4 or isinstance(obj, (str, bytes, int, float, type, types.ModuleType)):
            continue
        children: list[tuple[object, str]] = []
        if isinstance(obj, dict):
            children = [(v, f"{path}[{k!r}]") for k, v in list(obj.items())[:50]]
        elif isinstance(obj, (list, tuple, deque)):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(list(obj)[:50])]
        elif hasattr(obj, "__dict__") and not callable(obj):
            children = [(v, f"{path}.{k}") for k, v in vars(obj).items()]
        for child, child_path in children:
            todo.append((child, child_path, depth + 1))
    return out


def _post_checks(run: Run) -> Failure | None:
    for prim in run.prims:
        if isinstance(prim, Semaphore) and prim._probe_over_released():
            return Failure(
                "misuse",
                f"misuse: {run.label(prim)} ended with count {prim._value} but started at "
                f"{prim._initial}: it was released more often than acquired (a double "
                "release?)",
                signature="semaphore-above-initial",
            )
    return None


def _execute(
    setup: Callable[[], S],
    named: list[tuple[str, Callable[[S], object]]],
    check: Check[S],
    modules: Sequence[types.ModuleType],
    files: frozenset[str],
    strategy: Strategy,
    max_steps: int,
    watchdog_s: float = 2.0,
) -> _Outcome:
    run = Run(strategy, files, max_steps, watchdog_s)
    if not _EXCLUSIVE.acquire(True, 30.0):
        raise RuntimeError("probe: another exploration is still running in this process")
    try:
        set_active(run)
        with Patch(list(modules)):
            try:
                state = setup()
                run.names = name_objects(state)
                for name, fn in named:
                    run.add_worker(name, functools.partial(fn, state))
                if run.use_settrace:
                    run.launch()
                    run.wait()
                else:
                    with Monitor(list(modules), run.on_instruction):
                        run.launch()
                        run.wait()
            finally:
                set_active(None)
                run.closed = True
    finally:
        _EXCLUSIVE.release()
    results = [w.result for w in run.workers[: len(named)]]
    failure = run.failure or _post_checks(run)
    if failure is None and check is not None:
        try:
            check(state, results)
        except AssertionError as exc:
            text = report.clean(str(exc).strip()) or "check() failed"
            failure = Failure("invariant", "invariant broken: " + text, signature="invariant")
        except Exception as exc:
            site = traceback_site(exc.__traceback__, files)
            failure = Failure(
                "invariant",
                f"check raised {type(exc).__name__}: {exc} at {short(site)} `{source(site)}`",
                signature=f"check-{type(exc).__name__}",
            )
    if failure is None:
        failure = run.lock_order_cycle()
    return _Outcome(
        failure,
        list(run.choices),
        list(run.events),
        [w.name for w in run.workers],
        run.steps,
        run.decisions,
        results,
    )


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
    rerun: Callable[[list[int]], _Outcome],
    limit: int = SHRINK_LIMIT,
) -> tuple[_Outcome | None, list[int], int]:
    """Greedy: cut the tail, zero entries, lower values; keep only same-kind failures."""
    best = _strip(choices)
    best_out: _Outcome | None = None
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
    return best_out, best, runs


def raise_report(
    outcome: _Outcome,
    failure: Failure,
    schedule: list[int],
    replay: str,
    origin: str,
    stats: ExploreStats,
    switches: int | None = None,
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
        switches=switches,
    )
    raise ProbeFailure(
        message, kind=failure.kind, schedule=schedule, stats=stats
    ) from failure.error


def _replay_call(modules: Sequence[types.ModuleType], schedule: list[int]) -> str:
    mods = ", ".join(m.__name__.rsplit(".", 1)[-1] for m in modules)
    return f"run_schedule(setup, workers, check, modules=[{mods}], schedule={schedule})"


def explore(
    setup: Callable[[], S],
    workers: Workers[S],
    check: Check[S] = None,
    *,
    modules: Sequence[types.ModuleType],
    budget: int = 250,
    seed: int = 0,
    max_steps: int = 20_000,
    strategies: str = "portfolio",
    watchdog_s: float = 2.0,
) -> ExploreStats:
    """Run ``budget`` seeded schedules; raise ProbeFailure (shrunk) on the first failing one.

    ``watchdog_s`` is the real time a schedule may go without any switch point before the
    running worker is reported as blocked outside the harness's control.
    """
    named = _named(workers)
    files = _files(modules)
    started = REAL_PERF_COUNTER()
    times: list[float] = []
    k_estimate = 0
    max_seen = 0
    for index in range(budget):
        strategy = make_strategy(strategies, seed, index, k_estimate)
        t0 = REAL_PERF_COUNTER()
        out = _execute(setup, named, check, modules, files, strategy, max_steps, watchdog_s)
        times.append(REAL_PERF_COUNTER() - t0)
        k_estimate = max(k_estimate, out.decisions)
        max_seen = max(max_seen, out.steps)
        if out.failure is None:
            continue
        failure = out.failure

        def rerun(choices: list[int]) -> _Outcome:
            return _execute(
                setup, named, check, modules, files, Replay(choices), max_steps, watchdog_s
            )

        shrunk, schedule, runs = shrink(out.choices, failure, rerun)
        final = shrunk or out
        final_failure = final.failure or failure
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
        raise_report(final, final_failure, schedule, _replay_call(modules, schedule), origin, stats)
    return ExploreStats(
        schedules=budget,
        median_ms=statistics.median(times) * 1000 if times else 0.0,
        total_s=REAL_PERF_COUNTER() - started,
        max_steps=max_seen,
        seed=seed,
        strategies=strategies,
    )


def run_schedule(
    setup: Callable[[], S],
    workers: Workers[S],
    check: Check[S] = None,
    *,
    modules: Sequence[types.ModuleType],
    schedule: Sequence[int],
    max_steps: int = 20_000,
    watchdog_s: float = 2.0,
) -> list[object]:
    """Replay one schedule exactly; returns the workers' results or raises ProbeFailure."""
    named = _named(workers)
    files = _files(modules)
    t0 = REAL_PERF_COUNTER()
    out = _execute(
        setup, named, check, modules, files, Replay(list(schedule)), max_steps, watchdog_s
    )
    if out.failure is None:
        return out.results
    elapsed = REAL_PERF_COUNTER() - t0
    executed = _strip(out.choices)
    stats = ExploreStats(1, elapsed * 1000, elapsed, out.steps, first_failure=0)
    raise_report(out, out.failure, executed, _replay_call(modules, executed), "", stats)


def schedules(*, max_len: int = 120, max_value: int = 3) -> SearchStrategy[list[int]]:
    """Hypothesis strategy of choice lists: 0 = keep running, k = switch to the k-th other.

    Shrinking moves toward zeros, i.e. toward the fewest preemptions.
    """
    from hypothesis import strategies as st

    return st.lists(st.integers(min_value=0, max_value=max_value), max_size=max_len)


__all__ = [
    "ExploreStats",
    "Lock",
    "ProbeFailure",
    "explore",
    "run_schedule",
    "schedules",
]
