"""Lock-order graph: a held->acquiring cycle across workers is a deadlock waiting to happen.

Every acquire that waits forever adds an edge from each lock the worker already holds to the
lock it acquires. A schedule that happened not to deadlock still fails if the edges form a
cycle across two or more workers that no common lock serialises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .finding import Failure
from .sites import Site, short

if TYPE_CHECKING:
    from .locks import Lock
    from .scheduler import Worker


@dataclass
class Edge:
    worker: str
    first: Lock
    second: Lock
    first_site: Site
    second_site: Site
    gates: frozenset[int]  # ids of the other locks held: a common one serialises the cycle


class LockOrder:
    """The edges one schedule added, keyed by (id(held), id(acquiring))."""

    def __init__(self) -> None:
        self.edges: dict[tuple[int, int], Edge] = {}

    def note_acquire(self, w: Worker, lock: Lock, site: Site) -> None:
        for held in w.held:
            if held is lock:
                continue
            key = (id(held), id(lock))
            if key not in self.edges:
                gates = frozenset(id(h) for h in w.held if h is not held)
                self.edges[key] = Edge(w.name, held, lock, held.acquired_at, site, gates)

    def cycle(
        self, label: Callable[[Lock], str], creation_order: Callable[[Lock], int]
    ) -> Failure | None:
        """A held->acquiring cycle across two or more workers, not guarded by a common lock."""
        succ: dict[int, list[Edge]] = {}
        for edge in self.edges.values():
            succ.setdefault(id(edge.first), []).append(edge)
        for start in sorted(self.edges.values(), key=lambda e: creation_order(e.first)):
            path = _cycle_from(start, succ)
            if path is None:
                continue
            if len({e.worker for e in path}) < 2:
                continue
            common = frozenset.intersection(*(e.gates for e in path))
            if common:
                continue  # a gate lock serialises every edge: no deadlock possible
            steps = "; ".join(
                f"{e.worker} took {label(e.first)} at {short(e.first_site)} and then "
                f"{label(e.second).split(' (created')[0]} at {short(e.second_site)}"
                for e in path
            )
            # The deadlock this cycle leads to, drawn as a wait-for circle: each worker holds
            # its first lock and waits for its second, which the next worker in the cycle holds.
            graph = [
                (
                    e.worker,
                    label(e.first).split(" (created")[0],
                    f"{label(e.second).split(' (created')[0]} held by "
                    f"{path[(i + 1) % len(path)].worker} in the interleaving that deadlocks",
                )
                for i, e in enumerate(path)
            ]
            return Failure(
                "lock-order",
                "lock-order cycle (potential deadlock): " + steps,
                details=[
                    "This schedule happened not to deadlock, but another interleaving will: "
                    "always acquire these locks in one global order."
                ],
                signature="lock-order",
                graph=graph,
            )
        return None


def _cycle_from(start: Edge, succ: dict[int, list[Edge]]) -> list[Edge] | None:
    target = id(start.first)
    stack: list[tuple[Edge, list[Edge]]] = [(start, [start])]
    seen: set[int] = set()
    while stack:
        edge, path = stack.pop()
        nxt_id = id(edge.second)
        if nxt_id == target:
            return path
        if nxt_id in seen or len(path) > 8:
            continue
        seen.add(nxt_id)
        for e in succ.get(nxt_id, []):
            stack.append((e, [*path, e]))
    return None
