"""Kata `event_loop`: call_soon, call_later, call_at, loop.time() and a self-stopping loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from event_loop import Debouncer, round_robin, schedule_demo

# The virtual clock starts here rather than at 0, so that an absolute time passed where a
# delay belongs (call_at(1.0) instead of call_at(loop.time() + 1.0)) lies in the past.
START = 1000.0
# A run that goes on past this much loop time never stops by itself.
MAX_LOOP_SECONDS = 600.0
# A run that takes this many loop iterations without its clock moving is spinning.
MAX_ITERATIONS = 10_000


class VirtualLoop(asyncio.BaseEventLoop):
    """An event loop whose clock jumps to the next timer when nothing is ready: waiting is free.

    It also notes how each timer was asked for: `via` maps the callback's first argument, when
    it is a label, to "call_at" or "call_later" (BaseEventLoop.call_later itself calls call_at)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.iterations = 0
        self.failure: BaseException | None = None
        self.via: dict[object, str] = {}
        self._inside_call_later = 0
        self._selector = _JumpToNextTimer(self)
        self.set_exception_handler(self._on_callback_error)

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Any, *args: Any, context: Any = None) -> Any:
        if args and isinstance(args[0], str):
            self.via[args[0]] = "call_later"
        self._inside_call_later += 1
        try:
            return super().call_later(delay, callback, *args, context=context)
        finally:
            self._inside_call_later -= 1

    def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> Any:
        if args and isinstance(args[0], str) and not self._inside_call_later:
            self.via[args[0]] = "call_at"
        return super().call_at(when, callback, *args, context=context)

    def _process_events(self, event_list: Any) -> None:
        pass  # no sockets: nothing but timers and ready callbacks

    def _write_to_self(self) -> None:
        pass  # only one thread ever touches this loop

    def fail(self, message: str) -> None:
        """Stop the loop; the test then fails with `message`."""
        if self.failure is None:
            self.failure = AssertionError(message)
        self.stop()

    def _on_callback_error(self, _loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # A callback raised: remember it and stop, so that the test reports it.
        if self.failure is None:
            self.failure = context.get("exception") or RuntimeError(context["message"])
        self.stop()


class _JumpToNextTimer:
    """The loop asks its selector to wait `timeout` seconds for I/O: we move the clock instead."""

    def __init__(self, loop: VirtualLoop) -> None:
        self.loop = loop

    def select(self, timeout: float | None) -> list[Any]:
        loop = self.loop
        loop.iterations += 1
        if timeout is None:
            loop.fail(
                "the loop has no callback and no timer left, yet nobody called loop.stop(): a "
                "real run_forever() would now hang forever. The last turn must stop the loop."
            )
            return []
        loop.now += timeout
        if loop.now - START > MAX_LOOP_SECONDS or loop.iterations > MAX_ITERATIONS:
            loop.fail(
                f"the loop was still running after {loop.now - START:g} s of loop time and "
                f"{loop.iterations} iterations: it never stopped by itself. Is the deadline "
                f"measured with time.time()/time.monotonic() instead of loop.time()? The loop's "
                f"timers run on loop.time(), and a test loop's clock need not be the wall clock."
            )
        return []


class BlockingSleep(AssertionError):
    """time.sleep was called while the loop ran a callback."""


def _no_sleeping(seconds: float) -> None:
    __tracebackhide__ = True
    raise BlockingSleep(
        f"a callback called time.sleep({seconds!r}): that freezes the whole event loop, and no "
        f"other callback can run meanwhile. Schedule the next step with loop.call_later instead."
    )


@pytest.fixture
def loop(monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualLoop]:
    monkeypatch.setattr(time, "sleep", _no_sleeping)
    virtual = VirtualLoop()
    try:
        yield virtual
    finally:
        virtual.close()


def run_until_stopped(loop: VirtualLoop) -> None:
    """Run the loop until something calls loop.stop(); re-raise what a callback raised."""
    __tracebackhide__ = True
    loop.run_forever()
    failure = loop.failure
    if (
        isinstance(failure, AttributeError)
        and "'NoneType'" in str(failure)
        and "cancel" in str(failure)
    ):
        raise AssertionError(
            f"a callback raised {failure!r}: with no countdown pending, self._pending is None, "
            f"and None has no cancel(). Check `if self._pending is not None` before you cancel"
        ) from failure
    if failure is not None:
        raise failure


def recorder(loop: VirtualLoop) -> tuple[list[tuple[str, float]], Any]:
    log: list[tuple[str, float]] = []

    def record(label: str) -> None:
        log.append((label, loop.time() - START))

    return log, record


# -- schedule_demo -------------------------------------------------------------------------


@pytest.mark.clause(1)
def test_schedule_demo_only_schedules_and_runs_nothing_itself(loop: VirtualLoop) -> None:
    log, record = recorder(loop)
    schedule_demo(loop, record)
    assert log == [], (
        f"schedule_demo called {[label for label, _ in log]} itself, before the loop ran: pass "
        f"the function and its argument to call_soon(record, 'first'), do not call it"
    )


@pytest.mark.clause(2)
def test_call_soon_callbacks_run_at_once_in_the_order_they_were_scheduled(
    loop: VirtualLoop,
) -> None:
    log, record = recorder(loop)
    schedule_demo(loop, record)
    loop.call_later(10.0, loop.stop)
    run_until_stopped(loop)
    first_two = log[:2]
    assert first_two == [("first", 0.0), ("second", 0.0)], (
        f"the loop first ran {first_two}: call_soon callbacks run on the next loop iteration, "
        f"at once and in the order they were scheduled"
    )


@pytest.mark.clause(3, 4)
def test_call_at_takes_an_absolute_loop_time_and_call_later_a_delay(loop: VirtualLoop) -> None:
    log, record = recorder(loop)
    schedule_demo(loop, record)
    loop.call_later(10.0, loop.stop)
    run_until_stopped(loop)
    timers = [entry for entry in log if entry[0] in ("at", "later")]
    assert timers == [("at", 1.0), ("later", 2.0)], (
        f"the timers ran as (label, seconds after start) {timers}, expected 'at' at 1 s and "
        f"'later' at 2 s. call_at wants an absolute time on the loop's clock "
        f"(loop.time() + 1.0); call_later wants the delay (2.0)."
    )


@pytest.mark.clause(3)
def test_the_at_callback_is_scheduled_with_call_at(loop: VirtualLoop) -> None:
    _, record = recorder(loop)
    schedule_demo(loop, record)
    how = loop.via.get("at", "neither call_at nor call_later")
    assert how == "call_at", (
        f"record('at') was scheduled with {how}: this step practises call_at, which takes an "
        f"absolute time on the loop's clock, loop.time() + 1.0 (call_later would take the delay)"
    )


# -- round_robin ---------------------------------------------------------------------------


def only_the_first_turn(log: list[tuple[str, float]]) -> str:
    """A hint for a round robin that stopped after its first turn ('' otherwise)."""
    if len(log) != 1:
        return ""
    return (
        f" Only the first turn ran: is the deadline `duration` alone? loop.time() reads "
        f"{START:g} s at the start here, so the deadline is loop.time() + duration, an absolute "
        f"time on the loop's clock."
    )


@pytest.mark.clause(6, 13)
def test_round_robin_takes_turns_in_order_every_interval(loop: VirtualLoop) -> None:
    log, record = recorder(loop)
    round_robin(loop, ["A", "B", "C"], 1.0, 5.0, record)
    run_until_stopped(loop)
    expected = [("A", 0.0), ("B", 1.0), ("C", 2.0), ("A", 3.0), ("B", 4.0)]
    why = only_the_first_turn(log)
    assert log == expected, (
        f"turns ran as (name, seconds after start) {log}, expected {expected}: turn k runs "
        f"names[k % len(names)] at k * interval, and only while k * interval < duration.{why}"
    )


@pytest.mark.clause(6)
def test_round_robin_turns_come_every_interval_however_long_it_is(loop: VirtualLoop) -> None:
    log, record = recorder(loop)
    round_robin(loop, ["A", "B", "C"], 0.5, 2.0, record)
    run_until_stopped(loop)
    expected = [("A", 0.0), ("B", 0.5), ("C", 1.0), ("A", 1.5)]
    assert log == expected, (
        f"with interval=0.5 and duration=2 the turns ran as (name, seconds after start) "
        f"{log}, expected {expected}: each turn schedules the next one `interval` seconds "
        f"later, call_later(interval, ...), whatever the interval is.{only_the_first_turn(log)}"
    )


@pytest.mark.clause(5)
def test_round_robin_only_schedules_and_returns_at_once(loop: VirtualLoop) -> None:
    log, record = recorder(loop)
    round_robin(loop, ["A", "B"], 1.0, 3.0, record)
    assert log == [], (
        f"round_robin already ran {log} before the loop did: schedule the first turn with "
        f"loop.call_soon; a callback that runs inside round_robin runs in the caller, not the loop"
    )
    loop.call_later(10.0, loop.stop)  # a safety net: a correct round robin stops at 2 s anyway
    run_until_stopped(loop)


@pytest.mark.clause(7)
def test_round_robin_takes_no_turn_at_or_after_the_deadline(loop: VirtualLoop) -> None:
    log, record = recorder(loop)
    round_robin(loop, ["A", "B"], 0.5, 2.0, record)
    run_until_stopped(loop)
    late = [entry for entry in log if entry[1] >= 2.0]
    assert not late, (
        f"turns {late} ran at or after the deadline of 2 s: a turn may start only before "
        f"start + duration. Decide with the *next* turn's time, loop.time() + interval < "
        f"deadline (`<`, not `<=`)"
    )


@pytest.mark.clause(7)
def test_round_robin_takes_the_last_turn_that_starts_before_the_deadline(
    loop: VirtualLoop,
) -> None:
    log, record = recorder(loop)
    round_robin(loop, ["A", "B"], 1.0, 2.5, record)
    run_until_stopped(loop)
    expected = [("A", 0.0), ("B", 1.0), ("A", 2.0)]
    assert log == expected, (
        f"with interval=1 and duration=2.5 the turns ran as {log}, expected {expected}: the "
        f"turn at 2 s starts before the deadline of 2.5 s, so it runs. Counting the turns as "
        f"int(duration / interval) rounds that one away; compare each next turn's time with "
        f"the deadline instead.{only_the_first_turn(log)}"
    )


@pytest.mark.clause(8)
def test_round_robin_stops_the_loop_at_its_last_turn(loop: VirtualLoop) -> None:
    log, record = recorder(loop)
    round_robin(loop, ["A", "B", "C"], 1.0, 3.0, record)
    run_until_stopped(loop)
    stopped_at = loop.time() - START
    if stopped_at < 2.0:
        why = f"that is before the turn due at 2 s ran (turns: {log}).{only_the_first_turn(log)}"
    else:
        why = (
            "the last turn, due at 2 s (before the deadline of 3 s), must call loop.stop() "
            "itself, at once, rather than schedule a stop or one more timer"
        )
    assert stopped_at == 2.0, f"the loop stopped {stopped_at:g} s after start: {why}"


@pytest.mark.clause(9)
def test_round_robin_turns_never_block_the_loop(loop: VirtualLoop) -> None:
    log, record = recorder(loop)
    round_robin(loop, ["A", "B"], 1.0, 4.0, record)
    # Work that someone else scheduled must still run between the turns, on time.
    loop.call_later(1.5, record, "other")
    run_until_stopped(loop)
    stopped_at = loop.time() - START
    if stopped_at < 1.5:
        why = f"the loop stopped at {stopped_at:g} s, before it was due.{only_the_first_turn(log)}"
    else:
        why = (
            "the turns kept the loop busy; each turn must return quickly and leave the waiting "
            "to a timer"
        )
    assert ("other", 1.5) in log, (
        f"a callback due at 1.5 s ran as {[e for e in log if e[0] == 'other']} (log: {log}): {why}"
    )


# -- Debouncer -----------------------------------------------------------------------------


@pytest.mark.clause(11)
def test_a_debounced_action_runs_once_delay_after_the_last_trigger(loop: VirtualLoop) -> None:
    log, record = recorder(loop)
    debouncer = Debouncer(loop, 2.0, lambda: record("action"))
    loop.call_soon(debouncer.trigger)
    loop.call_later(1.0, debouncer.trigger)
    loop.call_later(1.5, debouncer.trigger)
    loop.call_later(10.0, loop.stop)
    run_until_stopped(loop)
    assert log == [("action", 3.5)], (
        f"after triggers at 0, 1 and 1.5 s with a delay of 2 s the action ran as {log}, "
        f"expected once at 3.5 s: each trigger must cancel the pending timer "
        f"(TimerHandle.cancel()) and schedule a new one; a trigger that finds a timer pending "
        f"and keeps it (a throttle) runs the action too early"
    )


@pytest.mark.clause(10, 13)
def test_a_debounced_action_waits_its_full_delay(loop: VirtualLoop) -> None:
    log, record = recorder(loop)
    debouncer = Debouncer(loop, 2.0, lambda: record("action"))
    loop.call_soon(debouncer.trigger)
    loop.call_later(10.0, loop.stop)
    run_until_stopped(loop)
    if log and log[0][1] < 2.0:
        why = (
            "it came early: call_at(delay, ...) is a time long past; call_later(delay, ...) "
            "counts from now"
        )
    elif not log:
        why = (
            "it never came within 10 s: was its time taken from time.monotonic() or "
            "time.time()? The loop's timers run on loop.time() only"
        )
    else:
        why = "each trigger runs the action once, `delay` seconds of loop time later"
    assert log == [("action", 2.0)], (
        f"one trigger with a delay of 2 s ran the action as {log}, expected once at 2 s: {why}"
    )


@pytest.mark.clause(12)
def test_a_cancelled_debouncer_never_runs_its_action(loop: VirtualLoop) -> None:
    log, record = recorder(loop)
    debouncer = Debouncer(loop, 2.0, lambda: record("action"))
    loop.call_soon(debouncer.trigger)
    loop.call_later(1.0, debouncer.cancel)
    loop.call_later(10.0, loop.stop)
    run_until_stopped(loop)
    assert log == [], (
        f"the action ran as {log} although cancel() came 1 s before it was due: cancel() must "
        f"call cancel() on the pending TimerHandle; forgetting the handle does not stop it"
    )


@pytest.mark.clause(12)
def test_cancel_with_nothing_pending_does_nothing(loop: VirtualLoop) -> None:
    log, record = recorder(loop)
    debouncer = Debouncer(loop, 1.0, lambda: record("action"))
    loop.call_soon(debouncer.cancel)  # nothing pending yet
    loop.call_soon(debouncer.trigger)
    loop.call_later(5.0, debouncer.cancel)  # long after the action ran
    loop.call_later(10.0, loop.stop)
    run_until_stopped(loop)
    assert log == [("action", 1.0)], (
        f"a cancel() before the trigger and one long after the action ran gave {log}, "
        f"expected the action once at 1 s"
    )


@pytest.mark.clause(10)
def test_a_debouncer_can_be_triggered_again_after_its_action_ran(loop: VirtualLoop) -> None:
    log, record = recorder(loop)
    debouncer = Debouncer(loop, 1.0, lambda: record("action"))
    loop.call_soon(debouncer.trigger)
    loop.call_later(5.0, debouncer.trigger)
    loop.call_later(10.0, loop.stop)
    run_until_stopped(loop)
    assert log == [("action", 1.0), ("action", 6.0)], (
        f"triggers at 0 and 5 s with a delay of 1 s ran the action as {log}, expected at 1 s "
        f"and at 6 s"
    )


@pytest.mark.clause(10, 12)
def test_an_action_that_triggers_again_starts_a_countdown_that_cancel_can_drop(
    loop: VirtualLoop,
) -> None:
    log, record = recorder(loop)

    def action() -> None:
        record("action")
        if len(log) == 1:
            debouncer.trigger()  # back to back: a new countdown from inside the action

    debouncer = Debouncer(loop, 1.0, action)
    loop.call_soon(debouncer.trigger)
    loop.call_later(1.5, debouncer.cancel)
    loop.call_later(10.0, loop.stop)
    run_until_stopped(loop)
    assert log == [("action", 1.0)], (
        f"the action ran at 1 s and triggered again at once; cancel() came at 1.5 s, yet the "
        f"actions ran as {log}: cancel() did not reach the new countdown. Does something "
        f"reset self._pending after the action ran, wiping out the handle that trigger() just "
        f"stored? Keep only the handle of the latest call_later"
    )
