"""Cooperative ``threading.Lock`` and ``threading.RLock``.

Made during a run, a lock belongs to that run: from its controlled workers acquiring is a
switch point (and may park the worker in the scheduler), releasing is one after the lock
is free. Made outside a run it wraps the real lock; a run lock used from an uncontrolled
thread (setup, check) falls back to polling with a real timeout. Same return values, same
exceptions as the real classes.
"""

from __future__ import annotations

import threading
from typing import Any

from .cooperative import PlainAcquirable, poll
from .scheduler import Run, Worker
from .sites import NO_SITE, Site
from .tracing import untraced

REAL_LOCK = threading.Lock
REAL_RLOCK = threading.RLock

_OUTSIDE = object()  # owner marker for a run lock taken by an uncontrolled thread


def _check_lock_args(blocking: bool, timeout: float) -> None:
    if not blocking and timeout != -1:
        raise ValueError("can't specify a timeout for a non-blocking call")
    if timeout < 0 and timeout != -1:
        raise ValueError("timeout value must be a non-negative number")


def _owner_name(owner: object) -> str:
    if isinstance(owner, Worker):
        return owner.name
    return "a thread outside the run"


class Lock(PlainAcquirable):
    """Cooperative ``threading.Lock``."""

    kind = "Lock"
    # Released by a thread that did not acquire it: a signal, not a critical section.
    handed_off = False

    def __init__(self) -> None:
        self._bind()
        self._real: Any = self._make_real() if self._run is None else None
        self._owner: object = None
        self._count = 0
        self.acquired_at: Site = NO_SITE  # where the current holder took it

    def _make_real(self) -> Any:
        return REAL_LOCK()

    # shared by Lock and RLock
    def _take(self, w: Worker, site: Site) -> None:
        self._owner = w
        self._count = 1
        self.acquired_at = site
        w.held.append(self)

    def _drop_all(self) -> None:
        owner = self._owner
        self._owner = None
        self._count = 0
        if isinstance(owner, Worker) and self in owner.held:
            owner.held.remove(self)

    def _reentrant(self) -> bool:
        return False

    @untraced
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._real is not None:
            return bool(self._real.acquire(blocking, timeout))
        if timeout != -1 or not blocking:  # the defaults need no check (the usual case)
            _check_lock_args(blocking, timeout)
        ctl = self._ctl()
        if ctl is None:
            return self._acquire_outside(blocking, timeout)
        run, w = ctl
        if self._owner is w and self._reentrant():
            self._count += 1
            return True
        if w.atomic and self._owner is None:  # a plain queue's mutex, inside its method
            self._take(w, NO_SITE)
            return True
        site = run.site()
        if blocking and timeout == -1:
            # Only an acquire that waits forever can deadlock; a timed or non-blocking one
            # backs off, so it adds no edge to the lock-order graph.
            run.lock_order.note_acquire(w, self, site)
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
            if not poll(lambda: self._owner is None, timeout, f"acquiring {self.kind}"):
                return False
        self._owner = _OUTSIDE
        self._count = 1
        return True

    @untraced
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
                self.handed_off = True
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
        if self._release_one() and not w.atomic:
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

    acquire_lock = acquire
    release_lock = release
    locked_lock = locked

    # Condition support (same role as threading's _is_owned/_release_save/_acquire_restore)
    def owned_by(self, w: Worker) -> bool:
        return self._owner is w

    def release_save(self) -> int:
        """Free the lock whatever its recursion level; returns the level to restore."""
        count = self._count
        self._drop_all()
        return count

    def acquire_restore(self, run: Run, w: Worker, count: int, site: Site) -> None:
        if self._owner is not None:
            run.block(w, lambda: self._owner is None, None, self, site)
        self._take(w, site)
        self._count = count

    def restore_outside(self, count: int) -> None:
        """Give the lock back to the uncontrolled thread that waited on a condition."""
        self._owner = _OUTSIDE
        self._count = count

    def wait_text(self, run: Run) -> str:
        owner = self._owner
        holder = f", held by {owner.name}" if isinstance(owner, Worker) else ""
        return run.label(self) + holder

    def deadlock_hint(self, run: Run, worker: Worker) -> str:
        if self._owner is not worker:
            return ""
        signal = (
            f"{worker.name} waits for a {self.kind} it holds, for another thread to release it "
            "as a signal (as a Condition's waiter lock is): nobody did, a lost wakeup"
        )
        if self.handed_off:  # this lock has served as a signal before
            return signal + "."
        return (
            f"{worker.name} waits for a {self.kind} it already holds. If that is a mistake: a "
            f"Lock is not re-entrant (use RLock, or do not re-acquire). If the lock is a signal "
            f"that another thread releases (a Condition's waiter lock), nobody released it: a "
            f"lost wakeup."
        )

    def __repr__(self) -> str:
        if self._real is not None:
            return f"<probe {self.kind} wrapping {self._real!r}>"
        state = "locked" if self._owner is not None else "unlocked"
        return f"<probe {self.kind} {state}>"


class RLock(Lock):
    """Cooperative ``threading.RLock``."""

    kind = "RLock"

    def _make_real(self) -> Any:
        return REAL_RLOCK()

    def _reentrant(self) -> bool:
        return True

    def _unlocked_message(self) -> str:
        return "cannot release un-acquired lock"

    @untraced
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
