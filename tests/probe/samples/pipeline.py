"""Sample learner code: a correct queue.Queue producer/consumer pipeline."""

import queue

STOP = None


class Pipeline:
    def __init__(self) -> None:
        self.q: queue.Queue[int | None] = queue.Queue(maxsize=2)
        self.seen: list[int] = []

    def produce(self, n: int) -> None:
        for i in range(n):
            self.q.put(i)
        self.q.put(STOP)

    def consume(self) -> None:
        while True:
            try:
                item = self.q.get(timeout=5)
            except queue.Empty:
                continue
            if item is STOP:
                self.q.task_done()
                return
            self.seen.append(item)
            self.q.task_done()
