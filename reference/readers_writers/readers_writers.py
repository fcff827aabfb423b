"""Kata `readers_writers`: a readers-writer lock that does not starve its writers.

Contract (the tests check each point under a controlled scheduler with a virtual clock):

- `ReadWriteLock()` guards a resource that many threads may *read* at the same time but only
  one thread at a time may *write*, with no reader present.
- §1 `acquire_read()` waits while a writer is inside, then enters as a reader.
  §2 `acquire_read()` also waits while a writer is *waiting*: from the moment a writer calls
  `acquire_write()`, no new reader enters ahead of it, so a stream of overlapping readers
  cannot starve the writer.
  §3 Any number of readers may be inside at once: two readers never wait for each other.
- §4 `release_read()` leaves, and the last reader out wakes the waiting writers.
- §5 `acquire_write()` waits until no reader and no other writer is inside, then enters
  alone.
  §6 A writer counts as waiting only until it enters: after it has left, new readers enter
  freely again, back to back.
- §7 `release_write()` leaves and wakes *everybody* waiting: all the readers queued behind the
  writer enter together.
- §8 Every counter changes only while the condition's lock is held: readers leaving at the
  same moment never leave a reader counted that is gone.
  §9 `acquire_read()` and `acquire_write()` re-check their reason to wait after every wakeup,
  in a `while` loop: a thread woken after another one got in first waits again.
- `reading()` and `writing()` (given) are context managers around the acquire/release pairs.
- The lock is not re-entrant: a thread that holds it must not acquire it again.
- Build it from one `threading.Condition` (already created in `__init__`) and the counters
  there.
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
