"""Sample learner code: a try-lock whose pauses come from the `random` module's generator."""

import random
import threading
import time
from random import uniform


class Resource:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pauses: list[float] = []

    def hold(self, seconds: float) -> None:
        with self.lock:
            time.sleep(seconds)

    def use(self) -> list[float]:
        while not self.lock.acquire(timeout=0.1):
            pause = random.uniform(0, 0.2)
            self.pauses.append(pause)
            time.sleep(pause)
        self.lock.release()
        return self.pauses

    def use_bound(self) -> list[float]:
        """As ``use``, through a name bound to the generator (``from random import``)."""
        while not self.lock.acquire(timeout=0.1):
            pause = uniform(0, 0.2)
            self.pauses.append(pause)
            time.sleep(pause)
        self.lock.release()
        return self.pauses
