"""Token-passing run context: exactly one controlled worker runs at a time.

The workers of a run are greenlets on one thread (the test's own, or for an exploration off
the main thread a pooled harness thread, the run's thread: see ``watchdog``), each given one
the first time it is scheduled (a spare one of that thread's, kept from earlier runs): the
worker holding the token asks the strategy who runs next at every switch point and switches
straight to it. A switch between greenlets costs about 0.5 us where waking a parked OS
thread cost 4-5 us. When a worker's function returns, control goes back to the run's driver,
which switches to the worker picked next. Deadlock, step bound, misuse and uncaught
exceptions abort the run: the driver throws the private ``Unwind`` exception into every
worker still parked, so each unwinds through its ``finally`` blocks. A wall-clock watchdog
(``watchdog``'s thread, or the test's thread waiting for the run's) reports a worker blocked
outside the harness's control (a real lock, socket or sleep). The words of each failure are
``diagnosis``'s; the lock-order graph is ``lockorder``'s; primitives are only ever asked,
through ``Cooperative``, what they wait for and why that might be stuck.
"""

from __future__ import annotations

import _thread
import contextlib
import contextvars
import sys
from collections.abc import Callable, Iterator
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

import greenlet

from . import diagnosis
from .bytecode_paths import Footprint
from .clock import REAL_MONOTONIC, VirtualClock
from .exhaustive import Tracker
from .failures import raised
from .finding import Failure
from .footprints import AT_END, AT_START, Loc, footprint, frame_of, op_loc, sync_loc
from .lockorder import LockOrder
from .sites import NO_SITE, Site, assigned_name, find_site, short
from .strategies import PCT, Anchored, RandomWalk, Replay, Strategy, normalize, weighted_index
from .threadpool import POOL
from .tracing import BACK_EDGE, loop_line, make_tracer, use_monitoring

if TYPE_CHECKING:
    from .cooperative import Cooperative
    from .locks import Lock
    from .threads import Thread

get_ident = _thread.get_ident
allocate_lock = _thread.allocate_lock
getcurrent = greenlet.getcurrent
gettrace = sys.gettrace
settrace = sys.settrace  # puts back exactly what gettrace() gave
call_tracing = sys.call_tracing

READY, BLOCKED, DONE = 0, 1, 2
# What a released run (``Run.release``) holds in place of its strategy and its workers'
# functions: nothing of a test's.
RELEASED: Strategy = Replay(())


def _released() -> object:
    return None


class Unwind(BaseException):
    """Private abort signal: unwinds a worker after the run has been decided."""


def _interrupts(exc: BaseException) -> bool:
    """Whether ``exc``, raised in an inline run, interrupts the test (a signal handler's:
    its time budget, Ctrl-C) rather than being the learner's code's own finding."""
    return not isinstance(
        exc, Exception | SystemExit | GeneratorExit | greenlet.GreenletExit | Unwind
    )


# Events kept for the report: ("s", worker, site, note) or ("x", from, to, reason).
ScheduleEvent = tuple[str, int, Any, str]


class Worker:
    """One controlled thread of the run: its greenlet, its status and what it waits for."""

    # Slots: the scheduler reads a worker's fields at every step.
    __slots__ = (
        *("index", "name", "fn", "thread", "glet", "status", "pred", "deadline"),
        *("waiting_on", "wait_site", "held", "result", "ident", "started", "loc", "atomic"),
        "ring",
    )

    def __init__(
        self, index: int, name: str, fn: Callable[[], object], thread: Thread | None
    ) -> None:
        self.index = index
        self.name = name
        self.fn = fn
        self.thread = thread  # the cooperative Thread object, if the learner made one
        self.glet: greenlet.greenlet | None = None  # made the first time it is scheduled
        self.status = READY
        self.pred: Callable[[], bool] | None = None
        self.deadline: float | None = None
        self.waiting_on: Cooperative | None = None
        self.wait_site: Site = NO_SITE
        self.held: list[Lock] = []
        self.result: object = None
        self.ident = 0  # what threading.get_ident() says in it: its own, though threads share
        self.started = False  # a greenlet runs it: from the first time it is scheduled
        self.loc: Loc | None = AT_START  # where it is parked (exhaustive search only)
        # Inside a plain queue's method (atomic_queue): taking a free lock, notifying and
        # releasing are no switch points there.
        self.atomic = 0
        # The other workers still to finish, in ring order after this one (``Run._ring``):
        # None once a worker is added or finishes.
        self.ring: tuple[Worker, ...] | None = None


