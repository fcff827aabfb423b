"""Kata `primitives`: Condition, Semaphore, BoundedSemaphore, Event and Barrier, built from Lock.

Each class is a drop-in replacement for the `threading` class of the same name: the same
constructor arguments and defaults, the same methods and properties, the same return values,
timeouts and exceptions. The tests run the same operations on your class and on threading's,
in the same order and at the same (virtual) times, and compare what every thread observed.

Building blocks: `threading.Lock` only (and `threading.RLock`, the default lock of a
Condition). `Condition` is made of a lock and one waiter lock per waiting thread; the other
classes are made of a `Condition(threading.Lock())` and a few fields (their `__init__` is
given). Contract, class by class:

- `Condition(lock=None)`: `lock` defaults to a new `threading.RLock()`. `with cond:`,
  `acquire()` and `release()` are the lock's (given). `wait()` expects the lock held once (as
  `with cond:` does), not recursively.
  §1 `Condition.wait(timeout=None)` raises `RuntimeError` when the caller does not hold the
  lock.
  §2 `Condition.notify(n=1)` and `notify_all()` raise `RuntimeError` when the caller does not
  hold the lock.
  §3 `Condition.wait` releases the lock while it sleeps, and holds it again when it returns.
  §4 `Condition.wait` returns True when a `notify` picked this thread, and False when
  `timeout` seconds passed first; a timeout of 0 or less gives False at once, never a wait.
  §5 A waiter whose `wait` timed out leaves the queue of waiters: a later `notify` goes to a
  thread that still waits.
  §6 `Condition.notify(n=1)` wakes up to `n` waiters, those that started waiting first;
  `notify_all()` wakes all of them.
  §7 `Condition.wait_for(predicate, timeout=None)` re-checks `predicate()` after every wakeup
  and returns its last value.
  §8 The `timeout` of `wait_for` counts the whole wait, not each wakeup's wait.
- `Semaphore(value=1)` (`__init__`, `with sem:` given):
  §9 `Semaphore.acquire(blocking=True, timeout=None)` takes one unit, waiting while none is
  left (at most `timeout` seconds), and returns whether it got one.
  §10 `Semaphore.acquire(blocking=False)` and `acquire(timeout=0)` never wait, and
  `acquire(False, timeout)` raises `ValueError`.
  §11 `Semaphore.acquire` checks the count and takes the unit in one step under the lock:
  two threads never take the same last unit.
  §12 `Semaphore.release(n=1)` gives back `n` units and wakes up to `n` waiters; it raises
  `ValueError` if `n < 1`.
- §13 `BoundedSemaphore(value=1).release(n=1)` raises `ValueError`, and changes nothing,
  when `n < 1` or when the count would exceed the initial value.
- `Event()` (`is_set()` given):
  §14 `Event.set()` sets the flag and wakes every waiter; `clear()` lowers it.
  §15 `Event.wait(timeout=None)` returns True at once if the flag is set, True when `set()`
  wakes it (even if `clear()` came before it ran again), and False on timeout.
- `Barrier(parties, action=None, timeout=None)` (`parties`, `n_waiting`, `broken` and `_break`
  given):
  §16 `Barrier.wait(timeout=None)` blocks until `parties` threads wait, then releases them
  all and returns each one's arrival index (0 for the first).
  §17 The last party to arrive runs `action` once per round, before anyone goes on.
  §18 When the action raises, the barrier breaks and the exception propagates in the thread
  that ran it.
  §19 A `Barrier.wait` that times out breaks the barrier for everyone; its timeout is the
  barrier's own unless `wait` is given one.
  §20 Once the barrier is broken (by a timeout, a failing action or `abort()`), every waiting
  and every later `wait()` raises `BrokenBarrierError` (threading's own class).
  §21 `Barrier.reset()` makes the barrier usable again; threads waiting at that moment get
  `BrokenBarrierError`.
  §22 The barrier is reusable round after round, also when the parties come straight back
  for the next round while the others are still waking up.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, TypeVar

BrokenBarrierError = threading.BrokenBarrierError
T = TypeVar("T")


class LockLike(Protocol):
    """What a Condition needs from its lock: `threading.Lock` and `threading.RLock` fit."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...

    def __enter__(self) -> bool: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> None: ...


class Condition:
    """threading.Condition, made of a lock and one waiter lock per waiting thread."""

    def __init__(self, lock: LockLike | None = None) -> None:
        self._lock: LockLike = threading.RLock() if lock is None else lock
        self.acquire = self._lock.acquire
        self.release = self._lock.release
        self._waiters: deque[LockLike] = deque()  # one locked lock per waiting thread, FIFO

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.__exit__(exc_type, exc, tb)

    def _is_owned(self) -> bool:
        """Is the lock held? (by this thread for an RLock; by anybody for a plain Lock)"""
        is_owned = getattr(self._lock, "_is_owned", None)
        if is_owned is not None:
            return bool(is_owned())
        if self._lock.acquire(False):
            self._lock.release()
            return False
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, sleep until notified or timed out, take the lock back."""
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        # The waiter lock is locked now; acquiring it again blocks until notify releases it.
        waiter = threading.Lock()
        waiter.acquire()
        self._waiters.append(waiter)
        self._lock.release()
        notified = False
        try:
            if timeout is None:
                notified = waiter.acquire()
            elif timeout > 0:
                notified = waiter.acquire(True, timeout)
            else:
                notified = waiter.acquire(False)
            return notified
        finally:
            self._lock.acquire()
            if notified:
                waiter.release()  # it was only a signal: leave nothing locked behind
            else:
                # Timed out: leave the queue, or a later notify would be spent on us.
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass  # a notify picked us as we timed out, and released our lock itself
                else:
                    waiter.release()

    def wait_for(self, predicate: Callable[[], T], timeout: float | None = None) -> T:
        """Wait until predicate() is true, for at most `timeout` seconds in total."""
        deadline = None if timeout is None else time.monotonic() + timeout
        result = predicate()
        # Re-check after every wakeup: a notify only says "something changed".
        while not result:
            if deadline is None:
                self.wait()
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.wait(left)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wake up to n waiting threads, the longest-waiting first."""
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        # Oldest first; each released waiter lock lets exactly one waiting thread go.
        for _ in range(min(n, len(self._waiters))):
            self._waiters.popleft().release()

    def notify_all(self) -> None:
        """Wake every waiting thread."""
        self.notify(len(self._waiters))

    def notifyAll(self) -> None:  # threading's deprecated alias, for drop-in use
        self.notify_all()


