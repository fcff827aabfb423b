"""Correct code the probe must not flag, and failures it must not miss (found by kata authors)."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

import pytest

from plugins.probe import ProbeFailure, explore, explore_async

THIS_MODULE = [sys.modules[__name__]]


class Shared:
    def __init__(self) -> None:
        self.first, self.second = threading.Lock(), threading.Lock()
        self.signal = threading.Lock()
        self.fired: list[str] = []


def test_a_plain_lock_released_by_another_thread_is_a_legal_hand_off() -> None:
    # A Lock used as a binary signal: one thread takes it twice (the second take waits), the
    # other releases it. Python allows this, and CPython's own Condition is built on it.
    def waiter(s: Shared) -> None:
        s.signal.acquire()
        s.signal.acquire()

    def releaser(s: Shared) -> None:
        while not s.signal.locked():
            threading.Event().wait(0.01)  # virtual time: spins until the waiter holds it
        s.signal.release()

    explore(Shared, [waiter, releaser], modules=THIS_MODULE, budget=100)


def test_opposite_timed_acquires_that_back_off_are_not_a_lock_order_cycle() -> None:
    def patient(first: threading.Lock, second: threading.Lock) -> bool:
        while True:
            with first:
                if second.acquire(timeout=0.01):
                    second.release()
                    return True
            threading.Event().wait(0.001)

    explore(
        Shared,
        [lambda s: patient(s.first, s.second), lambda s: patient(s.second, s.first)],
        lambda s, results: None,
        modules=THIS_MODULE,
        budget=100,
    )


def test_opposite_blocking_acquires_are_still_reported() -> None:
    def grab(first: threading.Lock, second: threading.Lock) -> None:
        with first, second:
            pass

    with pytest.raises(ProbeFailure, match=r"deadlock|lock-order"):
        explore(
            Shared,
            [lambda s: grab(s.first, s.second), lambda s: grab(s.second, s.first)],
            modules=THIS_MODULE,
            budget=100,
        )


def test_threading_timer_runs_on_virtual_time_and_can_be_cancelled() -> None:
    def schedule(s: Shared) -> None:
        fires = threading.Timer(5.0, lambda: s.fired.append("fired"))
        cancelled = threading.Timer(5.0, lambda: s.fired.append("cancelled"))
        fires.start()
        cancelled.start()
        cancelled.cancel()
        fires.join()
        cancelled.join()

    def only_the_first_fired(s: Shared, results: list[object]) -> None:
        assert s.fired == ["fired"], s.fired

    explore(Shared, [schedule], only_the_first_fired, modules=THIS_MODULE, budget=20)


def test_an_exception_in_a_plain_loop_callback_fails_the_async_probe() -> None:
    async def worker(state: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        future.set_result(1)
        future.add_done_callback(lambda f: f.set_result(2))  # InvalidStateError in a callback
        await asyncio.sleep(0.1)

    with pytest.raises(ProbeFailure, match="a callback raised InvalidStateError"):
        explore_async(dict, [worker], budget=5, modules=THIS_MODULE)


def test_notify_all_wakes_the_waiters_of_a_condition_made_outside_a_run() -> None:
    from plugins.probe.conditions import Condition

    condition = Condition()
    woke: list[bool] = []

    def waiter() -> None:
        with condition:
            woke.append(condition.wait(timeout=5))

    thread = threading.Thread(target=waiter)
    thread.start()
    for _ in range(500):  # until the waiter is inside wait() (it released the lock there)
        with condition:
            if condition._real._waiters:  # type: ignore[attr-defined]
                break
        threading.Event().wait(0.01)
    with condition:
        condition.notify_all()
    thread.join(5)
    assert woke == [True], "notify_all() must wake a thread waiting on a plain Condition"
