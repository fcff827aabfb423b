"""Kata `futures`: asyncio.Future, a callback API made awaitable, and a thread's result awaited."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from futures import describe, fetch_async, relay, run_in_thread, sum_to

from plugins.probe import Prober

# Orders of ready callbacks each probe tries; these bugs do not hide in rare orders.
SCHEDULES = 25
# Real seconds a thread test waits before it gives up. A correct run_in_thread needs
# microseconds; only a blocked or never-woken event loop ever reaches this bound.
GIVE_UP_SECONDS = 2.0
# The probe loop's clock starts at 0; each timed call starts at this loop time instead, so that
# a loop time passed where a delay belongs shows.
CLOCK_START = 1000.0


async def at_clock_start() -> float:
    """Sleep (virtually) until CLOCK_START; returns the loop time then."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(CLOCK_START - loop.time())
    return loop.time()


def explore(
    probe: Prober,
    setup: Callable[[], Any],
    worker: Callable[[Any], Awaitable[object]],
    check: Callable[[Any, object], None],
) -> None:
    """Run one worker on the probe's virtual-time loop; judge its result with `check`."""
    __tracebackhide__ = True
    probe.explore_async(
        setup, [worker], lambda state, results: check(state, results[0]), budget=SCHEDULES
    )


def describe_safely(future: asyncio.Future[Any]) -> str:
    try:
        return describe(future)
    except NotImplementedError:
        raise
    except BaseException as error:  # CancelledError is a BaseException
        return f"<describe raised {error!r}>"


def record_loop_errors() -> list[str]:
    """Collect what the running loop would log: exceptions raised inside callbacks."""
    errors: list[str] = []

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        errors.append(repr(context.get("exception") or context["message"]))

    asyncio.get_running_loop().set_exception_handler(handler)
    return errors


async def let_callbacks_run() -> None:
    """Done-callbacks are scheduled with call_soon: two loop iterations run them all."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


# -- describe ------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.clause(1, 2)
async def test_describe_tells_a_pending_future() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    text = describe_safely(future)
    assert text == "pending", (
        f"describe gave {text!r} for a pending future: ask future.done() before result() or "
        f"exception(), which raise InvalidStateError while nothing is set"
    )


@pytest.mark.asyncio
@pytest.mark.clause(1)
async def test_describe_tells_a_result() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.set_result(42)
    text = describe_safely(future)
    assert text == "result: 42", f"describe gave {text!r} for a future whose result is 42"


@pytest.mark.asyncio
@pytest.mark.clause(1)
async def test_describe_tells_a_failure() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.set_exception(ValueError("bad"))
    text = describe_safely(future)
    assert text == "failed: ValueError('bad')", (
        f"describe gave {text!r} for a future whose exception is ValueError('bad')"
    )


@pytest.mark.asyncio
@pytest.mark.clause(1, 2)
async def test_describe_tells_a_cancelled_future_without_raising() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    future.cancel()
    text = describe_safely(future)
    assert text == "cancelled", (
        f"describe gave {text!r} for a cancelled future: exception() and result() raise "
        f"CancelledError on it, so ask future.cancelled() before either"
    )


# -- sum_to --------------------------------------------------------------------------------


class Target:
    """Setup for the sum_to probes: the future is created on the probe's own loop."""

    def __init__(self) -> None:
        self.future: asyncio.Future[int] = asyncio.get_running_loop().create_future()


async def timed(start: Callable[[], Awaitable[object]]) -> tuple[str, float]:
    """('ok' or 'raised <error>', seconds of loop time `start()` took), from CLOCK_START."""
    loop = asyncio.get_running_loop()
    started = await at_clock_start()
    try:
        await start()
        how = "ok"
    except NotImplementedError:
        raise
    except Exception as error:
        how = f"raised {error!r}"
    return how, loop.time() - started


@pytest.mark.probe
@pytest.mark.clause(3)
def test_sum_to_sets_the_sum_of_one_to_n_as_the_result(probe: Prober) -> None:
    async def sum_to_4(target: Target) -> object:
        return await timed(lambda: sum_to(4, target.future))

    def summed(target: Target, _outcome: object) -> None:
        text = describe_safely(target.future)
        assert text == "result: 10", (
            f"after sum_to(4, future) the future says {text!r}, expected 'result: 10' "
            f"(1 + 2 + 3 + 4). A result of 4 means the loop added 1 each time instead of i."
        )

    explore(probe, Target, sum_to_4, summed)


