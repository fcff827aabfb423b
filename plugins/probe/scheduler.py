"""Token-passing run context: exactly one controlled worker runs at a time.

Each worker is a daemon thread started with ``_thread`` (threading's own machinery is
patched during a run) and parked on a private raw-lock gate. The worker holding the token
asks the strategy who runs next at every switch point, opens that worker's gate and waits
on its own. Deadlock, step bound, misuse and uncaught exceptions abort the run: every gate
is opened and workers unwind with the private ``Unwind`` exception, so no thread is left
blocked. Every wait here has a timeout.
"""

from __future__ import annotations

import _thread
import contextlib
import functools
import sys
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from types import CodeType, FrameType
from typing import Any

from .clock import REAL_MONOTONIC, VirtualClock
from .sites import NO_SITE, Site, assigned_name, caller_site, find_site, short, source
from .strategies import Strategy, normalize
from .tracing import line_of, make_tracer, use_monitoring

get_ident = _thread.get_ident
allocate_lock = _thread.allocate_lock

READY, BLOCKED, DONE = 0, 1, 2


class Unwind(BaseException):
    """Private abort signal: unwinds a worker after the run has been decided."""


@dataclass
class Failure:
    kind: str  # invariant | exception | deadlock | lock-order | livelock | misuse | uncontrolled
    headline: str
    details: list[str] = field(default_factory=list)
    signature: str = ""
    # The worker's own exception, chained to the ProbeFailure so tools that follow __cause__
    # (the progress plugin's "not implemented yet") see what the learner's code raised.
    error: BaseException | None = field(default=None, compare=False)

    def same_as(self, other: Failure | None) -> bool:
        return other is not None and (self.kind, self.signature) == (other.kind, other.signature)


# Events kept for the report: ("s", worker, site, note) or ("x", from, to, reason).
Event = tuple[str, int, Any, str]


class _ThreadPool:
    """Reusable harness threads: starting an OS thread per worker per schedule dominated
    the cost of short schedules. Idle threads exit after a while, so none linger forever."""

    IDLE_S = 20.0

    def __init__(self) -> None:
        self._guard = allocate_lock()
        self._idle: list[list[Any]] = []  # [wake lock, job]

    def submit(self, job: Callable[[], None]) -> None:
        with self._guard:
            slot = self._idle.pop() if self._idle else None
        if slot is None:
            slot = [allocate_lock(), job]
            slot[0].acquire()
            _thread.start_new_thread(self._loop, (slot,))
        else:
            slot[1] = job
            slot[0].release()

    def _loop(self, slot: list[Any]) -> None:
        while True:
            job, slot[1] = slot[1], None
            try:  # noqa: SIM105 - jobs handle their own errors; nothing may reach unraisablehook
                job()
            except BaseException:
                pass
            with self._guard:
                self._idle.append(slot)
            if not slot[0].acquire(True, self.IDLE_S):
                with self._guard:
                    if slot in self._idle:
                        self._idle.remove(slot)
                        return
                if not slot[0].acquire(True, 5.0):  # a job was handed over as we timed out
                    return


_POOL = _ThreadPool()


class Worker:
    def __init__(self, index: int, name: str, fn: Callable[[], object], thread: Any) -> None:
        self.index = index
        self.name = name
        self.fn = fn
        self.thread = thread  # the cooperative Thread object, if the learner made one
        self.gate = allocate_lock()
        self.gate.acquire()
        self.finished = allocate_lock()
        self.finished.acquire()
        self.status = READY
        self.pred: Callable[[], bool] | None = None
        self.deadline: float | None = None
        self.waiting_on: object = None
        self.wait_site: Site = NO_SITE
        self.held: list[Any] = []
        self.result: object = None
        self.ident = 0
        self.stuck = False


@dataclass
class _Edge:
    worker: str
    first: Any
    second: Any
    first_site: Site
    second_site: Site
    gates: frozenset[int]


