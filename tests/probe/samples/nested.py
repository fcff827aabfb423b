"""Sample learner code: shared state reached through calls, returns, recursion, generators
and callbacks (tests/probe/test_probe_locations.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator


class Nest:
    """Shared state reached through calls, returns, recursion, generators and callbacks."""

    def __init__(self) -> None:
        self.values = [3, 1, 2]
        self.total = 0
        self.lock = threading.Lock()

    def leaf(self, n: int) -> int:
        self.total += n
        return self.total

    def deep(self, n: int) -> int:
        return self.leaf(n) if n <= 0 else self.deep(n - 1) + self.leaf(n)

    def each(self) -> Iterator[int]:
        for value in self.values:
            self.total += value
            yield value

    def outer(self) -> Iterator[int]:
        # Resumed, it resumes `each` with no switch point of its own first (FOR_ITER).
        yield from self.each()

    def consume(self, items: Iterator[int]) -> int:
        return sum(self.leaf(item) for item in items)

    def sorted_values(self) -> list[int]:
        return sorted(self.values, key=lambda v: self.values.index(v))

    def locked(self) -> int:
        with self.lock:
            return self.deep(1)
