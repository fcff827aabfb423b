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


class Exchange:
    """Plain-queue calls of every kind, for comparing the one-step methods' quick answers with
    the standard library's code: takers that wait and are woken in turn, a bounded queue,
    task_done and join, and each error a call can raise."""

    def __init__(self) -> None:
        self.box: queue.Queue[int] = queue.Queue()
        self.small: queue.Queue[int] = queue.Queue(maxsize=1)
        self.late: queue.Queue[int] = queue.Queue()  # the takers wait on it for the producer
        self.log: list[tuple[str, object]] = []

    def _try(self, who: str, action: object) -> None:
        try:
            self.log.append((who, action()))  # type: ignore[operator]
        except Exception as error:
            self.log.append((who, type(error).__name__))

    def producer(self) -> None:
        self.late.put(10)
        self.late.put(11)
        for item in range(3):
            self.box.put(item)
        self._try("put_nowait", lambda: self.small.put_nowait(9))
        self._try("put_nowait when full", lambda: self.small.put_nowait(8))
        self._try("put, negative timeout", lambda: self.small.put(7, timeout=-1))
        self.box.join()
        self.log.append(("producer", "joined"))

    def taker(self) -> None:
        self._try("taker got late", self.late.get)
        for _ in range(2):
            self._try("taker got", self.box.get)
            self.box.task_done()

    def hasty_taker(self) -> None:
        self._try("hasty got late", self.late.get)
        self._try("get, negative timeout", lambda: self.box.get(timeout=-1))
        self._try("hasty got", self.box.get)
        self.box.task_done()
        self._try("task_done on small", self.small.task_done)
        self._try("get_nowait on small", self.small.get_nowait)
