"""Kata `coroutines`: async def, await, a state machine of coroutines, one-by-one vs all at once."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

import pytest
from coroutines import double_after, fetch_all, fetch_one_by_one, run_machine, settle

from plugins.probe import Prober


class BlockingSleep(AssertionError):
    """time.sleep was called inside a coroutine."""


def _no_sleeping(seconds: float) -> None:
    __tracebackhide__ = True
    raise BlockingSleep(
        f"time.sleep({seconds!r}) was called inside a coroutine: it blocks the whole event "
        f"loop, so no other coroutine can run meanwhile. Use `await asyncio.sleep(...)`."
    )


@pytest.fixture(autouse=True)
def _forbid_blocking_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", _no_sleeping)


# Orderings matter little to these checks (one worker, a few timers): a few dozen schedules
# cover them and keep each probe well under a second.
SCHEDULES = 25
# The probe loop's clock starts at 0; each worker first sleeps until this loop time, so that an
# absolute time passed where a delay belongs (sleep(loop.time() + delay)) shows.
CLOCK_START = 1000.0


def explore(probe: Prober, setup, workers, check) -> None:  # type: ignore[no-untyped-def]
    """probe.explore_async with this kata's schedule budget."""
    __tracebackhide__ = True
    probe.explore_async(setup, workers, check, budget=SCHEDULES)


# -- double_after --------------------------------------------------------------------------


class Clock:
    """Setup for a probe run: nothing to share, the workers measure the loop's virtual clock."""


def why_not_waited(waited: float) -> str:
    """Why a double_after waited `waited` seconds instead of its delay."""
    if waited == 0:
        return (
            "`asyncio.sleep(delay)` without `await` only creates a coroutine and throws it away; "
            "nothing waits"
        )
    if waited > CLOCK_START:
        return (
            f"asyncio.sleep takes a delay in seconds, not a time on the loop's clock (the clock "
            f"read {CLOCK_START:g} s here): `await asyncio.sleep(delay)`"
        )
    return "it must wait exactly `delay` seconds, with `await asyncio.sleep(delay)`"


