"""Cooperative replacements for threading's primitives, Thread and the time functions.

Objects made while a run is active belong to that run: from its controlled workers every
operation is a switch point (before acquire/wait, after release/notify/set) and blocking
parks the worker in the scheduler. Objects made outside a run wrap the real primitive, and
run objects used from an uncontrolled thread (setup, check) fall back to polling with a real
timeout, so nothing crashes and nothing hangs. Semantics follow the real classes: same
return values, same exceptions.
"""

from __future__ import annotations

import _thread
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from .clock import (
    EPOCH_ORIGIN,
    MONOTONIC_ORIGIN,
    REAL_MONOTONIC,
    REAL_PERF_COUNTER,
    REAL_SLEEP,
    REAL_TIME,
)
from .scheduler import DONE, Run, Unwind, Worker, active_run
from .sites import NO_SITE, Site

REAL_LOCK = threading.Lock
REAL_RLOCK = threading.RLock
REAL_CONDITION = threading.Condition
REAL_SEMAPHORE = threading.Semaphore
REAL_BOUNDED_SEMAPHORE = threading.BoundedSemaphore
REAL_EVENT = threading.Event
REAL_BARRIER = threading.Barrier
REAL_THREAD = threading.Thread
REAL_CURRENT_THREAD = threading.current_thread
BrokenBarrierError = threading.BrokenBarrierError

_OUTSIDE = object()  # owner marker for a run lock taken by an uncontrolled thread
_thread_names = itertools.count(1)


def _poll(pred: Callable[[], bool], timeout: float | None, what: str) -> bool:
    """Uncontrolled wait on a run object: real-time polling, never unbounded."""
    start = REAL_MONOTONIC()
    end = None if timeout is None or timeout < 0 else start + timeout
    while not pred():
        now = REAL_MONOTONIC()
        if end is not None and now >= end:
            return False
        if end is None and now - start > 2.0:
            raise RuntimeError(
                f"probe: {what} would block forever outside a controlled run "
                "(it belongs to a finished schedule)"
            )
        REAL_SLEEP(0.001)
    return True


class _Prim:
    """Binds an object to the run that is active when it is created (if any)."""

    _probe_kind = "?"
    _run: Run | None

    def _probe_bind(self) -> None:
        run = active_run()
        self._run = run
        if run is not None:
            run.register(self, self._probe_kind)

    def _ctl(self) -> tuple[Run, Worker] | None:
        run = self._run
        if run is None:
            return None
        w = run.current_worker()
        if w is None:
            return None
        if run.aborted:
            raise Unwind
        return run, w

    def _probe_wait_text(self, run: Run) -> str:
        return run.label(self)


def _check_lock_args(blocking: bool, timeout: float) -> None:
    if not blocking and timeout != -1:
        raise ValueError("can't specify a timeout for a non-blocking call")
    if timeout < 0 and timeout != -1:
        raise ValueError("timeout value must be a non-negative number")


def _owner_name(owner: object) -> str:
    if isinstance(owner, Worker):
        return owner.name
    return "a thread outside the run"


