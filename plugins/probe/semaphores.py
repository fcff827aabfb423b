"""Cooperative ``threading.Semaphore`` and ``threading.BoundedSemaphore``."""

from __future__ import annotations

import threading
from typing import Any

from .cooperative import PlainAcquirable, poll
from .scheduler import Run
from .tracing import untraced

REAL_SEMAPHORE = threading.Semaphore
REAL_BOUNDED_SEMAPHORE = threading.BoundedSemaphore


class Semaphore(PlainAcquirable):
    """Cooperative ``threading.Semaphore``."""

    kind = "Semaphore"

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._bind()
        self._real: Any = None
        if self._run is None:
            self._real = REAL_BOUNDED_SEMAPHORE(value) if self._bounded() else REAL_SEMAPHORE(value)
        self._value = value
        self._initial = value

    def _bounded(self) -> bool:
        return False

    @untraced
    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if self._real is not None:
            return bool(self._real.acquire(blocking, timeout))
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        ctl = self._ctl()
        if ctl is None:
            if self._value == 0 and (
                not blocking or not poll(lambda: self._value > 0, timeout, "Semaphore.acquire")
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

    @untraced
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

    def wait_text(self, run: Run) -> str:
        return f"{run.label(self)} (count 0)"

    def over_released(self) -> bool:
        # Signal semaphores start at 0 and may legitimately end above it.
        return self._real is None and self._initial > 0 and self._value > self._initial


class BoundedSemaphore(Semaphore):
    """Cooperative ``threading.BoundedSemaphore``."""

    kind = "BoundedSemaphore"

    def _bounded(self) -> bool:
        return True
