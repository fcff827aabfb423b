"""Kata `readers_writers`: a readers-writer lock that does not starve its writers.

Contract (the tests check each point under a controlled scheduler with a virtual clock):

- `ReadWriteLock()` guards a resource that many threads may *read* at the same time but only
  one thread at a time may *write*, with no reader present.
- `acquire_read()` waits while a writer is inside **or waiting**, then enters as a reader.
  Any number of readers may be inside at once: two readers never wait for each other.
- `release_read()` leaves; the last reader out wakes the waiting writers.
- `acquire_write()` announces that a writer is waiting (from that moment no new reader may
  enter), waits until nobody is inside, then enters alone.
- `release_write()` leaves and wakes *everybody* waiting (all the readers queued behind the
  writer may enter together).
- No starvation of writers: while a writer waits, no new reader gets in; the readers already
  inside finish, and the writer goes next.
- `reading()` and `writing()` (given) are context managers around the acquire/release pairs.
- The lock is not re-entrant: a thread that holds it must not acquire it again.
- Build it from one `threading.Condition` (already created in `__init__`) and the counters
  there; wait in a `while` loop that re-checks the condition after every wakeup.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadWriteLock:
    """Many readers or one writer; a waiting writer goes before readers that come later."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0  # readers inside
        self._writer = False  # a writer inside
        self._writers_waiting = 0  # writers that called acquire_write and are not inside yet

    def acquire_read(self) -> None:
        """Enter as a reader: wait while a writer is inside or waiting."""
        with self._cond:
            # A waiting writer counts too: new readers queue behind it, so it cannot starve.
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1

    def release_read(self) -> None:
        """Leave as a reader; the last reader out wakes the waiting writers."""
        with self._cond:
            self._readers -= 1
            # Only the last reader out changes anything for a writer.
            if self._readers == 0:
                self._cond.notify_all()

    def acquire_write(self) -> None:
        """Enter as the only writer: announce yourself, then wait until nobody is inside."""
        with self._cond:
            # Announced before waiting: from now on no new reader enters ahead of us.
            self._writers_waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writer = True

    def release_write(self) -> None:
        """Leave as the writer and wake everybody who waits."""
        with self._cond:
            self._writer = False
            # All of them: every reader queued behind us may enter, not just one.
            self._cond.notify_all()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """`with rw.reading():` holds the lock as a reader for the block."""
        self.acquire_read()
        try:
            yield
        finally:
            self.release_read()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """`with rw.writing():` holds the lock as the writer for the block."""
        self.acquire_write()
        try:
            yield
        finally:
            self.release_write()
