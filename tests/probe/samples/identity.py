"""Sample learner code: what each thread is told about itself (its ident, its own storage)."""

import contextvars
import threading

TAG: contextvars.ContextVar[str | None] = contextvars.ContextVar("TAG", default=None)


class Seen:
    def __init__(self) -> None:
        self.mine = threading.local()
        self.idents: dict[str, tuple[int, int | None]] = {}
        self.leaks: list[str] = []
        self.inherited: str | None = None

    def record(self, tag: str) -> None:
        self.inherited = TAG.get()
        TAG.set(tag)
        self.mine.tag = tag
        self.idents[tag] = (threading.get_ident(), threading.current_thread().ident)
        if self.mine.tag != tag:
            self.leaks.append(f"{tag} read {self.mine.tag}")


class Tally:
    def __init__(self) -> None:
        self.v = 0

    def add(self, times: int) -> None:
        for _ in range(times):
            self.v += 1

    def start_and_join(self, times: int) -> None:
        for _ in range(times):
            t = threading.Thread(target=self.noop)
            t.start()
            t.join()

    def noop(self) -> None:
        pass
