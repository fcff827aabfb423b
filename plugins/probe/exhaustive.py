"""Exhaustive search over the scheduler's decisions: proofs for small scenarios, and the fewest
preemptions any failing schedule has.

Both searches are stateless: every interleaving is a fresh run that replays a prefix of
choices and then keeps the running worker (choice 0). A ``Tracker`` is the strategy of such a
run; it records each scheduling point (the enabled workers, who ran, and what the step that
followed touched, from ``footprints``).

``prove`` is depth-first with dynamic partial-order reduction (source sets, Abdulla et al.
2014): after each run, every pair of dependent steps of different workers with nothing
ordering them in between is a race; the search makes sure some other run reverses it, by
adding a worker that can start the reversal to the decision point before the race's first
step. Steps that commute are never tried in both orders. A mode without footprints (asyncio,
whose ready callbacks have no stable identity) branches on every option: plain depth-first.
Interleavings are counted by their canonical order (Mazurkiewicz traces), so "N distinct
interleavings" counts runs no reordering of commuting steps can turn into one another.

``fewest_preemptions`` enumerates schedules by preemption bound, 0, 1, 2, …: the first bound
with a failing schedule is the fewest any failing schedule has.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from .bytecode_paths import Footprint
from .clock import REAL_PERF_COUNTER
from .footprints import dependent
from .races import Key, Order, canonical, initials, redirect


@dataclass(slots=True)
class Point:
    """One scheduling point of a run: the enabled workers, the one that ran, and what it
    touched until the next point (None: unknown, or nothing recorded)."""

    options: tuple[Key, ...]
    chosen: Key
    decision: int | None  # index among the run's choices, None when only one could run
    preemptible: bool  # a choice other than 0 here preempts a running worker
    footprint: Footprint = None
    # Workers whose step here another run covers (sleep set), past the replayed prefix.
    sleep: dict[Key, Footprint] = field(default_factory=dict)


# The sleep set of a point with no decision, shared: nothing ever changes a point's sleep set
# (the search copies it), and a dict per step was a tenth of a tracked step's cost.
_AWAKE: dict[Key, Footprint] = {}

CUT = -1  # Tracker.point's answer when every enabled worker sleeps: the run adds nothing


class Tracker:
    """A strategy that replays ``prefix`` (option indices, one per decision) and then keeps
    the running worker; it records every scheduling point it is shown. Past the prefix it
    never runs a sleeping worker (``sleep``: those whose step at the prefix's last decision
    other runs cover, with what that step touches), and cuts the run when all sleep."""

    name = "exhaustive"

    def __init__(
        self,
        prefix: Sequence[int],
        *,
        every_switch_preempts: bool = False,
        sleep: dict[Key, Footprint] | None = None,
        footprints: bool = True,
        lone: bool = False,
    ) -> None:
        self.prefix = list(prefix)
        # Whether the run works out what each step touched (``footprints``): the partial-order
        # reduction needs it; counting preemptions does not, and runs 3-4 times faster.
        self.footprints = footprints
        # A search's first run may go untracked if it starts with one worker (``lone``): a
        # worker alone has one interleaving, and its steps race with nothing. The run says
        # ``spawned`` if a second worker came after all, and the search runs it again, tracked.
        self.lone = lone
        self.spawned = False
        self.points: list[Point] = []
        self.decisions = 0
        self.cut = False
        self._every = every_switch_preempts
        self._initial = dict(sleep or {})
        self._sleep: dict[Key, Footprint] = {}
        self._active = not self.prefix

    def _next(self, n: int) -> int:
        idx = self.prefix[self.decisions] if self.decisions < len(self.prefix) else 0
        self.decisions += 1
        return idx if idx < n else 0

    def choose(self, running: Hashable | None, options: Sequence[Hashable], step: int) -> int:
        """For a mode that only shows decisions (asyncio): options are told apart by index."""
        decision = self.decisions
        idx = self._next(len(options))
        preemptible = self._every or (running is not None and options[0] == running)
        self.points.append(Point(tuple(range(len(options))), idx, decision, preemptible))
        return idx

    def point(self, options: Sequence[Key], preemptible: bool, ended: Footprint) -> int:
        """Threads mode: every scheduling point, with the footprint of the step that just
        ended (ignored at the first point). Returns an index into options, or CUT."""
        # Plain loops, no comprehensions (each is a call of its own on 3.11); a sleep set is
        # never changed in place, only replaced, so points share it unchanged.
        if self.points:
            last = self.points[-1]
            last.footprint = ended
            sleeping = self._sleep
            if self._active and sleeping:
                chosen = last.chosen
                kept: dict[Key, Footprint] = {}
                for u, f in sleeping.items():
                    if u != chosen and not dependent(f, ended):
                        kept[u] = f
                if len(kept) != len(sleeping):
                    self._sleep = kept
        idx, decision = 0, None
        sleep = _AWAKE
        if len(options) > 1:
            decision = self.decisions
            if decision < len(self.prefix):
                idx = self._next(len(options))
                if decision == len(self.prefix) - 1:
                    self._active = True
                    sleeping = dict(self._initial)
                    sleeping.pop(options[idx], None)
                    self._sleep = sleeping
            else:
                sleep = sleeping = self._sleep
                idx = -1
                for n, u in enumerate(options):
                    if u not in sleeping:
                        idx = n
                        break
                if idx < 0:
                    self.cut = True
                    return CUT
                self.decisions += 1
        elif self._active and options[0] in self._sleep:
            self.cut = True
            return CUT
        self.points.append(Point(tuple(options), options[idx], decision, preemptible, None, sleep))
        return idx

    def finish(self, ended: Footprint) -> None:
        if self.points:
            self.points[-1].footprint = ended


Run = Callable[[Tracker], tuple[bool, object]]  # (failed, outcome)


@dataclass
class _Node:
    options: tuple[Key, ...]
    chosen: Key
    preemptible: bool
    backtrack: set[Key] = field(default_factory=set)
    done: set[Key] = field(default_factory=set)
    sleep: dict[Key, Footprint] = field(default_factory=dict)
    footprints: dict[Key, Footprint] = field(default_factory=dict)  # of each explored step


@dataclass
class Search:
    """What a search did: runs, whether it covered every interleaving, the distinct ones, and
    the first failing run's outcome (if any)."""

    runs: int = 0
    complete: bool = False
    distinct: int = 0
    failing: object | None = None


