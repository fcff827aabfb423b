"""Kata `primitives`: Condition, Semaphore, BoundedSemaphore, Event and Barrier built from Lock.

threading's own classes are the oracle. The tests in one thread run a script of operations on
both and compare every result. The others run several threads under the controlled scheduler
with a virtual clock: first on threading's class, then on yours, and compare what each thread
saw, when (in virtual seconds), over many interleavings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import primitives
import pytest

from plugins.probe import Prober

# Schedules per comparison. The scenarios space their operations out in virtual time, so
# a correct class gives the same trace in every schedule; the known bugs show within the
# first few. The race test needs more: its bug hides in one interleaving out of many.
SCHEDULES = 20
RACE_SCHEDULES = 100
# Parties coming straight back for the next round: the stranded-waker bug shows in the first
# few schedules; 30 leaves a margin.
BACK_TO_BACK_SCHEDULES = 30

Entry = tuple[str, object, float | None]
Script = Callable[[Any, "_Log"], None]


class _Log:
    """What one thread saw: (operation, its result or the exception's name, virtual seconds)."""

    def __init__(self, timed: bool = True) -> None:
        self.entries: list[Entry] = []
        self.timed = timed
        self.t0 = time.monotonic()

    def __call__(self, what: str, action: Callable[[], object]) -> None:
        try:
            outcome = action()
        except Exception as error:
            outcome = type(error).__name__
        when = round(time.monotonic() - self.t0, 3) if self.timed else None
        self.entries.append((what, outcome, when))

    def until(self, when: float) -> None:
        """Sleep until `when` seconds after this thread started (virtual time: free)."""
        time.sleep(max(0.0, self.t0 + when - time.monotonic()))


def _worker(script: Script) -> Callable[[Any], list[Entry]]:
    def body(state: Any) -> list[Entry]:
        log = _Log()
        script(state, log)
        return log.entries

    return body


def _shown(entries: list[Entry]) -> str:
    return "\n".join(
        f"      {what}: {outcome!r}" + ("" if at is None else f" at {at:g} s")
        for what, outcome, at in entries
    )


@contextmanager
def _hang_means(explanation: str) -> Iterator[None]:
    """Put the meaning of a deadlock report first, in the words of this kata."""
    __tracebackhide__ = True
    try:
        yield
    except AssertionError as failure:
        if getattr(failure, "kind", None) == "deadlock":
            raise AssertionError(f"{explanation}\n\n{failure}") from None
        raise


class _Oracle:
    """Runs threads on threading's class, then on yours, and compares what they saw."""

    def __init__(self, probe: Prober) -> None:
        self.probe = probe

    def same(
        self,
        make: Callable[[ModuleType], Any],
        scripts: dict[str, Script],
        meaning: str,
        budget: int = SCHEDULES,
    ) -> None:
        __tracebackhide__ = True
        workers = {name: _worker(script) for name, script in scripts.items()}
        expected: list[list[object]] = []
        self.probe.explore(
            lambda: make(threading),
            workers,
            lambda _state, results: expected.append(results),
            budget=1,
        )

        def like_threading(_state: object, results: list[object]) -> None:
            for name, mine, theirs in zip(workers, results, expected[0], strict=True):
                assert mine == theirs, (
                    f"{meaning}\nThread {name!r} saw, with your class:\n{_shown(mine)}\n"
                    f"  and with threading's:\n{_shown(theirs)}"
                )

        with _hang_means(
            f"a thread waits forever with your class, where the same operations all finish "
            f"with threading's. {meaning}"
        ):
            self.probe.explore(lambda: make(primitives), workers, like_threading, budget=budget)

    def same_in_one_thread(self, script: Script, meaning: str) -> None:
        """Non-blocking operations in one thread: threading's real classes, then yours.

        Yours run under the probe, so a bug that would block forever is reported at once.
        """
        __tracebackhide__ = True
        theirs = _Log(timed=False)
        script(threading, theirs)

        def mine(_state: object) -> list[Entry]:
            log = _Log(timed=False)
            script(primitives, log)
            return log.entries

        def like_threading(_state: object, results: list[object]) -> None:
            assert results[0] == theirs.entries, (
                f"{meaning}\nYour classes gave:\n{_shown(results[0])}\n"
                f"  threading's gave:\n{_shown(theirs.entries)}"
            )

        with _hang_means(f"an operation that must not block waits forever. {meaning}"):
            self.probe.explore(lambda: None, {"main": mine}, like_threading, budget=1)


@pytest.fixture
def oracle(probe: Prober) -> _Oracle:
    return _Oracle(probe)


# -- one thread, no waiting ------------------------------------------------------------------


def _conditions(m: Any) -> list[tuple[str, Any]]:
    return [("Condition(Lock())", m.Condition(threading.Lock())), ("Condition()", m.Condition())]


@pytest.mark.probe
@pytest.mark.clause(1)
def test_condition_refuses_to_wait_without_the_lock_like_threading(oracle: _Oracle) -> None:
    def script(m: Any, log: _Log) -> None:
        for label, cond in _conditions(m):
            log(f"{label}.wait() without the lock", cond.wait)
            log(f"{label}.wait(0) without the lock", lambda c=cond: c.wait(0))

    oracle.same_in_one_thread(
        script,
        "wait() needs the lock held: without it, it raises RuntimeError before it queues "
        "anything (check self._is_owned() first).",
    )


@pytest.mark.probe
@pytest.mark.clause(2)
def test_condition_refuses_to_notify_without_the_lock_like_threading(oracle: _Oracle) -> None:
    def script(m: Any, log: _Log) -> None:
        for label, cond in _conditions(m):
            log(f"{label}.notify() without the lock", cond.notify)
            log(f"{label}.notify_all() without the lock", cond.notify_all)
            with cond:
                log(f"{label}.notify() with no waiter", cond.notify)
                log(f"{label}.notify_all() with no waiter", cond.notify_all)

    oracle.same_in_one_thread(
        script,
        "notify() and notify_all() need the lock held: without it they raise RuntimeError "
        "(check self._is_owned()); with it and nobody waiting they do nothing.",
    )


@pytest.mark.probe
@pytest.mark.clause(4)
def test_a_wait_of_zero_or_less_returns_false_at_once_like_threading(oracle: _Oracle) -> None:
    def script(m: Any, log: _Log) -> None:
        for label, cond in _conditions(m):
            with cond:
                log(f"{label}.wait(0)", lambda c=cond: c.wait(0))
                log(f"{label}.wait(-1)", lambda c=cond: c.wait(-1))

    oracle.same_in_one_thread(
        script,
        "With nobody to notify, a timeout of 0 or less gives False at once. Careful: Lock.acquire(True, -1) means "
        "'wait forever', so a timeout <= 0 must become waiter.acquire(False), never "
        "waiter.acquire(True, timeout).",
    )


@pytest.mark.probe
@pytest.mark.clause(7)
def test_wait_for_returns_the_predicates_last_value_like_threading(oracle: _Oracle) -> None:
    def script(m: Any, log: _Log) -> None:
        for label, cond in _conditions(m):
            with cond:
                log(f"{label}.wait_for(lambda: 'yes')", lambda c=cond: c.wait_for(lambda: "yes"))
                log(f"{label}.wait_for(lambda: 0, 0)", lambda c=cond: c.wait_for(lambda: 0, 0))
                log(f"{label}.wait_for(lambda: [], -1)", lambda c=cond: c.wait_for(lambda: [], -1))

    oracle.same_in_one_thread(
        script,
        "wait_for returns the predicate's last value itself (not True or False): 'yes' at "
        "once when it is already true, the false value (0, []) when the timeout runs out.",
    )


@pytest.mark.probe
@pytest.mark.clause(9, 10, 12)
def test_semaphore_counts_like_threadings_in_one_thread(oracle: _Oracle) -> None:
    def script(m: Any, log: _Log) -> None:
        sem = m.Semaphore(2)
        log("acquire(False, timeout=1)", lambda: sem.acquire(False, 1))
        log("release(0)", lambda: sem.release(0))
        log("acquire()", sem.acquire)
        log("acquire(blocking=False)", lambda: sem.acquire(blocking=False))
        log("acquire(blocking=False) with none left", lambda: sem.acquire(blocking=False))
        log("acquire(timeout=0) with none left", lambda: sem.acquire(timeout=0))
        log("release(2)", lambda: sem.release(2))
        with sem as entered:
            log("`with sem as x` gives", lambda: entered)
        log("acquire(timeout=0)", lambda: sem.acquire(timeout=0))
        log("acquire(timeout=0)", lambda: sem.acquire(timeout=0))
        log("acquire(timeout=0) with none left", lambda: sem.acquire(timeout=0))

    oracle.same_in_one_thread(
        script,
        "A Semaphore counts units: acquire takes one if there is one (and says so), "
        "release(n) gives n back; bad arguments raise ValueError.",
    )


@pytest.mark.probe
@pytest.mark.clause(13)
def test_bounded_semaphore_refuses_to_grow_past_its_start_like_threading(
    oracle: _Oracle,
) -> None:
    def script(m: Any, log: _Log) -> None:
        sem = m.BoundedSemaphore(2)
        log("release() when full", sem.release)
        log("acquire()", sem.acquire)
        log("release(0)", lambda: sem.release(0))
        log("release(-1)", lambda: sem.release(-1))
        log("acquire(blocking=False) after release(-1)", lambda: sem.acquire(blocking=False))
        log("release()", sem.release)
        log("release(2) when one is out", lambda: sem.release(2))
        log("release()", sem.release)
        for _ in range(3):
            log("acquire(blocking=False)", lambda: sem.acquire(blocking=False))
        log("release(2)", lambda: sem.release(2))
        log("release() when full", sem.release)

    oracle.same_in_one_thread(
        script,
        "A BoundedSemaphore raises ValueError, and changes nothing, when a release would take "
        "its count above the initial value, and for release(n) with n < 1 (a release(-1) "
        "that passes would quietly take a unit away).",
    )


@pytest.mark.probe
@pytest.mark.clause(14, 15)
def test_event_flag_works_like_threadings_in_one_thread(oracle: _Oracle) -> None:
    def script(m: Any, log: _Log) -> None:
        event = m.Event()
        log("is_set()", event.is_set)
        log("wait(0)", lambda: event.wait(0))
        log("set()", event.set)
        log("is_set()", event.is_set)
        log("wait()", event.wait)
        log("wait(0)", lambda: event.wait(0))
        log("clear()", event.clear)
        log("is_set()", event.is_set)
        log("wait(0)", lambda: event.wait(0))

    oracle.same_in_one_thread(
        script,
        "An Event is a flag: wait() returns True at once when it is set, False when it times out.",
    )


@pytest.mark.probe
@pytest.mark.clause(16, 17, 20, 21)
def test_barrier_of_one_party_works_like_threadings(oracle: _Oracle) -> None:
    def script(m: Any, log: _Log) -> None:
        ran: list[str] = []
        barrier = m.Barrier(1, action=lambda: ran.append("action"))
        log("wait()", barrier.wait)
        log("action calls so far", lambda: list(ran))
        log(
            "parties, n_waiting, broken",
            lambda: (barrier.parties, barrier.n_waiting, barrier.broken),
        )
        log("abort()", barrier.abort)
        log("broken", lambda: barrier.broken)
        log("wait() when broken", barrier.wait)
        log("reset()", barrier.reset)
        log("broken", lambda: barrier.broken)
        log("wait()", barrier.wait)
        log("action calls so far", lambda: list(ran))

    oracle.same_in_one_thread(
        script,
        "A barrier of one party opens at every wait(), running its action each time; "
        "abort() breaks it until reset().",
    )


# -- several threads, under the probe --------------------------------------------------------


@pytest.mark.probe
@pytest.mark.clause(4, 6)
def test_notify_wakes_the_longest_waiting_threads_first_and_notify_all_the_rest(
    oracle: _Oracle,
) -> None:
    def waiter(start: float) -> Script:
        def script(cond: Any, log: _Log) -> None:
            log.until(start)
            with cond:
                log("wait(10)", lambda: cond.wait(10))

        return script

    def notifier(cond: Any, log: _Log) -> None:
        log.until(4)
        with cond:
            log("notify()", cond.notify)
        log.until(5)
        with cond:
            log("notify(2)", lambda: cond.notify(2))
        log.until(6)
        with cond:
            log("notify_all()", cond.notify_all)

    oracle.same(
        lambda m: m.Condition(),
        {
            "first": waiter(0),
            "second": waiter(1),
            "third": waiter(2),
            "fourth": waiter(3),
            "notifier": notifier,
        },
        "Four threads wait at 0, 1, 2 and 3 s; notify() at 4 s must wake only the one that "
        "waited longest, notify(2) at 5 s the next two (n of them, oldest first), notify_all() "
        "at 6 s the last one, and wait() returns True when notified.",
    )


@pytest.mark.probe
@pytest.mark.clause(5)
def test_a_waiter_that_timed_out_does_not_swallow_a_later_notify(oracle: _Oracle) -> None:
    def short(cond: Any, log: _Log) -> None:
        with cond:
            log("wait(1)", lambda: cond.wait(1))

    def long(cond: Any, log: _Log) -> None:
        log.until(0.5)
        with cond:
            log("wait(10)", lambda: cond.wait(10))

    def notifier(cond: Any, log: _Log) -> None:
        log.until(2)
        with cond:
            log("notify()", cond.notify)

    oracle.same(
        lambda m: m.Condition(threading.Lock()),
        {"short": short, "long": long, "notifier": notifier},
        "A waiter whose wait(1) (from 0 s) timed out must leave the queue of waiters; "
        "otherwise the notify() at 2 s is spent on it, and the thread waiting since 0.5 s is "
        "never woken.",
    )


@pytest.mark.probe
@pytest.mark.clause(3)
def test_wait_releases_the_lock_and_holds_it_again_when_it_returns(oracle: _Oracle) -> None:
    def make(m: ModuleType) -> tuple[Any, Any]:
        lock = threading.Lock()
        return m.Condition(lock), lock

    def waiter(state: tuple[Any, Any], log: _Log) -> None:
        cond, lock = state
        with cond:
            log("wait(5)", lambda: cond.wait(5))
            log("lock held after wait()", lock.locked)

    def notifier(state: tuple[Any, Any], log: _Log) -> None:
        cond, lock = state
        log.until(1)
        log("lock.acquire(timeout=1)", lambda: lock.acquire(timeout=1))
        if lock.locked():
            cond.notify()
            lock.release()

    oracle.same(
        make,
        {"waiter": waiter, "notifier": notifier},
        "While a thread waits, the condition's lock must be free (the notifier takes it at "
        "1 s); when wait() returns, the waiter holds it again.",
    )


class _Box:
    def __init__(self, m: ModuleType) -> None:
        self.cond = m.Condition()
        self.other = m.Condition()
        self.ready = False


@pytest.mark.probe
@pytest.mark.clause(7, 8)
def test_wait_for_rechecks_after_each_wakeup_and_keeps_its_total_timeout(oracle: _Oracle) -> None:
    def patient(box: _Box, log: _Log) -> None:
        with box.cond:
            log("wait_for(ready, 5)", lambda: box.cond.wait_for(lambda: box.ready, 5))

    def impatient(box: _Box, log: _Log) -> None:
        with box.other:
            log("wait_for(never, 2)", lambda: box.other.wait_for(lambda: False, 2))

    def setter(box: _Box, log: _Log) -> None:
        log.until(1)
        for cond in (box.cond, box.other):
            with cond:
                cond.notify_all()  # nothing changed yet: everybody must go back to sleep
        log.until(3)
        with box.cond:
            box.ready = True
            box.cond.notify_all()

    oracle.same(
        _Box,
        {"patient": patient, "impatient": impatient, "setter": setter},
        "At 1 s everyone is woken though nothing changed, at 3 s `ready` becomes true: "
        "wait_for must re-check its predicate after every wakeup, and its timeout is the "
        "total wait (2 s), not a fresh timeout after each wakeup.",
    )


@pytest.mark.probe
@pytest.mark.clause(9, 12)
def test_release_of_n_units_wakes_n_waiters_and_acquire_can_time_out(oracle: _Oracle) -> None:
    def blocked(timeout: float | None) -> Script:
        def script(sem: Any, log: _Log) -> None:
            log(f"acquire(timeout={timeout})", lambda: sem.acquire(timeout=timeout))

        return script

    def late(sem: Any, log: _Log) -> None:
        log.until(2)
        log("acquire(timeout=1)", lambda: sem.acquire(timeout=1))

    def releaser(sem: Any, log: _Log) -> None:
        log.until(1)
        log("release(2)", lambda: sem.release(2))

    oracle.same(
        lambda m: m.Semaphore(0),
        {"forever": blocked(None), "patient": blocked(5), "late": late, "releaser": releaser},
        "Two threads wait on an empty Semaphore; release(2) at 1 s must wake both of them "
        "(notify(n), not notify()); a third acquire(timeout=1) at 2 s finds none and fails.",
    )


@pytest.mark.probe
@pytest.mark.clause(10)
def test_a_non_blocking_acquire_never_waits(oracle: _Oracle) -> None:
    def first(sem: Any, log: _Log) -> None:
        log("acquire(blocking=False)", lambda: sem.acquire(blocking=False))
        log.until(3)
        log("release()", sem.release)

    def second(sem: Any, log: _Log) -> None:
        log.until(1)
        log("acquire(blocking=False)", lambda: sem.acquire(blocking=False))
        log.until(2)
        log("acquire(timeout=0)", lambda: sem.acquire(timeout=0))
        log.until(4)
        log("acquire(blocking=False)", lambda: sem.acquire(blocking=False))

    oracle.same(
        lambda m: m.Semaphore(1),
        {"first": first, "second": second},
        "acquire(blocking=False) and acquire(timeout=0) on an empty Semaphore must return "
        "False at once, not wait for the release at 3 s.",
    )


class _Room:
    def __init__(self, sem: Any) -> None:
        self.sem = sem
        self.inside = 0
        self.most = 0


def _visit(room: _Room) -> None:
    with room.sem:
        room.inside += 1
        room.most = max(room.most, room.inside)
        time.sleep(1)  # virtual: everybody else runs until they block
        room.inside -= 1


@pytest.mark.probe
@pytest.mark.clause(11)
def test_a_semaphore_of_one_never_lets_two_threads_in(
    probe: Prober,
) -> None:

    def one_at_a_time(room: _Room, _results: list[object]) -> None:
        assert room.most == 1, (
            f"{room.most} threads were inside a Semaphore(1) at once: two acquirers both saw "
            f"the last unit and both took it. Check the count and take the unit in one step, "
            f"under the condition's lock."
        )

    with _hang_means("a thread waits forever for a unit that was given back"):
        probe.explore(
            lambda: _Room(primitives.Semaphore(1)),
            [_visit, _visit, _visit],
            one_at_a_time,
            budget=RACE_SCHEDULES,
        )


@pytest.mark.probe
@pytest.mark.clause(14, 15)
def test_set_wakes_every_waiter_even_if_cleared_at_once(oracle: _Oracle) -> None:
    def waiter(timeout: float | None) -> Script:
        def script(event: Any, log: _Log) -> None:
            log(f"wait({timeout})", lambda: event.wait(timeout))

        return script

    def setter(event: Any, log: _Log) -> None:
        log.until(1)
        event.set()
        event.clear()
        log("is_set() after set() and clear()", event.is_set)

    def late(event: Any, log: _Log) -> None:
        log.until(2)
        log("wait(1)", lambda: event.wait(1))

    oracle.same(
        lambda m: m.Event(),
        {
            "forever": waiter(None),
            "patient": waiter(5),
            "hasty": waiter(0.5),
            "setter": setter,
            "late": late,
        },
        "set() at 1 s must wake every waiter, and a woken wait() returns True even though "
        "clear() came right after set() (B1 ch.2's Event.py does exactly that); wait(0.5) "
        "times out with False before it, and a wait after the clear() times out too.",
    )


class _Gate:
    def __init__(self, m: ModuleType, parties: int, **options: Any) -> None:
        self.actions: list[str] = []
        self.barrier = m.Barrier(parties, action=self.act, **options)

    def act(self) -> None:
        self.actions.append(threading.current_thread().name)


def _party(*starts: float) -> Script:
    """A party that calls wait() at each of the given times."""

    def script(gate: _Gate, log: _Log) -> None:
        for start in starts:
            log.until(start)
            log("wait()", gate.barrier.wait)
            log("action ran in", lambda: list(gate.actions))

    return script


@pytest.mark.probe
@pytest.mark.clause(16, 17, 22)
def test_a_barrier_opens_when_all_arrive_round_after_round(oracle: _Oracle) -> None:
    oracle.same(
        lambda m: _Gate(m, 3),
        {"a": _party(0, 5), "b": _party(1, 4), "c": _party(2, 3)},
        "Round 1: a, b, c arrive at 0, 1, 2 s; round 2: c, b, a at 3, 4, 5 s. Each round "
        "opens when the third party arrives; wait() returns the arrival index (0 first); the "
        "action runs once per round, in the last party to arrive, before anyone goes on.",
    )


@pytest.mark.probe
@pytest.mark.clause(19, 20)
def test_a_wait_that_times_out_breaks_the_barrier_for_everyone(oracle: _Oracle) -> None:
    def waits(timeout: float | None, start: float = 0) -> Script:
        def script(gate: _Gate, log: _Log) -> None:
            log.until(start)
            log(f"wait({timeout})", lambda: gate.barrier.wait(timeout))

        return script

    def observer(gate: _Gate, log: _Log) -> None:
        log.until(0.5)
        log("n_waiting, broken", lambda: (gate.barrier.n_waiting, gate.barrier.broken))
        log.until(1.5)
        log("n_waiting, broken", lambda: (gate.barrier.n_waiting, gate.barrier.broken))

    oracle.same(
        lambda m: _Gate(m, 3),
        {"patient": waits(None), "hasty": waits(1), "late": waits(None, 2), "observer": observer},
        "Two of three parties wait; one with wait(1). At 1 s its timeout breaks the barrier: "
        "both waiters get BrokenBarrierError, `broken` turns True, and a wait() at 2 s fails "
        "at once.",
    )


@pytest.mark.probe
@pytest.mark.clause(20, 21)
def test_abort_and_reset_release_the_waiters_with_brokenbarriererror(oracle: _Oracle) -> None:
    def controller(gate: _Gate, log: _Log) -> None:
        log.until(1)
        log("abort()", gate.barrier.abort)
        log.until(2.5)
        log("reset()", gate.barrier.reset)
        log("broken", lambda: gate.barrier.broken)
        log.until(3.5)
        log("reset() with a party waiting", gate.barrier.reset)
        log("n_waiting, broken", lambda: (gate.barrier.n_waiting, gate.barrier.broken))

    oracle.same(
        lambda m: _Gate(m, 2),
        {"a": _party(0, 2, 4), "b": _party(3, 4.5), "controller": controller},
        "abort() at 1 s must wake the waiter with BrokenBarrierError, and the barrier stays "
        "broken until reset() at 2.5 s; a reset() at 3.5 s sends the party waiting then away "
        "with BrokenBarrierError but leaves the barrier usable: the parties meet at 4.5 s.",
    )


@pytest.mark.probe
@pytest.mark.clause(18)
def test_an_action_that_raises_breaks_the_barrier(oracle: _Oracle) -> None:
    class _Failing(_Gate):
        def act(self) -> None:
            raise ValueError("the action failed")

    def observer(gate: _Gate, log: _Log) -> None:
        log.until(2)
        log("broken", lambda: gate.barrier.broken)

    oracle.same(
        lambda m: _Failing(m, 2),
        {"a": _party(0), "b": _party(1), "observer": observer},
        "The action fails when the second party arrives at 1 s: that party gets the action's "
        "own exception, the other one BrokenBarrierError, and the barrier is broken.",
    )


@pytest.mark.probe
@pytest.mark.clause(19)
def test_the_barriers_own_timeout_applies_unless_wait_gives_one(oracle: _Oracle) -> None:
    def alone(gate: _Gate, log: _Log) -> None:
        log("wait()", gate.barrier.wait)
        for timeout in (0.5, 5):
            gate.barrier.reset()
            log(f"wait({timeout}) after reset()", lambda t=timeout: gate.barrier.wait(t))

    oracle.same(
        lambda m: _Gate(m, 2, timeout=2),
        {"alone": alone},
        "Barrier(2, timeout=2): a lone party's wait() must give up after the barrier's own "
        "timeout of 2 s with BrokenBarrierError; wait(0.5) and wait(5) use the timeout they "
        "were given instead (0.5 s and 5 s later).",
    )


def _rounds_back_to_back(rounds: int) -> Callable[[_Gate], list[int]]:
    def party(gate: _Gate) -> list[int]:
        return [gate.barrier.wait() for _ in range(rounds)]

    return party


@pytest.mark.probe
@pytest.mark.clause(22)
def test_parties_can_come_straight_back_for_the_next_round(probe: Prober) -> None:
    def every_round_opened(gate: _Gate, results: list[object]) -> None:
        for round_number in range(2):
            indexes = sorted(got[round_number] for got in results)  # type: ignore[index]
            assert indexes == [0, 1, 2], (
                f"in round {round_number + 1} the three parties got the indexes {indexes}, "
                f"not 0, 1 and 2 once each"
            )
        assert len(gate.actions) == 2, (
            f"two rounds ran the action {len(gate.actions)} times, not once per round"
        )

    with _hang_means(
        "three parties each call wait() twice in a row: a party released from round 1 came "
        "straight back for round 2 while the others were still waking up, and they never "
        "left round 1. A waiter must wait for *its own* round (keep the _Round it joined: "
        "`mine = self._round`), and the last arrival must start a new _Round; a single "
        "`released` flag that the next round lowers again strands the slow wakers."
    ):
        probe.explore(
            lambda: _Gate(primitives, 3),
            [_rounds_back_to_back(2)] * 3,
            every_round_opened,
            budget=BACK_TO_BACK_SCHEDULES,
        )
