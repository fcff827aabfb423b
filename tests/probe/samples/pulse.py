"""Sample learner code: a "pulse" that sets then clears an Event (missed wakeup)."""

import threading


class Pulse:
    def __init__(self) -> None:
        self.ready = threading.Event()

    def fire(self) -> None:
        self.ready.set()
        self.ready.clear()

    def wait(self) -> bool:
        return self.ready.wait()


class Latch(Pulse):
    def fire(self) -> None:
        self.ready.set()
