"""Cooperative ``threading.Event`` and ``threading.Barrier``: workers wait for a signal
(a flag being set, or every party arriving) rather than for exclusive access."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .cooperative import Primitive, poll
from .scheduler import Run, Worker
from .tracing import untraced

REAL_EVENT = threading.Event
REAL_BARRIER = threading.Barrier
BrokenBarrierError = threading.BrokenBarrierError


class Event(Primitive):
    """Cooperative ``threading.Event``."""

    kind = "Event"

    def __init__(self) -> None:
        self._bind()
        self._real: Any = REAL_EVENT() if self._run is None else None
        self._flag = False
        self._generation = 0  # bumped by set(): wakes everyone waiting at that moment

    def is_set(self) -> bool:
        if self._real is not None:
            return bool(self._real.is_set())
        return self._flag

    isSet = is_set

    @untraced
    def set(self) -> None:
        if self._real is not None:
            self._real.set()
            return
        self._flag = True
        self._generation += 1
        ctl = self._ctl()
        if ctl is not None:
            ctl[0].step(ctl[1], ctl[0].site())

    @untraced
    def clear(self) -> None:
        if self._real is not None:
            self._real.clear()
            return
        self._flag = False
        ctl = self._ctl()
        if ctl is not None:
            ctl[0].step(ctl[1], ctl[0].site())

    @untraced
    def wait(self, timeout: float | None = None) -> bool:
        if self._real is not None:
            return bool(self._real.wait(timeout))
        ctl = self._ctl()
        gen = self._generation
        if ctl is None:
            return self._flag or poll(lambda: self._generation != gen, timeout, "Event.wait")
        run, w = ctl
        site = run.site()
        run.step(w, site)
        if self._flag:
            return True
        gen = self._generation
        return run.block(
            w, lambda: self._generation != gen, run.clock.deadline(timeout), self, site
        )

    def wait_text(self, run: Run) -> str:
        return f"{run.label(self)} to be set"

    def deadlock_hint(self, run: Run, worker: Worker) -> str:
        return (
            f"Missed wakeup: {run.label(self).split(' (created')[0]} is not set and nobody "
            "will set it (was it set and cleared before the waiter looked?)."
        )


class _BarrierRound:
    __slots__ = ("broken", "released")

    def __init__(self) -> None:
        self.released = False
        self.broken = False


class Barrier(Primitive):
    """Cooperative ``threading.Barrier`` (action, timeout, abort, reset, broken)."""

    kind = "Barrier"

    def __init__(
        self, parties: int, action: Callable[[], object] | None = None, timeout: float | None = None
    ) -> None:
        if parties < 1:
            raise ValueError("parties must be >= 1")
        self._bind()
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
        if self._ctl() is None:  # a thread outside the run: its own trace hook stays on
            return self._arrive(timeout)
        return self._arrive_untraced(timeout)

    def _arrive(self, timeout: float | None) -> int:
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
                    if ctl is None:
                        self._action()
                    else:
                        ctl[0].call_learner(self._action)
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
            ok = poll(lambda: rnd.released or rnd.broken, timeout, "Barrier.wait")
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

    # A worker arrives with the settrace hook off (the scheduler's frames cost a hook call each
    # on 3.11); the action, the learner's code, runs with it back on (Run.call_learner).
    _arrive_untraced = untraced(_arrive)

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

    def wait_text(self, run: Run) -> str:
        return f"{run.label(self)} ({self._count} of {self._parties} parties arrived)"

    def deadlock_hint(self, run: Run, worker: Worker) -> str:
        name = run.label(self).split(" (created")[0]
        if not run.made_by_learner(self):
            # The test made it with the right count: the callers never got there together.
            return (
                f"{name} expects {self._parties} parties but only {self._count} reached wait(): "
                "the others never got there while it waited (they ran one after another, or "
                "are stuck elsewhere)."
            )
        return (
            f"{name} expects {self._parties} parties but only {self._count} reached wait(): "
            "the party count must equal the number of workers that call wait()."
        )
