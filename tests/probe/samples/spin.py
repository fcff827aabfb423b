"""Sample learner code: busy-waits on a flag nobody sets (livelock / starvation)."""


class Gate:
    def __init__(self) -> None:
        self.open = False

    def wait_open(self) -> None:
        while not self.open:
            pass
