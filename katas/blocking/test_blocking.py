"""Kata `blocking`: keep the event loop running while blocking code does its work."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from blocking import pause, run_blocking, run_in, serve_all, start_blocking

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


@pytest.mark.asyncio
async def test_pause_waits_and_lets_other_tasks_run_meanwhile() -> None:
    loop = asyncio.get_running_loop()
    async with heartbeat() as beat:
        before, started = beat.ticks, loop.time()
        await pause(0.05)
        ticks, seconds = beat.ticks - before, loop.time() - started
    assert ticks > 0, (
        f"the heartbeat task ticked {ticks} times during a 0.05 s pause: the pause froze the "
        f"whole event loop. time.sleep() blocks the thread that runs every task; "
        f"`await asyncio.sleep()` suspends only your coroutine"
    )
    assert seconds >= 0.049, f"pause(0.05) returned after {seconds:.3f} s"


@pytest.mark.asyncio
async def test_run_blocking_returns_the_result_of_the_call() -> None:
    result = await asyncio.wait_for(run_blocking(pow, 2, 10), PATIENCE)
    assert result == 1024, f"run_blocking(pow, 2, 10) returned {result!r}, not 1024"


@pytest.mark.asyncio
async def test_the_loop_keeps_running_while_run_blocking_waits() -> None:
    ran_in: list[int] = []
    async with heartbeat() as beat:

        def wait_for_the_heartbeat() -> bool:
            ran_in.append(threading.get_ident())
            return beat.beating.wait(PATIENCE)

        kept_beating = await run_blocking(wait_for_the_heartbeat)
    assert ran_in != [threading.get_ident()], (
        "the blocking call ran in the event loop's own thread: no other task could run until "
        "it returned. Hand it to a worker thread: `await asyncio.to_thread(function, *args)`"
    )
    assert kept_beating, (
        f"a blocking call waited {PATIENCE:g} s for the heartbeat task to tick, and it never "
        f"did: the event loop was stuck while the call ran"
    )


@pytest.mark.asyncio
async def test_start_blocking_returns_a_pending_future_before_the_call_finishes() -> None:
    release = threading.Event()

    def wait_for_release() -> str:
        return "served" if release.wait(PATIENCE) else "never released"

    future = start_blocking(wait_for_release)
    try:
        assert isinstance(future, asyncio.Future), (
            f"start_blocking returned {future!r}; it must return an asyncio.Future (what "
            f"loop.run_in_executor gives), which a coroutine can await"
        )
        assert not future.done(), (
            f"start_blocking returned a future that was already done ({future!r}): it "
            f"ran the call itself and only then wrapped the result in a finished future, so "
            f"the loop stood still for the whole call (B2 ch.8's sleep_func). The future must "
            f"come back at once, while the call still runs in a worker thread"
        )
    finally:
        release.set()
    result = await asyncio.wait_for(future, PATIENCE)
    assert result == "served", f"awaiting the future gave {result!r}, not the call's result"


def name_and_heartbeat(beat: Heartbeat) -> tuple[str, bool]:
    return threading.current_thread().name, beat.beating.wait(PATIENCE)


@pytest.mark.asyncio
async def test_run_in_runs_the_call_in_the_executor_it_is_given() -> None:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="back-office") as executor:
        async with heartbeat() as beat:
            name, kept_beating = await run_in(executor, name_and_heartbeat, beat)
    assert name.startswith("back-office"), (
        f"the call ran in thread {name!r}, not in the given executor's thread 'back-office_0': "
        f"pass the executor to loop.run_in_executor (None means the default pool)"
    )
    assert kept_beating, (
        f"the heartbeat task never ticked while the call waited {PATIENCE:g} s: the loop was "
        f"blocked waiting for the executor (executor.submit(...).result() blocks; "
        f"`await loop.run_in_executor(executor, ...)` does not)"
    )


@pytest.mark.asyncio
async def test_run_in_sends_cpu_bound_work_to_a_process_pool() -> None:
    with ProcessPoolExecutor(max_workers=1) as pool:
        pid = await asyncio.wait_for(run_in(pool, os.getpid), 10 * PATIENCE)
    assert pid != os.getpid(), (
        "os.getpid() ran in the test's own process, not in the process pool it was given"
    )


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

    balances = await asyncio.wait_for(serve_all(customers, lookup), 3 * PATIENCE)
    assert balances == {c: f"{c}: 100" for c in customers}, (
        f"serve_all returned {balances}: each lookup waits until all 3 are running, and they "
        f"never were. Start every lookup in a worker thread before awaiting any of them "
        f"(asyncio.gather), instead of awaiting them one by one or calling lookup directly"
    )
