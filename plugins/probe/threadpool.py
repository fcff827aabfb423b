"""The harness's own threads: the watch over an exploration's schedules (``watchdog``), or,
for an exploration off the main thread, the thread each of its schedules runs on (its workers
are greenlets there), handed over by the test's thread, which waits for it."""

from __future__ import annotations

import _thread
import contextlib
import ctypes
import functools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

allocate_lock = _thread.allocate_lock
TASKS = Path("/proc/self/task")  # one entry per OS thread of this process (Linux)
EXITED_WAIT_S = 0.2  # how long a fork waits for retired threads to be gone from the OS


def _exit_job() -> None:
    """Handed to an idle thread to make it end (compared by identity, never called)."""


def _nothing() -> None:
    """A reserved thread's first job: it goes idle at once, set up for the exploration."""


class ThreadPool:
    """Reusable harness threads: starting an OS thread per worker per schedule dominated
    the cost of short schedules. Idle threads exit after a while, so none linger forever, and
    at once before the process forks: a fork from a process with threads is unsafe (Python
    3.12+ warns about it), and the learner's code forks processes right after probe tests."""

    IDLE_S = 20.0

    def __init__(self) -> None:
        self._guard = allocate_lock()
        self._idle: list[list[Any]] = []  # [wake lock, job, gone lock]
        self._running = 0  # threads alive, busy or idle
        self._cpus: frozenset[int] | None = None  # the CPUs jobs run on now; None: any
        self._unpinned: frozenset[int] | None = None  # the CPUs a thread may use otherwise

    @contextlib.contextmanager
    def on_one_core(self) -> Iterator[None]:
        """Run every job started meanwhile on one CPU: the one the caller is on now.

        The test's thread and the run's thread take turns: one waits while the other runs.
        Waking a thread parked on another core costs about twice as much as waking one on
        the same core (measured when each worker was a thread of its own: barriers' three
        parties, 6.5 -> 4.0 ms a schedule on this 2-core VM), and nothing is lost, since
        only one of them runs at a time.
        Taking the caller's CPU keeps two test processes side by side on the cores the
        kernel gave them. The caller itself is left free: a process that it, the setup or
        the check starts must not inherit one CPU."""
        if not hasattr(os, "sched_setaffinity") or self._cpus is not None:
            yield
            return
        try:
            allowed = frozenset(os.sched_getaffinity(0))
        except OSError:
            yield
            return
        cpu = _current_cpu()
        self._unpinned = allowed
        self._cpus = frozenset({cpu if cpu in allowed else min(allowed)})
        try:
            yield
        finally:
            self._cpus = None

    def submit(self, job: Callable[[], None]) -> None:
        with self._guard:
            slot = self._idle.pop() if self._idle else None
            if slot is None:
                self._running += 1
        if slot is None:
            self._start(job)
        else:
            slot[1] = job
            slot[0].release()

    def reserve(self, count: int) -> None:
        """Start threads until ``count`` are idle: an exploration asks for one per worker
        before its first schedule, which would otherwise pay to start each (0.1-0.3 ms)."""
        with self._guard:
            missing = count - len(self._idle)
            self._running += max(0, missing)
        for _ in range(missing):
            self._start(_nothing)
        # Until they are idle: a fork right after the exploration must find every thread
        # idle, to retire it (3.12+ warns about forking a process with threads).
        deadline = time.monotonic() + EXITED_WAIT_S
        while missing > 0 and len(self._idle) < count and time.monotonic() < deadline:
            time.sleep(0.0001)

    def run_and_wait(self, job: Callable[[], None], timeout: float = 1.0) -> None:
        """Run ``job`` on the thread the next job will run on (the last to go idle), and
        wait for it, ``timeout`` at most."""
        done = allocate_lock()
        done.acquire()

        def then_done() -> None:
            try:
                job()
            finally:
                done.release()

        self.submit(then_done)
        done.acquire(True, timeout)
        self.wait_idle(timeout)

    def wait_idle(self, timeout: float) -> None:
        """Until a thread whose job has ended is idle again, ``timeout`` at most: the next job
        must find it there, not start another thread, and a fork must find it idle."""
        deadline = time.monotonic() + timeout
        while not self._idle and time.monotonic() < deadline:
            time.sleep(0.0001)

    def _start(self, job: Callable[[], None]) -> None:
        wake, gone = allocate_lock(), allocate_lock()
        wake.acquire()
        gone.acquire()
        _thread.start_new_thread(self._loop, ([wake, job, gone],))

    def _loop(self, slot: list[Any]) -> None:
        try:
            self._serve(slot)
        finally:
            with self._guard:
                self._running -= 1
            slot[2].release()

    def _serve(self, slot: list[Any]) -> None:
        pinned: frozenset[int] | None = None  # what this thread was last set to
        while True:
            job, slot[1] = slot[1], None
            if job is _exit_job:
                return
            # A thread made while jobs ran on one core inherited that core: it is set back
            # to the CPUs the caller had (``_unpinned``) at its first job after that.
            wanted = self._cpus or self._unpinned
            if wanted is not None and wanted != pinned:
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(0, wanted)
                    pinned = wanted
                    _batch(wanted is self._cpus)
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

    def retire_idle(self) -> None:
        """End every idle thread and wait until the OS has let them go (before a fork)."""
        with self._guard:
            slots, self._idle = self._idle, []
        if not slots:
            return
        remaining = _os_threads() - len(slots)
        for slot in slots:
            slot[1] = _exit_job
            slot[0].release()
        for slot in slots:
            slot[2].acquire(True, EXITED_WAIT_S)
        # The thread function has returned; its OS thread ends a moment later.
        deadline = time.monotonic() + EXITED_WAIT_S
        while time.monotonic() < deadline and _os_threads() > remaining:
            time.sleep(0.001)

    def forget_threads(self) -> None:
        """In a forked child: the parent's threads do not exist here."""
        self._guard = allocate_lock()
        self._idle = []
        self._running = 0
        self._cpus = None


def _batch(on: bool) -> None:
    """SCHED_BATCH for a thread that shares one core with the test's thread (SCHED_OTHER
    back when it is unpinned). The test's thread hands a schedule over, then waits: a normal
    thread woken there preempts the one that woke it, finds the GIL still held, sleeps
    again, and is woken a second time once the waker blocks. A batch thread never preempts
    at wake-up, so it runs once the waker blocks: one switch per hand-off instead of three
    (measured when every worker was a thread: barriers' three parties under random walk,
    3.6 -> 3.0 ms a schedule)."""
    policy = getattr(os, "SCHED_BATCH", None) if on else getattr(os, "SCHED_OTHER", None)
    if policy is None or not hasattr(os, "sched_setscheduler"):
        return
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, policy, os.sched_param(0))


@functools.cache
def _sched_getcpu() -> Callable[[], int]:
    """glibc's sched_getcpu, looked up once (a CDLL per call cost 60 us)."""
    return ctypes.CDLL(None).sched_getcpu


def _current_cpu() -> int:
    """The CPU the calling thread runs on now (glibc's sched_getcpu), or -1."""
    try:
        return int(_sched_getcpu()())
    except (OSError, AttributeError):
        return -1


def _os_threads() -> int:
    try:
        return len(os.listdir(TASKS))
    except OSError:
        return 0


POOL = ThreadPool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=POOL.retire_idle, after_in_child=POOL.forget_threads)