class Run:
    """Everything one schedule needs; created fresh per schedule."""

    # Slots: a run has more fields than CPython 3.11 keeps in an instance's shared-key dict
    # (30), so without them every field the scheduler reads at a step was a dict lookup.
    __slots__ = (
        *("strategy", "learner_files", "max_steps", "watchdog_s", "clock", "workers"),
        *("current", "setup_frame", "driver", "thread_ident", "stuck", "inline"),
        *("interrupted", "finished", "steps", "spread", "choices", "events"),
        *("failure", "aborted", "closed", "done", "last_progress", "spins", "spin_started"),
        *("busy_loops", "prims", "prim_info", "names", "thread_seq", "lock_order"),
        *("workers_launched", "rewritten", "use_settrace", "_tracer", "_notes"),
        *("tracker", "_draw", "_pct", "tracking", "_ended"),
    )

    def __init__(
        self,
        strategy: Strategy,
        learner_files: frozenset[str],
        max_steps: int,
        watchdog_s: float = 2.0,
        rewritten: bool = False,
    ) -> None:
        self.strategy = strategy
        self.learner_files = learner_files
        self.max_steps = max_steps
        self.watchdog_s = watchdog_s
        self.clock = VirtualClock()
        self.workers: list[Worker] = []
        self.current: Worker | None = None  # the worker whose greenlet runs, or runs next
        # The frame that calls the test's setup, while it runs: a walk for a creation site
        # stops there (sites.find_site).
        self.setup_frame: FrameType | None = None
        self.driver: greenlet.greenlet | None = None  # the run thread's own greenlet
        self.thread_ident = 0  # the run's thread
        self.stuck = False  # a worker blocked outside the harness: the run's thread with it
        # The schedule runs on the test's thread, watched from a harness thread (watchdog).
        self.inline = False
        # What interrupted an inline run (a test's time budget, Ctrl-C), raised once it ends.
        self.interrupted: BaseException | None = None
        self.finished = allocate_lock()  # released when the run's thread is done with the run
        self.finished.acquire()
        self.steps = 0
        # The decisions, each counted by the switch points it stands for (``weights_of``):
        # what PCT draws its change points over.
        self.spread = 0
        self.choices: list[int] = []
        self.events: list[ScheduleEvent] = []
        self.failure: Failure | None = None
        self.aborted = False
        self.closed = False
        self.done = allocate_lock()
        self.done.acquire()
        # Real time of the last progress the watchdog could not see in ``steps``: the start, a
        # worker's end. A step itself reads no clock (that was a tenth of a step's cost).
        self.last_progress = REAL_MONOTONIC()
        self.spins = 0  # back edges since the last switch point: 2 or more is a busy loop
        self.spin_started = 0.0  # real time of a loop's second turn with no switch point
        self.busy_loops = _BUSY_LOOPS[0]
        self.prims: list[Cooperative] = []  # keeps ids stable for labels
        self.prim_info: dict[int, tuple[int, str, Site]] = {}
        self.names: dict[int, str] = {}
        self.thread_seq = 0
        self.lock_order = LockOrder()
        self.workers_launched = False
        # The learner's code calls the scheduler itself (3.11, plugins/probe/instrument):
        # neither settrace nor sys.monitoring.
        self.rewritten = rewritten
        self.use_settrace = not rewritten and not use_monitoring()
        # The run's settrace hook, dropped when the run ends (it refers back to the run).
        self._tracer = (
            make_tracer(learner_files, self._opcode_hook()) if self.use_settrace else None
        )
        self._notes: dict[int, str] = {}  # id(primitive) -> its wait note; prims keeps ids
        # The exhaustive search's strategy sees every scheduling point and what each step
        # touched; other strategies are asked only at decisions and cost nothing extra here.
        self.tracker = strategy if isinstance(strategy, Tracker) else None
        if type(strategy) is Anchored:
            strategy.events = self.events  # it counts each worker's steps in them
        # A random walk's draw, for the scheduler's innermost loop to call itself (_pick).
        self._draw = strategy.draw if type(strategy) is RandomWalk else None
        self._pct = strategy if type(strategy) is PCT else None
        # Where each worker is parked and what each step touched: only a search that reduces
        # by footprints reads them, and they cost most of a tracked step.
        self.tracking = self.tracker is not None and self.tracker.footprints
        self._ended: Footprint = None

    # ----- identity -------------------------------------------------------------------
    def current_worker(self) -> Worker | None:
        """The worker calling, or None in the test's own thread or any other."""
        w = self.current
        if w is None or self.closed or w.glet is not getcurrent():
            return None
        return w

    def site(self) -> Site:
        """The learner's line that called the primitive calling this (a primitive's every
        switch point asks)."""
        return find_site(sys._getframe(1), self.learner_files)

    def register(self, obj: Cooperative, kind: str) -> None:
        """Remember a primitive created during the run, for labels in reports."""
        self.prims.append(obj)
        site = find_site(sys._getframe(2), self.learner_files, self.setup_frame)
        self.prim_info[id(obj)] = (len(self.prims), kind, site)

    def _number(self, obj: object) -> int | None:
        info = self.prim_info.get(id(obj))
        return None if info is None else info[0]

    def made_by_learner(self, obj: object) -> bool:
        """Whether the code under test created `obj` (not the test's own setup)."""
        info = self.prim_info.get(id(obj))
        return info is not None and info[2][0] in self.learner_files

    def label(self, obj: object) -> str:
        info = self.prim_info.get(id(obj))
        if info is None:
            return type(obj).__name__
        return f"{self._name(obj, info)} (created at {short(info[2])})"

    def _name(self, obj: object, info: tuple[int, str, Site]) -> str:
        """``Lock 'state.lock'``, or ``Lock#2 'self.lock'`` by its creation line."""
        seq, kind, site = info
        path = self.names.get(id(obj))
        if path:
            return f"{kind} '{path}'"
        var = assigned_name(site)
        return f"{kind}#{seq} '{var}'" if var else f"{kind}#{seq}"

    # ----- workers --------------------------------------------------------------------
    def add_worker(
        self, name: str, fn: Callable[[], object], thread: Thread | None = None
    ) -> Worker:
        w = Worker(len(self.workers), name, fn, thread)
        self.workers.append(w)
        self._forget_rings()
        return w

    def spawn(self, name: str, fn: Callable[[], object], thread: Thread) -> Worker:
        """A learner-created Thread started from inside the run becomes a worker (its thread
        starts when it is first scheduled, as every worker's does)."""
        return self.add_worker(name, fn, thread)

    def launch(self) -> None:
        """Main thread: hand the token to the first worker."""
        self.workers_launched = True
        first = self._pick(None)
        if first is None:
            self.done.release()
            self.finished.release()
        else:
            self._handoff(None, first)

    def wait(self) -> None:
        """Main thread: wait for the run to end, with a wall-clock watchdog."""
        seen, quiet_since = self.steps, REAL_MONOTONIC()
        while not self.done.acquire(True, 0.05):
            now = REAL_MONOTONIC()
            if self.steps != seen:  # a step since the last look: progress within 50 ms
                seen, quiet_since = self.steps, now
            elif now - max(quiet_since, self.last_progress) > self.watchdog_s:
                self.fail_uncontrolled()
                break
        if not self.stuck:  # the others unwind on the run's thread; a stuck one holds it
            self.finished.acquire(True, 2.0)
        self.closed = True

    def _drive(self) -> None:
        """The run's thread: switch to the worker holding the token each time one's function
        ends (workers switch straight to each other meanwhile); once the run is decided,
        unwind every worker still parked."""
        try:
            self.thread_ident = get_ident()
            self.driver = getcurrent()
            while not self.aborted:
                w = self.current
                if w is None or w.status == DONE:
                    break
                g, job = self._greenlet(w)
                g.switch(*job)
            self._unwind_parked()
        except BaseException as exc:
            if self.inline and _interrupts(exc):
                self._interrupt(exc)
                with contextlib.suppress(BaseException):
                    self._unwind_parked()
                return
            # The harness's own error: a failure, never a silent pass.
            self.fail(
                Failure(
                    "uncontrolled",
                    f"the probe's scheduler failed ({type(exc).__name__}: {exc}): the run was "
                    "not checked",
                    signature="scheduler-error",
                )
            )
        finally:
            if self.use_settrace:
                sys.settrace(None)
            self._tracer = None  # so that the run is freed as soon as nothing refers to it
            with contextlib.suppress(RuntimeError):
                self.done.release()
            self.finished.release()

    def _unwind_parked(self) -> None:
        for x in self.workers:
            if x.glet is not None and x.status != DONE:
                if self._tracer is not None:  # its handlers stop at a switch point too
                    sys.settrace(self._tracer)
                with contextlib.suppress(BaseException):
                    x.glet.throw(Unwind)

    def _interrupt(self, exc: BaseException) -> None:
        """An inline run was interrupted: the run ends, and ``exc`` is raised once it has."""
        if self.interrupted is None:
            self.interrupted = exc
        self.abort()

    def _greenlet(self, w: Worker) -> tuple[greenlet.greenlet, tuple[object, ...]]:
        """``w``'s greenlet, and what to switch to it with: the job, where it starts ``w``."""
        g = w.glet
        if g is not None:
            return g, ()
        # Given only now, with the token: a spare greenlet of this thread's, or a new one.
        w.started = True
        w.ident = self.thread_ident + w.index + 1  # no other thread's: stacks are far apart
        spare = _spare_greenlets()
        g = w.glet = spare.pop() if spare else greenlet.greenlet(_serve, self.driver)
        return g, ((self, w),)

    def _bootstrap(self, w: Worker) -> None:
        """A worker's greenlet runs ``w``, which holds the token (it was just handed it)."""
        try:
            try:
                if self.aborted:
                    raise Unwind
                if self._tracer is not None:
                    sys.settrace(self._tracer)
                try:
                    w.result = w.fn()
                finally:
                    if self._tracer is not None:
                        sys.settrace(None)  # the worker switched to next puts its own back
                self._finish(w)
            except Unwind:
                pass
            except BaseException as exc:  # the learner's exception is the finding
                if self.inline and _interrupts(exc):
                    self._interrupt(exc)  # a signal's, raised where the worker ran
                elif not self.aborted:
                    self.fail(raised(w.name, exc, self.learner_files))
        except BaseException:
            pass  # nothing may reach the unraisable hook from a harness thread
        finally:
            w.status = DONE

    def call_learner(self, fn: Callable[[], object]) -> object:
        """Call the learner's ``fn`` (a barrier's action) from inside an ``untraced``
        primitive, with this run's settrace hook on, so that it keeps its switch points."""
        tracer = self._tracer
        if tracer is None or gettrace() is not None:
            return fn()
        settrace(tracer)
        try:
            return fn()
        finally:
            settrace(None)

    # ----- scheduling -----------------------------------------------------------------
    def on_instruction(
        self, code: CodeType, offset: int, what: str, site: Site, weight: int
    ) -> None:
        """sys.monitoring hook: a switch point if the calling thread is one of our workers."""
        w = self.current
        if w is None or w.glet is not getcurrent():  # not a worker: another thread's code
            self.unwinding()
            return
        if what is BACK_EDGE:
            self.back_edge(w, code.co_filename, code, offset)
            return
        at = None
        if self.tracking and len(self.workers) > 1:  # alone, a step races with nothing
            frame = frame_of(code, sys._getframe(1))
            at = None if frame is None else op_loc(frame, offset, self.learner_files, w.loc)
        self._step(w, site, what, at, weight)

    def unwinding(self) -> None:
        """At a switch point of a greenlet that does not hold the token: once the run is
        decided, one of its workers being unwound (the driver throws Unwind into each) stops
        there too, as settrace's hook stops it, instead of running the rest of its ``finally``
        blocks and handlers unchecked (a barrier's action calling the real ``threading`` after
        the run). Another thread's code passes through."""
        if self.aborted:
            me = getcurrent()
            if any(x.glet is me for x in self.workers):
                raise Unwind

    def _opcode_hook(self) -> Callable[[FrameType, str, Site, int], None]:
        """settrace's switch points (a closure: it runs at every step). Only the worker
        holding the token runs, so it is ``current``."""
        run = self
        step = self._step
        pick = self._pick
        handoff = self._handoff
        record = self.events.append
        learner_files = self.learner_files
        max_steps = self.max_steps

        def on_opcode(frame: FrameType, what: str, site: Site, weight: int) -> None:
            w = run.current
            if w is None:
                run.unwinding()
                return
            if what is BACK_EDGE:
                run.back_edge(w, frame.f_code.co_filename, frame.f_code, frame.f_lasti)
            elif run.tracking:
                # A worker alone in its run races with nothing: what its steps touch is not
                # needed (None, "anything", where it is first needed after a worker is added).
                alone = len(run.workers) == 1
                step(
                    w,
                    site,
                    what,
                    None if alone else op_loc(frame, frame.f_lasti, learner_files, w.loc),
                    weight,
                )
            else:  # ``_step`` with nothing to track, written out: a call less at every step
                if run.aborted:
                    raise Unwind
                record(("s", w.index, site, what))
                run.steps += 1
                run.spins = 0
                if run.steps > max_steps:
                    run.fail(diagnosis.livelock(w, site, max_steps))
                    raise Unwind
                nxt = pick(w, weight)
                if nxt is not w and nxt is not None:
                    handoff(w, nxt)

        return on_opcode

    def back_edge(self, w: Worker, filename: str, code: CodeType, offset: int) -> None:
        """A loop in the learner's code jumps back. Gone round twice with no switch point in
        between, and past BUSY_LOOP_S of real time since that second turn (KNOWN_BUSY_LOOP_S at
        a loop that already spun that long in this test), the worker spins where nothing can
        change: it fails the schedule and unwinds here, so no spinning thread outlives the
        test. A loop whose body reaches a switch point is never judged, however slow."""
        if self.aborted:
            raise Unwind
        self.spins += 1
        if self.spins < 3:
            if self.spins == 2:  # round twice with no switch point: time it from here
                self.spin_started = REAL_MONOTONIC()
            return
        spun = REAL_MONOTONIC() - self.spin_started
        if spun <= KNOWN_BUSY_LOOP_S:
            return
        known = self.busy_loops is not None and (code, offset) in self.busy_loops
        if spun > BUSY_LOOP_S or known:
            if self.busy_loops is not None:
                self.busy_loops.add((code, offset))
            site = (filename, loop_line(code, offset))
            bound = KNOWN_BUSY_LOOP_S if known else BUSY_LOOP_S  # never the time: reports repeat
            self.fail(diagnosis.busy_loop(w, site, bound, BUSY_LOOP_S if known else None))
            raise Unwind

    def step(self, w: Worker, site: Site, note: str = "") -> None:
        """A switch point in a primitive: the strategy may hand the token to another worker."""
        self._primitive_step(w, site, note, False, False)

    def _primitive_step(self, w: Worker, site: Site, note: str, timed: bool, blocks: bool) -> None:
        at = None
        if self.tracking and len(self.workers) > 1:  # alone, a step races with nothing
            frame = sys._getframe(1)
            at = sync_loc(frame, self.learner_files, self._number, timed, blocks, w.loc)
        self._step(w, site, note, at)

    def _step(self, w: Worker, site: Site, note: str, at: Loc | None, weight: int = 1) -> None:
        """A switch point; ``at`` is where, for the exhaustive search's footprints; ``weight``
        how many switch points it stands for (``tracing.weights_of``)."""
        if self.aborted:
            raise Unwind
        if self.tracking:
            self._ended = footprint(w.loc, at)
            w.loc = at
        self.events.append(("s", w.index, site, note))
        self.steps += 1
        self.spins = 0
        if self.steps > self.max_steps:
            self.fail(diagnosis.livelock(w, site, self.max_steps))
            raise Unwind
        nxt = self._pick(w, weight)
        if nxt is not w and nxt is not None:
            self._handoff(w, nxt)

    def block(
        self,
        w: Worker,
        pred: Callable[[], bool],
        deadline: float | None,
        obj: Cooperative,
        site: Site,
    ) -> bool:
        """Park ``w`` until ``pred()`` holds or the virtual deadline passes; True if pred."""
        w.status = BLOCKED
        w.pred = pred
        w.deadline = deadline
        w.waiting_on = obj
        w.wait_site = site
        try:
            self._primitive_step(w, site, self._wait_note(obj), deadline is not None, True)
        finally:
            w.status = READY
            w.pred = None
            w.deadline = None
            w.waiting_on = None
        return pred()

    def _wait_note(self, obj: Cooperative) -> str:
        """The report's "waits for Lock 'state.lock'" (a label reads the source: once per object;
        names are fixed before the workers start, so it never changes)."""
        note = self._notes.get(id(obj))
        if note is None:
            info = self.prim_info.get(id(obj))
            name = type(obj).__name__ if info is None else self._name(obj, info)
            note = self._notes[id(obj)] = "waits for " + name
        return note

    def _ring(self, running: Worker) -> tuple[Worker, ...]:
        """The other workers still to finish, in ring order after ``running`` (kept in
        ``running.ring`` until a worker is added or finishes). A finished worker is never an
        option: left in, it cost a look at every step of every worker after it (a run that
        starts three threads a round, for three rounds, ends with nine finished ones)."""
        ring = running.ring
        if ring is None:
            i = running.index
            workers = self.workers
            ring = running.ring = tuple(
                [x for x in workers[i + 1 :] if x.status != DONE]
                + [x for x in workers[:i] if x.status != DONE]
            )
        return ring

    def _forget_rings(self) -> None:
        for x in self.workers:
            x.ring = None

    def _pick(self, running: Worker | None, weight: int = 1) -> Worker | None:
        # At every switch point: the running worker first if it may go on ("0" = no
        # preemption), then the others in ring order that may run. This is the scheduler's
        # innermost loop (one call per step): the common case, a running worker that may go
        # on, is written out with plain loops and no call but a blocked worker's predicate.
        # ``weight``: how many switch points this one stands for (``tracing.weights_of``).
        # ``instrumented_point`` writes the first branch out again for a random walk: a
        # change here belongs there too.
        if running is not None and running.status == READY:
            options: list[Worker] | None = None  # made only when another worker may run
            others = running.ring
            if others is None:  # not ``or``: a lone worker's ring is empty, and falsy
                others = self._ring(running)
            for x in others:
                status = x.status
                if status != READY:
                    if status != BLOCKED:
                        continue
                    # The predicate read into a local first: ``x.pred()`` is a method lookup
                    # that fails on the class before it finds the field.
                    pred = x.pred
                    if pred is None or not pred():
                        deadline = x.deadline
                        if deadline is None or deadline > self.clock.now:
                            continue
                if options is None:
                    options = [running, x]
                else:
                    options.append(x)
            if options is None:
                # Nobody else may run. A search that reads footprints records the point (what
                # the step touched); one without them only needs the decisions (it has no
                # sleep sets either: they are made of footprints).
                if not self.tracking:
                    return running
                options = [running]
            draw = self._draw
            if draw is not None:  # ``_decide`` for a random walk, written out: most decisions
                if weight == 1:
                    idx = int(draw() * len(options))
                else:  # RandomWalk.choose_weighted, with this draw
                    idx = weighted_index(draw(), len(options), weight)
                self.spread += weight
                self.choices.append(idx)
                return options[idx]
            pct = self._pct
            if pct is not None:  # and for PCT, which reads the workers' indexes itself
                idx = pct.choose_indexed(running.index, options, self.spread, weight)
                self.spread += weight
                self.choices.append(idx)
                return options[idx]
            # What the strategy sees: the workers' indexes.
            return self._decide(running, options, [x.index for x in options], True, weight)
        # A worker that blocks, finishes or starts the run. A blocked worker may run if its
        # condition holds or its virtual deadline has come; written out, as is ``_ring``'s
        # cache (a pipeline's workers block at a third of its steps).
        while True:
            run_ok = False
            options = []
            keys = []
            now = self.clock.now
            if running is None:
                ring: tuple[Worker, ...] | list[Worker] = self.workers
            else:
                run_ok = running.status == BLOCKED and (
                    (running.pred is not None and running.pred())
                    or (running.deadline is not None and running.deadline <= now)
                )
                if run_ok:
                    options.append(running)
                    keys.append(running.index)
                found = running.ring
                ring = found if found is not None else self._ring(running)
            for x in ring:
                status = x.status
                if status == READY or (
                    status == BLOCKED
                    and (
                        (x.pred is not None and x.pred())
                        or (x.deadline is not None and x.deadline <= now)
                    )
                ):
                    options.append(x)
                    keys.append(x.index)
            if options:
                return self._decide(running, options, keys, run_ok)
            deadlines = [
                x.deadline for x in self.workers if x.status == BLOCKED and x.deadline is not None
            ]
            if deadlines:
                self.clock.advance_to(min(deadlines))  # autojump: nobody can run before it
                continue
            if all(x.status == DONE for x in self.workers):
                if self.tracker is not None:
                    self.tracker.finish(self._ended)
                return None
            self.fail(diagnosis.deadlock(self, [x for x in self.workers if x.status != DONE]))
            raise Unwind

    def _decide(
        self,
        running: Worker | None,
        options: list[Worker],
        keys: list[int],
        run_ok: bool,
        weight: int = 1,
    ) -> Worker:
        """Who of ``options`` (their indexes: ``keys``) runs next: the tracker's or the
        strategy's choice (the strategy is asked only when there is a choice). ``weight``:
        how many switch points the running worker's stands for (``tracing.weights_of``)."""
        if self.tracker is not None:
            preemptible = run_ok and running is not None and running.status == READY
            idx = self.tracker.point(keys, preemptible, self._ended)
            if idx < 0:  # every enabled worker's step is covered by another run: stop here
                self.abort()
                raise Unwind
            if len(options) > 1:
                self.spread += weight
                self.choices.append(idx)
            return options[idx]
        n = len(options)
        if n == 1:
            return options[0]
        strategy = self.strategy
        if type(strategy) is RandomWalk:  # most schedules: its choice, without a method call
            raw: int = int(strategy.draw() * n)
        else:
            if type(strategy) is Anchored:
                strategy.preemptible = run_ok and running is not None and running.status == READY
            if weight != 1 and isinstance(strategy, RandomWalk):
                raw = strategy.choose_weighted(n, weight)
            elif isinstance(strategy, PCT):  # its change points are drawn over the spread
                raw = strategy.choose(
                    running.index if running is not None else None, keys, self.spread, weight
                )
            else:
                raw = strategy.choose(
                    running.index if running is not None else None, keys, len(self.choices)
                )
        self.spread += weight
        # An index into options already (a random walk's, PCT's) needs no normalizing.
        idx = raw if type(raw) is int and 0 <= raw < n else normalize(raw, n, run_ok)
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
        if w is None:  # from the test's thread: the driver starts, here or on the run's thread
            if self.inline:
                self._drive()
            else:
                POOL.submit(self._drive)
        elif w.status != DONE:  # a finished worker's greenlet ends in the driver instead
            self._switch(nxt)

    def _switch(self, nxt: Worker) -> None:
        """Switch to ``nxt``'s greenlet and come back here when the token returns.

        Through ``sys.call_tracing``: inside a trace or monitoring hook the thread counts as
        tracing, which would leave the worker switched to untraced; it resets that count for
        the call and restores it once this worker is switched back to. The settrace hook is
        the thread's, not a greenlet's: this worker's own (None inside ``untraced``) is put
        back when it resumes. A run on rewritten code (``rewritten``) switches from a plain
        call, with no hook of its own: it switches straight (a tenth of barriers' schedule
        was the detour). ``instrumented_point`` writes that branch out for a preempted worker
        (calling here gave back 40% of what it saved): a change here belongs there too."""
        g = nxt.glet
        if self.rewritten:  # no hook anywhere in the run: a plain switch
            if g is None:
                g, job = self._greenlet(nxt)
                g.switch(*job)
            else:
                g.switch()
            if self.aborted:
                raise Unwind
            return
        hook = gettrace()
        if g is None:  # its first turn: a greenlet is given to it now
            g, job = self._greenlet(nxt)
            call_tracing(g.switch, job)
        else:
            call_tracing(g.switch, ())
        if self.aborted:
            raise Unwind
        if hook is not gettrace():
            settrace(hook)

    def _finish(self, w: Worker) -> None:
        # A lock that has been handed from thread to thread is a signal, not a critical section.
        still_held = [lock for lock in w.held if not lock.handed_off]
        if still_held:
            self.fail(diagnosis.held_at_exit(self, w, still_held))
            raise Unwind
        w.status = DONE
        self._forget_rings()
        self.last_progress = REAL_MONOTONIC()  # the next worker's loops start counting afresh
        self.spins = 0
        if self.tracking:
            self._ended = footprint(w.loc, AT_END)
            w.loc = AT_END
        nxt = self._pick(w)
        if nxt is None:
            self.current = None  # the driver ends the run
        else:
            self._handoff(w, nxt)

    # ----- failures -------------------------------------------------------------------
    def fail(self, failure: Failure) -> None:
        if self.failure is None and not self.aborted:
            self.failure = failure
        self.abort()

    def abort(self) -> None:
        """The run is decided: the running worker unwinds at its next switch point, and the
        driver then unwinds the parked ones."""
        self.aborted = True
        with contextlib.suppress(RuntimeError):
            self.done.release()

    def misuse(self, w: Worker, text: str, signature: str) -> None:
        self.fail(diagnosis.misuse(w, text, signature, self.site()))

    def fail_uncontrolled(self) -> None:
        w = self.current
        if w is None:
            return
        self.stuck = True
        frame = sys._current_frames().get(self.thread_ident)
        self.fail(diagnosis.uncontrolled(w, find_site(frame, self.learner_files), self.watchdog_s))

    def lock_order_cycle(self) -> Failure | None:
        """After a clean schedule: a lock-order cycle that another interleaving turns into a
        deadlock (cycles are reported in the order their first lock was created)."""
        return self.lock_order.cycle(self.label, self.prims.index)

    def release(self) -> None:
        """Untie the run from its workers and primitives once its outcome is read. A
        primitive refers to its run, and the run to its primitives and (through each worker's
        function) to the state that holds them; a worker and its Thread refer to each other.
        Each schedule's objects then waited for the garbage collector (84 a schedule in locks'
        transfer pair, 254 in queues' pipeline), which collected them every few schedules
        inside a later one: a collection that reached the older generation added about 1 ms
        to a one-schedule test. Untied, reference counting frees them as the run ends."""
        for w in self.workers:
            w.fn = _released
            w.thread = w.ring = None
        self.workers = []
        self.current = None
        self.prims = []
        self.lock_order = LockOrder()
        # A learner's state may be a cycle of its own (a barrier whose action is a bound
        # method of the object holding it), and its primitives keep the run: what the run
        # recorded goes, so that the collector finds a small run there, not hundreds of events.
        self.events = []
        self.choices = []
        self.names = {}
        self.prim_info = {}
        self._notes = {}
        self.strategy = RELEASED
        self.tracker = self._draw = self._pct = None


