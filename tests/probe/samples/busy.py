"""Sample learner code: loops that no other worker can ever end (no switch point inside)."""


class Spinner:
    def __init__(self) -> None:
        self.ready = False

    def wait_forever(self) -> None:
        while True:
            pass

    def wait_on_a_copy(self) -> None:
        ready = self.ready  # read once: the loop spins on a local copy nobody else can change
        while not ready:
            pass

    def set(self) -> None:
        self.ready = True
