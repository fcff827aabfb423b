"""Threads mode: explore and run_schedule execute each schedule on cooperative threads;
schedules is the Hypothesis strategy of choice lists."""

from __future__ import annotations

import _thread
import contextlib
import functools
import os
import random
import sys
import types
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from . import exploration, footprints, instrument, watchdog
from .cooperative import Cooperative
from .exhaustive import Tracker
from .exploration import Execute, ExploreStats, Outcome, named_workers
from .failures import Check, checked
from .finding import Failure
from .patching import Patch, scan_ahead
from .scheduler import Run, instrumented_point, set_active, spare_greenlets
from .semaphores import Semaphore
from .sites import read_sources
from .strategies import Strategy
from .threadpool import POOL
from .tracing import Monitor, learner_codes_again, reachable_functions

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

S = TypeVar("S")
Workers = Sequence[Callable[[S], object]] | Mapping[str, Callable[[S], object]]

# Patching is process-wide, so two explorations must never overlap.
_EXCLUSIVE = _thread.allocate_lock()


def _files(modules: Sequence[types.ModuleType]) -> frozenset[str]:
    files: set[str] = set()
    for mod in modules:
        path = getattr(mod, "__file__", None)
        if not path:
            raise ValueError(f"module {mod.__name__} has no source file to trace")
        files.update({path, os.path.abspath(path), os.path.realpath(path)})
    return frozenset(files)


# What name_objects never looks into; _PLAIN, the exact types of most of a state's values (a
# balance, an id, a name), is told by a set lookup (isinstance with _LEAVES: 0.2 us a value).
_LEAVES = (str, bytes, int, float, type, types.ModuleType)
_PLAIN = frozenset({str, bytes, int, float, bool, type(None)})


def name_objects(state: object, limit: int = 2000) -> dict[int, str]:
    """Shortest attribute path from the setup() result to each primitive ('state.a.lock').
    Made at every schedule: a value that cannot hold a primitive is passed over where it is
    found, with no path made for it (the names had been 8% of a sampled two-account transfer)."""
    out: dict[int, str] = {}
    seen: set[int] = set()
    todo: deque[tuple[object, str, int]] = deque([(state, "state", 0)])
    while todo and len(seen) < limit:
        obj, path, depth = todo.popleft()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, Cooperative):
            out[id(obj)] = path
            continue
        if depth >= 4 or isinstance(obj, _LEAVES):
            continue
        depth += 1
        if isinstance(obj, dict):
            for k, v in list(obj.items())[:50]:
                if type(v) not in _PLAIN:
                    todo.append((v, f"{path}[{k!r}]", depth))
        elif isinstance(obj, (list, tuple, deque)):
            for i, v in enumerate(list(obj)[:50]):
                if type(v) not in _PLAIN:
                    todo.append((v, f"{path}[{i}]", depth))
        elif hasattr(obj, "__dict__") and not callable(obj):
            for k, v in vars(obj).items():
                if type(v) not in _PLAIN:
                    todo.append((v, f"{path}.{k}", depth))
    return out


def _post_checks(run: Run) -> Failure | None:
    for prim in run.prims:
        if isinstance(prim, Semaphore) and prim.over_released():
            return Failure(
                "misuse",
                f"misuse: {run.label(prim)} ended with count {prim._value} but started at "
                f"{prim._initial}: it was released more often than acquired (a double "
                "release?)",
                signature="semaphore-above-initial",
            )
    return None


def _launch_and_wait(run: Run) -> None:
    """Run the schedule; should the wait end in an exception (a test's time budget, Ctrl-C),
    abort it first, so that no worker goes on running after the test. Inline (``run.inline``),
    the test's thread runs it, with no trace hook of its own meanwhile (a coverage tool's,
    Hypothesis's), and an exception that interrupted it is raised once it has ended."""
    hook = sys.gettrace() if run.inline else None
    if hook is not None:
        sys.settrace(None)
    try:
        run.launch()
        run.wait()
    except BaseException:
        run.abort()
        run.finished.acquire(True, 1.0)  # its workers unwind at their next switch point
        raise
    finally:
        if hook is not None:
            sys.settrace(hook)
    if run.interrupted is not None:
        raise run.interrupted


# The seed the ``random`` module's generator starts every schedule from, in a run of a
# learner's module that uses it (``_execute``).
LEARNER_RANDOM_SEED = 0


def _uses_random(modules: Sequence[types.ModuleType]) -> bool:
    """Whether a module holds the ``random`` module or a function bound to its generator
    (``from random import uniform``)."""
    shared = getattr(random, "_inst", None)
    return any(
        value is random or (shared is not None and getattr(value, "__self__", None) is shared)
        for module in modules
        for value in vars(module).values()
    )


