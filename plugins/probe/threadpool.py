"""The harness's own threads, which run the workers of every schedule."""

from __future__ import annotations

import _thread
from collections.abc import Callable
from typing import Any

allocate_lock = _thread.allocate_lock


class ThreadPool:
    """Reusable harness threads: starting an OS thread per worker per schedule dominated
    the cost of short schedules. Idle threads exit after a while, so none linger forever."""

    IDLE_S = 20.0

    def __init__(self) -> None:
        self._guard = allocate_lock()
        self._idle: list[list[Any]] = []  # [wake lock, job]

    def submit(self, job: Callable[[], None]) -> None:
        with self._guard:
            slot = self._idle.pop() if self._idle else None
        if slot is None:
            slot = [allocate_lock(), job]
            slot[0].acquire()
            _thread.start_new_thread(self._loop, (slot,))
        else:
            slot[1] = job
            slot[0].release()

    def _loop(self, slot: list[Any]) -> None:
        while True:
            job, slot[1] = slot[1], None
            try:  # noqa: SIM105 - jobs handle their own errors; nothing may reach unraisablehook
                job()
            except BaseException:
                pass
            with self._guard:
                self._idle.append(slot)
            if not slot[0].acquire(True, self.IDLE_S):
                with self._guard:
                    if slot in self._idle:
                        self._idle.remove(slot)
                        return
                if not slot[0].acquire(True, 5.0):  # a job was handed over as we timed out
                    return


POOL = ThreadPool()