# Real seconds a worker may loop with no switch point before it counts as a busy loop: a
# schedule takes milliseconds, and the watchdog that reports a worker blocked outside the
# harness's control waits 2 s.
BUSY_LOOP_S = 0.5
# At a loop that has already spun BUSY_LOOP_S in this test: shrinking and Hypothesis re-run the
# failing schedule a dozen times, and each run waited the full bound (5.6 s for one drawn test
# in katas/locks). Still ten times a schedule's usual milliseconds; and only a loop that went
# round twice with no switch point in between is ever judged, so a stall cannot trip it.
KNOWN_BUSY_LOOP_S = 0.05
# A loop: its code object and the offset of its back edge.
LoopKey = tuple[CodeType, int]

# The global state, two pieces: which run the patched primitives belong to right now, and the
# loops that have spun BUSY_LOOP_S so far in the explorations of one test (a Prober's) while
# they run (None outside them: every loop gets the full bound).
_ACTIVE: list[Run | None] = [None]
ACTIVE = _ACTIVE  # the same list: read by the hottest paths of other modules (atomic_queue)
_BUSY_LOOPS: list[set[LoopKey] | None] = [None]


# Worker greenlets, kept per harness thread from run to run: making one costs about 7 us (its
# own frame stack), a few times per schedule. A greenlet belongs to the thread that made it,
# so each thread keeps its own, in a C-level thread-local (threading.local may be patched).
_SPARE = _thread._local()


