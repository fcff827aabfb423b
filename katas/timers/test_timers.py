"""Kata `timers`: delayed calls with threading.Timer, a debouncer and a heartbeat."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from timers import Debouncer, Heartbeat, call_later

from plugins.probe import Prober

# Schedules per probe: one or two workers plus their timer threads; every known bug of this
# kata shows within the first few dozen schedules, 100 leaves a margin.
SCHEDULES = 100
# Virtual seconds (the probe's clock makes them free and exact).
DELAY = 5.0
WAIT = 5.0
INTERVAL = 1.0
BEAT_SECONDS = 0.5  # how long each beat of the test heartbeat works
# A runaway heartbeat (one that never stops) is cut off after this many beats.
RUNAWAY_BEATS = 10
# Real seconds, for the one test outside the probe: the timer fires after REAL_DELAY, and we
# give it REAL_PATIENCE to do so. A missing start() never fires at all, and a start() fires
# within milliseconds even on a loaded machine, so the bound cannot flake either way.
REAL_DELAY = 0.02
REAL_PATIENCE = 2.0


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


# What a TypeError in a timer thread means here: the arguments reached Timer the wrong way.
ARGS_EXPLAIN = {
    "exception": (
        "a timer thread raised when it called the function. A TypeError such as `'int' object "
        "is not iterable`, or one about `argument after *` or `**`, means the arguments reached "
        "Timer the wrong way: Timer(delay, function, args) takes them as ONE tuple, while "
        "Timer(delay, function, *args) puts the first argument into Timer's args= parameter "
        "and the second into kwargs=."
    )
}


def _arguments_meaning(calls: list[tuple[tuple[Any, ...], float]], wanted: tuple[Any, ...]) -> str:
    """A hint when the function received the arguments packed into one tuple."""
    if any(args == (wanted,) for args, _ in calls):
        return (
            f" The function received the tuple {wanted} as ONE argument: hand the arguments on "
            f"unpacked, function(*args), e.g. call_later(self.wait, self.function, *args)."
        )
    first = wanted[0] if wanted else None
    if isinstance(first, str) and any(args == tuple(first) for args, _ in calls):
        return (
            f" The function received the letters of {first!r} one by one: the string itself "
            f"became Timer's args=. Timer(delay, function, *args) spreads the arguments over "
            f"Timer's own parameters; pass them as one tuple: Timer(delay, function, args)."
        )
    return ""


class _Record:
    """Remembers each call: its arguments and the (virtual) time it happened."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], float]] = []
        self.started = 0.0

    def __call__(self, *args: Any) -> None:
        self.calls.append((args, time.monotonic() - self.started))

    def begin(self) -> None:
        self.started = time.monotonic()


@pytest.mark.clause(1, 2)
def test_call_later_runs_the_function_in_a_daemon_timer_thread() -> None:
    fired = threading.Event()
    ran_in: list[threading.Thread] = []

    def mark() -> None:
        ran_in.append(threading.current_thread())
        fired.set()

    timer = call_later(REAL_DELAY, mark)
    try:
        assert isinstance(timer, threading.Timer), (
            f"call_later returned {timer!r}: it must return the Timer it started, so that the "
            f"caller can cancel() it"
        )
        assert timer.daemon, (
            "the timer is not a daemon thread: a pending timer would keep the program from "
            "exiting; set daemon = True before start()"
        )
        assert fired.wait(REAL_PATIENCE), (
            f"the function never ran within {REAL_PATIENCE} s of a {REAL_DELAY} s delay: was the "
            f"timer started?"
        )
        assert ran_in == [timer], "the function must run in the timer's own thread"
    finally:
        if isinstance(timer, threading.Timer):
            timer.cancel()
            timer.join(REAL_PATIENCE)


@pytest.mark.probe
@pytest.mark.clause(1)
def test_call_later_calls_once_with_the_arguments_after_the_delay(probe: Prober) -> None:
    def schedule(record: _Record) -> bool:
        record.begin()
        call_later(DELAY, record, "a", 1)
        return bool(record.calls)  # called already, in our own thread?

    def once_after_delay(record: _Record, results: list[object]) -> None:
        assert results[0] is False, (
            "the function had already run when call_later returned: call_later must only "
            "schedule it (Timer(delay, function, args)), not call it"
        )
        assert record.calls == [(("a", 1), DELAY)], (
            f"call_later({DELAY:g}, f, 'a', 1) gave the calls {record.calls} as (args, seconds "
            f"after the call); expected exactly one: (('a', 1), {DELAY:g})"
            + _arguments_meaning(record.calls, ("a", 1))
        )

    probe.explore(_Record, [schedule], once_after_delay, budget=1, explain=ARGS_EXPLAIN)


class _Debounced:
    def __init__(self) -> None:
        self.record = _Record()
        self.debouncer = Debouncer(WAIT, self.record)


