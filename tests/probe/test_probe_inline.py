"""An exploration on the main thread runs its schedules there (plugins/probe/watchdog.py): a
worker blocked outside the harness is reported and unwound, not left blocked; the test's own
signal handler and trace hook are as they were, before and after, and no schedule runs under
the trace hook."""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

import greenlet
import pytest

from plugins.probe import ProbeFailure, explore, watchdog
from tests.probe.samples import counter_locked, outside

pytestmark = pytest.mark.skipif(
    not watchdog.inline_here(), reason="runs schedules on the test's thread only where it can"
)


def _threads_inside(filename: str) -> list[str]:
    """The threads whose stack has a frame of ``filename`` now."""
    found = []
    for ident, frame in sys._current_frames().items():
        walk: FrameType | None = frame
        while walk is not None:
            if walk.f_code.co_filename == filename:
                found.append(str(ident))
                break
            walk = walk.f_back
    return found


@contextlib.contextmanager
def _registry_lock_held() -> Iterator[None]:
    """``outside.REGISTRY_LOCK`` held by the test meanwhile. Should a worker blocked on it not
    be unwound, it would block this very thread for good: the lock is let go after 4 s, and
    the worker's going on past it fails the test instead."""
    outside.REGISTRY_LOCK.acquire()
    let_go = threading.Event()

    def release() -> None:
        let_go.set()
        outside.REGISTRY_LOCK.release()

    safety = threading.Timer(4.0, release)
    safety.start()
    try:
        yield
    finally:
        safety.cancel()
        safety.join()
        if not let_go.is_set():
            outside.REGISTRY_LOCK.release()


def test_a_worker_blocked_outside_the_harness_is_unwound_not_left_blocked() -> None:
    registries: list[outside.Registry] = []

    def setup() -> outside.Registry:
        registries.append(outside.Registry())
        return registries[-1]

    with _registry_lock_held():
        started = time.perf_counter()
        with pytest.raises(ProbeFailure) as caught:
            explore(setup, [lambda r: r.add("a")], modules=[outside], budget=1, watchdog_s=0.3)
        elapsed = time.perf_counter() - started
        blocked = _threads_inside(outside.__file__)
    assert caught.value.kind == "uncontrolled", str(caught.value)
    assert "blocked outside the harness's control at outside.py:13" in str(caught.value)
    assert not blocked, f"threads {blocked} are still blocked in the learner's code"
    assert all(r.names == [] for r in registries), (
        "the worker went on past the real lock after its run was reported"
    )
    # One report at 0.3 s, and the shrinker's re-runs of it: each is blocked again.
    assert elapsed < 5, f"the blocked worker took {elapsed:.1f} s to report"


def test_the_tests_own_signal_handler_is_in_place_after_an_exploration() -> None:
    assert watchdog.SIGNAL is not None

    def mine(signum: int, frame: FrameType | None) -> None:
        """The test's own handler."""

    previous = signal.signal(watchdog.SIGNAL, mine)
    try:
        explore(
            counter_locked.Counter,
            [lambda c: c.increment(), lambda c: c.increment()],
            modules=[counter_locked],
            budget=5,
        )
        assert signal.getsignal(watchdog.SIGNAL) is mine, (
            f"after the exploration the handler is {signal.getsignal(watchdog.SIGNAL)!r}"
        )
    finally:
        signal.signal(watchdog.SIGNAL, previous)


def test_no_schedule_runs_under_the_tests_trace_hook_and_the_hook_is_back_after() -> None:
    seen: list[str] = []

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        if frame.f_code.co_filename == counter_locked.__file__:
            seen.append(f"{frame.f_code.co_name}:{event}")

    def check(counter: counter_locked.Counter, _results: list[object]) -> None:
        # in the test's thread, after the run: the test's own hook is back meanwhile
        assert sys.gettrace() is hook, f"the check ran under {sys.gettrace()!r}"

    sys.settrace(hook)
    try:
        explore(
            counter_locked.Counter,
            [lambda c: c.increment(), lambda c: c.increment()],
            check,
            modules=[counter_locked],
            budget=5,
        )
        after = sys.gettrace()
    finally:
        sys.settrace(None)
    assert after is hook, f"after the exploration the trace hook is {after!r}"
    calls = [s for s in seen if s.startswith("increment")]
    assert not calls, f"the test's trace hook saw the workers run: {calls[:4]}"