class Semaphore:
    """threading.Semaphore: a counter that acquire() decrements, waiting while it is 0."""

    def __init__(self, value: int = 1) -> None:
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        self._cond = Condition(threading.Lock())
        self._value = value

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take one unit, waiting (at most `timeout` s, or not at all) while there is none."""
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        with self._cond:
            # wait_for re-checks after each wakeup: another thread may take the unit first.
            if blocking:
                got = self._cond.wait_for(lambda: self._value > 0, timeout)
            else:
                got = self._value > 0
            if got:
                self._value -= 1
            return got

    def release(self, n: int = 1) -> None:
        """Give back n units and wake up to n waiters."""
        if n < 1:
            raise ValueError("n must be one or more")
        with self._cond:
            self._value += n
            # n units can satisfy n waiters: waking fewer would leave units unused.
            self._cond.notify(n)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class BoundedSemaphore(Semaphore):
    """threading.BoundedSemaphore: release() may never raise the count above its start."""

    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self._initial_value = value

    def release(self, n: int = 1) -> None:
        """Give back n units; ValueError (and no change) if that exceeds the initial value."""
        if n < 1:
            raise ValueError("n must be one or more")
        with self._cond:
            # Checked and changed under one lock, or two releases could both pass the check.
            if self._value + n > self._initial_value:
                raise ValueError("Semaphore released too many times")
            self._value += n
            self._cond.notify(n)


class Event:
    """threading.Event: a flag that threads can wait for."""

    def __init__(self) -> None:
        self._cond = Condition(threading.Lock())
        self._flag = False

    def is_set(self) -> bool:
        """Is the flag set?"""
        return self._flag

    def isSet(self) -> bool:  # threading's deprecated alias, for drop-in use
        return self.is_set()

    def set(self) -> None:
        """Set the flag and wake every waiting thread."""
        with self._cond:
            self._flag = True
            # Every waiter may go, not just one.
            self._cond.notify_all()

    def clear(self) -> None:
        """Reset the flag."""
        with self._cond:
            self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the flag is set (at most `timeout` s); True if it was set."""
        with self._cond:
            if self._flag:
                return True
            # Only set() notifies, so being woken means it was set, even if cleared since.
            return self._cond.wait(timeout)


class _Round:
    """One use of a Barrier: it ends released (everyone passes) or broken."""

    __slots__ = ("broken", "released")

    def __init__(self) -> None:
        self.released = False
        self.broken = False


class Barrier:
    """threading.Barrier: `parties` threads wait until all have arrived, round after round."""

    def __init__(
        self,
        parties: int,
        action: Callable[[], object] | None = None,
        timeout: float | None = None,
    ) -> None:
        if parties < 1:
            raise ValueError("parties must be >= 1")
        self._cond = Condition(threading.Lock())
        self._parties = parties
        self._action = action
        self._timeout = timeout
        self._count = 0  # threads waiting in the current round
        self._round = _Round()  # the current round; a waiter keeps the one it joined
        self._broken = False  # broken until reset()

    @property
    def parties(self) -> int:
        return self._parties

    @property
    def n_waiting(self) -> int:
        return self._count

    @property
    def broken(self) -> bool:
        return self._broken

    def _break(self) -> None:
        """Break the barrier and its current round, and wake everybody (hold the lock)."""
        self._broken = True
        self._round.broken = True
        self._count = 0
        self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for all parties; return this thread's arrival index."""
        if timeout is None:
            timeout = self._timeout
        with self._cond:
            if self._broken:
                raise BrokenBarrierError
            index = self._count
            self._count += 1
            mine = self._round
            if self._count == self._parties:
                try:
                    if self._action is not None:
                        self._action()
                except BaseException:
                    self._break()
                    raise
                # A fresh round: threads that come back at once cannot mix with this one.
                mine.released = True
                self._round = _Round()
                self._count = 0
                self._cond.notify_all()
                return index
            self._cond.wait_for(lambda: mine.released or mine.broken, timeout)
            if mine.released:
                return index
            if not mine.broken:
                self._break()  # our wait timed out: nobody else may wait forever either
            raise BrokenBarrierError

    def reset(self) -> None:
        """Make the barrier usable again; threads waiting now get BrokenBarrierError."""
        with self._cond:
            # Those waiting in the old round get BrokenBarrierError; the new round is clean.
            self._round.broken = True
            self._round = _Round()
            self._count = 0
            self._broken = False
            self._cond.notify_all()

    def abort(self) -> None:
        """Break the barrier: every waiting and every later wait() raises BrokenBarrierError."""
        with self._cond:
            self._break()
