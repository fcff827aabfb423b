"""What one run of the exhaustive search tells about its steps' order: happens-before (vector
clocks), the races in it (pairs of dependent steps of different workers with nothing ordering
them in between), the workers that can start each race's reversal, and the run's canonical
order (its Mazurkiewicz trace, for counting distinct interleavings).

A step is (worker, footprint); ``footprints.dependent`` says which steps may not commute.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable

from .bytecode_paths import Footprint
from .footprints import GLOBAL_SYNC, RELEASES, TAKES, dependent

Key = Hashable


def _latest_first(positions: dict[Key, list[int]], worker: Key) -> list[tuple[int, Key, int]]:
    """A heap of every other worker's latest step so far: (-index, worker, its position)."""
    heap = [(-steps[-1], t, len(steps) - 1) for t, steps in positions.items() if t != worker]
    heapq.heapify(heap)
    return heap


def _merge(into: dict[Key, int], clock: dict[Key, int]) -> None:
    for k, v in clock.items():
        if into.get(k, -1) < v:
            into[k] = v


def _scan(
    events: list[tuple[Key, Footprint]],
    clocks: list[dict[Key, int]],
    seq: list[int],
    positions: dict[Key, list[int]],
    j: int,
    before: dict[Key, int],
    found: list[int] | None,
) -> None:
    """The steps of other workers before ``j``, latest first, that ``before`` does not yet
    order before ``j`` and that ``j`` depends on: each is merged into ``before`` (and added
    to ``found``). A worker's earlier steps need no look once one of its steps is ordered
    before ``j`` (program order), so each worker is read back only to its first such step,
    and the same worker's steps never: the same pairs as reading every step back to 0."""
    tj, fj = events[j]
    heap = _latest_first(positions, tj)
    while heap:
        negative, t, k = heapq.heappop(heap)
        i = -negative
        if before.get(t, -1) >= seq[i]:
            continue
        if dependent(events[i][1], fj):
            if found is not None:
                found.append(i)
            _merge(before, clocks[i])
            continue
        if k > 0:
            heapq.heappush(heap, (-positions[t][k - 1], t, k - 1))


class Order:
    """Happens-before over the runs of one search, kept from run to run. A depth-first search
    replays the run before it up to the step where it branches: the steps it shares with that
    run keep their clocks, and only the steps from there on are read. Their races are the
    earlier run's, whose reversals the search has already taken up."""

    def __init__(self) -> None:
        self.events: list[tuple[Key, Footprint]] = []
        self.clocks: list[dict[Key, int]] = []
        self.seq: list[int] = []
        self.positions: dict[Key, list[int]] = {}

    def update(self, events: list[tuple[Key, Footprint]]) -> list[tuple[int, int]]:
        """Read the new run ``events``; return its races (i, j): dependent steps of different
        workers, i before j, with no step between them ordered after i and before j, whose
        later step j is not one the run before shares with it (a fresh Order: every race)."""
        shared = 0
        limit = min(len(events), len(self.events))
        while shared < limit and events[shared] == self.events[shared]:
            shared += 1
        self._forget_from(shared)
        self.events = list(events)
        clocks, seq, positions = self.clocks, self.seq, self.positions
        found: list[tuple[int, int]] = []
        for j in range(shared, len(events)):
            tj = events[j][0]
            mine = positions.get(tj)
            clock: dict[Key, int] = dict(clocks[mine[-1]]) if mine else {}
            racing: list[int] = []
            _scan(events, clocks, seq, positions, j, clock, racing)
            found += [(i, j) for i in racing]
            seq.append(len(mine) if mine else 0)
            clock[tj] = seq[-1]
            clocks.append(clock)
            positions.setdefault(tj, []).append(j)
        return found

    def _forget_from(self, shared: int) -> None:
        del self.clocks[shared:], self.seq[shared:]
        for worker in list(self.positions):
            steps = self.positions[worker]
            while steps and steps[-1] >= shared:
                steps.pop()
            if not steps:
                del self.positions[worker]


