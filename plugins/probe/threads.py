"""Cooperative ``threading.Thread``, ``threading.Timer``, ``threading.current_thread`` and
``threading.get_ident`` (the workers of a run share one OS thread; each has its own ident).

A thread started from a controlled worker (or before the run launches) becomes a worker
of the run; one started anywhere else is a real thread, so nothing outside a run changes.
"""

from __future__ import annotations

import _thread
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .cooperative import Cooperative, poll
from .scheduler import DONE, Run, Unwind, Worker, active_run
from .signals import Event
from .tracing import untraced

REAL_THREAD = threading.Thread
REAL_CURRENT_THREAD = threading.current_thread
REAL_GET_IDENT = threading.get_ident

_thread_names = itertools.count(1)


class Thread(Cooperative):
    """Cooperative ``threading.Thread``: a real class learners can subclass (override run)."""

    def __init__(
        self,
        group: None = None,
        target: Callable[..., object] | None = None,
        name: str | None = None,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        daemon: bool | None = None,
    ) -> None:
        if group is not None:
            raise AssertionError("group argument must be None for now")
        run = active_run()
        self._bound_run = run
        if name is None:
            if run is not None:
                run.thread_seq += 1
                n = run.thread_seq
            else:
                n = next(_thread_names)
            name = f"Thread-{n}"
            target_name = getattr(target, "__name__", None)
            if target_name:
                name += f" ({target_name})"
        self._name = str(name)
        self._target = target
        self._args = tuple(args)
        self._kwargs = dict(kwargs or {})
        self._daemonic = bool(daemon) if daemon is not None else False
        self._started = False
        self._worker: Worker | None = None
        self._real_done: Any = None
        self._real_ident: int | None = None

    def run(self) -> None:
        try:
            if self._target is not None:
                self._target(*self._args, **self._kwargs)
        finally:
            del self._target, self._args, self._kwargs

    @untraced
    def start(self) -> None:
        if self._started:
            raise RuntimeError("threads can only be started once")
        self._started = True
        run = self._bound_run
        if run is not None and run is active_run() and not run.closed:
            w = run.current_worker()
            if w is not None:
                if run.aborted:
                    raise Unwind
                self._worker = run.spawn(self._name, self.run, self)
                run.step(w, run.site())
                return
            if run.current is None and not run.workers_launched:
                self._worker = run.add_worker(self._name, self.run, self)
                return
        self._real_done = _thread.allocate_lock()
        self._real_done.acquire()
        _thread.start_new_thread(self._real_body, ())

    def _real_body(self) -> None:
        self._real_ident = _thread.get_ident()
        try:
            self.run()
        except BaseException:
            pass  # like an uncaught thread exception: not the caller's to handle
        finally:
            self._real_done.release()

    @untraced
    def join(self, timeout: float | None = None) -> None:
        if not self._started:
            raise RuntimeError("cannot join thread before it is started")
        target = self._worker
        if target is not None:
            run = self._bound_run
            w = run.current_worker() if run is not None else None
            if run is not None and w is not None:
                if target is w:
                    raise RuntimeError("cannot join current thread")
                if run.aborted:
                    raise Unwind
                site = run.site()
                run.step(w, site)
                if target.status != DONE:
                    run.block(
                        w, lambda: target.status == DONE, run.clock.deadline(timeout), self, site
                    )
                return
            poll(lambda: target.status == DONE, timeout, "Thread.join")
            return
        if self._real_done is not None:
            wait = -1 if timeout is None else max(0.0, timeout)
            if self._real_done.acquire(True, wait):
                self._real_done.release()

    def is_alive(self) -> bool:
        if self._worker is not None:
            return self._worker.status != DONE
        if self._real_done is not None:
            return bool(self._real_done.locked())
        return False

    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = str(value)

    @property
    def ident(self) -> int | None:
        if self._worker is not None:
            return self._worker.ident or None
        return self._real_ident

    native_id = ident

    @property
    def daemon(self) -> bool:
        return self._daemonic

    @daemon.setter
    def daemon(self, value: bool) -> None:
        if self._started:
            raise RuntimeError("cannot set daemon status of active thread")
        self._daemonic = bool(value)

    def getName(self) -> str:
        return self._name

    def setName(self, name: str) -> None:
        self._name = str(name)

    def isDaemon(self) -> bool:
        return self._daemonic

    def setDaemon(self, daemonic: bool) -> None:
        self.daemon = daemonic

    def wait_text(self, run: Run) -> str:
        return f"{self._name} to finish"

    def __repr__(self) -> str:
        status = "started" if self._started else "initial"
        if self._started and not self.is_alive():
            status = "stopped"
        return f"<probe Thread({self._name}, {status})>"


@untraced
def current_thread() -> Any:
    run = active_run()
    w = run.current_worker() if run is not None else None
    if w is None or run is None:
        return REAL_CURRENT_THREAD()
    if w.thread is None:
        t = Thread.__new__(Thread)
        t._bound_run = run
        t._name = w.name
        t._daemonic = True
        t._started = True
        t._worker = w
        t._real_done = None
        t._real_ident = None
        w.thread = t
    return w.thread


def get_ident() -> int:
    """The calling worker's own ident (its Thread's ``ident``); a real thread's elsewhere."""
    run = active_run()
    w = run.current_worker() if run is not None else None
    return REAL_GET_IDENT() if w is None else w.ident


class Timer(Thread):
    """Cooperative ``threading.Timer``: waits on the virtual clock, so a 5 s delay costs nothing."""

    def __init__(
        self,
        interval: float,
        function: Callable[..., object],
        args: Iterable[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.interval = interval
        self.function = function
        self.args = tuple(args) if args is not None else ()
        self.kwargs = dict(kwargs) if kwargs is not None else {}
        self.finished = Event()

    def cancel(self) -> None:
        """Stop the timer if it has not fired yet."""
        self.finished.set()

    def run(self) -> None:
        self.finished.wait(self.interval)
        if not self.finished.is_set():
            self.function(*self.args, **self.kwargs)
        self.finished.set()
