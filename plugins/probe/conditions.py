"""Cooperative ``threading.Condition``.

Made during a run over a cooperative lock, waiting parks the worker in the scheduler and
``notify`` is a switch point; otherwise it wraps a real ``threading.Condition``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .clock import REAL_MONOTONIC
from .cooperative import Acquirable, poll
from .locks import Lock, RLock
from .scheduler import Run, Worker
from .tracing import untraced, untraced_if

REAL_CONDITION = threading.Condition


def _remove_identical(items: list[list[bool]], item: list[bool]) -> None:
    """Remove `item` itself: waiters are equal lists ([False]), so `list.remove` could take
    another waiter's entry and leave that waiter never woken."""
    for index, candidate in enumerate(items):
        if candidate is item:
            del items[index]
            return


def _over_a_harness_lock(cond: Condition) -> bool:
    """Its lock is the harness's own (no learner code runs in acquire or release)."""
    return type(cond._lock) in (Lock, RLock)


class Condition(Acquirable):
    """Cooperative ``threading.Condition``.

    ``wait`` registers the waiter before giving up the lock, and giving it up is not a
    switch point, so no ``notify`` can slip in between (the prototype's false-alarm bug).
    """

    kind = "Condition"

    def __init__(self, lock: Any = None) -> None:
        if lock is None:
            lock = RLock()
        self._lock = lock
        self._bind()
        self._waiters: list[list[bool]] = []
        # Exactly one of the two is set: the cooperative lock this condition waits with,
        # or the real condition it wraps.
        self._coop: Lock | None = None
        self._real: Any = None
        if self._run is not None and isinstance(lock, Lock) and lock._real is None:
            self._coop = lock
        else:
            base = lock._real if isinstance(lock, Lock) and lock._real is not None else lock
            self._real = REAL_CONDITION(base)

    # Untraced over the harness's own lock (3.11: each frame of a worker costs a hook call).
    @untraced_if(_over_a_harness_lock)
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return bool(self._lock.acquire(blocking, timeout))

    @untraced_if(_over_a_harness_lock)
    def release(self) -> None:
        self._lock.release()

    @untraced_if(_over_a_harness_lock)
    def __enter__(self) -> bool:
        return self.acquire()

    @untraced_if(_over_a_harness_lock)
    def __exit__(self, *exc: object) -> None:
        self.release()

    def _owned(self, lock: Lock, run: Run, w: Worker, verb: str) -> None:
        if not lock.owned_by(w):
            run.misuse(
                w,
                f"called {verb}() on {run.label(self)} without holding its lock "
                f"(use `with cond:` around {verb})",
                f"{verb}-unowned",
            )
            raise RuntimeError(f"cannot {verb} on un-acquired lock")

    @untraced_if(_over_a_harness_lock)
    def wait(self, timeout: float | None = None) -> bool:
        lock = self._coop
        if lock is None:  # the real condition may call a lock that is the learner's code
            return bool(self._real.wait(timeout))
        return self._wait(lock, timeout)

    @untraced
    def _wait(self, lock: Lock, timeout: float | None) -> bool:
        ctl = self._ctl()
        if ctl is None:
            return self._wait_outside(lock, timeout)
        run, w = ctl
        self._owned(lock, run, w, "wait")
        site = run.site()
        waiter = [False]
        self._waiters.append(waiter)  # registered while the lock is still held
        saved = lock.release_save()
        try:
            notified = run.block(w, lambda: waiter[0], run.clock.deadline(timeout), self, site)
        finally:
            if not waiter[0]:
                _remove_identical(self._waiters, waiter)
        lock.acquire_restore(run, w, saved, site)
        return notified

    def _wait_outside(self, lock: Lock, timeout: float | None) -> bool:
        waiter = [False]
        self._waiters.append(waiter)
        saved = lock.release_save()
        try:
            return poll(lambda: waiter[0], timeout, "Condition.wait")
        finally:
            _remove_identical(self._waiters, waiter)
            lock.restore_outside(saved)

    def wait_for(self, predicate: Callable[[], Any], timeout: float | None = None) -> Any:
        if self._coop is None:
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

    @untraced_if(_over_a_harness_lock)
    def notify(self, n: int = 1) -> None:
        lock = self._coop
        if lock is None:
            self._real.notify(n)
            return
        self._notify(lock, n)

    @untraced
    def _notify(self, lock: Lock, n: int) -> None:
        ctl = self._ctl()
        if ctl is not None:
            self._owned(lock, ctl[0], ctl[1], "notify")
        for waiter in self._waiters[:n]:
            waiter[0] = True
        del self._waiters[:n]
        if ctl is not None and not ctl[1].atomic:
            ctl[0].step(ctl[1], ctl[0].site())

    @untraced_if(_over_a_harness_lock)
    def notify_all(self) -> None:
        if self._coop is None:  # a wrapped real Condition keeps its own waiters, not ours
            self._real.notify_all()
            return
        self.notify(len(self._waiters))

    notifyAll = notify_all

    def wait_text(self, run: Run) -> str:
        return "a notify on " + run.label(self)

    def deadlock_hint(self, run: Run, worker: Worker) -> str:
        return (
            f"Nobody is left to notify {run.label(self).split(' (created')[0]}: a wakeup was "
            "missed, or the waiter checks its condition with `if` instead of `while`."
        )
