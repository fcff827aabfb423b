"""asyncio mode: a seeded loop that runs ONE ready callback per iteration, on virtual time.

asyncio's FIFO loop never exposes check-then-act across ``await`` (research §5: 0 of 500
runs); choosing one ready callback per iteration with a seeded strategy, and deferring the
rest, exposes it. Time is virtual: when nothing is ready the clock jumps to the next timer,
so ``await asyncio.sleep(10)`` costs nothing. No ready callback and no timer while workers
are unfinished is a deadlock.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import functools
import heapq
import sys
import types
from collections.abc import Callable, Coroutine, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from . import exploration
from .clock import REAL_MONOTONIC
from .exploration import Execute, ExploreStats, Outcome, named_workers
from .failures import Check, checked, raised
from .finding import Failure
from .sites import NO_SITE, Site, find_site, short, source
from .strategies import Strategy, normalize

S = TypeVar("S")
AsyncWorker = Callable[[S], Coroutine[Any, Any, object]]
AsyncWorkers = Sequence[AsyncWorker[S]] | Mapping[str, AsyncWorker[S]]


class _Stall(Exception):
    """Nothing is ready and no timer is pending."""


class _TooLong(Exception):
    """Step bound exceeded."""


class ProbeLoop(asyncio.BaseEventLoop):
    """Event loop for one schedule: one strategy-chosen callback per iteration."""

    def __init__(self, strategy: Strategy, max_steps: int) -> None:
        super().__init__()
        self._vt = 0.0
        self._strategy = strategy
        self._max_steps = max_steps
        self.choices: list[int] = []
        self.decisions = 0
        self.steps = 0
        self.cleanup = False
        self.current_key: Hashable = None
        self.errors: list[dict[str, Any]] = []

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        # Kept for the outcome, not logged. A method, not a handler given to
        # ``set_exception_handler``: a closure over the loop, kept by the loop, made each
        # schedule's loop a reference cycle for the garbage collector.
        self.errors.append(context)

    def time(self) -> float:
        return self._vt

    def _process_events(self, event_list: Any) -> None:
        pass  # no selector: kata coroutines do no real I/O

    def _write_to_self(self) -> None:
        pass

    def _run_once(self) -> None:
        sched: list[Any] = self._scheduled  # type: ignore[attr-defined]
        ready: Any = self._ready  # type: ignore[attr-defined]
        while sched and sched[0]._cancelled:
            self._timer_cancelled_count -= 1  # type: ignore[attr-defined]
            heapq.heappop(sched)._scheduled = False
        live = [h for h in ready if not h._cancelled]
        ready.clear()
        if not live:
            if not sched:
                raise _Stall
            self._vt = max(self._vt, sched[0]._when)  # autojump to the next timer
        while sched and sched[0]._when <= self._vt:
            handle = heapq.heappop(sched)
            handle._scheduled = False
            if not handle._cancelled:
                live.append(handle)
        if not live:
            return
        idx = 0
        if len(live) > 1 and not self.cleanup:
            keys = [_key(h) for h in live]
            raw = self._strategy.choose(self.current_key, keys, self.decisions)
            self.decisions += 1
            idx = normalize(raw, len(live), False)
            self.choices.append(idx)
        handle = live.pop(idx)
        ready.extend(live)  # the others stay ready, in their original order
        self.steps += 1
        if self.steps > self._max_steps and not self.cleanup:
            raise _TooLong
        self.current_key = _key(handle)
        handle._run()


def _key(handle: Any) -> Hashable:
    owner = getattr(handle._callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        return owner.get_name()
    return "callback"


def _suspended_site(task: asyncio.Task[Any], files: frozenset[str]) -> Site:
    """Innermost learner line where ``task`` is suspended."""
    coro: Any = task.get_coro()
    site = NO_SITE
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            here = find_site(frame, files)
            if here[0] in files or site == NO_SITE:
                site = here
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return site


def _execute_async(
    setup: Callable[[], S],
    named: list[tuple[str, AsyncWorker[S]]],
    check: Check[S],
    modules: Sequence[types.ModuleType],
    max_steps: int,
    record: bool,
    strategy: Strategy,
) -> Outcome:
    """Run one schedule on a ProbeLoop; the mode's half of the exploration loop. ``record``:
    also the learner's lines each task ran, for a report."""
    loop = ProbeLoop(strategy, max_steps)
    names = [n for n, _ in named]
    index = {n: i for i, n in enumerate(names)}
    events: list[tuple[str, int, Any, str]] = []
    files_box: list[frozenset[str]] = [_module_files(modules)]
    tasks: list[asyncio.Task[object]] = []
    state_box: list[Any] = []
    last: list[int] = [-1]

    def local(frame: types.FrameType, event: str, arg: Any) -> Any:
        if event == "line":
            who = index.get(str(loop.current_key), -1)
            if who >= 0:
                if last[0] != who:
                    events.append(("x", last[0], who, "suspended at an await"))
                    last[0] = who
                events.append(("s", who, (frame.f_code.co_filename, frame.f_lineno), ""))
        return frame.f_trace  # itself; naming itself, the closure would be a cycle

    def global_trace(frame: types.FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename in files_box[0]:
            return local
        return None

    async def main() -> None:
        state = setup()
        state_box.append(state)
        if not files_box[0]:
            files_box[0] = _module_files(_guess_modules(state))
        for name, fn in named:
            tasks.append(loop.create_task(fn(state), name=name))
        await asyncio.wait(tasks)

    failure: Failure | None = None
    previous = sys.gettrace()
    if record:
        sys.settrace(global_trace)
    try:
        loop.run_until_complete(main())
    except _Stall:
        failure = _task_exception(tasks, files_box[0]) or _deadlock(tasks, files_box[0])
    except _TooLong:
        failure = Failure(
            "livelock",
            f"livelock or starvation: no task finished within {max_steps} loop steps",
            signature="livelock",
        )
    finally:
        if record:
            sys.settrace(previous)
        _close(loop, tasks)
    files = files_box[0]
    if failure is None:
        failure = _task_exception(tasks, files) or _callback_exception(loop.errors, files)
    results: list[object] = [
        t.result() if t.done() and not t.cancelled() and t.exception() is None else None
        for t in tasks
    ]
    if failure is None and state_box:
        failure = checked(check, state_box[0], results, files)
    # No preemption events here: every non-zero choice deferred the oldest ready callback.
    switches = sum(1 for c in loop.choices if c)
    return Outcome(
        failure, loop.choices, events, names, loop.steps, loop.decisions, results, switches
    )


def _module_files(modules: Sequence[types.ModuleType]) -> frozenset[str]:
    return frozenset(f for m in modules if (f := getattr(m, "__file__", None)))


def _guess_modules(state: object) -> list[types.ModuleType]:
    mod = sys.modules.get(type(state).__module__)
    return [mod] if mod is not None and getattr(mod, "__file__", None) else []


def _task_exception(tasks: list[asyncio.Task[object]], files: frozenset[str]) -> Failure | None:
    for task in tasks:
        if task.done() and not task.cancelled():
            exc = task.exception()
            if exc is not None:
                return raised(task.get_name(), exc, files)
    return None


def _callback_exception(errors: list[dict[str, Any]], files: frozenset[str]) -> Failure | None:
    """An exception raised by a plain loop callback (call_soon, a done-callback): asyncio only
    logs those, so without this check a broken callback would pass unnoticed."""
    for context in errors:
        exc = context.get("exception")
        if exc is None or "handle" not in context:
            continue
        return raised("a callback", exc, files, signature_prefix="callback:")
    return None


def _deadlock(tasks: list[asyncio.Task[object]], files: frozenset[str]) -> Failure:
    parts = []
    for task in tasks:
        if not task.done():
            site = _suspended_site(task, files)
            parts.append(f"{task.get_name()} waits at {short(site)} `{source(site)}`")
    return Failure(
        "deadlock",
        "deadlock: every task is waiting and no timer is pending: " + "; ".join(parts),
        details=["Nobody is left to set the event, release the lock or put the item."],
        signature="deadlock",
    )


def _close(loop: ProbeLoop, tasks: list[asyncio.Task[object]]) -> None:
    """Cancel whatever is left and let it unwind in FIFO order, within a bounded budget."""
    loop.cleanup = True
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        with contextlib.suppress(_Stall, _TooLong):
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # mark retrieved: the harness reports it, asyncio need not log
    loop.close()


def _replay_call(schedule: list[int]) -> str:
    return f"explore_async(setup, workers, check, schedule={schedule})"


def _explore(
    execute: Execute,
    record: Execute,
    budget: int,
    seed: int,
    strategies: str,
    schedule: Sequence[int] | None,
    exhaustive: exploration.Exhaustive | None,
) -> ExploreStats:
    if schedule is None:
        return exploration.explore_schedules(
            execute,
            _replay_call,
            budget=budget,
            seed=seed,
            strategies=strategies,
            mode=exploration.ASYNCIO,
            exhaustive=exhaustive,
            record=record,
        )
    _outcome, stats = exploration.replay_schedule(
        record, _replay_call, schedule, seed=seed, strategies=strategies
    )
    return stats


def explore_async(
    setup: Callable[[], S],
    workers: AsyncWorkers[S],
    check: Check[S] = None,
    *,
    budget: int = 250,
    seed: int = 0,
    max_steps: int = 20_000,
    strategies: str = "portfolio",
    modules: Sequence[types.ModuleType] = (),
    schedule: Sequence[int] | None = None,
    timeout_s: float = 120.0,
    exhaustive: int = 0,
    exhaustive_s: float = exploration.EXHAUSTIVE_SECONDS,
) -> ExploreStats:
    """Explore asyncio interleavings of ``workers`` (coroutine functions taking the state).

    ``modules`` only selects the files shown in reports (default: the module of the class
    that ``setup()`` returns). ``schedule`` replays one recorded schedule. ``exhaustive=N``
    first tries every order of ready callbacks, within N runs and ``exhaustive_s`` seconds
    (as in ``explore``). Called from inside a running event loop, the exploration runs in a
    helper thread.
    """
    named = named_workers(workers)
    execute = functools.partial(_execute_async, setup, named, check, modules, max_steps, False)
    record = functools.partial(_execute_async, setup, named, check, modules, max_steps, True)
    search = exploration.Exhaustive(exhaustive, exhaustive_s) if exhaustive else None
    run = functools.partial(_explore, execute, record, budget, seed, strategies, schedule, search)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        inside_a_loop = False
    else:
        inside_a_loop = True
    if not inside_a_loop:  # outside the except block, so a failure carries no stray context
        return run()
    box: list[Any] = []
    done = _thread.allocate_lock()
    done.acquire()

    def helper() -> None:
        try:
            box.append(("ok", run()))
        except BaseException as exc:
            box.append(("err", exc))
        finally:
            done.release()

    _thread.start_new_thread(helper, ())
    deadline = REAL_MONOTONIC() + timeout_s
    while not done.acquire(True, 0.05):
        if REAL_MONOTONIC() > deadline:
            raise TimeoutError(f"explore_async did not finish within {timeout_s} s")
    kind, value = box[0]
    if kind == "err":
        raise value
    assert isinstance(value, ExploreStats)
    return value
