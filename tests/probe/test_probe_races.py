"""`races.py` reads each worker back only as far as it must; on any run it must give what
reading every earlier step gives (the plain definitions, written out below)."""

from __future__ import annotations

import random

import pytest

from plugins.probe.bytecode_paths import Footprint
from plugins.probe.footprints import dependent
from plugins.probe.races import Key, Order, _looks, canonical

Events = list[tuple[Key, Footprint]]


def plain_clocks(events: Events) -> tuple[list[dict[Key, int]], list[int]]:
    clocks: list[dict[Key, int]] = []
    seq: list[int] = []
    count: dict[Key, int] = {}
    for j, (tj, fj) in enumerate(events):
        clock: dict[Key, int] = {}
        for i in range(j):  # every earlier step of the same worker or dependent: before j
            ti, fi = events[i]
            if ti == tj or dependent(fi, fj):
                for k, v in {**clocks[i], ti: seq[i]}.items():
                    clock[k] = max(clock.get(k, -1), v)
        seq.append(count.get(tj, 0))
        count[tj] = seq[-1] + 1
        clock[tj] = seq[-1]
        clocks.append(clock)
    return clocks, seq


def plain_races(events: Events) -> list[tuple[int, int]]:
    clocks, seq = plain_clocks(events)
    found = []
    for j, (tj, fj) in enumerate(events):
        for i in range(j - 1, -1, -1):
            ti, fi = events[i]
            if ti == tj or not dependent(fi, fj):
                continue
            between = range(i + 1, j)  # a step after i and before j orders them already
            if not any(
                clocks[k].get(ti, -1) >= seq[i] and clocks[j].get(events[k][0], -1) >= seq[k]
                for k in between
            ):
                found.append((i, j))
    return found


def plain_canonical(events: Events) -> tuple[Key, ...]:
    events = [e for e in events if not _looks(e[1])]
    done: set[int] = set()
    order: list[Key] = []
    while len(done) < len(events):
        ready = [
            j
            for j in range(len(events))
            if j not in done
            and all(
                i in done
                for i in range(j)
                if events[i][0] == events[j][0] or dependent(events[i][1], events[j][1])
            )
        ]
        j = min(ready, key=lambda k: (repr(events[k][0]), k))
        done.add(j)
        order.append(events[j][0])
    return tuple(order)


NAMES = ("r:.v", "w:.v", "r:.w", "w:.w", "w:containers", "r:sync:1", "w:sync:1", "r:sync:2")


def random_run(rng: random.Random) -> Events:
    workers = rng.randint(1, 4)
    events: Events = []
    for _ in range(rng.randint(0, 30)):
        footprint: Footprint = (
            None if rng.random() < 0.05 else frozenset(rng.sample(NAMES, rng.randint(0, 2)))
        )
        events.append((rng.randrange(workers), footprint))
    return events


@pytest.mark.parametrize("seed", range(40))
def test_clocks_races_and_canonical_orders_agree_with_their_plain_definitions(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(25):
        events = random_run(rng)
        order = Order()  # a first run: nothing shared, every step read
        found = order.update(events)
        assert (order.clocks, order.seq) == plain_clocks(events), events
        assert sorted(found) == sorted(plain_races(events)), events
        assert canonical(events) == plain_canonical(events), events


@pytest.mark.parametrize("seed", range(20))
def test_a_run_read_after_another_gets_the_clocks_and_new_races_read_from_scratch_give(
    seed: int,
) -> None:
    # As the depth-first search runs them: each run replays a prefix of the one before.
    rng = random.Random(seed)
    order = Order()
    before: Events = []
    for _ in range(25):
        kept = before[: rng.randint(0, len(before))]
        events = kept + random_run(rng)
        shared = next(
            (n for n, (a, b) in enumerate(zip(events, before, strict=False)) if a != b),
            min(len(events), len(before)),
        )
        found = order.update(events)
        assert (order.clocks, order.seq) == plain_clocks(events), (before, events)
        assert sorted(found) == sorted(r for r in plain_races(events) if r[1] >= shared), (
            "the races whose later step the run shares with the one before are those the "
            f"search reversed already; every other race must be found: {before}, {events}"
        )
        before = events