def _execute(
    setup: Callable[[], S],
    named: list[tuple[str, Callable[[S], object]]],
    check: Check[S],
    modules: Sequence[types.ModuleType],
    files: frozenset[str],
    max_steps: int,
    watchdog_s: float,
    passed: list[types.FunctionType] | None,
    learner_random: bool,
    strategy: Strategy,
) -> Outcome:
    """Run one schedule on cooperative threads; the mode's half of the exploration loop.
    ``passed``: the learner's functions the test handed the exploration (None: settrace).
    ``learner_random``: a learner's module uses the ``random`` module's shared generator (a
    random back-off): every schedule starts it from the same seed, so that a schedule and
    its replay draw the same numbers, and the generator is put back as it was after."""
    if learner_random:
        saved = random.getstate()
        random.seed(LEARNER_RANDOM_SEED)
        try:
            return _execute(
                setup, named, check, modules, files, max_steps, watchdog_s, passed, False, strategy
            )
        finally:
            random.setstate(saved)
    if not _EXCLUSIVE.acquire(True, 30.0):
        raise RuntimeError("probe: another exploration is still running in this process")
    # A search's first run with one worker goes untracked while it stays alone (Tracker.lone).
    tracker = strategy if isinstance(strategy, Tracker) else None
    lone = tracker is not None and tracker.lone and len(named) == 1
    if tracker is not None and lone:
        tracker.footprints = False
    try:
        swap = _rewritten_code(modules, passed, strategy)
        try:  # from here on the learner's own code is put back, whatever fails
            run = Run(strategy, files, max_steps, watchdog_s, rewritten=swap is not None)
            run.inline = watchdog.watching_now()
            set_active(run)
            with Patch(list(modules), hooked=swap is None) as patch:
                try:
                    run.setup_frame = sys._getframe()
                    try:
                        state = setup()
                    finally:
                        run.setup_frame = None
                    run.names = {**patch.names, **name_objects(state)}
                    for name, fn in named:
                        run.add_worker(name, functools.partial(fn, state))
                    if run.use_settrace or run.rewritten:
                        _launch_and_wait(run)
                    else:
                        with Monitor(list(modules), run.on_instruction):
                            _launch_and_wait(run)
                finally:
                    set_active(None)
                    run.closed = True
        finally:
            if swap is not None:
                swap.restore()
    finally:
        _EXCLUSIVE.release()
    if tracker is not None and lone and len(run.workers) > 1:
        tracker.spawned = True
    results = [w.result for w in run.workers[: len(named)]]
    cut = isinstance(strategy, Tracker) and strategy.cut
    failure = (
        None
        if cut
        else (
            run.failure
            or _post_checks(run)
            or checked(check, state, results, files)
            or run.lock_order_cycle()
        )
    )
    outcome = Outcome(
        failure,
        list(run.choices),
        list(run.events),
        [w.name for w in run.workers],
        run.steps,
        run.spread,
        results,
    )
    run.release()
    return outcome


def _rewriting() -> bool:
    return instrument.AVAILABLE and os.environ.get("PROBE_TRACER") != "settrace"


def _rewritten_code(
    modules: Sequence[types.ModuleType],
    passed: list[types.FunctionType] | None,
    strategy: Strategy,
) -> instrument.Swap | None:
    """3.11, a run that tracks no footprints: the learner's functions swapped for copies
    that call the scheduler at each switch point (plugins/probe/instrument), instead of
    settrace; None where settrace runs it (``PROBE_TRACER=settrace`` asks for it). A search's
    run that reads what each step touches (``Tracker.footprints``) keeps settrace: it reads
    the frames at their own offsets."""
    if passed is None or (isinstance(strategy, Tracker) and strategy.footprints):
        return None
    functions = instrument.learner_functions(list(modules))
    swap = instrument.Swap((functions, passed), instrumented_point)
    return swap if swap.ready else None


