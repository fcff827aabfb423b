"""Kata `process_sync`: locks, barriers, events, semaphores and conditions across processes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.sharedctypes import Synchronized
from typing import Any

import pytest
from process_sync import (
    count_together,
    crowd,
    meet,
    report_and_stay,
    stamp_at_barrier,
    visit,
    wait_for_reports,
)

# Generous: each scenario below needs well under a second (a spawned one one or two); 5 s only
# runs out when something is really stuck, even on a busy machine.
TIMEOUT = 5.0
WINDOW_SECONDS = 0.001  # the pause inside each read-add-write (slow_shared_values)
FORK = multiprocessing.get_context("fork")
STUCK_COUNTING = (
    "the workers never finished adding, and time ran out: they waited forever. Either the "
    "start Barrier counts other than `workers` parties (with too many nobody passes it; with a "
    "fixed number, the workers beyond it wait alone), or the Value was made with lock=Lock(): "
    "`counter.value` takes the value's lock itself, so inside `with counter.get_lock():` a "
    "plain Lock waits for itself forever. Make Barrier(workers), and keep the Value's default "
    "lock, an RLock, which the process holding it may take again."
)


@pytest.fixture(autouse=True)
def reap_children() -> Iterator[None]:
    """Whatever a test leaves behind is killed, so no process outlives it."""
    yield
    for child in multiprocessing.active_children():
        child.kill()
        child.join(2.0)


def assert_no_children_left(after: str = "your function returned") -> None:
    __tracebackhide__ = True
    left = multiprocessing.active_children()
    assert not left, (
        f"{len(left)} child process(es) still ran after {after} ({left}): join every child "
        f"before returning (join_all does, and kills the late ones)"
    )


def parent(function: Callable[..., Any], *args: Any, timeout: float, **kwargs: Any) -> Any:
    """function(*args, timeout=timeout, **kwargs), or None when it raised TimeoutError at its
    deadline (the caller says why); a TimeoutError long before the deadline fails here."""
    __tracebackhide__ = True
    started = time.monotonic()
    try:
        return function(*args, timeout=timeout, **kwargs)
    except TimeoutError:
        elapsed = time.monotonic() - started
    if elapsed < timeout / 2:
        pytest.fail(
            f"{function.__name__} raised TimeoutError after {elapsed:.2f} s, long before its "
            f"timeout of {timeout:g} s: join_all takes a deadline, a moment on the "
            f"time.monotonic() clock (time.monotonic() + timeout), not a number of seconds. "
            f"Given {timeout:g}, it finds that moment long past."
        )
    return None


class Call:
    """`function(*args)` in a daemon thread of the test's process, waited for with a bound."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.outcome: list[Any] = []
        self.took = 0.0
        started = time.monotonic()

        def run() -> None:
            try:
                self.outcome.append(function(*args))
            except BaseException as error:  # judged by the test, in its own thread
                self.outcome.append(error)
            self.took = time.monotonic() - started

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def finished_within(self, seconds: float) -> bool:
        self._thread.join(seconds)
        return not self._thread.is_alive()

    def error(self) -> BaseException | None:
        """The exception the call raised (NotImplementedError is raised again), or None."""
        __tracebackhide__ = True
        raised = self.outcome[0] if self.outcome else None
        if isinstance(raised, NotImplementedError):
            raise raised
        return raised if isinstance(raised, BaseException) else None


# -- 1. a shared counter ----------------------------------------------------------------------


@pytest.mark.clause(2, 4)
def test_spawned_workers_share_one_value_and_finish() -> None:
    total = parent(count_together, 2, 1000, start_method="spawn", timeout=TIMEOUT)
    assert total is not None, STUCK_COUNTING
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


