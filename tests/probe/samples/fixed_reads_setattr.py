"""Sample learner code that rebinds a field without a store instruction (``setattr``): no
read of a field or a global may lose its switch point here."""

from __future__ import annotations

import threading


class Flag:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.up = False

    def raise_it(self) -> None:
        setattr(self, "up", True)  # noqa: B010 - rebinds by setattr on purpose

    def is_up(self) -> bool:
        return self.up
