"""Lost update: two workers run `self.value += 1` twice each, unlocked (broken) or locked (fixed).

Fewest preemptions that break it: 1. Worker-1 reads `.value`, is preempted before it writes;
worker-2 increments; worker-1's write then overwrites worker-2's increment.
"""

from __future__ import annotations

import threading

TITLE = "lost update"
MIN_PREEMPTIONS = 1


class Broken:
    def __init__(self) -> None:
        self.value = 0

    def increment(self) -> None:
        self.value += 1


class Fixed(Broken):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def increment(self) -> None:
        with self.lock:
            self.value += 1


def increment_twice(counter: Broken) -> None:
    counter.increment()
    counter.increment()


WORKERS = (increment_twice, increment_twice)


def check(counter: Broken) -> None:
    assert counter.value == 4, f"lost update: counter is {counter.value} after 4 increments"