def _burst(state: _Debounced) -> None:
    state.record.begin()
    for value in (1, 2, 3):
        state.debouncer.call(value)
        time.sleep(1.0)


@pytest.mark.probe
@pytest.mark.clause(3)
def test_a_burst_of_calls_fires_once_with_the_last_arguments(probe: Prober) -> None:
    def last_only(state: _Debounced, _results: list[object]) -> None:
        calls = state.record.calls
        assert len(calls) == 1, (
            f"three calls one second apart with a {WAIT:g} s wait fired {len(calls)} times: "
            f"{calls} as (args, seconds). Only the last call of a burst may fire: each call "
            f"must cancel the pending timer before it starts its own, and call_later must "
            f"return that timer so that it can be cancelled."
        )
        assert calls[0][0] == (3,), (
            f"the burst call(1), call(2), call(3) fired with the arguments {calls[0][0]}, not "
            f"(3,): the last call's arguments win." + _arguments_meaning(calls, (3,))
        )

    probe.explore(_Debounced, [_burst], last_only, budget=1, explain=ARGS_EXPLAIN)


@pytest.mark.probe
@pytest.mark.clause(3)
def test_the_call_fires_wait_seconds_after_the_last_call_of_the_burst(probe: Prober) -> None:
    def timed_from_last(state: _Debounced, _results: list[object]) -> None:
        times = [at for _, at in state.record.calls]
        assert times == [2.0 + WAIT], (
            f"the burst's calls came at 0, 1 and 2 s; the function ran at {times} s instead of "
            f"{2.0 + WAIT:g} s: the countdown must restart at every call (a debouncer), not run "
            f"from the first one (that would be a throttle)"
        )

    probe.explore(_Debounced, [_burst], timed_from_last, budget=1, explain=ARGS_EXPLAIN)


@pytest.mark.probe
@pytest.mark.clause(4)
def test_calls_further_apart_than_the_wait_each_fire(probe: Prober) -> None:
    def apart(state: _Debounced) -> None:
        state.record.begin()
        state.debouncer.call("first")
        time.sleep(WAIT + 1.0)
        state.debouncer.call("second")

    def both(state: _Debounced, _results: list[object]) -> None:
        assert state.record.calls == [(("first",), WAIT), (("second",), 2 * WAIT + 1.0)], (
            f"two calls {WAIT + 1:g} s apart fired {state.record.calls} as (args, seconds): each "
            f"quiet period of {WAIT:g} s ends a burst, so both calls must fire, each {WAIT:g} s "
            f"after it was made." + _arguments_meaning(state.record.calls, ("first",))
        )

    probe.explore(_Debounced, [apart], both, budget=1, explain=ARGS_EXPLAIN)


@pytest.mark.probe
@pytest.mark.clause(5)
def test_two_threads_calling_at_once_fire_only_once(probe: Prober) -> None:
    def once(state: _Debounced, _results: list[object]) -> None:
        fired = [args for args, _ in state.record.calls]
        assert len(fired) == 1, (
            f"two threads called at the same moment and the function ran {len(fired)} times "
            f"({fired}): both callers saw the same pending timer (or none), and each started "
            f"its own. Cancel-and-replace must happen under the lock."
        )

    probe.explore(
        _Debounced,
        {"caller-1": lambda s: s.debouncer.call(1), "caller-2": lambda s: s.debouncer.call(2)},
        once,
        budget=SCHEDULES,
        explain=ARGS_EXPLAIN,
    )


@pytest.mark.probe
@pytest.mark.clause(6)
def test_cancel_drops_the_pending_call(probe: Prober) -> None:
    def call_then_cancel(state: _Debounced) -> None:
        state.record.begin()
        state.debouncer.call("dropped")
        time.sleep(1.0)
        state.debouncer.cancel()

    def nothing(state: _Debounced, _results: list[object]) -> None:
        assert state.record.calls == [], (
            f"cancel() was called 1 s after call() and the function still ran: "
            f"{state.record.calls} as (args, seconds). Forgetting the timer does not stop it; "
            f"call its cancel() (and call_later must return the timer, or there is nothing to "
            f"cancel)."
        )

    probe.explore(_Debounced, [call_then_cancel], nothing, budget=1)


@pytest.mark.probe
@pytest.mark.clause(6)
def test_cancel_with_nothing_pending_does_nothing(probe: Prober) -> None:
    def cancel_twice_around_a_call(state: _Debounced) -> str:
        for moment in ("before any call", "after the call had fired", "a second time"):
            try:
                state.debouncer.cancel()
            except AttributeError as error:
                return f"cancel() {moment} raised AttributeError: {error}"
            if moment == "before any call":
                state.record.begin()
                state.debouncer.call("kept")
                time.sleep(WAIT + 1.0)
        return "fine"

    def harmless(state: _Debounced, results: list[object]) -> None:
        assert results[0] == "fine", (
            f"{results[0]}. With no call pending, cancel() has nothing to drop and must do "
            f"nothing: check `if self._timer is not None` before cancelling it."
        )
        assert [args for args, _ in state.record.calls] == [("kept",)], (
            f"call('kept'), made after an idle cancel(), fired {state.record.calls} as (args, "
            f"seconds), not once with ('kept',)."
            + _arguments_meaning(state.record.calls, ("kept",))
        )

    probe.explore(_Debounced, [cancel_twice_around_a_call], harmless, budget=1)