def initials(
    i: int,
    j: int,
    events: list[tuple[Key, Footprint]],
    clocks: list[dict[Key, int]],
    seq: list[int],
) -> list[Key]:
    """Workers that can start the reversal of race (i, j): the first steps, with nothing
    before them, of the steps after i that do not depend on i, followed by j."""
    ti = events[i][0]
    chain = [k for k in range(i + 1, j) if clocks[k].get(ti, -1) < seq[i]] + [j]
    found: list[Key] = []
    seen: set[Key] = set()
    for n, k in enumerate(chain):
        tk = events[k][0]
        if tk in seen:
            continue
        seen.add(tk)
        if all(clocks[k].get(events[m][0], -1) < seq[m] for m in chain[:n]):
            found.append(tk)
    return found


def _looks(step: Footprint) -> bool:
    """A blocked acquire's step (or a woken wait's that finds the lock taken): it read the
    lock and changed nothing; the run that skips it is the same interleaving."""
    return bool(step) and all(x.startswith("r:sync:") and x != "r:sync:end" for x in step or ())


def canonical(events: list[tuple[Key, Footprint]]) -> tuple[Key, ...]:
    """The run's trace as one order: repeatedly the lowest worker whose next step has all its
    predecessors done. Two runs have the same canonical order iff they reorder only
    commuting steps (a step that only found a lock taken does not count)."""
    events = [event for event in events if not _looks(event[1])]
    n = len(events)
    preds = [0] * n
    succs: list[list[int]] = [[] for _ in range(n)]
    positions: dict[Key, list[int]] = {}
    for j, (tj, fj) in enumerate(events):
        # The same order as an edge from every earlier step of the same worker or dependent
        # one: the worker's previous step, and each other worker's latest dependent step
        # (its earlier ones come before that one anyway).
        mine = positions.setdefault(tj, [])
        edges = [mine[-1]] if mine else []
        for t, steps in positions.items():
            if t != tj:
                edges += [next((i for i in reversed(steps) if dependent(events[i][1], fj)), -1)]
        for i in edges:
            if i >= 0:
                preds[j] += 1
                succs[i].append(j)
        mine.append(j)
    ready = [(repr(events[k][0]), k) for k in range(n) if preds[k] == 0]
    heapq.heapify(ready)
    order: list[Key] = []
    while ready:
        _, k = heapq.heappop(ready)
        order.append(events[k][0])
        for s in succs[k]:
            preds[s] -= 1
            if preds[s] == 0:
                heapq.heappush(ready, (repr(events[s][0]), s))
    return tuple(order)


def _handed_lock(a: Footprint, b: Footprint) -> str | None:
    """The lock ("sync:<n>") that step ``a`` releases and step ``b`` then takes, when that is
    all that makes them dependent; None otherwise."""
    if a is None or b is None:
        return None
    for entry in a:
        if entry.startswith(RELEASES):
            name = entry[len(RELEASES) :]
            if TAKES + name in b and TAKES + name not in a:
                ours = frozenset(x for x in a if x[2:] != name)
                theirs = frozenset(x for x in b if x[2:] != name)
                if not dependent(ours, theirs):
                    return name
    return None


def redirect(i: int, j: int, events: list[tuple[Key, Footprint]]) -> int:
    """The step whose race with ``j`` needs reversing in place of ``i``.

    When ``i`` releases a lock that ``j`` (another worker) then takes, ``j`` cannot run
    before ``i``: its worker is blocked while ``i``'s worker holds the lock. Reversing the
    pair only runs a failed acquire. What can be reversed is the whole critical section:
    ``j`` before the step that took the lock, when that step was ``i``'s worker's, the
    last take of the lock in the run, and no step since then can have let the lock go and
    taken it back (another worker's write of it: a notify, for a Condition's wait; a timed
    or unknown step). Otherwise ``i``: never fewer reversals than without this."""
    name = _handed_lock(events[i][1], events[j][1])
    if name is None:
        return i
    holder = events[i][0]
    for k in range(i - 1, -1, -1):
        tk, fk = events[k]
        if fk is None or GLOBAL_SYNC in fk or RELEASES + name in fk:
            return i  # a release, a timed wait or an unknown step: it may have changed hands
        if TAKES + name in fk:
            return k if tk == holder else i
        if tk != holder and "w:" + name in fk:
            return i  # another worker wrote the lock: a Condition's wait gave it up
    return i
