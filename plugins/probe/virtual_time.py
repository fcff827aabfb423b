"""Cooperative ``time`` functions: a controlled worker reads and sleeps on the run's virtual
clock, so a 5 s sleep costs nothing and every schedule sees the same timestamps. Any other
caller gets the real function."""

from __future__ import annotations

from .clock import (
    EPOCH_ORIGIN,
    MONOTONIC_ORIGIN,
    REAL_MONOTONIC,
    REAL_PERF_COUNTER,
    REAL_SLEEP,
    REAL_TIME,
)
from .cooperative import Cooperative
from .scheduler import Run, Unwind, active_run
from .tracing import untraced


class _Sleeping(Cooperative):
    def wait_text(self, run: Run) -> str:
        return "the end of a time.sleep()"


_SLEEPING = _Sleeping()


def _virtual_now() -> float | None:
    run = active_run()
    if run is None or run.current_worker() is None:
        return None
    return run.clock.now


@untraced
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


@untraced
def monotonic() -> float:
    now = _virtual_now()
    return REAL_MONOTONIC() if now is None else MONOTONIC_ORIGIN + now


@untraced
def perf_counter() -> float:
    now = _virtual_now()
    return REAL_PERF_COUNTER() if now is None else MONOTONIC_ORIGIN + now


@untraced
def time() -> float:
    now = _virtual_now()
    return REAL_TIME() if now is None else EPOCH_ORIGIN + now


def monotonic_ns() -> int:
    return int(monotonic() * 1e9)


def perf_counter_ns() -> int:
    return int(perf_counter() * 1e9)


def time_ns() -> int:
    return int(time() * 1e9)
