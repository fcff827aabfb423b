"""Sample learner code: workers meeting at a Barrier; the party count is wrong."""

import threading


class Phases:
    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties)
        self.done: list[str] = []

    def step(self, name: str) -> None:
        self.barrier.wait()
        self.done.append(name)