@pytest.mark.probe
@pytest.mark.clause(4)
def test_sum_to_takes_one_second_of_loop_time_per_number(probe: Prober) -> None:
    async def sum_to_4(target: Target) -> object:
        return await timed(lambda: sum_to(4, target.future))

    def paced(_target: Target, outcome: object) -> None:
        how, took = outcome  # type: ignore[misc]
        assert (how, took) == ("ok", 4.0), (
            f"sum_to(4, ...) {how} after {took:g} s of loop time; expected it to finish after "
            f"4 s, sleeping 1 s before each addition"
        )

    explore(probe, Target, sum_to_4, paced)


@pytest.mark.probe
@pytest.mark.clause(5)
def test_sum_to_of_a_negative_number_fails_the_future_not_itself(probe: Prober) -> None:
    async def sum_to_minus_one(target: Target) -> object:
        return await timed(lambda: sum_to(-1, target.future))

    def failed_the_future(target: Target, outcome: object) -> None:
        how, took = outcome  # type: ignore[misc]
        text = describe_safely(target.future)
        assert (how, text.split("(")[0]) == ("ok", "failed: ValueError"), (
            f"sum_to(-1, future) {how} and left the future {text!r}: the error belongs in the "
            f"future (future.set_exception(ValueError(...))), where whoever awaits it gets it; "
            f"raised from sum_to it never reaches them and the future stays pending"
        )
        assert took == 0, (
            f"sum_to(-1, future) failed the future only after {took:g} s of loop time: a "
            f"negative n is refused at once, before any sleep"
        )

    explore(probe, Target, sum_to_minus_one, failed_the_future)


@pytest.mark.probe
@pytest.mark.clause(3, 5)
def test_sum_to_of_zero_sets_zero_at_once(probe: Prober) -> None:
    async def sum_to_0(target: Target) -> object:
        return await timed(lambda: sum_to(0, target.future))

    def zero(target: Target, outcome: object) -> None:
        how, took = outcome  # type: ignore[misc]
        text = describe_safely(target.future)
        assert (how, text, took) == ("ok", "result: 0", 0), (
            f"sum_to(0, future) {how} after {took:g} s and left the future {text!r}; expected "
            f"'result: 0' at once: the sum of no numbers is 0, and only n < 0 is an error"
        )

    explore(probe, Target, sum_to_0, zero)


@pytest.mark.probe
@pytest.mark.clause(6)
def test_sum_to_stops_quietly_when_its_future_is_cancelled(probe: Prober) -> None:
    async def cancel_midway(target: Target) -> object:
        loop = asyncio.get_running_loop()
        started = await at_clock_start()
        summing = asyncio.create_task(sum_to(5, target.future))
        await asyncio.sleep(2.5)
        target.future.cancel()
        try:
            await summing
            how = "ok"
        except NotImplementedError:
            raise
        except Exception as error:
            how = f"raised {error!r}"
        return how, loop.time() - started

    def stopped(_target: Target, outcome: object) -> None:
        how, ended_at = outcome  # type: ignore[misc]
        assert how == "ok", (
            f"sum_to {how} after its future was cancelled: setting the result of a cancelled "
            f"future raises InvalidStateError; check future.cancelled() at each step and stop"
        )
        assert ended_at == 3.0, (
            f"the future was cancelled at 2.5 s but sum_to ran on until {ended_at:g} s: it "
            f"must stop at its next step (3 s)"
        )

    explore(probe, Target, cancel_midway, stopped)


# -- relay ---------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.clause(7)
async def test_relay_copies_the_result() -> None:
    loop = asyncio.get_running_loop()
    source: asyncio.Future[str] = loop.create_future()
    target: asyncio.Future[str] = loop.create_future()
    relay(source, target)
    source.set_result("hello")
    await let_callbacks_run()
    assert describe_safely(target) == "result: 'hello'", (
        f"after source got the result 'hello' the target is {describe_safely(target)!r}: "
        f"add a done-callback to source that sets target's result"
    )


@pytest.mark.asyncio
@pytest.mark.clause(7)
async def test_relay_copies_the_exception() -> None:
    loop = asyncio.get_running_loop()
    source: asyncio.Future[str] = loop.create_future()
    target: asyncio.Future[str] = loop.create_future()
    relay(source, target)
    source.set_exception(KeyError("k"))
    await let_callbacks_run()
    assert describe_safely(target) == "failed: KeyError('k')", (
        f"after source failed with KeyError('k') the target is {describe_safely(target)!r}"
    )


