"""Kata `blocking`: keep the event loop running while blocking code does its work."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import threading
from collections.abc import AsyncIterator, Awaitable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import TypeVar

import pytest
from blocking import pause, run_blocking, run_in, serve_all, start_blocking

T = TypeVar("T")

# How long a blocking call in these tests waits for a sign of life from the event loop (or
# from the other calls). A running loop gives it within a few milliseconds; a blocked loop
# never does, so the wait runs out exactly when the code under test blocks the loop, and
# then it always runs out. The verdict never depends on how fast the machine is.
PATIENCE = 1.0


class Heartbeat:
    """A task that ticks every millisecond on the event loop: it only ticks while the loop runs."""

    def __init__(self) -> None:
        self.ticks = 0
        self.beating = threading.Event()  # set from the loop after 3 ticks; threads wait on it

    async def run(self) -> None:
        while True:
            self.ticks += 1
            if self.ticks >= 3:
                self.beating.set()
            await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def heartbeat() -> AsyncIterator[Heartbeat]:
    beat = Heartbeat()
    task = asyncio.create_task(beat.run())
    await asyncio.sleep(0)  # the heartbeat's first tick
    try:
        yield beat
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def awaited(
    what: str, awaitable: Awaitable[T], seconds: float = PATIENCE, why: str = ""
) -> T:
    """Await `awaitable` for at most `seconds`, failing with a sentence that names `what`."""
    __tracebackhide__ = True
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        pytest.fail(f"{what} had still not finished after {seconds:g} s{why}")
    except TypeError as error:
        pytest.fail(
            f"{what} raised TypeError: {error}. The worker thread was handed the wrong thing: "
            f"pass the function itself and its arguments separately, "
            f"`run_in_executor(executor, function, *args)` or `asyncio.to_thread(function, "
            f"*args)`. `function(*args)` calls it at once, on the loop's thread, and hands the "
            f"thread its result; `args` without the star passes one tuple as one argument"
        )


def result_of(what: str, result: object) -> None:
    """Fail when an async function handed back an awaitable instead of awaiting it."""
    __tracebackhide__ = True
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()  # never awaited: close it, so Python does not warn about it later
        pytest.fail(
            f"{what} returned {result!r} instead of the call's result: it handed back the "
            f"awaitable it got from asyncio.to_thread / run_in_executor without awaiting it. "
            f"Write `return await ...`"
        )


def where_it_ran(calls: list[str]) -> str:
    """The name of the current thread, appended to `calls` (the call's own record)."""
    name = threading.current_thread().name
    calls.append(name)
    return name


def assert_balances(balances: dict[str, str], expected: dict[str, str]) -> None:
    """serve_all's answer must pair every customer with its own lookup's result."""
    __tracebackhide__ = True
    for value in balances.values():
        result_of("serve_all's lookup", value)
    if balances == expected:
        return
    if sorted(map(str, balances.values())) == sorted(expected.values()):
        pytest.fail(
            f"serve_all returned {balances}, not {expected}: every balance is there, but paired "
            f"with the wrong customer. The lookups finished in another order than they were "
            f"started; asyncio.gather returns the results in the order of its arguments, "
            f"asyncio.as_completed and asyncio.wait in the order they finish"
        )
    pytest.fail(f"serve_all returned {balances!r}, not {expected}")


@pytest.mark.clause(1)
@pytest.mark.asyncio
async def test_pause_returns_once_its_seconds_have_passed() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await awaited(
        "pause(0.05)",
        pause(0.05),
        PATIENCE,
        why=": it must return once its 0.05 s are up (asyncio.sleep takes seconds, not "
        "milliseconds)",
    )
    seconds = loop.time() - started
    assert seconds >= 0.049, (
        f"pause(0.05) returned after {seconds:.3f} s, before its 0.05 s were up: "
        f"`await asyncio.sleep(seconds)` waits the whole time (asyncio.sleep(0) only lets the "
        f"other tasks run once)"
    )


@pytest.mark.clause(2)
@pytest.mark.asyncio
async def test_other_tasks_run_while_pause_waits() -> None:
    async with heartbeat() as beat:

        async def ticks_during_pause() -> int:
            # Counted inside one coroutine: nothing else on the loop can run between the two
            # reads unless pause suspends. (Counted around a wait_for instead, a heartbeat
            # whose timer fell due before pause began could tick once even for a frozen loop.)
            before = beat.ticks
            await pause(0.05)
            return beat.ticks - before

        ticks = await awaited("pause(0.05)", ticks_during_pause())
    assert ticks > 0, (
        f"the heartbeat task ticked {ticks} times during a 0.05 s pause: the pause froze the "
        f"whole event loop. time.sleep() blocks the thread that runs every task; "
        f"`await asyncio.sleep()` suspends only your coroutine"
    )


@pytest.mark.clause(3)
@pytest.mark.asyncio
async def test_run_blocking_returns_the_result_of_the_call() -> None:
    calls: list[tuple[int, int]] = []

    def power(base: int, exponent: int) -> int:
        calls.append((base, exponent))
        return int(base**exponent)

    result = await awaited("run_blocking(power, 2, 10)", run_blocking(power, 2, 10))
    result_of("run_blocking(power, 2, 10)", result)
    assert result == 1024, f"run_blocking(power, 2, 10) returned {result!r}, not 1024"
    assert calls == [(2, 10)], (
        f"run_blocking(power, 2, 10) called power {len(calls)} times ({calls}), not once"
    )


@pytest.mark.clause(4)
@pytest.mark.asyncio
async def test_run_blocking_uses_the_loops_default_executor() -> None:
    loop = asyncio.get_running_loop()
    calls: list[str] = []
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="default-pool") as default:
        loop.set_default_executor(default)
        name = await awaited("run_blocking(where_it_ran)", run_blocking(where_it_ran, calls))
    result_of("run_blocking(where_it_ran)", name)
    assert name.startswith("default-pool"), (
        f"the call ran in thread {name!r}, not in the loop's default executor (whose threads "
        f"are called 'default-pool_N' here): `asyncio.to_thread(function, *args)` or "
        f"`loop.run_in_executor(None, function, *args)` use it. A new ThreadPoolExecutor or "
        f"Thread per call starts fresh threads every time, and nobody shuts them down"
    )