@pytest.mark.clause(2, 3)
@pytest.mark.usefixtures("slow_shared_values")
def test_no_increment_is_lost_when_three_processes_add_to_one_value_at_once() -> None:
    workers, times = 3, 60
    total = parent(count_together, workers, times, start_method="fork", timeout=TIMEOUT)
    assert total is not None, STUCK_COUNTING
    lost = workers * times - total
    assert lost == 0, (
        f"{lost} of {workers * times} increments were lost: two processes read the same value "
        f"before either wrote its new value back. Reading and writing `counter.value` each lock "
        f"on their own; hold counter.get_lock() around the whole read-add-write."
    )
    assert_no_children_left()


# -- 2. a barrier -----------------------------------------------------------------------------


@pytest.mark.clause(5)
def test_stamp_at_barrier_stamps_its_own_slots_after_its_delay() -> None:
    barrier = FORK.Barrier(1)  # opens for its single party at once
    stamps = FORK.Array("d", 4, lock=False)
    started = time.monotonic()
    stamp_at_barrier(barrier, stamps, 1, 0.1, TIMEOUT)
    arrival, departure = stamps[2], stamps[3]
    assert stamps[0] == stamps[1] == 0.0, (
        f"stamp_at_barrier(..., index=1, ...) wrote {stamps[:]}: child 1's slots are "
        f"stamps[2] (arrival) and stamps[3] (departure); slots 0 and 1 belong to child 0"
    )
    assert arrival >= started + 0.1, (
        f"the arrival was stamped {arrival - started:.3f} s after the call began, before its "
        f"delay of 0.1 s was over: sleep `delay` first, then stamp the arrival"
    )
    assert departure >= arrival, (
        f"the departure stamp ({departure}) is missing or earlier than the arrival ({arrival}): "
        f"stamp time.monotonic() into stamps[2 * index + 1] after the barrier"
    )


@pytest.mark.clause(6)
def test_stamp_at_barrier_gives_up_after_its_timeout_without_a_departure() -> None:
    barrier = FORK.Barrier(2)  # nobody else comes: the barrier can only time out
    stamps = FORK.Array("d", 2, lock=False)
    call = Call(stamp_at_barrier, barrier, stamps, 0, 0.0, 0.2)
    ended = call.finished_within(2.0)
    if not ended:
        barrier.abort()  # frees a wait without a timeout, with BrokenBarrierError
        call.finished_within(2.0)
    error = call.error()
    assert ended, (
        "stamp_at_barrier(..., timeout=0.2) was still waiting at a barrier that nobody else "
        "reached 2 s later: pass the timeout to barrier.wait(timeout)"
    )
    assert error is None, (
        f"stamp_at_barrier raised {error!r} when the barrier broke: catch "
        f"threading.BrokenBarrierError and return, leaving the departure slot 0"
    )
    assert call.took >= 0.15, (
        f"stamp_at_barrier returned after {call.took:.2f} s, without waiting its 0.2 s"
    )
    assert stamps[1] == 0.0, (
        f"stamp_at_barrier wrote a departure ({stamps[1]}) although the barrier broke and "
        f"nobody passed it: return at BrokenBarrierError, before the departure stamp"
    )


@pytest.mark.clause(7, 8)
def test_no_process_leaves_the_barrier_before_the_last_one_has_arrived() -> None:
    parties, stagger = 3, 0.15
    stamps = parent(meet, parties, stagger=stagger, start_method="fork", timeout=TIMEOUT)
    assert stamps is not None, (
        f"a process was still waiting at the barrier when time ran out: the barrier opened "
        f"without it, or waits for more parties than there are processes. Make one Barrier for "
        f"exactly {parties} parties and pass it to every child."
    )
    shown = [(round(a, 3), round(d, 3)) for a, d in stamps]
    last_arrival = max(arrival for arrival, _ in stamps)
    early = [i for i, (_, departure) in enumerate(stamps) if departure < last_arrival]
    assert not early, (
        f"process(es) {early} left (or never passed) the barrier before the last process arrived "
        f"(stamps: {shown}; 0 = never passed). Every child must wait at one Barrier made for "
        f"exactly {parties} parties."
    )
    arrivals = [arrival for arrival, _ in stamps]
    # Child i sleeps i * stagger: the arrivals come in child order and spread over about
    # 2 * stagger (checked against stagger alone, for a busy machine's late starters).
    staggered = (
        len(stamps) == parties
        and arrivals == sorted(arrivals)
        and arrivals[-1] - arrivals[0] >= stagger
    )
    assert staggered, (
        f"with stagger={stagger} the children arrived at {shown} (arrival, departure): not one "
        f"after another, about {stagger} s apart, in child order. Start child i with the delay "
        f"i * stagger, and return the pairs in child order."
    )
    assert_no_children_left()