def prove(
    run: Run, *, max_runs: int, max_seconds: float, reduce: bool, every_switch_preempts: bool
) -> Search:
    """Depth-first over every interleaving (partial-order reduced when ``reduce``); stops at
    the first failing run, or incomplete at ``max_runs`` runs or ``max_seconds``."""
    started = REAL_PERF_COUNTER()
    nodes: list[_Node] = []
    prefix: list[int] = []
    sleep: dict[Key, Footprint] = {}
    traces: set[tuple[Key, ...]] = set()
    finished: list[list[tuple[Key, Footprint]]] = []  # the complete runs' steps, when reduced
    order = Order()
    search = Search()
    lone = True  # the first run: untracked if one worker runs it alone (Tracker.lone)
    while True:
        if search.runs >= max_runs or REAL_PERF_COUNTER() - started > max_seconds:
            search.distinct = len(traces)
            return search
        tracker = Tracker(
            prefix, every_switch_preempts=every_switch_preempts, sleep=sleep, lone=lone
        )
        failed, outcome = run(tracker)
        search.runs += 1
        if failed and not tracker.cut:
            search.failing = outcome
            search.distinct = len(traces)
            return search
        lone = False
        if tracker.spawned:  # it was not alone after all: the same run again, tracked
            continue
        decisions = [p for p in tracker.points if p.decision is not None]
        for p in decisions[len(nodes) :]:
            node = _Node(p.options, p.chosen, p.preemptible, {p.chosen}, {p.chosen}, p.sleep)
            if not reduce:
                node.backtrack = set(p.options)
            nodes.append(node)
        for p in decisions:
            if p.decision is not None and p.decision < len(nodes):
                nodes[p.decision].footprints[p.chosen] = p.footprint
        events = [(p.chosen, p.footprint) for p in tracker.points]
        if reduce:
            _add_backtracks(tracker.points, nodes, events, order)
            if not tracker.cut:
                # Counted only if the search completes (a canonical order costs more than
                # the race analysis); an incomplete search reports no count.
                finished.append(events)
        else:
            traces.add(tuple(p.chosen for p in decisions))

        def todo(node: _Node) -> set[Key]:
            return node.backtrack - node.done - set(node.sleep)

        while nodes and not todo(nodes[-1]):
            nodes.pop()
        if not nodes:
            search.complete = True
            search.distinct = len(traces | {canonical(events) for events in finished})
            return search
        # Each branch still to take is one more run at least: past the cap, give up now rather
        # than spend the runs left on a search that cannot finish (large scenarios; sampling
        # takes over). Only a proof is given up: a bug the runs might have found is still
        # looked for by the sampled schedules.
        if search.runs + sum(len(todo(node)) for node in nodes) > max_runs:
            search.distinct = len(traces)
            return search
        last = nodes[-1]
        last.chosen = min(todo(last), key=last.options.index)
        sleep = dict(last.sleep)
        sleep.update({u: last.footprints.get(u) for u in last.done})
        last.done.add(last.chosen)
        prefix = [node.options.index(node.chosen) for node in nodes]


