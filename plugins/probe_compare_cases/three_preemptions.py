"""A bug of depth 3: each worker advances a shared stage only from the value it expects, one
step at a time (broken), or runs its whole sequence under a lock (fixed).

Worker-1 moves the stage 0->1, 2->3, 4->5 and worker-2 moves it 1->2, 3->4; stage 5 is
reachable only in the order 1, 2, 1, 2, 1. Fewest preemptions: 3. Worker-1 must be preempted
after its first and its second step and worker-2 after its first; the last switch is free
because worker-2 has ended. Any schedule with at most 2 preemptions passes.
"""

from __future__ import annotations

import threading

TITLE = "needs 3 preemptions"
MIN_PREEMPTIONS = 3


class Broken:
    def __init__(self) -> None:
        self.stage = 0
        self.lock = threading.Lock()

    def advance(self, expected: int) -> None:
        if self.stage == expected:
            self.stage = expected + 1

    def run_odd(self) -> None:
        self.advance(0)
        self.advance(2)
        self.advance(4)

    def run_even(self) -> None:
        self.advance(1)
        self.advance(3)


class Fixed(Broken):
    def run_odd(self) -> None:
        with self.lock:
            super().run_odd()

    def run_even(self) -> None:
        with self.lock:
            super().run_even()


def first(relay: Broken) -> None:
    relay.run_odd()


def second(relay: Broken) -> None:
    relay.run_even()


WORKERS = (first, second)


def check(relay: Broken) -> None:
    assert relay.stage != 5, "stage 5 reached: the two workers' steps interleaved 1, 2, 1, 2, 1"