# -- 3. an Event to start, a Semaphore to limit ------------------------------------------------


def _go_later(seconds: float) -> tuple[Any, list[float]]:
    """An Event that a timer thread sets after `seconds`; the list gets the moment it was set."""
    go = FORK.Event()
    released_at: list[float] = []

    def release() -> None:
        released_at.append(time.monotonic())
        go.set()

    timer = threading.Timer(seconds, release)
    timer.daemon = True
    timer.start()
    return go, released_at


@pytest.mark.clause(9)
def test_a_visitor_who_never_gets_go_leaves_without_entering() -> None:
    go, room = FORK.Event(), FORK.Semaphore(1)
    visits = FORK.Array("d", 2, lock=False)
    call = Call(visit, go, room, visits, 0, 0.0, 0.15)
    ended = call.finished_within(2.0)
    if not ended:
        go.set()  # frees a wait without a timeout
        call.finished_within(2.0)
    error = call.error()
    assert ended, (
        "visit(..., timeout=0.15) was still waiting for a go that never came 2 s later: pass "
        "the timeout to go.wait(timeout)"
    )
    assert error is None, f"visit raised {error!r}"
    assert visits[0] == 0.0, (
        "a visitor entered the room although go was never set: go.wait(timeout) returns False "
        "when the time ran out; return then, without entering"
    )
    assert call.took >= 0.1, f"visit returned after {call.took:.2f} s, without waiting its 0.15 s"


# Python 3.12+ warns when a process with threads forks. The only other thread here is the
# test's own timer (_go_later), asleep: nothing the learner could change, so no warning.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.clause(9, 11)
def test_nobody_enters_the_room_before_go_is_set() -> None:
    go, released_at = _go_later(0.15)
    visits = parent(
        crowd, go, visitors=3, room_size=3, hold=0.05, start_method="fork", timeout=TIMEOUT
    )
    assert visits is not None, "the visitors were still running when time ran out"
    # crowd() returning before the timer set go is itself proof that nobody waited for it.
    go_time = released_at[0] if released_at else float("inf")
    early = [i for i, (entry, _) in enumerate(visits) if entry < go_time]
    assert not early, (
        f"visitor(s) {early} entered the room before go was set: each visitor must wait for the "
        f"go Event (with a timeout) before anything else"
    )
    assert_no_children_left()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
@pytest.mark.clause(10, 11)
def test_the_room_holds_as_many_visitors_as_the_semaphore_allows_and_never_more() -> None:
    go, _ = _go_later(0.1)  # by then every visitor waits for go, so they all rush in at once
    visitors, room_size = 5, 3
    visits = parent(
        crowd,
        go,
        visitors=visitors,
        room_size=room_size,
        hold=0.15,
        start_method="fork",
        timeout=TIMEOUT,
    )
    assert visits is not None, "the visitors were still running when time ran out"
    shown = [(round(e, 2), round(x, 2)) for e, x in visits]
    assert len(visits) == visitors and all(e > 0 and x >= e for e, x in visits), (
        f"crowd returned {shown}: one (entry, exit) pair per visitor, both stamped"
    )
    # The most visitors inside at one moment: count at each entry how many were inside then.
    peak = max(sum(1 for e, x in visits if e <= entry < x) for entry, _ in visits)
    assert peak <= room_size, (
        f"{peak} visitors were in a room for {room_size} at the same moment (entry and exit "
        f"times: {shown}): guard the whole stay, entry stamp to exit stamp, with one "
        f"Semaphore({room_size}) shared by all visitors"
    )
    assert peak == room_size, (
        f"at most {peak} visitor(s) were ever inside at once, although {room_size} fit and "
        f"{visitors} waited (entry and exit times: {shown}): make the Semaphore for room_size "
        f"places (Semaphore() has one)"
    )
    assert_no_children_left()


