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
import time  # noqa: F401  # wait_for measures the time left with time.monotonic()
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
        # TODO(kata): check ownership; make a waiter lock, lock it and queue it; release the
        # condition's lock; acquire the waiter lock again (with the timeout: it blocks until a
        # notify releases it); take the condition's lock back; if not notified, unqueue it.
        raise NotImplementedError

    def wait_for(self, predicate: Callable[[], T], timeout: float | None = None) -> T:
        """Wait until predicate() is true, for at most `timeout` seconds in total."""
        # TODO(kata): loop: return when predicate() is true; otherwise wait for the time left
        # (measured with time.monotonic()), and give up once it is used up.
        raise NotImplementedError

    def notify(self, n: int = 1) -> None:
        """Wake up to n waiting threads, the longest-waiting first."""
        # TODO(kata): check ownership; release the waiter locks of the first n waiters.
        raise NotImplementedError

    def notify_all(self) -> None:
        """Wake every waiting thread."""
        # TODO(kata): notify as many as are waiting.
        raise NotImplementedError

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
        # TODO(kata): refuse a timeout for a non-blocking call; under the condition, wait for
        # a unit if allowed, take it if there is one, and say whether you did.
        raise NotImplementedError

    def release(self, n: int = 1) -> None:
        """Give back n units and wake up to n waiters."""
        # TODO(kata): refuse n < 1; under the condition, add n and notify n.
        raise NotImplementedError

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
        # TODO(kata): like Semaphore.release, but check the bound under the condition first.
        raise NotImplementedError


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
        # TODO(kata): under the condition, set the flag and notify everybody.
        raise NotImplementedError

    def clear(self) -> None:
        """Reset the flag."""
        # TODO(kata): under the condition, clear the flag.
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the flag is set (at most `timeout` s); True if it was set."""
        # TODO(kata): under the condition: True at once if set; otherwise wait once and return
        # whether you were woken (not the flag: it may have been cleared meanwhile).
        raise NotImplementedError


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
        # TODO(kata): under the condition: raise BrokenBarrierError if broken; take an index;
        # the last party runs the action (breaking the barrier if it raises), releases the
        # round, starts a new one and wakes all; the others wait for their round to be
        # released or broken, and break it themselves if their wait times out.
        raise NotImplementedError

    def reset(self) -> None:
        """Make the barrier usable again; threads waiting now get BrokenBarrierError."""
        # TODO(kata): under the condition: break the current round (not the barrier), start a
        # new round, zero the count, un-break, wake everybody.
        raise NotImplementedError

    def abort(self) -> None:
        """Break the barrier: every waiting and every later wait() raises BrokenBarrierError."""
        # TODO(kata): under the condition, break it.
        raise NotImplementedError