@pytest.mark.asyncio
@pytest.mark.clause(7)
async def test_relay_copies_a_cancellation() -> None:
    errors = record_loop_errors()
    loop = asyncio.get_running_loop()
    source: asyncio.Future[str] = loop.create_future()
    target: asyncio.Future[str] = loop.create_future()
    relay(source, target)
    source.cancel()
    await let_callbacks_run()
    assert describe_safely(target) == "cancelled", (
        f"after source was cancelled the target is {describe_safely(target)!r} (the callback "
        f"raised {errors}): check source.cancelled() first, since exception() raises "
        f"CancelledError on a cancelled future, and cancel the target"
    )


@pytest.mark.asyncio
@pytest.mark.clause(8)
async def test_relay_leaves_a_target_that_is_already_done_alone_and_quiet() -> None:
    errors = record_loop_errors()
    loop = asyncio.get_running_loop()
    source: asyncio.Future[str] = loop.create_future()
    target: asyncio.Future[str] = loop.create_future()
    relay(source, target)
    target.set_result("mine")
    source.set_result("theirs")
    await let_callbacks_run()
    assert describe_safely(target) == "result: 'mine'" and not errors, (
        f"the target already had its result when source finished; the relay's callback "
        f"raised {errors}: setting an outcome twice raises InvalidStateError, so skip a "
        f"target that is already done"
    )


@pytest.mark.asyncio
@pytest.mark.clause(9)
async def test_a_detached_relay_copies_nothing() -> None:
    loop = asyncio.get_running_loop()
    source: asyncio.Future[str] = loop.create_future()
    target: asyncio.Future[str] = loop.create_future()
    detach = relay(source, target)
    detach()
    source.set_result("late")
    await let_callbacks_run()
    assert describe_safely(target) == "pending", (
        f"after detach() the target still became {describe_safely(target)!r}: detach must "
        f"call source.remove_done_callback with the same callback that relay added"
    )


# -- fetch_async ---------------------------------------------------------------------------

REPLY_SECONDS = 2.0


class FakeClient:
    """A callback-style client: replies after REPLY_SECONDS of loop time, or reports an error."""

    def __init__(self, *, fails: bool = False, can_cancel: bool = True) -> None:
        self.fails = fails
        self.can_cancel = can_cancel
        self.requested: list[str] = []
        self.cancelled: list[str] = []
        self.callback_errors: list[Exception] = []

    def request(
        self, key: str, on_reply: Callable[[str], None], on_error: Callable[[Exception], None]
    ) -> Callable[[], None]:
        self.requested.append(key)

        def answer() -> None:
            try:
                if self.fails:
                    on_error(LookupError(f"no such key: {key}"))
                else:
                    on_reply(key.upper())
            except Exception as error:  # the test reports what a callback raised
                self.callback_errors.append(error)

        timer = asyncio.get_running_loop().call_later(REPLY_SECONDS, answer)

        def cancel() -> None:
            self.cancelled.append(key)
            if self.can_cancel:
                timer.cancel()

        return cancel


@pytest.mark.probe
@pytest.mark.clause(10)
def test_fetch_async_returns_the_reply(probe: Prober) -> None:
    async def fetch(client: FakeClient) -> object:
        loop = asyncio.get_running_loop()
        started = await at_clock_start()
        reply = await fetch_async(client, "key")
        return reply, loop.time() - started

    def replied(client: FakeClient, outcome: object) -> None:
        assert outcome == ("KEY", REPLY_SECONDS), (
            f"fetch_async gave (reply, seconds of loop time) {outcome}; expected ('KEY', 2.0), "
            f"the reply the client sends after 2 s"
        )
        assert client.requested == ["key"], f"fetch_async sent {client.requested}, not ['key']"
        assert client.cancelled == [], (
            f"fetch_async got its reply and still called the client's cancel function "
            f"({client.cancelled}): cancel the request only when the awaiting coroutine is "
            f"cancelled (except asyncio.CancelledError), not in a `finally` that runs every time"
        )

    explore(probe, FakeClient, fetch, replied)


@pytest.mark.probe
@pytest.mark.clause(11)
def test_fetch_async_raises_the_error_the_client_reports(probe: Prober) -> None:
    async def fetch(client: FakeClient) -> object:
        return await timed(lambda: fetch_async(client, "key"))

    def raised(_client: FakeClient, outcome: object) -> None:
        how, _ = outcome  # type: ignore[misc]
        assert how == "raised LookupError('no such key: key')", (
            f"fetch_async {how} when the client reported LookupError: on_error must put the "
            f"error into the future with set_exception"
        )

    explore(probe, lambda: FakeClient(fails=True), fetch, raised)


