"""When time runs out, the report names the lock each thread waits for and who took it where."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from plugins import hang_report

SETTLE_SECONDS = 5.0  # a thread reaches its blocking line in microseconds; this is a backstop


def _blocked(thread: threading.Thread, lock: threading.Lock) -> None:
    """Wait until `thread` is stuck in an acquire of `lock` (its frame stops moving)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        states = {s.name: s for s in hang_report.states()}
        state = states.get(thread.name)
        if state is not None and state.waits is not None and state.waits.obj is lock:
            return
        time.sleep(0.01)
    pytest.fail(f"thread {thread.name} never blocked on the lock")


@pytest.fixture
def start() -> Iterator[Callable[[str, Callable[[], None]], threading.Thread]]:
    started: list[threading.Thread] = []

    def start_thread(name: str, body: Callable[[], None]) -> threading.Thread:
        def quietly() -> None:
            with contextlib.suppress(RuntimeError):  # a lock the test released for it to end
                body()

        thread = threading.Thread(target=quietly, name=name, daemon=True)
        thread.start()
        started.append(thread)
        return thread

    yield start_thread
    for thread in started:
        thread.join(SETTLE_SECONDS)


def test_a_thread_waiting_for_a_lock_it_holds_is_a_self_deadlock(start) -> None:  # type: ignore[no-untyped-def]
    lock = threading.Lock()

    def twice() -> None:
        with lock, lock:
            pass

    thread = start("twice", twice)
    _blocked(thread, lock)
    text = hang_report.diagnosis(hang_report.states())
    lock.release()
    assert text.startswith(
        "self-deadlock: thread twice waits for `lock` at test_hang_report.py:"
    ), text
    assert "a lock it took itself at test_hang_report.py:" in text, text


def test_two_threads_taking_two_locks_in_opposite_orders_are_a_circle(start) -> None:  # type: ignore[no-untyped-def]
    first, second = threading.Lock(), threading.Lock()
    both_hold = threading.Barrier(2)

    def forwards() -> None:
        with first:
            both_hold.wait()
            with second:
                pass

    def backwards() -> None:
        with second:
            both_hold.wait()
            with first:
                pass

    one, other = start("forwards", forwards), start("backwards", backwards)
    _blocked(one, second)
    _blocked(other, first)
    text = hang_report.diagnosis(hang_report.states())
    first.release()
    assert text.startswith("deadlock: threads wait for each other in a circle"), text
    assert "thread forwards waits for `second`" in text and "held by thread backwards" in text
    assert "thread backwards waits for `first`" in text and "held by thread forwards" in text


def test_the_lock_a_multi_item_with_waits_for_is_told_from_those_it_holds(start) -> None:  # type: ignore[no-untyped-def]
    outer, inner = threading.Lock(), threading.Lock()
    inner_taken, let_go = threading.Event(), threading.Event()

    def holder() -> None:
        with inner:
            inner_taken.set()
            let_go.wait(SETTLE_SECONDS)

    def both() -> None:
        with outer, inner:
            pass

    start("holder", holder)
    assert inner_taken.wait(SETTLE_SECONDS)
    waiter = start("both", both)
    _blocked(waiter, inner)
    states = {s.name: s for s in hang_report.states()}
    text = hang_report.diagnosis(list(states.values()))
    let_go.set()
    assert [held.text for held in states["both"].holds] == ["outer"], states["both"].holds
    assert "thread both waits for `inner`" in text and "held by thread holder" in text, text


def test_the_shown_frames_leave_out_pytest_and_the_plugins() -> None:
    frames = hang_report.stacks([s for s in hang_report.states() if s.name == "MainThread"])
    assert "test_hang_report.py" in frames
    assert "site-packages/_pytest" not in frames and "pluggy" not in frames, frames
