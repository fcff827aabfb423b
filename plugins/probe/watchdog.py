"""Schedules run on the test's own thread, watched from a harness thread.

Handing each schedule to a harness thread and waiting for it cost two thread wake-ups per
schedule: 100-180 us on the 2-core project VM, where an empty schedule costs 100 us run in
place. So an exploration started on the main thread runs its schedules there (``inline``),
and one harness thread watches them for the whole exploration instead: like the wait it
replaces, it looks every 50 ms whether the run has taken a step. A run that has not, for its
``watchdog_s``, has a worker blocked outside the harness's control (a real lock, a socket, a
real wait, a loop in code with no switch point): the watch fails the run with the same report
as before, and sends the main thread a signal. Its handler raises ``Unwind`` in the blocked
worker (a blocking call returns with EINTR to run it), which unwinds it as every worker of an
aborted run is unwound. Nothing is left blocked after the test, where a harness thread used
to stay behind with the blocked worker.

Only the main thread can take a signal, and only there can a handler be set: an exploration
on another thread (an asyncio test's helper thread), in a running event loop (the test's
loop would be the workers' running loop), from a greenlet other than the thread's own (the
workers' greenlets return to the one that made them), or off Linux, hands its schedules to a
harness thread as before (``Run.wait``). Linux only: there a lock's blocking acquire returns
at a signal to run its handler (a POSIX semaphore's wait), where macOS's waits on a condition
variable that a signal does not end, so a worker blocked on a real lock would block the test.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

import greenlet

from .clock import REAL_MONOTONIC
from .scheduler import Run, Unwind, active_run
from .threadpool import POOL

# A signal nothing else in a test run uses (pytest-timeout and the budgets use SIGALRM).
SIGNAL = getattr(signal, "SIGUSR2", None)
LOOK_S = 0.05  # how often the watch looks at the run, as Run.wait does
_WATCHING = [False]  # whether this process's explorations run inline now


def inline_here() -> bool:
    """Whether an exploration started now can run its schedules on this thread."""
    return (
        sys.platform.startswith("linux")
        and SIGNAL is not None
        and hasattr(signal, "pthread_kill")
        and _thread.get_ident() == threading.main_thread().ident
        and greenlet.getcurrent().parent is None
        and asyncio.events._get_running_loop() is None
    )


def watching_now() -> bool:
    """Whether the schedule about to run is to run inline, watched (``watching``)."""
    return _WATCHING[0]


@contextlib.contextmanager
def watching() -> Iterator[None]:
    """Run the schedules started meanwhile inline (main thread only: ``inline_here``), with
    a harness thread that watches them and the signal handler that unwinds a blocked one."""
    assert SIGNAL is not None
    previous = signal.signal(SIGNAL, _unwind_blocked)
    stop, gone = _thread.allocate_lock(), _thread.allocate_lock()
    stop.acquire()
    gone.acquire()
    # Held while the watch sends the signal; once ``stopped`` is set under it, none is sent:
    # the handler put back below may be the default one, which ends the process.
    sending, stopped = _thread.allocate_lock(), [False]
    main = _thread.get_ident()

    def watch() -> None:
        try:
            _watch(stop, main, sending, stopped)
        finally:
            gone.release()

    POOL.submit(watch)
    _WATCHING[0] = True
    try:
        yield
    finally:
        _WATCHING[0] = False
        with sending:
            stopped[0] = True
        stop.release()
        gone.acquire(True, 1.0)  # the watch wakes at once, and ends
        POOL.wait_idle(1.0)
        signal.signal(SIGNAL, previous)


def _watch(
    stop: _thread.LockType, main: int, sending: _thread.LockType, stopped: list[bool]
) -> None:
    """The harness thread's loop: a run with no step for its ``watchdog_s`` is failed, and its
    blocked worker interrupted, again after each further ``watchdog_s`` while it stays so."""
    seen: Run | None = None
    steps, quiet_since = 0, REAL_MONOTONIC()
    while not stop.acquire(True, LOOK_S):
        run = active_run()
        if run is None or not run.inline or not run.workers_launched or run.closed:
            seen = None
            continue
        now = REAL_MONOTONIC()
        if run is not seen or run.steps != steps:
            seen, steps, quiet_since = run, run.steps, now
        elif now - max(quiet_since, run.last_progress) > run.watchdog_s:
            run.fail_uncontrolled()
            quiet_since = now
            with sending, contextlib.suppress(OSError, ValueError):
                if not stopped[0]:
                    signal.pthread_kill(main, SIGNAL)  # type: ignore[arg-type]


def _unwind_blocked(signum: int, frame: FrameType | None) -> None:
    """On the main thread: unwind the worker the watch found blocked, if it still runs (a
    late signal, once the run has gone on or ended, is ignored)."""
    run = active_run()
    if run is None or not run.inline or not run.stuck or run.closed:
        return
    w = run.current
    if w is not None and w.glet is greenlet.getcurrent():
        raise Unwind
