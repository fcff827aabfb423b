"""Busy loops: a kata test whose own thread spins in the learner's code fails in about a second.

`while True: pass`, or a spin on a local variable, in code a test calls from its own (main)
thread never ends, and used to run into the test's budget (10 s and more) with a report of a
"probable deadlock". While a kata test runs, a sampler looks at the main thread's innermost
frame every SAMPLE_S seconds. The main thread is spinning when, for BUSY_S seconds, every
sample finds it in the kata module, between calls (not waiting inside one), with the same
local variables, while no thread that the test started is alive: then nothing else could end
the loop. The sampler raises BusyLoop in the main thread, which stops the loop at its next
instruction and fails the test naming the loop's line.

Workers under the controlled scheduler are watched by the scheduler itself
(plugins/probe/scheduler.py, `back_edge`).
"""

from __future__ import annotations

import ctypes
import dis
import linecache
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import CodeType, FrameType

import pytest

from plugins import impl

SAMPLE_S = 0.1
BUSY_S = 1.0  # long enough for any loop that computes: its local variables change meanwhile
_CALLS = frozenset(op for name, op in dis.opmap.items() if "CALL" in name)


class BusyLoop(AssertionError):
    """Raised in the main thread from outside, by class: the sampler sets `text` first."""

    text = "busy loop"

    def __str__(self) -> str:
        return self.text


# -- run-time hooks --------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    kata = impl.kata_of(item)
    implementation = impl.implementation(item.config)
    if kata is None or implementation is None:
        return (yield)
    watched = str(implementation.module_path(kata).resolve())
    sampler = _Sampler(watched)
    sampler.start()
    try:
        return (yield)
    finally:
        sampler.stop()


class _Sampler(threading.Thread):
    def __init__(self, learner_file: str) -> None:
        super().__init__(name="kata-busy-loop-sampler", daemon=True)
        self.learner_file = learner_file
        self.main = threading.main_thread()
        self.before = {t.ident for t in threading.enumerate()} | {None}
        self.stopped = threading.Event()

    def stop(self) -> None:
        # No cancelling of a BusyLoop still pending: clearing it with SetAsyncExc(id, NULL)
        # left CPython 3.11 unable to run the next probe's workers (measured). It is raised
        # while the main thread spins between calls, so it lands at once.
        self.stopped.set()
        self.join(timeout=1.0)

    def run(self) -> None:
        since: float | None = None
        state: tuple[CodeType, tuple[tuple[str, int], ...]] | None = None
        clock = 0.0
        while not self.stopped.wait(SAMPLE_S):
            clock += SAMPLE_S
            frame = sys._current_frames().get(self.main.ident or 0)
            seen = self._spin_state(frame)
            if seen is None or seen != state:
                since, state = (clock if seen is not None else None), seen
                continue
            if since is not None and clock - since >= BUSY_S and frame is not None:
                BusyLoop.text = _message(frame, BUSY_S)
                _raise_in(self.main.ident, BusyLoop)
                return

    def _spin_state(
        self, frame: FrameType | None
    ) -> tuple[CodeType, tuple[tuple[str, int], ...]] | None:
        """What must stay the same while the main thread spins; None when it does not spin."""
        if frame is None or frame.f_code.co_filename != self.learner_file:
            return None
        code = frame.f_code
        if frame.f_lasti >= 0 and code.co_code[frame.f_lasti] in _CALLS:
            return None  # waiting inside a call (a sleep, a lock, I/O): not spinning
        started = (t for t in threading.enumerate() if t is not self and t.ident not in self.before)
        if any(t.is_alive() for t in started):
            return None  # a thread of the test could still change what the loop waits for
        return code, tuple((name, id(value)) for name, value in frame.f_locals.items())


def _message(frame: FrameType, seconds: float) -> str:
    line = frame.f_lineno
    where = f"{Path(frame.f_code.co_filename).name}:{line}"
    text = linecache.getline(frame.f_code.co_filename, line).strip()
    return (
        f"busy loop: {frame.f_code.co_name} kept going round the loop at {where} `{text}` for "
        f"{seconds:g} s with nothing changing and no other thread running, so nothing can ever "
        "end it. A loop that waits must wait on something another thread can signal (a "
        "Condition, an Event, a Queue, a lock) or end by itself."
    )


def _raise_in(ident: int | None, exception: type[BaseException]) -> None:
    """Raise `exception` in thread `ident` at its next instruction: the only way to stop a
    thread that never calls anything."""
    if ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(ident), ctypes.py_object(exception)
        )
