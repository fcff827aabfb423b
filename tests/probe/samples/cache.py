"""Sample learner code: a memo cache with check-then-act, and a locked version."""

from threading import Lock


class RacyCache:
    def __init__(self) -> None:
        self.data: dict[str, int] = {}
        self.computations = 0

    def get(self, key: str) -> int:
        if key not in self.data:
            self.computations += 1
            self.data[key] = len(key)
        return self.data[key]


class SafeCache:
    def __init__(self) -> None:
        self.data: dict[str, int] = {}
        self.computations = 0
        self.lock = Lock()

    def get(self, key: str) -> int:
        with self.lock:
            if key not in self.data:
                self.computations += 1
                self.data[key] = len(key)
            return self.data[key]
