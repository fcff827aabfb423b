"""What the scheduler may ask of every cooperative object a worker can wait on.

The scheduler never inspects a primitive's internals: a deadlock report asks each blocked
worker's object for its ``wait_text`` and ``deadlock_hint``. Primitives also share how they
bind to the run active at their creation and how an uncontrolled thread waits on them.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

from .clock import REAL_MONOTONIC, REAL_SLEEP
from .scheduler import Unwind, active_run
from .tracing import untraced

if TYPE_CHECKING:
    from .scheduler import Run, Worker


class Cooperative:
    """Anything a controlled worker can block on (a primitive, a thread to join, a sleep)."""

    def wait_text(self, run: Run) -> str:
        """What a blocked worker waits for, as the deadlock report says it."""
        return run.label(self)

    def deadlock_hint(self, run: Run, worker: Worker) -> str:
        """A likely cause when ``worker`` is stuck waiting on this object; "" if none."""
        return ""


class Primitive(Cooperative):
    """A synchronisation primitive, bound to the run that is active when it is created."""

    kind: ClassVar[str] = "?"
    _run: Run | None

    def _bind(self) -> None:
        run = active_run()
        self._run = run
        if run is not None:
            run.register(self, self.kind)

    def _ctl(self) -> tuple[Run, Worker] | None:
        """(run, worker) when called from a controlled worker of this object's run."""
        run = self._run
        if run is None:
            return None
        w = run.current_worker()
        if w is None:
            return None
        if run.aborted:
            raise Unwind
        return run, w


class Acquirable(Primitive):
    """A primitive used as ``with obj:``: acquired on entry, released on exit."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class PlainAcquirable(Acquirable):
    """An Acquirable whose acquire and release never call the learner's code (Lock, Semaphore),
    so `with obj:` needs no tracing of its own frames (a Condition may wrap a learner's lock)."""

    @untraced
    def __enter__(self) -> bool:
        return self.acquire()

    @untraced
    def __exit__(self, *exc: object) -> None:
        self.release()


def poll(pred: Callable[[], bool], timeout: float | None, what: str) -> bool:
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