def _spare_greenlets() -> list[greenlet.greenlet]:
    spare: list[greenlet.greenlet] | None = getattr(_SPARE, "greenlets", None)
    if spare is None:
        spare = _SPARE.greenlets = []
    return spare


def _serve(job: tuple[Run, Worker] | None) -> None:
    """A worker greenlet: runs one worker at a time, each in a fresh context (as a new thread
    would), then waits among its thread's spare greenlets for the next one. A worker's
    function ends back in the driver, its parent, as if the greenlet had ended. Started
    with None, it only waits (``spare_greenlets``)."""
    me = getcurrent()
    driver = me.parent  # the thread's own greenlet, which drives every run on it
    assert driver is not None
    while True:
        if job is not None:
            run, w = job
            contextvars.Context().run(run._bootstrap, w)
            del run, w  # a spare greenlet keeps no run alive
        job = None
        _spare_greenlets().append(me)
        job = driver.switch()


def spare_greenlets(count: int) -> None:
    """On the run's thread, before an exploration's first schedule: ``count`` spare greenlets,
    started and waiting as a finished worker's does. A process's first schedule on a new
    thread otherwise makes them itself (a greenlet's first switch sets up its stack)."""
    spare = _spare_greenlets()
    driver = getcurrent()
    while len(spare) < count:
        greenlet.greenlet(_serve, driver).switch(None)


