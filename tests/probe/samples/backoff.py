"""Sample learner code: try-lock with exponential back-off; ends only as time passes."""

import threading
import time


class Resource:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[str] = []
        self.attempts = 0

    def hold(self, seconds: float) -> None:
        with self.lock:
            time.sleep(seconds)
            self.log.append("holder")

    def use_with_backoff(self) -> float:
        start = time.monotonic()
        delay = 0.01
        while not self.lock.acquire(timeout=0.1):
            self.attempts += 1
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
        try:
            self.log.append("user")
        finally:
            self.lock.release()
        return time.monotonic() - start