async def _timed(start: Callable[[], Awaitable[object]]) -> tuple[object, float]:
    """(what `start()` gives, seconds of loop time it took); started at CLOCK_START."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(CLOCK_START - loop.time())
    started = loop.time()
    result = await start()
    return result, loop.time() - started


@pytest.mark.probe
@pytest.mark.clause(1, 2)
def test_double_after_returns_the_double_after_waiting_its_full_delay(probe: Prober) -> None:
    async def double_21_after_2_seconds(_clock: Clock) -> tuple[object, float]:
        return await _timed(lambda: double_after(2.0, 21))

    def waited_then_doubled(_clock: Clock, results: list[object]) -> None:
        value, waited = results[0]  # type: ignore[misc]
        assert value == 42, f"double_after(2.0, 21) returned {value!r}, expected 42"
        assert waited == 2.0, (
            f"double_after(2.0, 21) returned after {waited:g} s of loop time instead of 2 s: "
            f"{why_not_waited(waited)}"
        )

    explore(probe, Clock, [double_21_after_2_seconds], waited_then_doubled)


@pytest.mark.probe
@pytest.mark.clause(2)
def test_two_double_afters_wait_side_by_side_without_blocking_the_loop(probe: Prober) -> None:
    async def both_at_once(_clock: Clock) -> tuple[object, float]:
        return await _timed(lambda: asyncio.gather(double_after(3.0, 1), double_after(3.0, 2)))

    def overlapped(_clock: Clock, results: list[object]) -> None:
        values, waited = results[0]  # type: ignore[misc]
        assert waited == 3.0, (
            f"two double_after(3.0, ...) awaited together took {waited:g} s of loop time instead "
            f"of 3 s: {why_not_waited(waited)}"
        )
        assert values == [2, 4], f"the two calls returned {values}, expected [2, 4]"

    explore(probe, Clock, [both_at_once], overlapped)


# -- settle --------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.clause(3)
async def test_settle_returns_a_plain_value_unchanged() -> None:
    result = await settle(42)
    assert result == 42, f"settle(42) returned {result!r}"


@pytest.mark.asyncio
@pytest.mark.clause(4)
async def test_settle_awaits_a_coroutine_and_returns_its_result() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    result = await settle(answer())
    if inspect.iscoroutine(result):
        result.close()  # so that Python does not also warn "coroutine was never awaited"
    assert result == 42, (
        f"settle(answer()) returned {result!r} instead of 42: calling an async function only "
        f"creates a coroutine object, and nothing of it runs until you `await` it"
    )


@pytest.mark.asyncio
@pytest.mark.clause(4)
async def test_settle_awaits_a_future_too() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(future.set_result, 7)
    result = await settle(future)
    assert result == 7, (
        f"settle(a Future) returned {result!r} instead of 7: a Future is awaitable without "
        f"being a coroutine; ask inspect.isawaitable, not asyncio.iscoroutine"
    )


class Answer:
    """An awaitable that is neither a coroutine nor a Future: it only has `__await__`."""

    def __await__(self):  # type: ignore[no-untyped-def]
        return asyncio.sleep(0, result=42).__await__()


@pytest.mark.asyncio
@pytest.mark.clause(4)
async def test_settle_awaits_any_object_with_an_await_method() -> None:
    result = await settle(Answer())
    assert result == 42, (
        f"settle(an object with __await__) returned {result!r} instead of 42: it is awaitable "
        f"although it is neither a coroutine nor a Future. inspect.isawaitable(value) covers "
        f"every kind; a list of types (coroutine, Future, Task) misses this one"
    )


# -- run_machine ---------------------------------------------------------------------------


class Runaway(Exception):
    """A state ran far more often than max_steps allows."""


def machine(
    transitions: dict[str, str | None], log: list[str], limit: int = 50
) -> dict[str, Callable[[], Awaitable[str | None]]]:
    """States that log when they start and finish and then name the next state."""

    def state(name: str) -> Callable[[], Awaitable[str | None]]:
        async def run() -> str | None:
            if log.count(f"enter {name}") >= limit:
                raise Runaway(
                    f"state {name!r} was about to run more than {limit} times: the machine "
                    f"ignores max_steps and would cycle forever"
                )
            log.append(f"enter {name}")
            await asyncio.sleep(0)  # a state does some asynchronous work
            log.append(f"leave {name}")
            return transitions[name]

        return run

    return {name: state(name) for name in transitions}


@pytest.mark.asyncio
@pytest.mark.clause(5)
async def test_every_state_runs_to_completion_before_the_next_one_starts() -> None:
    log: list[str] = []
    states = machine({"start": "a", "a": "b", "b": "end", "end": None}, log)
    try:
        await run_machine(states, "start")
    except NotImplementedError:
        raise
    except Exception:  # this test judges what ran; the next ones judge the result
        pass
    order = ("start", "a", "b", "end")
    expected = [f"{step} {name}" for name in order for step in ("enter", "leave")]
    assert log == expected, (
        f"the states ran as {log}, expected {expected}. A state runs only when its coroutine is "
        f"awaited: `states[name]()` alone creates the coroutine and runs none of it."
    )


@pytest.mark.asyncio
@pytest.mark.clause(6)
async def test_the_machine_returns_the_states_it_ran_in_order() -> None:
    states = machine({"start": "b", "a": None, "b": "a"}, [])
    path = await run_machine(states, "start")
    assert path == ["start", "b", "a"], (
        f"the machine start -> b -> a -> (end) returned {path!r}, expected ['start', 'b', 'a']"
    )


async def machine_outcome(
    states: dict[str, Callable[[], Awaitable[str | None]]], start: str, **options: int
) -> object:
    """What run_machine returned, or the exception it raised (NotImplementedError passes)."""
    try:
        return await run_machine(states, start, **options)
    except NotImplementedError:
        raise
    except Exception as error:
        return error


@pytest.mark.asyncio
@pytest.mark.clause(7)
async def test_an_unknown_state_name_raises_value_error() -> None:
    log: list[str] = []
    states = machine({"start": "nowhere"}, log)
    outcome = await machine_outcome(states, "start")
    assert isinstance(outcome, ValueError), (
        f"state 'start' named the next state 'nowhere', which is not a state, and run_machine "
        f"gave {outcome!r}: check `name in states` before you look it up, and raise ValueError"
    )
    assert log == ["enter start", "leave start"], f"the states that ran were {log}"


@pytest.mark.asyncio
@pytest.mark.clause(7)
async def test_an_unknown_start_state_raises_value_error() -> None:
    log: list[str] = []
    states = machine({"start": None}, log)
    outcome = await machine_outcome(states, "nowhere")
    assert isinstance(outcome, ValueError), (
        f"run_machine(states, 'nowhere') gave {outcome!r}, but 'nowhere' is not a state: the "
        f"start name needs the same check as every later name (ValueError), before it runs"
    )
    assert log == [], f"the states that ran were {log}, though the start state does not exist"


@pytest.mark.asyncio
@pytest.mark.clause(8)
async def test_a_machine_that_never_ends_stops_after_max_steps_states() -> None:
    log: list[str] = []
    states = machine({"a": "b", "b": "a"}, log)
    outcome = await machine_outcome(states, "a", max_steps=5)
    if isinstance(outcome, Runaway):
        raise outcome
    ran = log.count("enter a") + log.count("enter b")
    assert isinstance(outcome, RuntimeError), (
        f"a machine cycling a -> b -> a with max_steps=5 gave {outcome!r} after {ran} states: "
        f"it must raise RuntimeError"
    )
    assert ran == 5, (
        f"a machine cycling a -> b -> a with max_steps=5 ran {ran} states before it raised; "
        f"it must run exactly 5 and refuse the 6th"
    )


@pytest.mark.asyncio
@pytest.mark.clause(8)
async def test_a_machine_of_exactly_max_steps_states_completes() -> None:
    states = machine({"a": "b", "b": "c", "c": None}, [])
    outcome = await machine_outcome(states, "a", max_steps=3)
    assert outcome == ["a", "b", "c"], (
        f"a 3-state machine with max_steps=3 gave {outcome!r}, expected ['a', 'b', 'c']: the "
        f"budget is spent only when a 4th state would run"
    )


@pytest.mark.asyncio
@pytest.mark.clause(9)
async def test_max_steps_is_100_by_default() -> None:
    log: list[str] = []
    states = machine({"a": "b", "b": "a"}, log, limit=60)
    outcome = await machine_outcome(states, "a")
    if isinstance(outcome, Runaway):
        raise outcome
    ran = log.count("enter a") + log.count("enter b")
    assert isinstance(outcome, RuntimeError) and ran == 100, (
        f"a machine cycling a -> b -> a without max_steps gave {outcome!r} after {ran} states: "
        f"the default budget is 100 states, then RuntimeError"
    )


# -- fetch_all and fetch_one_by_one --------------------------------------------------------

DELAYS = {"a": 3.0, "b": 1.0, "c": 2.0}  # the slowest first: finishing order is b, c, a


class Server:
    """A fake server: fetching a key takes DELAYS[key] seconds and gives the key in capitals."""

    def __init__(self) -> None:
        self.in_flight: set[str] = set()
        self.most_in_flight = 0

    async def fetch(self, key: str) -> str:
        self.in_flight.add(key)
        self.most_in_flight = max(self.most_in_flight, len(self.in_flight))
        try:
            await asyncio.sleep(DELAYS[key])
        finally:
            self.in_flight.discard(key)
        return key.upper()


Fetcher = Callable[[Callable[[str], Awaitable[str]], list[str]], Awaitable[list[str]]]


def fetching(fetcher: Fetcher) -> Callable[[Server], Awaitable[tuple[object, float]]]:
    """A probe worker: fetches a, b and c with `fetcher` and times it on the loop's clock."""

    async def worker(server: Server) -> tuple[object, float]:
        return await _timed(lambda: fetcher(server.fetch, ["a", "b", "c"]))

    return worker


