"""Kata `process_sync`: locks, barriers, events, semaphores and conditions across processes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from multiprocessing.sharedctypes import Synchronized

import pytest
from process_sync import count_together, crowd, meet, wait_for_reports

# Generous: each scenario below needs well under a second (a spawned one one or two); 5 s only
# runs out when something is really stuck, even on a busy machine.
TIMEOUT = 5.0
WINDOW_SECONDS = 0.001  # the pause inside each read-add-write (slow_shared_values)


@pytest.fixture(autouse=True)
def reap_children() -> Iterator[None]:
    """Whatever a test leaves behind is killed, so no process outlives it."""
    yield
    for child in multiprocessing.active_children():
        child.kill()
        child.join(2.0)


def assert_no_children_left() -> None:
    __tracebackhide__ = True
    left = multiprocessing.active_children()
    assert not left, (
        f"{len(left)} child process(es) still ran after your function returned ({left}): "
        f"join every child before returning (join_all does, and kills the late ones)"
    )


def test_spawned_workers_share_one_value_and_finish() -> None:
    try:
        total = count_together(2, 1000, start_method="spawn", timeout=TIMEOUT)
    except TimeoutError:
        total = None  # reported below, outside the `except`, without the traceback
    assert total is not None, (
        "the workers never finished adding 2 x 1000. If you made the Value with lock=Lock(): "
        "`counter.value` takes the value's lock itself, so inside `with counter.get_lock():` "
        "a plain Lock waits for itself forever. Keep the default lock, which is an RLock: the "
        "process holding it may take it again."
    )
    assert total == 2000, f"2 workers adding 1000 each reached {total}, not 2000"
    assert_no_children_left()


@pytest.fixture
def slow_shared_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shared Value pauses for a millisecond after a read and before a write.

    Without it, whether two processes' read-add-write overlap depends on the OS scheduler: on a
    busy machine each child may finish its loop inside one time slice and lose nothing. The pause
    puts every child to sleep in the middle of its read-add-write, so an unguarded one is
    overlapped every time; under the value's lock the others simply wait. Forked children inherit
    the patched class.
    """
    plain = Synchronized.value

    def read(self: Synchronized[int]) -> int:
        value = plain.fget(self)  # type: ignore[attr-defined]
        time.sleep(WINDOW_SECONDS)
        return int(value)

    def write(self: Synchronized[int], value: int) -> None:
        time.sleep(WINDOW_SECONDS)
        plain.fset(self, value)  # type: ignore[attr-defined]

    monkeypatch.setattr(Synchronized, "value", property(read, write))


@pytest.mark.usefixtures("slow_shared_values")
def test_no_increment_is_lost_when_four_processes_add_to_one_value_at_once() -> None:
    workers, times = 4, 50
    total = count_together(workers, times, start_method="fork", timeout=TIMEOUT)
    lost = workers * times - total
    assert lost == 0, (
        f"{lost} of {workers * times} increments were lost: two processes read the same value "
        f"before either wrote its new value back. Reading and writing `counter.value` each lock "
        f"on their own; hold counter.get_lock() around the whole read-add-write."
    )
    assert_no_children_left()


def test_no_process_leaves_the_barrier_before_the_last_one_has_arrived() -> None:
    parties, stagger = 3, 0.25
    try:
        stamps = meet(parties, stagger=stagger, start_method="fork", timeout=TIMEOUT)
    except TimeoutError:
        stamps = None  # reported below, outside the `except`, without the traceback
    assert stamps is not None, (
        f"a process was still waiting at the barrier when time ran out: the barrier opened "
        f"without it, or waits for more parties than there are processes. Make one Barrier for "
        f"exactly {parties} parties and pass it to every child."
    )
    last_arrival = max(arrival for arrival, _ in stamps)
    early = [i for i, (_, departure) in enumerate(stamps) if departure < last_arrival]
    assert not early, (
        f"process(es) {early} left (or never passed) the barrier before the last process arrived "
        f"(stamps: {[(round(a, 3), round(d, 3)) for a, d in stamps]}; 0 = never passed). Every "
        f"child must wait at one Barrier made for exactly {parties} parties."
    )
    assert_no_children_left()


def _go_later(seconds: float) -> tuple[multiprocessing.synchronize.Event, list[float]]:
    """An Event that a timer thread sets after `seconds`; the list gets the moment it was set."""
    go = multiprocessing.get_context("fork").Event()
    released_at: list[float] = []

    def release() -> None:
        released_at.append(time.monotonic())
        go.set()

    timer = threading.Timer(seconds, release)
    timer.daemon = True
    timer.start()
    return go, released_at


def test_nobody_enters_the_room_before_go_is_set() -> None:
    go, released_at = _go_later(0.3)
    visits = crowd(go, visitors=2, room_size=2, hold=0.1, start_method="fork", timeout=TIMEOUT)
    # crowd() returning before the timer set go is itself proof that nobody waited for it.
    go_time = released_at[0] if released_at else float("inf")
    early = [i for i, (entry, _) in enumerate(visits) if entry < go_time]
    assert not early, (
        f"visitor(s) {early} entered the room before go was set: each visitor must wait for the "
        f"go Event (with a timeout) before anything else"
    )
    assert_no_children_left()


def test_the_room_never_holds_more_visitors_than_the_semaphore_allows() -> None:
    go, _ = _go_later(0.0)
    room_size = 2
    visits = crowd(
        go, visitors=4, room_size=room_size, hold=0.3, start_method="fork", timeout=TIMEOUT
    )
    # The most visitors inside at one moment: count at each entry how many were inside then.
    peak = max(sum(1 for e, x in visits if e <= entry < x) for entry, _ in visits)
    assert peak <= room_size, (
        f"{peak} visitors were in a room for {room_size} at the same moment (entry and exit "
        f"times: {[(round(e, 2), round(x, 2)) for e, x in visits]}): guard the whole stay, entry "
        f"stamp to exit stamp, with one Semaphore({room_size}) shared by all visitors"
    )
    assert_no_children_left()


def test_the_parent_is_woken_as_soon_as_every_worker_has_reported() -> None:
    # The workers report 0.2 s apart, so the right program returns about 0.4 s after the start.
    # A parent that nobody wakes sleeps its whole 4 s timeout; 3 s leaves the right program a
    # wide margin on a busy machine while a sleeping parent can never make it.
    started = time.monotonic()
    try:
        seen: int | None = wait_for_reports(3, stagger=0.2, start_method="fork", timeout=4.0)
    except TimeoutError:
        seen = None  # ran out of time: judged below, with the elapsed time
    elapsed = time.monotonic() - started
    ended = "raised TimeoutError" if seen is None else "returned"
    assert elapsed < 3.0, (
        f"wait_for_reports took {elapsed:.1f} s (and {ended}) although the last worker "
        f"reported after 0.4 s: nobody woke the parent, which slept until its timeout. Call "
        f"condition.notify_all() after changing the count, while holding the condition."
    )
    assert seen == 3, (
        f"wait_for_reports returned after {elapsed:.1f} s having seen {seen} of 3 reports: the "
        f"parent stopped at its first wake-up. Re-check the count after every wake-up, in a loop "
        f"(condition.wait_for does that for you)."
    )
    assert_no_children_left()