class Run:
    """Everything one schedule needs; created fresh per schedule."""

    def __init__(
        self,
        strategy: Strategy,
        learner_files: frozenset[str],
        max_steps: int,
        watchdog_s: float = 2.0,
    ) -> None:
        self.strategy = strategy
        self.learner_files = learner_files
        self.max_steps = max_steps
        self.watchdog_s = watchdog_s
        self.clock = VirtualClock()
        self.workers: list[Worker] = []
        self.by_ident: dict[int, Worker] = {}
        self.current: Worker | None = None
        self.steps = 0
        self.decisions = 0
        self.choices: list[int] = []
        self.events: list[Event] = []
        self.failure: Failure | None = None
        self.aborted = False
        self.closed = False
        self.done = allocate_lock()
        self.done.acquire()
        self.last_progress = REAL_MONOTONIC()
        self.prims: list[Any] = []  # keeps ids stable for labels
        self.prim_info: dict[int, tuple[int, str, Site]] = {}
        self.names: dict[int, str] = {}
        self.thread_seq = 0
        self.edges: dict[tuple[int, int], _Edge] = {}
        self.workers_launched = False
        self.use_settrace = not use_monitoring()

    # ----- identity -------------------------------------------------------------------
    def current_worker(self) -> Worker | None:
        if self.closed:
            return None
        return self.by_ident.get(get_ident())

    def site(self) -> Site:
        return caller_site(self.learner_files)

    def register(self, obj: object, kind: str) -> None:
        """Remember a primitive created during the run, for labels in reports."""
        self.prims.append(obj)
        site = find_site(sys._getframe(2), self.learner_files)
        self.prim_info[id(obj)] = (len(self.prims), kind, site)

    def label(self, obj: object) -> str:
        info = self.prim_info.get(id(obj))
        if info is None:
            return type(obj).__name__
        seq, kind, site = info
        path = self.names.get(id(obj))
        if path:
            name = f"{kind} '{path}'"
        else:
            var = assigned_name(site)
            name = f"{kind}#{seq} '{var}'" if var else f"{kind}#{seq}"
        return f"{name} (created at {short(site)})"

    # ----- workers --------------------------------------------------------------------
    def add_worker(self, name: str, fn: Callable[[], object], thread: Any = None) -> Worker:
        w = Worker(len(self.workers), name, fn, thread)
        self.workers.append(w)
        return w

    def spawn(self, name: str, fn: Callable[[], object], thread: Any) -> Worker:
        """A learner-created Thread started from inside the run becomes a worker."""
        w = self.add_worker(name, fn, thread)
        _POOL.submit(functools.partial(self._bootstrap, w))
        return w

    def launch(self) -> None:
        """Main thread: start every worker thread and hand the token to the first."""
        self.workers_launched = True
        for w in self.workers:
            _POOL.submit(functools.partial(self._bootstrap, w))
        first = self._pick(None)
        if first is None:
            self.done.release()
        else:
            self._handoff(None, first)

    def wait(self) -> None:
        """Main thread: wait for the run to end, with a wall-clock watchdog."""
        while not self.done.acquire(True, 0.05):
            if REAL_MONOTONIC() - self.last_progress > self.watchdog_s:
                self._fail_uncontrolled()
                break
        deadline = REAL_MONOTONIC() + 2.0
        for w in list(self.workers):
            if not w.stuck:
                w.finished.acquire(True, max(0.0, deadline - REAL_MONOTONIC()))
        self.closed = True

    def _bootstrap(self, w: Worker) -> None:
        try:
            w.ident = get_ident()
            self.by_ident[w.ident] = w
            try:
                self._wait_gate(w)
                if self.use_settrace:
                    tracer = make_tracer(
                        self.learner_files, lambda frame, what: self._on_opcode(w, frame, what)
                    )
                    sys.settrace(tracer)
                try:
                    w.result = w.fn()
                finally:
                    if self.use_settrace:
                        sys.settrace(None)
                self._finish(w)
            except Unwind:
                pass
            except BaseException as exc:  # the learner's exception is the finding
                if not self.aborted:
                    self._crash(w, exc)
        except BaseException:
            pass  # nothing may reach the unraisable hook from a harness thread
        finally:
            w.status = DONE
            w.finished.release()

    # ----- scheduling -----------------------------------------------------------------
    def on_instruction(self, code: CodeType, offset: int, what: str) -> None:
        """sys.monitoring hook: a switch point if the calling thread is one of our workers."""
        w = self.current_worker()
        if w is not None:
            self.step(w, (code.co_filename, line_of(code, offset)), what)

    def _on_opcode(self, w: Worker, frame: FrameType, what: str) -> None:
        self.step(w, (frame.f_code.co_filename, frame.f_lineno), what)

    def step(self, w: Worker, site: Site, note: str = "") -> None:
        """A switch point: the strategy may hand the token to another worker here."""
        if self.aborted:
            raise Unwind
        self.events.append(("s", w.index, site, note))
        self.steps += 1
        self.last_progress = REAL_MONOTONIC()
        if self.steps > self.max_steps:
            self.fail(
                Failure(
                    "livelock",
                    f"livelock or starvation: no worker finished within {self.max_steps} "
                    f"steps ({w.name} was at {short(site)} `{source(site)}`)",
                )
            )
            raise Unwind
        nxt = self._pick(w)
        if nxt is not w and nxt is not None:
            self._handoff(w, nxt)

    def block(
        self,
        w: Worker,
        pred: Callable[[], bool],
        deadline: float | None,
        obj: object,
        site: Site,
    ) -> bool:
        """Park ``w`` until ``pred()`` holds or the virtual deadline passes; True if pred."""
        w.status = BLOCKED
        w.pred = pred
        w.deadline = deadline
        w.waiting_on = obj
        w.wait_site = site
        try:
            self.step(w, site, "waits for " + self.label(obj).split(" (created")[0])
        finally:
            w.status = READY
            w.pred = None
            w.deadline = None
            w.waiting_on = None
        return pred()

    def _enabled(self, w: Worker) -> bool:
        if w.status == READY:
            return True
        if w.status == BLOCKED:
            if w.pred is not None and w.pred():
                return True
            return w.deadline is not None and w.deadline <= self.clock.now
        return False

    def _pick(self, running: Worker | None) -> Worker | None:
        while True:
            n = len(self.workers)
            start = running.index + 1 if running is not None else 0
            others = [
                x
                for x in (self.workers[(start + j) % n] for j in range(n))
                if x is not running and self._enabled(x)
            ]
            run_ok = running is not None and self._enabled(running)
            options = [running, *others] if run_ok and running is not None else others
            if options:
                break
            deadlines = [
                x.deadline for x in self.workers if x.status == BLOCKED and x.deadline is not None
            ]
            if deadlines:
                self.clock.advance_to(min(deadlines))  # autojump: nobody can run before it
                continue
            if all(x.status == DONE for x in self.workers):
                return None
            self._fail_deadlock()
            raise Unwind
        if len(options) == 1:
            return options[0]
        keys: list[Hashable] = [x.index for x in options]
        raw = self.strategy.choose(
            running.index if running is not None else None, keys, self.decisions
        )
        self.decisions += 1
        idx = normalize(raw, len(options), run_ok)
        self.choices.append(idx)
        return options[idx]

    def _handoff(self, w: Worker | None, nxt: Worker) -> None:
        if w is None:
            reason = "start"
        elif w.status == DONE:
            reason = "finished"
        elif w.status == BLOCKED:
            reason = "blocked"
        else:
            reason = "preempted"
        self.events.append(("x", w.index if w is not None else -1, nxt.index, reason))
        self.current = nxt
        nxt.gate.release()
        if w is not None and w.status != DONE:
            self._wait_gate(w)

    def _wait_gate(self, w: Worker) -> None:
        while not w.gate.acquire(True, 0.2):
            if self.aborted:
                raise Unwind
        if self.aborted:
            raise Unwind

    def _finish(self, w: Worker) -> None:
        # A lock that has been handed from thread to thread is a signal, not a critical section.
        still_held = [lock for lock in w.held if not getattr(lock, "_probe_handoff", False)]
        if still_held:
            held = ", ".join(
                f"{self.label(lock)} acquired at {short(getattr(lock, '_probe_acq_site', NO_SITE))}"
                for lock in still_held
            )
            self.fail(
                Failure(
                    "misuse",
                    f"misuse: {w.name} finished while still holding {held}; every acquire "
                    "needs a release on every path (use `with lock:`)",
                    signature="held-at-exit",
                )
            )
            raise Unwind
        w.status = DONE
        nxt = self._pick(w)
        if nxt is None:
            self.done.release()
        else:
            self._handoff(w, nxt)

    # ----- failures -------------------------------------------------------------------
    def fail(self, failure: Failure) -> None:
        if self.failure is None and not self.aborted:
            self.failure = failure
        self.abort()

    def abort(self) -> None:
        self.aborted = True
        for x in list(self.workers):
            try:  # noqa: SIM105 - explicit is clearer for a raw lock
                x.gate.release()
            except RuntimeError:
                pass  # that worker was running; it sees `aborted` at its next switch point
        with contextlib.suppress(RuntimeError):
            self.done.release()

    def misuse(self, w: Worker, text: str, signature: str) -> None:
        site = self.site()
        self.fail(
            Failure(
                "misuse",
                f"misuse: {w.name} {text} at {short(site)} `{source(site)}`",
                signature=signature,
            )
        )

    def _crash(self, w: Worker, exc: BaseException) -> None:
        from .sites import traceback_site

        site = traceback_site(exc.__traceback__, self.learner_files)
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        hint = getattr(exc, "_probe_hint", "")
        self.fail(
            Failure(
                "exception",
                f"{w.name} raised {text} at {short(site)} `{source(site)}`" + hint,
                signature=f"{type(exc).__name__}@{short(site)}",
                error=exc,
            )
        )

    def _wait_text(self, obj: object) -> str:
        describe = getattr(obj, "_probe_wait_text", None)
        if callable(describe):
            return str(describe(self))
        return self.label(obj)

    def _fail_deadlock(self) -> None:
        parts: list[str] = []
        hints: list[str] = []
        for x in self.workers:
            if x.status == DONE:
                continue
            held = ", ".join(self.label(lock) for lock in x.held) or "no lock"
            parts.append(
                f"{x.name} holds {held} and waits for {self._wait_text(x.waiting_on)} "
                f"at {short(x.wait_site)}"
            )
            hint_fn = getattr(x.waiting_on, "_probe_deadlock_hint", None)
            if callable(hint_fn):
                hint = hint_fn(self, x)
                if hint and hint not in hints:
                    hints.append(hint)
        self.fail(
            Failure(
                "deadlock",
                "deadlock: " + "; ".join(parts),
                details=hints,
                signature="deadlock",
            )
        )

    def _fail_uncontrolled(self) -> None:
        w = self.current
        if w is None:
            return
        w.stuck = True
        frame = sys._current_frames().get(w.ident)
        site = find_site(frame, self.learner_files)
        self.fail(
            Failure(
                "uncontrolled",
                f"{w.name} is blocked outside the harness's control at {short(site)} "
                f"`{source(site)}` (no progress for {self.watchdog_s:g} s of real time)",
                details=[
                    "A real lock, socket, subprocess or sleep cannot be scheduled. Locks "
                    "created before the run (for example at module level) are real locks: "
                    "create them in __init__ so each schedule gets cooperative ones."
                ],
                signature="uncontrolled",
            )
        )

    # ----- lock-order graph -----------------------------------------------------------
    def note_acquire(self, w: Worker, lock: object, site: Site) -> None:
        for held in w.held:
            if held is lock:
                continue
            key = (id(held), id(lock))
            if key not in self.edges:
                gates = frozenset(id(h) for h in w.held if h is not held)
                self.edges[key] = _Edge(
                    w.name, held, lock, getattr(held, "_probe_acq_site", NO_SITE), site, gates
                )

    def lock_order_cycle(self) -> Failure | None:
        """A held->acquiring cycle across two or more workers, not guarded by a common lock."""
        succ: dict[int, list[_Edge]] = {}
        for edge in self.edges.values():
            succ.setdefault(id(edge.first), []).append(edge)
        for start in sorted(self.edges.values(), key=lambda e: self.prims.index(e.first)):
            path = self._cycle_from(start, succ)
            if path is None:
                continue
            if len({e.worker for e in path}) < 2:
                continue
            common = frozenset.intersection(*(e.gates for e in path))
            if common:
                continue  # a gate lock serialises every edge: no deadlock possible
            steps = "; ".join(
                f"{e.worker} took {self.label(e.first)} at {short(e.first_site)} and then "
                f"{self.label(e.second).split(' (created')[0]} at {short(e.second_site)}"
                for e in path
            )
            return Failure(
                "lock-order",
                "lock-order cycle (potential deadlock): " + steps,
                details=[
                    "This schedule happened not to deadlock, but another interleaving will: "
                    "always acquire these locks in one global order."
                ],
                signature="lock-order",
            )
        return None

    def _cycle_from(self, start: _Edge, succ: dict[int, list[_Edge]]) -> list[_Edge] | None:
        target = id(start.first)
        stack: list[tuple[_Edge, list[_Edge]]] = [(start, [start])]
        seen: set[int] = set()
        while stack:
            edge, path = stack.pop()
            nxt_id = id(edge.second)
            if nxt_id == target:
                return path
            if nxt_id in seen or len(path) > 8:
                continue
            seen.add(nxt_id)
            for e in succ.get(nxt_id, []):
                stack.append((e, [*path, e]))
        return None


# The one piece of global state: which run the patched primitives belong to right now.
_ACTIVE: list[Run | None] = [None]


def active_run() -> Run | None:
    return _ACTIVE[0]


def set_active(run: Run | None) -> None:
    _ACTIVE[0] = run


def controlled() -> tuple[Run, Worker] | None:
    """(run, worker) when called from a controlled worker of the active run."""
    run = _ACTIVE[0]
    if run is None:
        return None
    w = run.current_worker()
    if w is None:
        return None
    if run.aborted:
        raise Unwind
    return run, w