async def fetch_then_cancel(client: FakeClient) -> object:
    await at_clock_start()
    task = asyncio.create_task(fetch_async(client, "key"))
    await asyncio.sleep(1)
    task.cancel()
    await asyncio.wait([task])
    await asyncio.sleep(REPLY_SECONDS)  # past the moment the reply would have come
    if task.cancelled():
        return "cancelled"
    if isinstance(task.exception(), NotImplementedError):
        return task.result()  # raises it: the stub is not written yet
    return f"finished ({task.exception() or task.result()!r})"


@pytest.mark.probe
@pytest.mark.clause(12)
def test_cancelling_fetch_async_cancels_the_request_and_stays_cancelled(probe: Prober) -> None:
    def cancelled(client: FakeClient, outcome: object) -> None:
        assert client.cancelled == ["key"], (
            f"the request was cancelled {len(client.cancelled)} times: when the awaiting "
            f"coroutine is cancelled, call the cancel function the client returned"
        )
        assert outcome == "cancelled", (
            f"after task.cancel() the fetch task {outcome}: re-raise the CancelledError once "
            f"the request is cancelled"
        )

    explore(probe, FakeClient, fetch_then_cancel, cancelled)


@pytest.mark.probe
@pytest.mark.clause(13)
def test_a_reply_after_cancellation_is_ignored_quietly(probe: Prober) -> None:
    def quiet(client: FakeClient, _outcome: object) -> None:
        assert client.requested == ["key"], f"fetch_async sent {client.requested}, not ['key']"
        assert not client.callback_errors, (
            f"a reply that came after the fetch was cancelled made the callback raise "
            f"{client.callback_errors}: the future was already cancelled; check future.done() "
            f"before set_result"
        )

    explore(probe, lambda: FakeClient(can_cancel=False), fetch_then_cancel, quiet)


@pytest.mark.probe
@pytest.mark.clause(13)
def test_an_error_after_cancellation_is_ignored_quietly(probe: Prober) -> None:
    def quiet(client: FakeClient, outcome: object) -> None:
        assert not client.callback_errors, (
            f"an error reported after the fetch was cancelled made the callback raise "
            f"{client.callback_errors}: the future was already cancelled; on_error must check "
            f"future.done() before set_exception, just as on_reply does"
        )
        assert outcome == "cancelled", f"after task.cancel() the fetch task {outcome}"

    explore(probe, lambda: FakeClient(fails=True, can_cancel=False), fetch_then_cancel, quiet)


# -- run_in_thread -------------------------------------------------------------------------


class ThreadCheckingLoop(asyncio.SelectorEventLoop):
    """A standard event loop that notes each call_soon made from a thread other than its own.

    Completing an asyncio.Future calls loop.call_soon; from a foreign thread that is a bug
    (only call_soon_threadsafe may be used there, and wrap_future does). Noting it makes the
    bug visible every time instead of only when the loop happens to oversleep."""

    def __init__(self) -> None:
        super().__init__()
        self.owner = threading.get_ident()
        self.foreign_calls: list[str] = []

    def call_soon(self, callback: Callable[..., object], *args: Any, context: Any = None) -> Any:
        handle = super().call_soon(callback, *args, context=context)
        if threading.get_ident() != self.owner:
            self.foreign_calls.append(threading.current_thread().name)
            self._write_to_self()  # wake the loop as call_soon_threadsafe would: the test goes on
        return handle


def run_checked(main: Callable[[], Awaitable[str]]) -> tuple[str, list[str]]:
    """Run main() on a ThreadCheckingLoop: its outcome and the threads that misused the loop."""
    with asyncio.Runner(loop_factory=ThreadCheckingLoop) as runner:
        outcome = runner.run(main())
        loop = runner.get_loop()
        assert isinstance(loop, ThreadCheckingLoop)
        return outcome, loop.foreign_calls


async def outcome_of(awaitable: Awaitable[object]) -> str:
    """What happened, in words; gives up after GIVE_UP_SECONDS of real time."""
    try:
        async with asyncio.timeout(GIVE_UP_SECONDS):
            return f"returned {await awaitable!r}"
    except TimeoutError:
        return f"had not finished after {GIVE_UP_SECONDS:g} s"
    except NotImplementedError:
        raise
    except Exception as error:
        return f"raised {error!r}"


@pytest.mark.clause(14)
def test_run_in_thread_returns_what_fn_returns_computed_in_another_thread() -> None:
    caller = threading.get_ident()

    def add(a: int, b: int) -> tuple[int, bool]:
        return a + b, threading.get_ident() != caller

    outcome, _ = run_checked(lambda: outcome_of(run_in_thread(add, 2, 3)))
    assert outcome == "returned (5, True)", (
        f"run_in_thread(add, 2, 3) {outcome}; expected (5, True): the sum, computed in a thread "
        f"other than the caller's (False means fn ran in the event loop's own thread)"
    )