@pytest.mark.clause(4, 5)
@pytest.mark.asyncio
async def test_the_loop_keeps_running_while_run_blocking_waits() -> None:
    ran_in: list[int] = []
    async with heartbeat() as beat:

        def wait_for_the_heartbeat(patience: float) -> bool:
            ran_in.append(threading.get_ident())
            return beat.beating.wait(patience)

        kept_beating = await awaited(
            "run_blocking(wait_for_the_heartbeat, 1.0)",
            run_blocking(wait_for_the_heartbeat, PATIENCE),
            3 * PATIENCE,
        )
        result_of("run_blocking(wait_for_the_heartbeat, 1.0)", kept_beating)
    assert ran_in != [threading.get_ident()], (
        "the blocking call ran in the event loop's own thread: no other task could run until "
        "it returned. Hand it to a worker thread: `await asyncio.to_thread(function, *args)`"
    )
    assert kept_beating is True, (
        f"a blocking call waited {PATIENCE:g} s for the heartbeat task to tick, and it never "
        f"did: the event loop was stuck while the call ran"
    )


def wait_for_release(release: threading.Event, answer: str, calls: list[str]) -> str:
    """Record the thread it runs in, then wait until the test releases it."""
    where_it_ran(calls)
    return answer if release.wait(PATIENCE) else "never released"


@pytest.mark.clause(6)
@pytest.mark.asyncio
async def test_start_blocking_gives_an_asyncio_future_of_the_calls_result() -> None:
    release, calls = threading.Event(), []
    release.set()  # this call need not wait
    future = start_blocking(wait_for_release, release, "served", calls)
    result_is_awaitable = inspect.isawaitable(future)
    if inspect.iscoroutine(future):
        future.close()  # never awaited: close it, so Python does not warn about it later
    assert isinstance(future, asyncio.Future), (
        f"start_blocking returned {future!r}; it must return an asyncio.Future, which is what "
        f"loop.run_in_executor(None, function, *args) returns"
        + (
            ". A coroutine (asyncio.to_thread(...) not awaited) does not run until somebody "
            "awaits it: the call has not even started"
            if result_is_awaitable
            else ""
        )
    )
    result = await awaited("awaiting start_blocking's future", future)
    assert result == "served", f"awaiting the future gave {result!r}, not the call's result"
    assert calls and calls[0] != threading.current_thread().name, (
        f"the call ran in the event loop's own thread ({calls}), not in a worker thread"
    )


