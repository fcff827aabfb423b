"""Sample learner code: a lock made at import time is a real lock the harness cannot see."""

import threading

REGISTRY_LOCK = threading.Lock()


class Registry:
    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, name: str) -> None:
        with REGISTRY_LOCK:
            self.names.append(name)