class Lock(_Prim):
    """Cooperative ``threading.Lock``."""

    _probe_kind = "Lock"

    def __init__(self) -> None:
        self._probe_bind()
        self._real: Any = REAL_LOCK() if self._run is None else None
        self._owner: object = None
        self._count = 0
        self._probe_acq_site: Site = NO_SITE
        self._probe_handoff = False  # released by a thread that did not acquire it

    # shared by Lock and RLock
    def _take(self, w: Worker, site: Site) -> None:
        self._owner = w
        self._count = 1
        self._probe_acq_site = site
        w.held.append(self)

    def _drop_all(self) -> None:
        owner = self._owner
        self._owner = None
        self._count = 0
        if isinstance(owner, Worker) and self in owner.held:
            owner.held.remove(self)

    def _reentrant(self) -> bool:
        return False

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._real is not None:
            return bool(self._real.acquire(blocking, timeout))
        _check_lock_args(blocking, timeout)
        ctl = self._ctl()
        if ctl is None:
            return self._acquire_outside(blocking, timeout)
        run, w = ctl
        if self._reentrant() and self._owner is w:
            self._count += 1
            return True
        site = run.site()
        if blocking and timeout == -1:
            # Only an acquire that waits forever can deadlock; a timed or non-blocking one
            # backs off, so it adds no edge to the lock-order graph.
            run.note_acquire(w, self, site)
        run.step(w, site)
        if self._owner is None:
            self._take(w, site)
            return True
        if not blocking:
            return False
        deadline = None if timeout == -1 else run.clock.deadline(timeout)
        if run.block(w, lambda: self._owner is None, deadline, self, site):
            self._take(w, site)
            return True
        return False

    def _acquire_outside(self, blocking: bool, timeout: float) -> bool:
        if self._reentrant() and self._owner is _OUTSIDE:
            self._count += 1
            return True
        if self._owner is not None:
            if not blocking:
                return False
            if not _poll(lambda: self._owner is None, timeout, f"acquiring {self._probe_kind}"):
                return False
        self._owner = _OUTSIDE
        self._count = 1
        return True

    def release(self) -> None:
        if self._real is not None:
            self._real.release()
            return
        ctl = self._ctl()
        if ctl is None:
            if self._owner is None:
                raise RuntimeError(self._unlocked_message())
            self._release_one()
            return
        run, w = ctl
        if self._owner is None:
            run.misuse(w, f"released {run.label(self)}, which nobody holds", "release-unheld")
            raise RuntimeError(self._unlocked_message())
        if self._owner is not w:
            if not self._reentrant():
                # Legal for a plain Lock, and how locks are used as signals (CPython's own
                # Condition hands its waiter locks over this way): a hand-off, not misuse.
                self._probe_handoff = True
                self._drop_all()
                run.step(w, run.site())
                return
            run.misuse(
                w,
                f"released {run.label(self)}, which {_owner_name(self._owner)} holds "
                "(only the thread that acquired an RLock may release it)",
                "release-foreign",
            )
            raise RuntimeError("cannot release un-acquired lock")
        if self._release_one():
            run.step(w, run.site())

    def _release_one(self) -> bool:
        """Drop one level; True when the lock became free."""
        self._count -= 1
        if self._count <= 0:
            self._drop_all()
            return True
        return False

    def _unlocked_message(self) -> str:
        return "release unlocked lock"

    def locked(self) -> bool:
        if self._real is not None:
            return bool(self._real.locked())
        return self._owner is not None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    acquire_lock = acquire
    release_lock = release
    locked_lock = locked

    # Condition support (same role as threading's _is_owned/_release_save/_acquire_restore)
    def _probe_owned_by(self, w: Worker) -> bool:
        return self._owner is w

    def _probe_release_save(self) -> int:
        count = self._count
        self._drop_all()
        return count

    def _probe_acquire_restore(self, run: Run, w: Worker, count: int, site: Site) -> None:
        if self._owner is not None:
            run.block(w, lambda: self._owner is None, None, self, site)
        self._take(w, site)
        self._count = count

    def _probe_wait_text(self, run: Run) -> str:
        owner = self._owner
        holder = f", held by {owner.name}" if isinstance(owner, Worker) else ""
        return run.label(self) + holder

    def _probe_deadlock_hint(self, run: Run, w: Worker) -> str:
        if self._owner is w:
            return (
                f"{w.name} waits for a {self._probe_kind} it already holds: a Lock is not "
                "re-entrant (use RLock, or do not re-acquire)."
            )
        return ""

    def __repr__(self) -> str:
        if self._real is not None:
            return f"<probe {self._probe_kind} wrapping {self._real!r}>"
        state = "locked" if self._owner is not None else "unlocked"
        return f"<probe {self._probe_kind} {state}>"


class RLock(Lock):
    """Cooperative ``threading.RLock``."""

    _probe_kind = "RLock"

    def __init__(self) -> None:
        self._probe_bind()
        self._real = REAL_RLOCK() if self._run is None else None
        self._owner = None
        self._count = 0
        self._probe_acq_site = NO_SITE

    def _reentrant(self) -> bool:
        return True

    def _unlocked_message(self) -> str:
        return "cannot release un-acquired lock"

    def release(self) -> None:
        if self._real is None:
            ctl = self._ctl()
            if ctl is not None and self._owner is not ctl[1]:
                run, w = ctl
                run.misuse(w, f"released {run.label(self)}, which it does not hold", "rlock")
                raise RuntimeError("cannot release un-acquired lock")
            if ctl is None and self._owner is not _OUTSIDE:
                raise RuntimeError("cannot release un-acquired lock")
        super().release()

    def _is_owned(self) -> bool:
        if self._real is not None:
            return bool(self._real._is_owned())
        ctl = self._ctl()
        return self._owner is (ctl[1] if ctl else _OUTSIDE)