@pytest.mark.probe
@pytest.mark.clause(10)
def test_fetch_all_takes_as_long_as_the_slowest_fetch_not_the_sum(probe: Prober) -> None:
    def concurrent(_server: Server, results: list[object]) -> None:
        _, waited = results[0]  # type: ignore[misc]
        assert waited == 3.0, (
            f"fetching a, b and c (3 s, 1 s and 2 s) took {waited:g} s of loop time instead of "
            f"3 s: each fetch was awaited before the next one started. Start them all, then "
            f"wait for all of them (asyncio.gather)."
        )

    explore(probe, Server, [fetching(fetch_all)], concurrent)


@pytest.mark.probe
@pytest.mark.clause(11)
def test_fetch_all_returns_results_in_the_order_of_the_keys(probe: Prober) -> None:
    def in_key_order(_server: Server, results: list[object]) -> None:
        pages, _ = results[0]  # type: ignore[misc]
        assert pages == ["A", "B", "C"], (
            f"fetch_all returned {pages} for the keys a, b, c, which finish in the order b, c, "
            f"a: result i belongs to keys[i], whatever order the fetches finish in"
        )

    explore(probe, Server, [fetching(fetch_all)], in_key_order)


@pytest.mark.probe
@pytest.mark.clause(12)
def test_cancelling_fetch_all_cancels_every_fetch_it_started(probe: Prober) -> None:
    async def cancel_after_a_while(server: Server) -> tuple[bool, list[str]]:
        left_running: list[str] = []

        async def fetch_all_then_note() -> object:
            try:
                return await fetch_all(server.fetch, ["a", "b", "c"])
            finally:
                # The moment fetch_all ends (here: with CancelledError), who still fetches?
                left_running.extend(sorted(server.in_flight))

        loop = asyncio.get_running_loop()
        await asyncio.sleep(CLOCK_START - loop.time())
        task = asyncio.create_task(fetch_all_then_note())
        await asyncio.sleep(1.5)  # b (1 s) has finished; a (3 s) and c (2 s) are in flight
        task.cancel()
        await asyncio.wait([task])
        if not task.cancelled() and isinstance(task.exception(), NotImplementedError):
            task.result()  # raises it: the stub is not written yet
        return task.cancelled(), left_running

    def nothing_left(_server: Server, results: list[object]) -> None:
        cancelled, left_running = results[0]  # type: ignore[misc]
        assert not left_running, (
            f"fetch_all was cancelled at 1.5 s and passed the CancelledError on while the "
            f"fetches {left_running} were still running. Tasks you start and then await in turn "
            f"are not cancelled with you; plain asyncio.gather cancels them all, but passes the "
            f"CancelledError on as soon as the first has stopped, while the others may still be "
            f"unwinding. An asyncio.TaskGroup cancels its tasks and waits until every one has "
            f"stopped"
        )
        assert cancelled, "fetch_all was cancelled at 1.5 s, yet its task was not cancelled"

    explore(probe, Server, [cancel_after_a_while], nothing_left)


@pytest.mark.probe
@pytest.mark.clause(13)
def test_fetch_one_by_one_never_has_two_requests_in_flight(probe: Prober) -> None:
    def one_at_a_time(server: Server, _results: list[object]) -> None:
        assert server.most_in_flight == 1, (
            f"{server.most_in_flight} requests were in flight at once, but the server takes one "
            f"at a time: await each fetch before you start the next"
        )

    explore(probe, Server, [fetching(fetch_one_by_one)], one_at_a_time)


@pytest.mark.probe
@pytest.mark.clause(13, 14)
def test_fetch_one_by_one_returns_results_in_the_order_of_the_keys(probe: Prober) -> None:
    def in_key_order(_server: Server, results: list[object]) -> None:
        pages, waited = results[0]  # type: ignore[misc]
        assert pages == ["A", "B", "C"], f"fetch_one_by_one returned {pages}, expected A, B, C"
        assert waited == 6.0, f"three fetches of 3, 1 and 2 s one by one took {waited:g} s, not 6"

    explore(probe, Server, [fetching(fetch_one_by_one)], in_key_order)
