"""Sample learner code: busy-waits on a flag nobody sets in the run (livelock / starvation).
``open_it`` could set it, so reading the flag stays a switch point (plugins/probe/rebinding)."""


class Gate:
    def __init__(self) -> None:
        self.open = False

    def wait_open(self) -> None:
        while not self.open:
            pass

    def open_it(self) -> None:
        self.open = True