def _remove_identical(items: list[list[bool]], item: list[bool]) -> None:
    """Remove `item` itself: waiters are equal lists ([False]), so `list.remove` could take
    another waiter's entry and leave that waiter never woken."""
    for index, candidate in enumerate(items):
        if candidate is item:
            del items[index]
            return


class Condition(_Prim):
    """Cooperative ``threading.Condition``.

    ``wait`` registers the waiter before giving up the lock, and giving it up is not a
    switch point, so no ``notify`` can slip in between (the prototype's false-alarm bug).
    """

    _probe_kind = "Condition"

    def __init__(self, lock: Any = None) -> None:
        if lock is None:
            lock = RLock()
        self._lock = lock
        self._probe_bind()
        self._waiters: list[list[bool]] = []
        coop = isinstance(lock, Lock) and lock._real is None
        self._real: Any = None
        if self._run is None or not coop:
            base = lock._real if isinstance(lock, Lock) and lock._real is not None else lock
            self._real = REAL_CONDITION(base)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(self._lock.acquire(blocking, timeout))

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return bool(self._lock.acquire())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()

    def _owned(self, run: Run, w: Worker, verb: str) -> None:
        if not self._lock._probe_owned_by(w):
            run.misuse(
                w,
                f"called {verb}() on {run.label(self)} without holding its lock "
                f"(use `with cond:` around {verb})",
                f"{verb}-unowned",
            )
            raise RuntimeError(f"cannot {verb} on un-acquired lock")

    def wait(self, timeout: float | None = None) -> bool:
        if self._real is not None:
            return bool(self._real.wait(timeout))
        ctl = self._ctl()
        if ctl is None:
            return self._wait_outside(timeout)
        run, w = ctl
        self._owned(run, w, "wait")
        site = run.site()
        waiter = [False]
        self._waiters.append(waiter)  # registered while the lock is still held
        saved = self._lock._probe_release_save()
        try:
            notified = run.block(w, lambda: waiter[0], run.clock.deadline(timeout), self, site)
        finally:
            if not waiter[0]:
                _remove_identical(self._waiters, waiter)
        self._lock._probe_acquire_restore(run, w, saved, site)
        return notified

    def _wait_outside(self, timeout: float | None) -> bool:
        waiter = [False]
        self._waiters.append(waiter)
        saved = self._lock._probe_release_save()
        try:
            return _poll(lambda: waiter[0], timeout, "Condition.wait")
        finally:
            _remove_identical(self._waiters, waiter)
            self._lock._owner = _OUTSIDE
            self._lock._count = saved

    def wait_for(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        if self._real is not None:
            return self._real.wait_for(predicate, timeout)
        ctl = self._ctl()
        now: Callable[[], float] = (lambda: ctl[0].clock.now) if ctl else REAL_MONOTONIC
        endtime: float | None = None
        waittime = timeout
        result = predicate()
        while not result:
            if waittime is not None:
                if endtime is None:
                    endtime = now() + waittime
                else:
                    waittime = endtime - now()
                    if waittime <= 0:
                        break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        if self._real is not None:
            self._real.notify(n)
            return
        ctl = self._ctl()
        if ctl is not None:
            self._owned(ctl[0], ctl[1], "notify")
        for waiter in self._waiters[:n]:
            waiter[0] = True
        del self._waiters[:n]
        if ctl is not None:
            ctl[0].step(ctl[1], ctl[0].site())

    def notify_all(self) -> None:
        self.notify(len(self._waiters))

    notifyAll = notify_all

    def _probe_wait_text(self, run: Run) -> str:
        return "a notify on " + run.label(self)

    def _probe_deadlock_hint(self, run: Run, w: Worker) -> str:
        return (
            f"Nobody is left to notify {run.label(self).split(' (created')[0]}: a wakeup was "
            "missed, or the waiter checks its condition with `if` instead of `while`."
        )


class Semaphore(_Prim):
    """Cooperative ``threading.Semaphore``."""

    _probe_kind = "Semaphore"

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._probe_bind()
        self._real: Any = None
        if self._run is None:
            self._real = REAL_BOUNDED_SEMAPHORE(value) if self._bounded() else REAL_SEMAPHORE(value)
        self._value = value
        self._initial = value

    def _bounded(self) -> bool:
        return False

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if self._real is not None:
            return bool(self._real.acquire(blocking, timeout))
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        ctl = self._ctl()
        if ctl is None:
            if self._value == 0 and (
                not blocking or not _poll(lambda: self._value > 0, timeout, "Semaphore.acquire")
            ):
                return False
            self._value -= 1
            return True
        run, w = ctl
        site = run.site()
        run.step(w, site)
        if self._value > 0:
            self._value -= 1
            return True
        if not blocking:
            return False
        if run.block(w, lambda: self._value > 0, run.clock.deadline(timeout), self, site):
            self._value -= 1
            return True
        return False

    def release(self, n: int = 1) -> None:
        if self._real is not None:
            self._real.release(n)
            return
        if n < 1:
            raise ValueError("n must be one or more")
        ctl = self._ctl()
        if self._bounded() and self._value + n > self._initial:
            if ctl is not None:
                ctl[0].misuse(
                    ctl[1],
                    f"released {ctl[0].label(self)} more times than it was acquired "
                    f"(count would be {self._value + n}, bound {self._initial})",
                    "over-release",
                )
            raise ValueError("Semaphore released too many times")
        self._value += n
        if ctl is not None:
            ctl[0].step(ctl[1], ctl[0].site())

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _probe_wait_text(self, run: Run) -> str:
        return f"{run.label(self)} (count 0)"

    def _probe_over_released(self) -> bool:
        # Signal semaphores start at 0 and may legitimately end above it.
        return self._real is None and self._initial > 0 and self._value > self._initial


class BoundedSemaphore(Semaphore):
    """Cooperative ``threading.BoundedSemaphore``."""

    _probe_kind = "BoundedSemaphore"

    def _bounded(self) -> bool:
        return True


class Event(_Prim):
    """Cooperative ``threading.Event``."""

    _probe_kind = "Event"

    def __init__(self) -> None:
        self._probe_bind()
        self._real: Any = REAL_EVENT() if self._run is None else None
        self._flag = False
        self._generation = 0  # bumped by set(): wakes everyone waiting at that moment

    def is_set(self) -> bool:
        if self._real is not None:
            return bool(self._real.is_set())
        return self._flag

    isSet = is_set

    def set(self) -> None:
        if self._real is not None:
            self._real.set()
            return
        self._flag = True
        self._generation += 1
        ctl = self._ctl()
        if ctl is not None:
            ctl[0].step(ctl[1], ctl[0].site())

    def clear(self) -> None:
        if self._real is not None:
            self._real.clear()
            return
        self._flag = False
        ctl = self._ctl()
        if ctl is not None:
            ctl[0].step(ctl[1], ctl[0].site())

    def wait(self, timeout: float | None = None) -> bool:
        if self._real is not None:
            return bool(self._real.wait(timeout))
        ctl = self._ctl()
        gen = self._generation
        if ctl is None:
            return self._flag or _poll(lambda: self._generation != gen, timeout, "Event.wait")
        run, w = ctl
        site = run.site()
        run.step(w, site)
        if self._flag:
            return True
        gen = self._generation
        return run.block(
            w, lambda: self._generation != gen, run.clock.deadline(timeout), self, site
        )

    def _probe_wait_text(self, run: Run) -> str:
        return f"{run.label(self)} to be set"

    def _probe_deadlock_hint(self, run: Run, w: Worker) -> str:
        return (
            f"Missed wakeup: {run.label(self).split(' (created')[0]} is not set and nobody "
            "will set it (was it set and cleared before the waiter looked?)."
        )


class _BarrierRound:
    __slots__ = ("broken", "released")

    def __init__(self) -> None:
        self.released = False
        self.broken = False


class Barrier(_Prim):
    """Cooperative ``threading.Barrier`` (action, timeout, abort, reset, broken)."""

    _probe_kind = "Barrier"

    def __init__(
        self, parties: int, action: Callable[[], object] | None = None, timeout: float | None = None
    ) -> None:
        if parties < 1:
            raise ValueError("parties must be >= 1")
        self._probe_bind()
        self._real: Any = None
        if self._run is None:
            self._real = REAL_BARRIER(parties, action, timeout)  # type: ignore[arg-type]
        self._parties = parties
        self._action = action
        self._timeout = timeout
        self._count = 0
        self._broken = False
        self._round = _BarrierRound()

    @property
    def parties(self) -> int:
        return self._parties

    @property
    def n_waiting(self) -> int:
        if self._real is not None:
            return int(self._real.n_waiting)
        return self._count

    @property
    def broken(self) -> bool:
        if self._real is not None:
            return bool(self._real.broken)
        return self._broken

    def _break(self) -> None:
        self._broken = True
        self._round.broken = True
        self._count = 0

    def wait(self, timeout: float | None = None) -> int:
        if self._real is not None:
            return int(self._real.wait(timeout))
        if timeout is None:
            timeout = self._timeout
        ctl = self._ctl()
        if ctl is not None:
            ctl[0].step(ctl[1], ctl[0].site())
        if self._broken:
            raise BrokenBarrierError
        index = self._count
        self._count += 1
        rnd = self._round
        if self._count == self._parties:
            if self._action is not None:
                try:
                    self._action()
                except BaseException:
                    self._break()
                    raise
            rnd.released = True
            self._count = 0
            self._round = _BarrierRound()
            if ctl is not None:
                ctl[0].step(ctl[1], ctl[0].site())
            return index
        if ctl is None:
            ok = _poll(lambda: rnd.released or rnd.broken, timeout, "Barrier.wait")
        else:
            run, w = ctl
            ok = run.block(
                w,
                lambda: rnd.released or rnd.broken,
                run.clock.deadline(timeout),
                self,
                run.site(),
            )
        if rnd.broken:
            raise BrokenBarrierError
        if not ok:
            if self._round is rnd:
                self._break()
            raise BrokenBarrierError
        return index

    def reset(self) -> None:
        if self._real is not None:
            self._real.reset()
            return
        self._round.broken = True  # current waiters get BrokenBarrierError
        self._round = _BarrierRound()
        self._count = 0
        self._broken = False

    def abort(self) -> None:
        if self._real is not None:
            self._real.abort()
            return
        self._break()

    def _probe_wait_text(self, run: Run) -> str:
        return f"{run.label(self)} ({self._count} of {self._parties} parties arrived)"

    def _probe_deadlock_hint(self, run: Run, w: Worker) -> str:
        return (
            f"{run.label(self).split(' (created')[0]} expects {self._parties} parties but only "
            f"{self._count} reached wait(): the party count must equal the number of workers "
            "that call wait()."
        )


class Thread:
    """Cooperative ``threading.Thread``: a real class learners can subclass (override run)."""

    def __init__(
        self,
        group: None = None,
        target: Callable[..., object] | None = None,
        name: str | None = None,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        daemon: bool | None = None,
    ) -> None:
        if group is not None:
            raise AssertionError("group argument must be None for now")
        run = active_run()
        self._probe_run = run
        if name is None:
            if run is not None:
                run.thread_seq += 1
                n = run.thread_seq
            else:
                n = next(_thread_names)
            name = f"Thread-{n}"
            target_name = getattr(target, "__name__", None)
            if target_name:
                name += f" ({target_name})"
        self._name = str(name)
        self._target = target
        self._args = tuple(args)
        self._kwargs = dict(kwargs or {})
        self._daemonic = bool(daemon) if daemon is not None else False
        self._started = False
        self._worker: Worker | None = None
        self._real_done: Any = None
        self._real_ident: int | None = None

    def run(self) -> None:
        try:
            if self._target is not None:
                self._target(*self._args, **self._kwargs)
        finally:
            del self._target, self._args, self._kwargs

    def start(self) -> None:
        if self._started:
            raise RuntimeError("threads can only be started once")
        self._started = True
        run = self._probe_run
        if run is not None and run is active_run() and not run.closed:
            w = run.current_worker()
            if w is not None:
                if run.aborted:
                    raise Unwind
                self._worker = run.spawn(self._name, self.run, self)
                run.step(w, run.site())
                return
            if run.current is None and not run.workers_launched:
                self._worker = run.add_worker(self._name, self.run, self)
                return
        self._real_done = _thread.allocate_lock()
        self._real_done.acquire()
        _thread.start_new_thread(self._real_body, ())

    def _real_body(self) -> None:
        self._real_ident = _thread.get_ident()
        try:
            self.run()
        except BaseException:
            pass  # like an uncaught thread exception: not the caller's to handle
        finally:
            self._real_done.release()

    def join(self, timeout: float | None = None) -> None:
        if not self._started:
            raise RuntimeError("cannot join thread before it is started")
        target = self._worker
        if target is not None:
            run = self._probe_run
            w = run.current_worker() if run is not None else None
            if run is not None and w is not None:
                if target is w:
                    raise RuntimeError("cannot join current thread")
                if run.aborted:
                    raise Unwind
                site = run.site()
                run.step(w, site)
                if target.status != DONE:
                    run.block(
                        w, lambda: target.status == DONE, run.clock.deadline(timeout), self, site
                    )
                return
            _poll(lambda: target.status == DONE, timeout, "Thread.join")
            return
        if self._real_done is not None:
            wait = -1 if timeout is None else max(0.0, timeout)
            if self._real_done.acquire(True, wait):
                self._real_done.release()

    def is_alive(self) -> bool:
        if self._worker is not None:
            return self._worker.status != DONE
        if self._real_done is not None:
            return bool(self._real_done.locked())
        return False

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = str(value)

    @property
    def ident(self) -> int | None:
        if self._worker is not None:
            return self._worker.ident or None
        return self._real_ident

    native_id = ident

    @property
    def daemon(self) -> bool:
        return self._daemonic

    @daemon.setter
    def daemon(self, value: bool) -> None:
        if self._started:
            raise RuntimeError("cannot set daemon status of active thread")
        self._daemonic = bool(value)

    def getName(self) -> str:
        return self._name

    def setName(self, name: str) -> None:
        self._name = str(name)

    def isDaemon(self) -> bool:
        return self._daemonic

    def setDaemon(self, daemonic: bool) -> None:
        self.daemon = daemonic

    def _probe_wait_text(self, run: Run) -> str:
        return f"{self._name} to finish"

    def __repr__(self) -> str:
        status = "started" if self._started else "initial"
        if self._started and not self.is_alive():
            status = "stopped"
        return f"<probe Thread({self._name}, {status})>"


def current_thread() -> Any:
    run = active_run()
    w = run.current_worker() if run is not None else None
    if w is None or run is None:
        return REAL_CURRENT_THREAD()
    if w.thread is None:
        t = Thread.__new__(Thread)
        t._probe_run = run
        t._name = w.name
        t._daemonic = True
        t._started = True
        t._worker = w
        t._real_done = None
        t._real_ident = None
        w.thread = t
    return w.thread


# ----- time -------------------------------------------------------------------------------
class _Sleeping:
    def _probe_wait_text(self, run: Run) -> str:
        return "the end of a time.sleep()"


_SLEEPING = _Sleeping()


def _virtual_now() -> float | None:
    run = active_run()
    if run is None or run.current_worker() is None:
        return None
    return run.clock.now


def sleep(secs: float) -> None:
    run = active_run()
    w = run.current_worker() if run is not None else None
    if run is None or w is None:
        REAL_SLEEP(secs)
        return
    if run.aborted:
        raise Unwind
    if secs < 0:
        raise ValueError("sleep length must be non-negative")
    site = run.site()
    if secs == 0:
        run.step(w, site)
        return
    run.block(w, lambda: False, run.clock.now + secs, _SLEEPING, site)


def monotonic() -> float:
    now = _virtual_now()
    return REAL_MONOTONIC() if now is None else MONOTONIC_ORIGIN + now


def perf_counter() -> float:
    now = _virtual_now()
    return REAL_PERF_COUNTER() if now is None else MONOTONIC_ORIGIN + now


def time() -> float:
    now = _virtual_now()
    return REAL_TIME() if now is None else EPOCH_ORIGIN + now


def monotonic_ns() -> int:
    return int(monotonic() * 1e9)


def perf_counter_ns() -> int:
    return int(perf_counter() * 1e9)


def time_ns() -> int:
    return int(time() * 1e9)


class Timer(Thread):
    """Cooperative ``threading.Timer``: waits on the virtual clock, so a 5 s delay costs nothing."""

    def __init__(
        self,
        interval: float,
        function: Callable[..., object],
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.interval = interval
        self.function = function
        self.args = tuple(args) if args is not None else ()
        self.kwargs = dict(kwargs) if kwargs is not None else {}
        self.finished = Event()

    def cancel(self) -> None:
        """Stop the timer if it has not fired yet."""
        self.finished.set()

    def run(self) -> None:
        self.finished.wait(self.interval)
        if not self.finished.is_set():
            self.function(*self.args, **self.kwargs)
        self.finished.set()
