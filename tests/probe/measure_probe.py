"""Measure the probe: ms/schedule, first failing schedule per bug, false alarms.

Run from the repository root:  python -m tests.probe.measure_probe
(set PROBE_TRACER=settrace on 3.12+ to measure the settrace hook instead of sys.monitoring).
"""

from __future__ import annotations

import sys

from plugins.probe import ProbeFailure, explore, explore_async
from plugins.probe.tracing import use_monitoring
from tests.probe.samples import async_cache as ac
from tests.probe.scenarios import BUGS, CORRECT


async def _first(c: ac.RacyAsyncCache) -> int:
    return await c.get("k")


async def _late(c: ac.RacyAsyncCache) -> int:
    return await c.login_then_get("k")


def _one(c: ac.RacyAsyncCache, r: list[object]) -> None:
    assert c.fetches == 1


def main() -> None:
    hook = "sys.monitoring" if use_monitoring() else "settrace"
    print(f"python {sys.version.split()[0]}, hook {hook}")
    for s in BUGS:
        try:
            explore(s.setup, s.workers, s.check, modules=[s.module], budget=250, seed=0)
            print(f"  bug {s.name:<22} MISSED")
        except ProbeFailure as e:
            print(
                f"  bug {s.name:<22} caught at schedule #{e.stats.first_failure} "
                f"({e.kind}), shrunk to {sum(1 for c in e.schedule if c)} nonzero choices"
            )
    for s in CORRECT:
        alarms = 0
        medians = []
        for seed in range(10):
            try:
                st = explore(s.setup, s.workers, s.check, modules=[s.module], budget=100, seed=seed)
                medians.append(st.median_ms)
            except ProbeFailure:
                alarms += 1
        medians.sort()
        print(
            f"  ok  {s.name:<22} {medians[len(medians) // 2]:.3f} ms/schedule, "
            f"false alarms {alarms}/1000 schedules"
        )
    try:
        explore_async(ac.RacyAsyncCache, [_first, _late], _one, budget=250, seed=0)
    except ProbeFailure as e:
        print(f"  bug async_check_then_act    caught at schedule #{e.stats.first_failure}")
    alarms = 0
    for seed in range(10):
        try:
            st = explore_async(ac.SafeAsyncCache, [_first, _late], _one, budget=100, seed=seed)
        except ProbeFailure:
            alarms += 1
    print(f"  ok  async_lock             {st.median_ms:.3f} ms/schedule, false alarms {alarms}")


if __name__ == "__main__":
    main()
