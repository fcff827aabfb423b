"""A learner's use of plain queues, for the one-step queue methods (plugins/probe/atomic_queue)."""

from __future__ import annotations

import queue


class Mailbox:
    def __init__(self) -> None:
        self.box: queue.Queue[int] = queue.Queue()
        self.sizes: list[int] = []
        self.got: list[object] = []

    def send(self, item: int) -> None:
        self.box.put(item)

    def size(self) -> None:
        self.sizes.append(self.box.qsize())

    def take_now(self) -> None:
        try:
            self.got.append(self.box.get_nowait())
        except queue.Empty:
            self.got.append("empty")

    def take(self) -> None:
        self.got.append(self.box.get())

    def replace_box(self, kind: type[queue.Queue[int]]) -> None:
        self.box = kind()

    def hold_the_mutex(self) -> None:
        """Takes the queue's own mutex by hand, across switch points, and adds an item."""
        with self.box.mutex:
            self.box.queue.append(7)
            self.box.unfinished_tasks += 1
            self.box.not_empty.notify()


class Bounded:
    """A queue of one place, filled at the start: a put waits for a get."""

    def __init__(self) -> None:
        self.box: queue.Queue[int] = queue.Queue(maxsize=1)
        self.box.put(0)
        self.order: list[str] = []
        self.sizes: list[int] = []

    def put_one(self) -> None:
        self.box.put(1)
        self.order.append("put")

    def get_one(self) -> None:
        self.order.append(f"got {self.box.get()}")

    def size(self) -> None:
        self.sizes.append(self.box.qsize())


class CountingQueue(queue.Queue[int]):
    """A learner's subclass: its ``_init`` is the learner's code, with switch points of its own."""

    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)
        self.made_with = len(self.queue)
