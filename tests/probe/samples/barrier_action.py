"""A barrier whose action a worker that never waits at the barrier can see half done."""

from __future__ import annotations

import threading


class Rounds:
    def __init__(self) -> None:
        self.phase = "start"
        self.seen: list[str] = []
        self.barrier = threading.Barrier(2, action=self.end_round)

    def end_round(self) -> None:
        self.phase = "half"  # two stores: a look can come between them
        self.phase = "done"

    def arrive(self) -> None:
        self.barrier.wait()

    def look(self) -> None:
        self.seen.append(self.phase)
