"""Once a run is decided, the driver unwinds each worker still parked in it. A worker's
``finally`` blocks and handlers stop at their first switch point, whichever hook delivers the
switch points: none runs on unchecked after its run, where ``threading`` is the real one again
(a barrier's action calling ``threading.current_thread()`` there left a dummy thread behind,
and the next test's check for stray threads crashed pytest)."""

from __future__ import annotations

import sys
import threading

import pytest

from plugins.probe import ProbeFailure, explore
from tests.probe.samples import rewrite_shapes
from tests.probe.samples.rewrite_shapes import Stuck


@pytest.mark.parametrize("tracer", ["default", "settrace"])
def test_an_unwound_workers_handler_stops_at_its_first_switch_point(
    tracer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if tracer == "settrace":
        if sys.version_info[:2] == (3, 12):
            pytest.skip(
                "3.12's settrace sends no event to a greenlet the driver throws into; 3.12 "
                "runs on sys.monitoring unless PROBE_TRACER=settrace asks otherwise"
            )
        monkeypatch.setenv("PROBE_TRACER", "settrace")
    made: list[Stuck] = []

    def setup() -> Stuck:
        made.append(Stuck())
        return made[-1]

    dummies = sum(isinstance(t, threading._DummyThread) for t in threading.enumerate())
    with pytest.raises(ProbeFailure) as caught:
        explore(setup, [Stuck.waits, Stuck.waits], None, modules=[rewrite_shapes], budget=50)
    assert "deadlock" in str(caught.value), str(caught.value)
    cleaned = [name for stuck in made for name in stuck.cleaned]
    assert not cleaned, (
        f"the handler of an unwound worker ran on after its run, {len(cleaned)} times "
        f"(as {cleaned[:2]})"
    )
    after = sum(isinstance(t, threading._DummyThread) for t in threading.enumerate())
    assert after == dummies, f"{after - dummies} dummy threads were left behind"
