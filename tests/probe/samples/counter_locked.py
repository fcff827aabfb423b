"""Sample learner code: the same counter, correctly locked."""

import threading


class Counter:
    def __init__(self) -> None:
        self.v = 0
        self.lock = threading.Lock()

    def increment(self) -> None:
        with self.lock:
            self.v += 1
