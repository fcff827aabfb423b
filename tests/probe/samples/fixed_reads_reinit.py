"""Sample learner code that runs ``__init__`` again on an object others already use: the
fields set there are rebound while a run goes on, so their reads keep their switch points."""

from __future__ import annotations


class Row:
    def __init__(self, cells: list[int]) -> None:
        self.cells = list(cells)

    def restart(self, cells: list[int]) -> None:
        self.__init__(cells)  # type: ignore[misc]

    def first(self) -> int:
        return self.cells[0]
