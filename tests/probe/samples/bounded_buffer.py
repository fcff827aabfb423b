"""Sample learner code: a bounded buffer; `if` around Condition.wait is the bug."""

import threading
from collections import deque


class BufferIf:
    def __init__(self, capacity: int) -> None:
        self.items: deque[int] = deque()
        self.capacity = capacity
        self.cond = threading.Condition()

    def put(self, item: int) -> None:
        with self.cond:
            if len(self.items) >= self.capacity:
                self.cond.wait()
            self.items.append(item)
            self.cond.notify_all()

    def get(self) -> int:
        with self.cond:
            if not self.items:
                self.cond.wait()
            item = self.items.popleft()
            self.cond.notify_all()
            return item


class BufferWhile(BufferIf):
    def put(self, item: int) -> None:
        with self.cond:
            while len(self.items) >= self.capacity:
                self.cond.wait()
            self.items.append(item)
            self.cond.notify_all()

    def get(self) -> int:
        with self.cond:
            self.cond.wait_for(lambda: len(self.items) > 0)
            item = self.items.popleft()
            self.cond.notify_all()
            return item