def active_run() -> Run | None:
    return _ACTIVE[0]


def instrumented_point(args: tuple[CodeType, int, str, Site, int]) -> None:
    """A switch point of rewritten learner code (plugins/probe/instrument): ``args`` names the
    original instruction. The settrace hook's step (``Run._opcode_hook``), for a run that
    tracks nothing; any other thread or greenlet that runs the code passes through."""
    run = _ACTIVE[0]
    if run is None or not run.rewritten:
        return
    w = run.current
    if w is None or w.glet is not getcurrent():
        run.unwinding()
        return
    code, offset, what, site, weight = args
    if what is BACK_EDGE:
        run.back_edge(w, code.co_filename, code, offset)
        return
    if run.aborted:
        raise Unwind
    events = run.events
    events.append(("s", w.index, site, what))
    steps = run.steps + 1
    run.steps = steps
    run.spins = 0
    if steps > run.max_steps:
        run.fail(diagnosis.livelock(w, site, run.max_steps))
        raise Unwind
    draw = run._draw
    if draw is None or w.status != READY:
        nxt = run._pick(w, weight)
    else:
        # ``_pick``'s first branch for a random walk, written out: a call less at most steps
        # of most schedules (the 903-step walk: 10.17 -> 9.64 M instructions). Keep it in
        # step with ``_pick``: test_probe_speed's written-out-strategies test and
        # test_probe_rewrite's either-hook comparison fail when the two part.
        options: list[Worker] | None = None
        others = w.ring
        if others is None:
            others = run._ring(w)
        for x in others:
            status = x.status
            if status != READY:
                if status != BLOCKED:
                    continue
                pred = x.pred
                if pred is None or not pred():
                    deadline = x.deadline
                    if deadline is None or deadline > run.clock.now:
                        continue
            if options is None:
                options = [w, x]
            else:
                options.append(x)
        if options is None:
            return
        if weight == 1:
            idx = int(draw() * len(options))
        else:  # RandomWalk.choose_weighted, with this draw
            idx = weighted_index(draw(), len(options), weight)
        run.spread += weight
        run.choices.append(idx)
        nxt = options[idx]
    if nxt is w or nxt is None:
        return
    if w.status != READY:
        run._handoff(w, nxt)
        return
    # ``_handoff`` and ``_switch`` for a preempted worker on rewritten code, written out: a
    # random walk preempts at half the steps of a two-worker run, two thirds with three
    # (calling ``_switch`` instead: 11.87 M instructions against 11.43 M for three workers'
    # 903 steps). Keep it in step with ``_switch``'s rewritten branch.
    events.append(("x", w.index, nxt.index, "preempted"))
    run.current = nxt
    g = nxt.glet
    if g is None:
        g, job = run._greenlet(nxt)
        g.switch(*job)
    else:
        g.switch()
    if run.aborted:
        raise Unwind


@contextlib.contextmanager
def remembering_busy_loops(known: set[LoopKey]) -> Iterator[None]:
    """Runs made inside judge a spin at a loop in ``known`` after KNOWN_BUSY_LOOP_S, and add to
    it every loop they find spinning."""
    _BUSY_LOOPS[0] = known
    try:
        yield
    finally:
        _BUSY_LOOPS[0] = None


def set_active(run: Run | None) -> None:
    _ACTIVE[0] = run
