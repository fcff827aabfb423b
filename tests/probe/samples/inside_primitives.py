"""The learner's code run from inside a primitive: jobs that a PriorityQueue compares inside
put(), a lock-like object that a Condition acquires, and a barrier's action, which a worker that
never waits at the barrier can see half done."""

from __future__ import annotations

import queue
import threading


class Board:
    def __init__(self) -> None:
        self.phase = "start"
        self.seen: list[str] = []
        self.jobs: queue.PriorityQueue[Job] = queue.PriorityQueue()
        self.jobs.put(Job(2, self))

    def add(self) -> None:
        self.jobs.put(Job(1, self))

    def look(self) -> None:
        self.seen.append(self.phase)


class Job:
    def __init__(self, rank: int, board: Board) -> None:
        self.rank = rank
        self.board = board

    def __lt__(self, other: Job) -> bool:
        self.board.phase = "half"  # two stores inside a comparison: a look can come between
        self.board.phase = "done"
        return self.rank < other.rank


class Gate:
    """A learner's own lock-like object, with code of its own in acquire."""

    def __init__(self, board: Gated) -> None:
        self.board = board
        self.inner = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self.board.phase = "half"  # two stores: a look can come between
        self.board.phase = "done"
        return self.inner.acquire(blocking, timeout)

    def release(self) -> None:
        self.inner.release()


class Gated:
    def __init__(self) -> None:
        self.phase = "start"
        self.seen: list[str] = []
        self.cond = threading.Condition(Gate(self))  # type: ignore[arg-type]

    def enter(self) -> None:
        with self.cond:
            pass

    def look(self) -> None:
        self.seen.append(self.phase)


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
