"""Sample learner code: a counter whose increment is not atomic (lost update)."""


class Counter:
    def __init__(self) -> None:
        self.v = 0

    def increment(self) -> None:
        self.v += 1
