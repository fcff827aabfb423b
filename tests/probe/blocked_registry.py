"""A worker blocked outside the harness's control: ``outside.Registry.add`` waits on a real
lock the test holds. The exploration runs through ``run`` (in place, or on another thread),
and the test lets the lock go once it has been reported."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from plugins.probe import ProbeFailure, explore
from tests.probe.samples import outside


def blocked_on_the_registry_lock(
    run: Callable[[Callable[[], object]], object],
) -> tuple[ProbeFailure, float]:
    """The failure the exploration raised, and the seconds it took to raise it."""
    outside.REGISTRY_LOCK.acquire()
    try:
        started = time.perf_counter()
        with pytest.raises(ProbeFailure) as caught:
            run(
                lambda: explore(
                    outside.Registry,
                    [lambda r: r.add("a")],
                    modules=[outside],
                    budget=1,
                    watchdog_s=0.3,
                )
            )
        elapsed = time.perf_counter() - started
    finally:
        outside.REGISTRY_LOCK.release()
    time.sleep(0.05)  # a worker still blocked gets the lock now and finishes on its own
    return caught.value, elapsed