def _executor(
    setup: Callable[[], S],
    workers: Workers[S],
    check: Check[S],
    modules: Sequence[types.ModuleType],
    max_steps: int,
    watchdog_s: float,
) -> Execute:
    named = named_workers(workers)
    files = _files(modules)
    # The source lines that label a primitive in a run (its creation line, in the learner's
    # module or the test's), read now: once per process, not in a first schedule (0.15 ms a
    # file; a one-schedule probe test is only that).
    read_sources([*modules, *_worker_codes(workers), setup, check])
    passed = None
    if _rewriting():
        # The learner's functions the test reaches through its own (a factory's closure
        # given as a worker), and every one rewritten now, before the first schedule, once
        # per process: the rewriting is a cost of the learner's code, not of a schedule.
        roots: list[object] = [setup, check, *(fn for _, fn in named)]
        passed = reachable_functions(roots, files, list(modules))
        functions = instrument.learner_functions(list(modules))
        instrument.prepare([*functions, *passed], instrumented_point)
        instrument.plan((functions, passed), instrumented_point)  # what each run swaps
    # What the runs' Patch swaps in the learner's modules, read now too (kept while they
    # hold the same objects).
    scan_ahead(list(modules))
    return functools.partial(
        _execute,
        setup,
        named,
        check,
        modules,
        files,
        max_steps,
        watchdog_s,
        passed,
        _uses_random(modules),
    )


def _worker_codes(workers: Workers[S]) -> list[types.CodeType]:
    """The code of each worker function the test gives (through a partial too)."""
    found = []
    for _, fn in named_workers(workers):
        while isinstance(fn, functools.partial):
            fn = fn.func
        if isinstance(fn, types.FunctionType):
            found.append(fn.__code__)
    return found


def _replay_call(modules: Sequence[types.ModuleType]) -> Callable[[list[int]], str]:
    mods = ", ".join(m.__name__.rsplit(".", 1)[-1] for m in modules)
    return lambda schedule: (
        f"run_schedule(setup, workers, check, modules=[{mods}], schedule={schedule})"
    )


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
    exhaustive: int = 0,
    exhaustive_s: float = exploration.EXHAUSTIVE_SECONDS,
) -> ExploreStats:
    """Run ``budget`` seeded schedules; raise ProbeFailure (shrunk) on the first failing one.

    With ``exhaustive=N``, first check every distinct interleaving, if that takes at most N
    runs and ``exhaustive_s`` seconds: the stats then say ``proved``. Past either, the
    ``budget`` seeded schedules run as without it. ``watchdog_s`` is the real time a schedule
    may go without any switch point before the running worker is reported as blocked
    outside the harness's control.
    """
    execute = _executor(setup, workers, check, modules, max_steps, watchdog_s)
    if exhaustive:
        # The search reads each learner function's control flow from its bytecode, and the
        # test's worker functions whole: read now, once per process, not in the first
        # schedule (a proved test may have two). The walk is the one the runs' Monitor asks
        # for: kept while the modules hold the same functions.
        for code in learner_codes_again(list(modules)):
            footprints.read_ahead(code)
        for code in _worker_codes(workers):
            footprints.read_ahead(code, traced=False)
    with _running_the_schedules(len(named_workers(workers))):
        return exploration.explore_schedules(
            execute,
            _replay_call(modules),
            budget=budget,
            seed=seed,
            strategies=strategies,
            mode=exploration.THREADS,
            exhaustive=exploration.Exhaustive(exhaustive, exhaustive_s) if exhaustive else None,
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
    execute = _executor(setup, workers, check, modules, max_steps, watchdog_s)
    with _running_the_schedules(len(named_workers(workers)), exploring=False):
        outcome, _stats = exploration.replay_schedule(execute, _replay_call(modules), schedule)
    return outcome.results


@contextlib.contextmanager
def _running_the_schedules(workers: int, *, exploring: bool = True) -> Iterator[None]:
    """Where the schedules started meanwhile run: on this thread, watched (``watchdog``), or
    else on the run's thread, a harness thread that every worker is a greenlet on (kept on
    one CPU for an exploration). The workers' greenlets are made now, once per thread: a new
    thread's first schedule (a forked process's, the self-check's) would otherwise make
    them."""
    if watchdog.inline_here():
        POOL.reserve(1)  # the watch's thread
        spare_greenlets(workers)
        with watchdog.watching():
            yield
    elif exploring:
        with POOL.on_one_core():
            POOL.reserve(1)  # the run's thread
            POOL.run_and_wait(functools.partial(spare_greenlets, workers))
            yield
    else:
        yield


def schedules(*, max_len: int = 120, max_value: int = 3) -> SearchStrategy[list[int]]:
    """Hypothesis strategy of choice lists: 0 = keep running, k = switch to the k-th other.

    Shrinking moves toward zeros, i.e. toward the fewest preemptions.
    """
    from hypothesis import strategies as st

    return st.lists(st.integers(min_value=0, max_value=max_value), max_size=max_len)


__all__ = ["explore", "run_schedule", "schedules"]
