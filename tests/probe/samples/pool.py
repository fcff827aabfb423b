"""Sample learner code: a connection pool guarded by a semaphore, released twice."""

import threading


class Pool:
    def __init__(self, size: int) -> None:
        self.slots = threading.Semaphore(size)
        self.lock = threading.Lock()
        self.in_use = 0
        self.peak = 0

    def use(self) -> None:
        self.slots.acquire()
        try:
            with self.lock:
                self.in_use += 1
                self.peak = max(self.peak, self.in_use)
            with self.lock:
                self.in_use -= 1
        finally:
            self.slots.release()
        self.slots.release()  # bug: released a second time


class BoundedPool(Pool):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.slots = threading.BoundedSemaphore(size)