@pytest.mark.clause(16)
def test_the_loop_keeps_running_while_the_thread_works() -> None:
    pinged = threading.Event()

    def wait_for_ping() -> str:
        # The thread needs the loop to run a coroutine (ping) before it can finish.
        return "pinged" if pinged.wait(GIVE_UP_SECONDS) else "never pinged"

    async def main() -> str:
        async def ping() -> None:
            pinged.set()

        pinger = asyncio.create_task(ping())
        try:
            return await outcome_of(run_in_thread(wait_for_ping))
        finally:
            pinged.set()  # never leave the thread waiting
            await pinger

    outcome, _ = run_checked(main)
    assert outcome == "returned 'pinged'", (
        f"run_in_thread {outcome}: while the thread worked, no other coroutine could run. "
        f"Blocking on the thread (future.result(), thread.join()) freezes the loop; await "
        f"asyncio.wrap_future(...) instead"
    )


@pytest.mark.clause(17)
def test_the_thread_hands_its_result_over_in_a_thread_safe_way() -> None:
    caller_awaits = threading.Event()

    def add_later(a: int, b: int) -> int:
        # Finish only once the caller is surely awaiting, so that finishing must wake it.
        caller_awaits.wait(GIVE_UP_SECONDS)
        return a + b

    async def main() -> str:
        async def signal() -> None:
            caller_awaits.set()

        signaller = asyncio.create_task(signal())
        try:
            return await outcome_of(run_in_thread(add_later, 2, 3))
        finally:
            caller_awaits.set()
            await signaller

    outcome, foreign_calls = run_checked(main)
    assert not foreign_calls, (
        f"the thread {foreign_calls[0]!r} completed an asyncio.Future itself. asyncio objects "
        f"are not thread-safe: the loop is not woken and may sleep on with the result waiting. "
        f"Let the thread fill a concurrent.futures.Future and await asyncio.wrap_future(it)."
    )
    assert outcome == "returned 5", f"run_in_thread(add_later, 2, 3) {outcome}"


@pytest.mark.clause(15)
def test_run_in_thread_raises_the_exception_fn_raised() -> None:
    def fail() -> None:
        raise KeyError("lost")

    outcome, _ = run_checked(lambda: outcome_of(run_in_thread(fail)))
    assert outcome == "raised KeyError('lost')", (
        f"run_in_thread(fail) {outcome}, though fail raised KeyError('lost') in the thread: "
        f"catch it there and hand it over with set_exception, or the awaiting coroutine "
        f"waits forever"
    )


@pytest.mark.clause(18)
def test_a_cancelled_run_in_thread_stays_cancelled_and_its_thread_ends_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    thread_errors: list[str] = []

    def note(args: threading.ExceptHookArgs) -> None:
        thread_errors.append(repr(args.exc_value))

    monkeypatch.setattr(threading, "excepthook", note)
    started, release = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []

    def slow() -> str:
        threads.append(threading.current_thread())
        started.set()
        release.wait(GIVE_UP_SECONDS)  # the test lets it go once the caller was cancelled
        return "done"

    async def main() -> str:
        task = asyncio.create_task(run_in_thread(slow))
        try:
            async with asyncio.timeout(GIVE_UP_SECONDS):
                while not started.is_set() and not task.done():
                    await asyncio.sleep(0.001)
        except TimeoutError:
            pass
        if task.done():
            if isinstance(task.exception(), NotImplementedError):
                task.result()  # raises it: the stub is not written yet
            return f"ended before it was cancelled ({task.exception() or task.result()!r})"
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=GIVE_UP_SECONDS)
        release.set()
        for thread in threads:
            thread.join(GIVE_UP_SECONDS)
        await asyncio.sleep(0)  # let the loop take whatever the thread handed over
        if not done:
            return f"had not ended {GIVE_UP_SECONDS:g} s after it was cancelled"
        if task.cancelled():
            return "cancelled"
        return f"ended with {task.exception() or task.result()!r} instead"

    outcome, _ = run_checked(main)
    assert outcome == "cancelled", (
        f"run_in_thread was cancelled while fn still ran in its thread, and it {outcome}: it "
        f"must stay cancelled, at once, without waiting for the thread"
    )
    assert not thread_errors, (
        f"once fn ended, the thread raised {thread_errors}: the caller had been cancelled, so "
        f"wrap_future had cancelled the concurrent.futures.Future, and set_result on a "
        f"cancelled future raises InvalidStateError. Call set_running_or_notify_cancel() on it "
        f"before fn, as executors do: a running future can no longer be cancelled"
    )