@pytest.mark.clause(7)
@pytest.mark.asyncio
async def test_start_blocking_returns_a_pending_future_before_the_call_finishes() -> None:
    release, calls = threading.Event(), []
    loop_thread = threading.current_thread().name
    future = start_blocking(wait_for_release, release, "served", calls)
    try:
        assert loop_thread not in calls, (
            "start_blocking called the function itself, on the event loop's thread, before "
            "returning: the loop stood still for the whole call. Hand the function and its "
            "arguments to the executor separately, `run_in_executor(None, function, *args)`, "
            "never `function(*args)`"
        )
        if isinstance(future, asyncio.Future):
            assert not future.done(), (
                f"start_blocking returned a future that was already done ({future!r}): it "
                f"ran the call itself and only then wrapped the result in a finished future, "
                f"so the loop stood still for the whole call (B2 ch.8's sleep_func). The "
                f"future must come back at once, while the call still runs in a worker thread"
            )
    finally:
        release.set()
        if inspect.iscoroutine(future):
            future.close()
    assert isinstance(future, asyncio.Future), (
        f"start_blocking returned {future!r}, not an asyncio.Future"
    )
    await awaited("awaiting start_blocking's future", future)


def name_and_heartbeat(beat: Heartbeat, patience: float) -> tuple[str, bool]:
    return threading.current_thread().name, beat.beating.wait(patience)


@pytest.mark.clause(8)
@pytest.mark.asyncio
async def test_run_in_runs_the_call_in_the_executor_it_is_given() -> None:
    calls: list[str] = []
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="back-office") as executor:
        name = await awaited(
            "run_in(executor, where_it_ran)", run_in(executor, where_it_ran, calls)
        )
    result_of("run_in(executor, where_it_ran)", name)
    assert name.startswith("back-office"), (
        f"the call ran in thread {name!r}, not in the given executor's threads "
        f"('back-office_N'): pass the executor to loop.run_in_executor (None means the "
        f"default pool)"
    )


@pytest.mark.clause(9)
@pytest.mark.asyncio
async def test_the_loop_keeps_running_while_run_in_waits_for_the_executor() -> None:
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="back-office") as executor:
        async with heartbeat() as beat:
            name, kept_beating = await awaited(
                "run_in(executor, name_and_heartbeat, beat, 1.0)",
                run_in(executor, name_and_heartbeat, beat, PATIENCE),
                3 * PATIENCE,
            )
    assert kept_beating is True, (
        f"the heartbeat task never ticked while the call waited {PATIENCE:g} s in thread "
        f"{name!r}: the loop was blocked waiting for the executor "
        f"(executor.submit(...).result() blocks; `await loop.run_in_executor(executor, ...)` "
        f"does not)"
    )


@pytest.mark.clause(8)
@pytest.mark.asyncio
async def test_run_in_sends_cpu_bound_work_to_a_process_pool() -> None:
    with ProcessPoolExecutor(max_workers=1) as pool:
        pid = await awaited("run_in(process_pool, os.getpid)", run_in(pool, os.getpid), 10)
    assert pid != os.getpid(), (
        "os.getpid() ran in the test's own process, not in the process pool it was given"
    )


@pytest.mark.clause(11)
@pytest.mark.asyncio
async def test_serve_all_looks_every_customer_up_at_the_same_time() -> None:
    customers = ["ann", "bob", "cy"]
    everybody_at_the_counter = threading.Barrier(len(customers), timeout=PATIENCE)

    def lookup(customer: str) -> str:
        try:
            everybody_at_the_counter.wait()
        except threading.BrokenBarrierError:
            return "waited alone"
        return f"{customer}: 100"

    balances = await awaited("serve_all", serve_all(customers, lookup), 4 * PATIENCE)
    expected = {c: f"{c}: 100" for c in customers}
    assert "waited alone" not in balances.values(), (
        f"serve_all returned {balances}: each lookup waits until all 3 are running, and they "
        f"never were. Start every lookup in a worker thread before awaiting any of them "
        f"(asyncio.gather), instead of awaiting them one by one or calling lookup directly"
    )
    assert_balances(balances, expected)


@pytest.mark.clause(10)
@pytest.mark.asyncio
async def test_serve_all_pairs_each_customer_with_its_own_balance() -> None:
    customers = ["ann", "bob", "cy"]
    own = {"ann": "120", "bob": "75", "cy": "300"}
    finished = {c: threading.Event() for c in customers}

    def lookup(customer: str) -> str:
        # The last customer's lookup finishes first, the first customer's last: cy, bob, ann.
        after = customers.index(customer) + 1
        if after < len(customers):
            finished[customers[after]].wait(PATIENCE)
        finished[customer].set()
        return own[customer]

    balances = await awaited("serve_all", serve_all(customers, lookup), 4 * PATIENCE)
    assert_balances(balances, own)
