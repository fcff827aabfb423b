"""Sample learner code: a Thread subclass that overrides run() and races on a counter."""

import threading


class Tally:
    def __init__(self) -> None:
        self.total = 0


class Adder(threading.Thread):
    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self.tally = tally

    def run(self) -> None:
        self.tally.total += 1


def run_two(tally: Tally) -> None:
    workers = [Adder(tally), Adder(tally)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
