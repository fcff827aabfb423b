"""A step within one frame has its footprint read once per code, offsets and what its two ends
add (``footprints._IN_FRAME``): every footprint a run reads so is the one worked out afresh."""

from __future__ import annotations

import dis
import sys
from types import FrameType

import pytest

from plugins.probe import api, footprints, locations, scheduler
from plugins.probe.bytecode_paths import EMPTY, path
from plugins.probe.exhaustive import Tracker
from plugins.probe.threadpool import POOL
from reference.locks import locks
from tests.probe.scenarios import BUGS, CORRECT, Scenario

# Two transfers along a chain of three accounts: the same `with first.lock` takes a different
# lock in each, so two steps from the same offsets to the same offsets differ in what their
# ends add alone.
_CHAIN = Scenario(
    "chain",
    lambda: [locks.Account(n, 100) for n in range(3)],
    [
        lambda accounts: locks.transfer(accounts[0], accounts[1], 10),
        lambda accounts: locks.transfer(accounts[1], accounts[2], 10),
    ],
    None,
    locks,
)


def test_a_footprint_read_from_the_cache_is_the_one_worked_out_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Compared inside the runs, reported after them: an assertion raised in a worker's trace
    # hook would only end that run as the code under test's exception.
    compared = [0]
    mismatches: list[str] = []
    real = footprints.footprint

    def checked(start: locations.Loc | None, end: locations.Loc | None) -> object:
        found = real(start, end)
        if start is None or end is None or start.frame is None or start.frame is not end.frame:
            return found
        if end.kind in ("done", "start") or (end.kind == "sync" and end.offset == start.offset):
            return found  # worked out apart: a last step, a blocked acquire that only looked
        tail = end.arrive if end.kind == "sync" else EMPTY
        if footprints.in_frame(start, start.frame.f_code, end, tail) != found:
            mismatches.append(f"{start.kind}@{start.offset} -> {end.kind}@{end.offset}")
        compared[0] += 1
        return found

    monkeypatch.setattr(scheduler, "footprint", checked)
    for scenario in (_CHAIN, *BUGS, *CORRECT):
        execute = api._executor(
            scenario.setup, scenario.workers, scenario.check, [scenario.module], 20_000, 2.0
        )
        with POOL.on_one_core():
            for prefix in ([], [1], [2, 1], [1, 2, 0, 1], [2, 2, 1, 0, 2]):
                execute(Tracker(prefix))
        assert not mismatches, f"{scenario.name}: a cached footprint differs from its own " + (
            "reading: " + ", ".join(mismatches[:3])
        )
    assert compared[0] > 100, f"only {compared[0]} steps within one frame were compared"


def _stopped_frame() -> FrameType:
    """A frame that has returned, whose first instructions touch only locals."""
    a = 1
    b = a
    del b
    return sys._getframe()


@pytest.mark.parametrize("differ", ["end", "start"])
def test_steps_from_the_same_offsets_to_the_same_offsets_keep_their_own_footprints(
    differ: str,
) -> None:
    frame = _stopped_frame()
    offsets = [i.offset for i in dis.get_instructions(frame.f_code) if i.opname != "RESUME"]
    begin, end = offsets[0], offsets[3]
    assert path(frame.f_code, begin, end) == EMPTY, "the sample touches more now"
    found = []
    for n in (1, 2):
        lock = frozenset({f"w:sync:{n}"})
        effect = lock if differ == "start" else frozenset({"r:.v"})
        start = locations.Loc("op", frame, begin, effect=effect)
        stop = locations.Loc("sync", frame, end, arrive=lock if differ == "end" else EMPTY)
        found.append(footprints.footprint(start, stop))
    assert found[0] != found[1], (
        f"two steps that differ at their {differ} got the same footprint {found[0]}: the "
        "cache of steps within one frame does not tell them apart"
    )
