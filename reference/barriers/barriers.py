"""Kata `barriers`: a cellular automaton computed by several threads in lockstep.

Each generation, every party (thread) computes its own slice of the next row of cells from
the current row. Nobody may start generation k+1 before every party has finished generation
k, because the next generation reads the neighbours' cells. A `threading.Barrier` enforces it.

Contract (the tests check each point under a controlled scheduler with a virtual clock, so
timeouts cost nothing):

- `Simulation(cells, parties, rule=None, timeout=DEFAULT_TIMEOUT)` (no rule: `rule90`) keeps
  the current row in `current` and the row being built in `next`, and counts `generation`
  from 0 (given).
  §1 The simulation's `barrier` is a `threading.Barrier` for exactly `parties` threads.
  §2 The barrier's default wait timeout is `timeout` (`DEFAULT_TIMEOUT` when none is given):
  a party that never arrives breaks the barrier after that many seconds instead of hanging
  everyone.
- `compute_slice(party)` (given) fills party's cells of `next` from `current`.
- §3 `end_generation()` swaps `current` and `next` and adds 1 to `generation`.
  §4 `end_generation()` is the barrier's `action`: it runs exactly once per generation, after
  every party has finished it and before any party starts the next.
- §5 `run_party(party, generations)` computes party's slice and then waits at the barrier,
  once per generation, so that no party starts a generation before every party has finished
  the previous one.
  §6 `run_party` returns True when all its generations are done.
  §7 `run_party` returns False as soon as the barrier is broken
  (`threading.BrokenBarrierError`: a party missing, failed or aborted), without computing
  any further generation.
  §8 When computing its slice raises, `run_party` aborts the barrier first, so that every
  other party stops at once instead of waiting for the timeout.
  §9 When computing its slice raises, `run_party` then lets that exception propagate.
- §10 `restart(cells)` starts over from a copy of `cells`, which may differ in length from
  the old row: generation 0, a fresh `next` row of the same length.
  §11 `restart` makes a broken barrier work again (`reset()`).
- §12 `run(generations)` runs every party in its own thread, all at once, and joins them all
  before it returns.
  §13 `run` returns a copy of `current`: changing the returned list leaves the simulation alone.
  §14 `run` raises `threading.BrokenBarrierError` if any party returned False.
- Use `threading.Barrier` and `threading.Thread` (the tests swap in instrumented versions).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

DEFAULT_TIMEOUT = 5.0
"""Seconds a party waits at the barrier for the others before it declares the barrier broken."""


def rule90(left: int, cell: int, right: int) -> int:
    """Wolfram's rule 90: a cell becomes the XOR of its two neighbours."""
    return left ^ right


class Simulation:
    """A row of cells evolved generation by generation by `parties` threads."""

    def __init__(
        self,
        cells: Sequence[int],
        parties: int,
        rule: Callable[[int, int, int], int] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.current = list(cells)
        self.next = [0] * len(cells)
        self.parties = parties
        self.rule = rule90 if rule is None else rule
        self.generation = 0
        # The action runs once, in the last party to arrive, before anyone is released; the
        # timeout turns a missing party into BrokenBarrierError instead of an endless wait.
        self.barrier = threading.Barrier(parties, action=self.end_generation, timeout=timeout)

    def cells_of(self, party: int) -> range:
        """The indexes of the cells that `party` computes: one contiguous slice per party."""
        size = len(self.current)
        return range(party * size // self.parties, (party + 1) * size // self.parties)

    def compute_slice(self, party: int) -> None:
        """Fill party's cells of `next` from `current` (cells past either end count as 0)."""
        row = self.current
        for i in self.cells_of(party):
            left = row[i - 1] if i > 0 else 0
            right = row[i + 1] if i + 1 < len(row) else 0
            self.next[i] = self.rule(left, row[i], right)

    def end_generation(self) -> None:
        """The barrier's action: the next row becomes the current one."""
        # Every party is parked at the barrier now: nobody reads or writes a row meanwhile.
        self.current, self.next = self.next, self.current
        self.generation += 1

    def run_party(self, party: int, generations: int) -> bool:
        """Compute `generations` generations of party's slice in lockstep with the others."""
        for _ in range(generations):
            try:
                self.compute_slice(party)
            except Exception:
                # Break the barrier now: the others stop at once instead of waiting for us.
                self.barrier.abort()
                raise
            try:
                self.barrier.wait()
            except threading.BrokenBarrierError:
                return False
        return True

    def restart(self, cells: Sequence[int]) -> None:
        """Start over from `cells`, even after the barrier broke."""
        self.current = list(cells)
        self.next = [0] * len(cells)
        self.generation = 0
        # A broken barrier stays broken until reset(): every wait() would fail at once.
        self.barrier.reset()

    def run(self, generations: int) -> list[int]:
        """Run every party in its own thread, all at once; return the final row."""
        finished = [False] * self.parties

        def party_body(party: int) -> None:
            finished[party] = self.run_party(party, generations)

        # All parties must be running at once: a barrier waits for every one of them.
        threads = [threading.Thread(target=party_body, args=(p,)) for p in range(self.parties)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if not all(finished):
            raise threading.BrokenBarrierError
        return list(self.current)