def _add_backtracks(
    points: list[Point], nodes: list[_Node], events: list[tuple[Key, Footprint]], order: Order
) -> None:
    """Each race of the run reversed at its decision. Races among the steps this run shares
    with the one before it are skipped (``Order.update``): what they add is there already."""
    found = order.update(events)
    clocks, seq = order.clocks, order.seq
    for first, j in found:
        i = redirect(first, j, events)
        moved = points[i].decision
        if moved is None or moved >= len(nodes):
            i = first  # only one worker could run there: reverse the race as it is
        decision = points[i].decision
        if decision is None or decision >= len(nodes):
            continue  # only one worker could run there: the race cannot be reversed there
        node = nodes[decision]
        starts = initials(i, j, events, clocks, seq)
        if node.backtrack & set(starts):
            continue
        usable = [t for t in starts if t in node.options]
        if events[j][0] in usable:
            node.backtrack.add(events[j][0])
        elif usable:
            node.backtrack.add(usable[0])
        else:
            node.backtrack |= set(node.options)


def fewest_preemptions(
    run: Run,
    below: int,
    *,
    max_runs: int,
    max_seconds: float,
    every_switch_preempts: bool,
) -> tuple[object | None, int, int | None]:
    """Iterative bounding: every schedule with at most 0, then 1, … ``below - 1`` preemptions.
    Returns the first failing run's outcome (or None), the runs used, and the bound up to
    which every schedule was checked (None if even bound 0 was not finished)."""
    started = REAL_PERF_COUNTER()
    runs = 0
    checked: int | None = None
    for bound in range(below):
        prefix: list[int] = []
        nodes: list[tuple[int, bool, int]] = []  # (options, preemptible, chosen index)
        while True:
            if runs >= max_runs or REAL_PERF_COUNTER() - started > max_seconds:
                return None, runs, checked
            tracker = Tracker(prefix, every_switch_preempts=every_switch_preempts, footprints=False)
            failed, outcome = run(tracker)
            runs += 1
            if failed:
                return outcome, runs, checked
            decisions = [p for p in tracker.points if p.decision is not None]
            for p in decisions[len(nodes) :]:
                nodes.append((len(p.options), p.preemptible, 0))
            advanced = False
            while nodes:
                count, preemptible, chosen = nodes.pop()
                used = sum(1 for n, pre, c in nodes if pre and c)
                if chosen + 1 < count and not (preemptible and used + 1 > bound):
                    nodes.append((count, preemptible, chosen + 1))
                    advanced = True
                    break
            if not advanced:
                break
            prefix = [c for _, _, c in nodes]
        checked = bound
    return None, runs, checked