# -- 4. a Condition ---------------------------------------------------------------------------


@pytest.mark.clause(12, 14)
def test_the_parent_is_woken_as_soon_as_every_worker_has_reported() -> None:
    # The workers report 0.15 s apart, so the right program returns about 0.3 s after the start.
    # A parent that nobody wakes sleeps its whole 4 s timeout; 3 s leaves the right program a
    # wide margin on a busy machine while a sleeping parent can never make it.
    started = time.monotonic()
    seen = parent(wait_for_reports, 3, stagger=0.15, start_method="fork", timeout=4.0)
    elapsed = time.monotonic() - started
    ended = "raised TimeoutError" if seen is None else "returned"
    assert elapsed < 3.0, (
        f"wait_for_reports took {elapsed:.1f} s (and {ended}) although the last worker "
        f"reported after 0.3 s: nobody woke the parent, which slept until its timeout. Call "
        f"condition.notify_all() after changing the count, while holding the condition (outside "
        f"`with condition:` it raises RuntimeError in the worker: see 'Captured stderr')."
    )
    assert seen == 3, (
        f"wait_for_reports returned after {elapsed:.1f} s having seen {seen} of 3 reports: the "
        f"parent stopped at its first wake-up. Re-check the count after every wake-up, in a loop "
        f"(condition.wait_for does that for you)."
    )
    assert_no_children_left()


@pytest.mark.clause(13)
def test_a_worker_stays_until_it_is_released() -> None:
    condition, release = FORK.Condition(), FORK.Event()
    reported = FORK.Value("i", 0, lock=False)
    call = Call(report_and_stay, condition, reported, release, 0.0, TIMEOUT)
    returned_early = call.finished_within(0.2)
    count = reported.value
    release.set()
    released = call.finished_within(2.0)
    error = call.error()
    assert error is None, f"report_and_stay raised {error!r}"
    assert count == 1, f"0.2 s after report_and_stay(delay=0) began, the count was {count}, not 1"
    assert not returned_early, (
        "report_and_stay returned right after reporting, before release was set: wait for the "
        "release Event (release.wait(timeout)) after reporting"
    )
    assert released, "report_and_stay was still running 2 s after release was set"


@pytest.mark.clause(1, 14)
def test_a_parent_whose_workers_report_too_late_raises_timeout_error() -> None:
    # Worker 1 reports 1.5 s after the start; the parent's timeout is 0.3 s.
    started = time.monotonic()
    try:
        seen = wait_for_reports(2, stagger=1.5, start_method="fork", timeout=0.3)
    except TimeoutError:
        seen = None  # what should happen
    elapsed = time.monotonic() - started
    assert elapsed < 1.2, (
        f"wait_for_reports(..., timeout=0.3) ended only after {elapsed:.1f} s, once the late "
        f"worker had reported: the parent waited on the condition without a timeout. Pass it: "
        f"condition.wait_for(predicate, timeout)."
    )
    assert seen is None, (
        f"wait_for_reports(..., timeout=0.3) returned {seen} although a worker had not reported "
        f"in time: let join_all raise TimeoutError (it kills the workers still running)"
    )
    assert_no_children_left("wait_for_reports raised TimeoutError")