class _Runaway(Exception):
    """The heartbeat went on beating long after it should have stopped."""


class _Beats:
    """A heartbeat whose beats (each BEAT_SECONDS long) are logged, with the end of stop()."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []
        self.started = 0.0
        self.heartbeat = Heartbeat(INTERVAL, self.beat)

    def now(self) -> float:
        return time.monotonic() - self.started

    def beat(self) -> None:
        self.events.append(("beat starts", self.now()))
        if len(self.events) > 2 * RUNAWAY_BEATS:
            raise _Runaway(
                f"{RUNAWAY_BEATS} beats and still beating: stop() did not stop the heartbeat "
                f"(a running beat re-armed the timer after stop(), or stop() never cancelled it)"
            )
        time.sleep(BEAT_SECONDS)
        self.events.append(("beat ends", self.now()))

    def run_for(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.heartbeat.start()
        time.sleep(seconds)
        self.heartbeat.stop()
        self.events.append(("stop() returned", self.now()))


@pytest.mark.probe
@pytest.mark.clause(7)
def test_a_heartbeat_beats_every_interval_until_stopped(probe: Prober) -> None:
    expected = [
        ("beat starts", 1.0),
        ("beat ends", 1.5),
        ("beat starts", 2.5),
        ("beat ends", 3.0),
        ("stop() returned", 3.5),
    ]

    def two_beats(state: _Beats, _results: list[object]) -> None:
        assert state.events == expected, (
            f"a heartbeat of {INTERVAL:g} s whose beats take {BEAT_SECONDS:g} s, stopped after "
            f"3.5 s, logged {state.events}; expected {expected}: the first beat {INTERVAL:g} s "
            f"after start(), the next {INTERVAL:g} s after each beat *ends* (arm the next "
            f"timer after beat() returns, not before it), none after stop() (stop() must cancel "
            f"the timer that is already armed)"
        )

    probe.explore(_Beats, [lambda s: s.run_for(3.5)], two_beats, budget=1)


@pytest.mark.probe
@pytest.mark.clause(8)
def test_no_beat_runs_after_stop_has_returned(probe: Prober) -> None:
    def quiet_after_stop(state: _Beats, _results: list[object]) -> None:
        names = [name for name, _ in state.events]
        after = state.events[names.index("stop() returned") + 1 :]
        assert not after, (
            f"stop() was called at 2.75 s, in the middle of the beat of 2.5-3 s, and the log "
            f"is {state.events}: {after} came after stop() returned. cancel() cannot stop a "
            f"beat that is already running: stop() must join() that timer, and the running "
            f"beat must not re-arm the timer once the stopped flag is set."
        )

    with _hang_means(
        "stop(), called in the middle of a beat, never returned: it waits in join() for the "
        "running beat while it holds the lock, and the beat's _tick waits for that same lock "
        "before it can finish. Join after the `with self._lock:` block, not inside it."
    ):
        probe.explore(_Beats, [lambda s: s.run_for(2.75)], quiet_after_stop, budget=SCHEDULES)


class _SelfStopping(_Beats):
    """A heartbeat whose second beat stops it, from inside the timer thread."""

    def beat(self) -> None:
        super().beat()
        if len(self.events) == 4:
            try:
                self.heartbeat.stop()
            except RuntimeError as error:
                self.events.append((f"stop() raised RuntimeError: {error}", self.now()))

    def start_alone(self) -> None:
        self.started = time.monotonic()
        self.heartbeat.start()


@pytest.mark.probe
@pytest.mark.clause(9)
def test_a_beat_can_stop_its_own_heartbeat(probe: Prober) -> None:
    expected = [("beat starts", 1.0), ("beat ends", 1.5), ("beat starts", 2.5), ("beat ends", 3.0)]

    def stopped_from_inside(state: _SelfStopping, _results: list[object]) -> None:
        raised = [name for name, _ in state.events if name.startswith("stop() raised")]
        assert not raised, (
            f"the second beat called stop(), and {raised[0]}: stop() from inside a beat runs "
            f"in the timer's own thread, which cannot join itself; skip the join when the "
            f"timer is threading.current_thread()"
        )
        assert state.events == expected, (
            f"the second beat called stop() and the log is {state.events}, not {expected}: "
            f"the beats came at the wrong times (see "
            f"test_a_heartbeat_beats_every_interval_until_stopped), or one came after stop()"
        )

    probe.explore(_SelfStopping, [lambda s: s.start_alone()], stopped_from_inside, budget=1)
