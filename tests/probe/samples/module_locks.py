"""Sample learner code: locks made at import, in the module and in a class."""

import threading

COUNT_LOCK = threading.Lock()
FIRST = threading.Lock()
SECOND = threading.Lock()


class Counter:
    lock = threading.RLock()

    def __init__(self) -> None:
        self.v = 0

    def add_under_the_module_lock(self) -> None:
        with COUNT_LOCK:
            v = self.v
            self.v = v + 1

    def add_under_the_class_rlock(self) -> None:
        with Counter.lock:
            v = self.v
            self.v = v + 1

    def first_then_second(self) -> None:
        with FIRST, SECOND:
            self.v += 1

    def second_then_first(self) -> None:
        with SECOND, FIRST:
            self.v += 1


def add_under_a_lock_bound_later(counter: Counter) -> None:
    """Takes LATE, which the test binds after the module's import (and after a first run)."""
    with LATE:  # type: ignore[name-defined]  # noqa: F821
        v = counter.v
        counter.v = v + 1