def test_the_watch_ends_with_the_exploration() -> None:
    before = {t.ident for t in threading.enumerate()}
    explore(
        counter_locked.Counter,
        [lambda c: c.increment(), lambda c: c.increment()],
        modules=[counter_locked],
        budget=5,
    )
    assert not watchdog.watching_now(), "schedules started now would still run inline"
    frames = sys._current_frames()
    watching = [
        ident
        for ident, frame in frames.items()
        if ident not in before and "_watch" in _names(frame)
    ]
    assert not watching, f"threads {watching} still watch after the exploration"


def _names(frame: FrameType | None) -> list[str]:
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names


def test_an_exploration_from_a_greenlet_of_the_test_hands_its_schedules_over() -> None:
    threads: list[int] = []

    def record(c: counter_locked.Counter) -> None:
        threads.append(_thread.get_ident())  # the OS thread's: threading's is the worker's
        c.increment()

    def explore_there() -> object:
        return explore(counter_locked.Counter, [record, record], modules=[counter_locked], budget=5)

    stats = greenlet.greenlet(explore_there).switch()
    assert getattr(stats, "schedules", None) == 5, f"the exploration ended with {stats!r}"
    assert threads and _thread.get_ident() not in threads, (
        "an exploration from a greenlet ran its workers on the test's thread: their greenlets "
        "would return to the greenlet that made them, not to the run's driver"
    )


def test_a_worker_still_blocked_after_the_signal_is_signalled_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first signal does nothing (as if the blocked call had swallowed it): the watch sends
    # another once the worker has stayed blocked for a further watchdog_s.
    handled: list[bool] = []
    unwind = watchdog._unwind_blocked

    def first_one_lost(signum: int, frame: FrameType | None) -> None:
        handled.append(True)
        if len(handled) > 1:
            unwind(signum, frame)

    monkeypatch.setattr(watchdog, "_unwind_blocked", first_one_lost)
    registries: list[outside.Registry] = []

    def setup() -> outside.Registry:
        registries.append(outside.Registry())
        return registries[-1]

    with _registry_lock_held():
        with pytest.raises(ProbeFailure) as caught:
            explore(setup, [lambda r: r.add("a")], modules=[outside], budget=1, watchdog_s=0.3)
        blocked = _threads_inside(outside.__file__)
    assert caught.value.kind == "uncontrolled", str(caught.value)
    assert not blocked, f"threads {blocked} are still blocked in the learner's code"
    assert len(handled) >= 2, (
        f"{len(handled)} signal(s) for a worker still blocked after the first: the watch "
        f"should signal again after each further watchdog_s"
    )
    assert all(r.names == [] for r in registries), (
        f"after {len(handled)} signals the worker went on past the real lock: the second "
        f"signal did not unwind it"
    )


def test_the_signal_while_no_worker_is_blocked_changes_nothing() -> None:
    sig = watchdog.SIGNAL
    assert sig is not None
    main = _thread.get_ident()  # the test's thread, the main one (inline_here)

    def signal_then_increment(c: counter_locked.Counter) -> None:
        signal.pthread_kill(main, sig)  # a worker running, not blocked
        c.increment()

    def check(c: counter_locked.Counter, _results: list[object]) -> None:
        assert c.v == 2, f"the count is {c.v} after two increments"
        signal.pthread_kill(main, sig)  # the test's thread, between two runs

    stats = explore(
        counter_locked.Counter,
        [signal_then_increment, lambda c: c.increment()],
        check,
        modules=[counter_locked],
        budget=5,
    )
    assert stats.schedules == 5
