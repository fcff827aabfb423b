"""Kata `speedup`: Amdahl's and Gustafson's laws, and a speedup measured with a process pool."""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Iterator
from multiprocessing.pool import Pool
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from speedup import (
    amdahl,
    amdahl_limit,
    collatz_steps_total,
    efficiency,
    gustafson,
    parallel_collatz,
    processors_for,
    split,
)

# The measured job: about 0.3 s of pure Python on one free core of this project's machine,
# up to a second when other programs share the cores.
JOB_STOP = 60_000
JOB_PARTS = 8
MAX_ROUNDS = 4
# Two processes on two free cores give close to 2x; pool overhead eats a little of that. 1.4x
# is far above what one process can give (1.0x) and well below what two free cores give.
REQUIRED_SPEEDUP = 1.4
# A round judges only when the test's own two-process control reached CONTROL_SPEEDUP (the
# cores were free); then code below SERIAL_SPEEDUP ran one task at a time.
CONTROL_SPEEDUP = 1.6
SERIAL_SPEEDUP = 1.2

fractions = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
counts = st.integers(min_value=1, max_value=100_000)


def usable_cores() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than exist)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@pytest.fixture(autouse=True)
def no_worker_left_behind() -> Iterator[None]:
    yield
    left = multiprocessing.active_children()
    for child in left:
        child.kill()
        child.join(5)
    assert not left, f"{len(left)} worker process(es) were still alive after the test"


def _own_session() -> None:
    # Linux shares the CPU fairly between sessions ("autogroups"), not between processes: on a
    # machine that other users keep busy, two workers in the test's session would together get
    # one session's share, no more than the serial run. A session of its own per worker makes
    # the measurement show what two processes gain on two free cores.
    if hasattr(os, "setsid"):
        os.setsid()


@pytest.fixture
def pool() -> Iterator[Pool]:
    with multiprocessing.Pool(2, initializer=_own_session) as workers:
        yield workers


# -- Amdahl -----------------------------------------------------------------------------------


def test_amdahl_gives_the_textbook_values() -> None:
    cases = {(0.5, 2): 4 / 3, (0.9, 10): 1 / (0.1 + 0.09), (0.75, 4): 1 / (0.25 + 0.1875)}
    got = {case: amdahl(*case) for case in cases}
    wrong = {case: value for case, value in got.items() if value != pytest.approx(cases[case])}
    assert not wrong, (
        f"amdahl(f, n) gave {wrong}, expected {dict((c, cases[c]) for c in wrong)}: the serial "
        f"part (1 - f) keeps its full time and only f shrinks to f / n; speedup is 1 over that"
    )


@given(f=fractions, n=counts)
def test_amdahl_never_beats_the_processor_count_or_the_serial_limit(f: float, n: int) -> None:
    speedup = amdahl(f, n)
    bound = min(n, amdahl_limit(f))
    assert 1 - 1e-9 <= speedup <= bound * (1 + 1e-9), (
        f"amdahl({f}, {n}) = {speedup}: a speedup lies between 1 (no gain) and the smaller of "
        f"n = {n} and the serial limit 1 / (1 - f) = {amdahl_limit(f)}"
    )


def test_amdahl_limit_for_a_ninety_percent_parallel_program_is_ten_not_nine() -> None:
    limit = amdahl_limit(0.9)
    assert limit == pytest.approx(10), (
        f"amdahl_limit(0.9) = {limit}: with the parallel 90% taking no time at all, the serial "
        f"10% is left, and 1 / 0.1 = 10. B1 ch.1 says 9 (that is f / (1 - f)); 9 is what 81 "
        f"processors reach"
    )
    assert amdahl(0.9, math.inf) == pytest.approx(10), "amdahl(0.9, inf) must equal the limit, 10"
    assert amdahl_limit(1.0) == math.inf, "a program with no serial part has no limit: math.inf"


def test_the_laws_refuse_fractions_outside_zero_to_one_and_fewer_than_one_processor() -> None:
    refused = []
    for law in (amdahl, gustafson):
        for args in ((1.5, 4), (-0.1, 4), (0.5, 0)):
            try:
                law(*args)
            except ValueError:
                refused.append((law.__name__, args))
    assert len(refused) == 6, (
        f"only {refused} raised ValueError: a fraction must lie in [0, 1] and there must be at "
        f"least one processor, or the laws give meaningless numbers"
    )


# -- Gustafson and efficiency -----------------------------------------------------------------


def test_gustafson_grows_with_the_processors_where_amdahl_levels_off() -> None:
    values = {n: gustafson(0.9, n) for n in (1, 10, 100)}
    expected = {1: 1.0, 10: 9.1, 100: 90.1}
    assert values == pytest.approx(expected), (
        f"gustafson(0.9, n) for n = 1, 10, 100 gave {values}, expected {expected}: the problem "
        f"grows with n, so one processor would need (1 - f) + f * n times as long"
    )


@given(f=fractions, n=counts)
def test_gustafson_is_never_below_amdahl_for_the_same_fraction(f: float, n: int) -> None:
    assert gustafson(f, n) >= amdahl(f, n) * (1 - 1e-9), (
        f"gustafson({f}, {n}) = {gustafson(f, n)} < amdahl = {amdahl(f, n)}: a problem that "
        f"grows with the machine can only scale better than a fixed one"
    )


def test_efficiency_is_speedup_per_processor() -> None:
    assert efficiency(6.0, 8) == pytest.approx(0.75), (
        f"efficiency(6.0, 8) = {efficiency(6.0, 8)}: a speedup of 6 on 8 processors uses "
        f"three quarters of them, 0.75"
    )


def test_processors_for_finds_the_81_processors_that_reach_a_speedup_of_nine() -> None:
    needed = processors_for(0.9, 9)
    assert needed == 81, (
        f"processors_for(0.9, 9) = {needed}: 1 / (0.1 + 0.9 / 81) = 9, so 81 processors reach "
        f"the speedup of 9 that B1 ch.1 gives as the limit; 82 are needed for 9.01"
    )
    assert processors_for(0.9, 9.01) == 82, "a hair above 9 needs the 82nd processor"
    assert processors_for(0.5, 1) == 1, "a speedup of 1 needs a single processor"


def test_processors_for_is_not_fooled_by_float_rounding() -> None:
    needed = processors_for(0.5, 1.5)
    assert needed == 3, (
        f"processors_for(0.5, 1.5) = {needed}, but 1 / (0.5 + 0.5 / 3) = 1.5: 3 processors "
        f"suffice. Solved in floats, n comes out as 3.000000000000001; round up only what "
        f"lies more than a relative 1e-9 above a whole number"
    )


def test_processors_for_refuses_a_speedup_beyond_the_limit() -> None:
    try:
        needed = processors_for(0.9, 10)
    except ValueError:
        return
    pytest.fail(
        f"processors_for(0.9, 10) returned {needed}: 10 is the limit for f = 0.9, reached by no "
        f"finite number of processors; raise ValueError"
    )


# -- decomposition and the pool ---------------------------------------------------------------


@given(stop=st.integers(min_value=1, max_value=2_000), parts=st.integers(min_value=1, max_value=40))
def test_split_covers_every_number_once_in_balanced_consecutive_ranges(
    stop: int, parts: int
) -> None:
    ranges = split(stop, parts)
    covered = [n for start, end in ranges for n in range(start, end)]
    assert len(ranges) == parts, f"split({stop}, {parts}) gave {len(ranges)} ranges, not {parts}"
    assert covered == list(range(1, stop)), (
        f"split({stop}, {parts}) = {ranges} does not cover 1 .. {stop - 1} exactly once, in "
        f"order: numbers are missing, repeated (is the end inclusive?) or out of place"
    )
    sizes = [end - start for start, end in ranges]
    assert max(sizes) - min(sizes) <= 1, (
        f"split({stop}, {parts}) gave range sizes {sizes}: give the leftover numbers to the "
        f"first ranges, one each, so no worker gets more than one extra"
    )


def test_parallel_collatz_gives_the_serial_total(pool: Pool) -> None:
    expected = collatz_steps_total(1, 3_000)
    got = parallel_collatz(pool, 3_000, 7)
    assert got == expected, (
        f"parallel_collatz(pool, 3000, 7) = {got}, but collatz_steps_total(1, 3000) = "
        f"{expected}: the ranges must cover 1 .. 2999 exactly once and their totals be summed"
    )


class RecordingPool(Pool):
    """A real pool that writes down every task handed to it, and how many tasks had been handed
    over when the caller first waited for a result."""

    def __init__(self, processes: int) -> None:
        super().__init__(processes)
        self.tasks: list[tuple[Any, tuple[Any, ...]]] = []
        self.handed_over_at_first_wait: int | None = None

    def _record(self, function: Any, argument_tuples: Any) -> list[Any]:
        materialized = list(argument_tuples)
        self.tasks += [(function, a if isinstance(a, tuple) else (a,)) for a in materialized]
        return materialized

    def _waiting(self) -> None:
        if self.handed_over_at_first_wait is None:
            self.handed_over_at_first_wait = len(self.tasks)

    def map(self, func: Any, iterable: Any, chunksize: Any = None) -> Any:
        materialized = self._record(func, iterable)
        self._waiting()
        return super().map(func, materialized, chunksize)

    def starmap(self, func: Any, iterable: Any, chunksize: Any = None) -> Any:
        materialized = self._record(func, iterable)
        self._waiting()
        return super().starmap(func, materialized, chunksize)

    def map_async(self, func: Any, iterable: Any, *args: Any, **kwargs: Any) -> Any:
        return Watched(self, super().map_async(func, self._record(func, iterable), *args, **kwargs))

    def starmap_async(self, func: Any, iterable: Any, *args: Any, **kwargs: Any) -> Any:
        return Watched(
            self, super().starmap_async(func, self._record(func, iterable), *args, **kwargs)
        )

    def apply_async(self, func: Any, args: Any = (), *rest: Any, **kwargs: Any) -> Any:
        # Pool.apply is apply_async(...).get(), so it is recorded here too.
        self._record(func, [tuple(args)])
        return Watched(self, super().apply_async(func, args, *rest, **kwargs))

    def imap(self, func: Any, iterable: Any, chunksize: int = 1) -> Any:
        return WatchedIterator(self, super().imap(func, self._record(func, iterable), chunksize))

    def imap_unordered(self, func: Any, iterable: Any, chunksize: int = 1) -> Any:
        results = super().imap_unordered(func, self._record(func, iterable), chunksize)
        return WatchedIterator(self, results)


class Watched:
    """An AsyncResult that tells its RecordingPool when the caller waits on it."""

    def __init__(self, pool: RecordingPool, result: Any) -> None:
        self.pool, self.result = pool, result

    def get(self, timeout: float | None = None) -> Any:
        self.pool._waiting()
        return self.result.get(timeout)

    def wait(self, timeout: float | None = None) -> None:
        self.pool._waiting()
        self.result.wait(timeout)

    def ready(self) -> bool:
        return bool(self.result.ready())

    def successful(self) -> bool:
        return bool(self.result.successful())


class WatchedIterator:
    """An imap iterator that tells its RecordingPool when the caller waits on it."""

    def __init__(self, pool: RecordingPool, results: Any) -> None:
        self.pool, self.results = pool, results

    def __iter__(self) -> WatchedIterator:
        return self

    def __next__(self) -> Any:
        self.pool._waiting()
        return next(self.results)


def test_parallel_collatz_hands_the_pool_every_range_before_waiting_for_any() -> None:
    with RecordingPool(2) as recording:
        parallel_collatz(recording, 3_000, 7)
    tasks = [args for function, args in recording.tasks if function is collatz_steps_total]
    covered = sum(end - start for start, end in tasks)
    assert len(tasks) == 7 and covered == 2_999, (
        f"parallel_collatz(pool, 3000, 7) handed the pool {len(tasks)} collatz_steps_total "
        f"task(s) covering {covered} of the 2999 numbers: send one task per range of "
        f"split(stop, parts), or the work stays in the caller or in a single worker"
    )
    assert recording.handed_over_at_first_wait == 7, (
        f"parallel_collatz waited for a result when it had handed the pool only "
        f"{recording.handed_over_at_first_wait} of its 7 tasks: the pool then runs them one "
        f"after another. pool.apply() blocks, and so does get() inside the submitting loop; "
        f"hand over every task first (starmap, or apply_async for all, then get)"
    )


@pytest.mark.timing
def test_two_processes_finish_the_job_at_least_1_4_times_faster_than_one(pool: Pool) -> None:
    cores = usable_cores()
    if cores < 2:
        pytest.skip(f"this machine lets us use {cores} core; a speedup needs at least two")
    middle = JOB_STOP // 2
    rounds: list[str] = []
    serial_while_free: list[float] = []
    # Each round times your pool, the serial job, and a control: the test's own two-task run
    # of the same job on the same pool, which shows what the machine's cores can give right
    # now. Other programs on a shared machine can take a core away for a while; then no code
    # gets a speedup, and the round proves nothing. One round in which your code reaches the
    # bound passes. Failing needs proof: two rounds in which the control got CONTROL_SPEEDUP
    # or more (the cores were free) while your code stayed below SERIAL_SPEEDUP (it ran one
    # task at a time); two, so that one burst of load during your run alone cannot fail you.
    # Without such proof the test is skipped, never failed.
    for _ in range(MAX_ROUNDS):
        started = time.perf_counter()
        got = parallel_collatz(pool, JOB_STOP, JOB_PARTS)
        parallel = time.perf_counter() - started
        started = time.perf_counter()
        expected = collatz_steps_total(1, JOB_STOP)
        serial = time.perf_counter() - started
        started = time.perf_counter()
        pool.starmap(collatz_steps_total, [(1, middle), (middle, JOB_STOP)])
        control = time.perf_counter() - started
        assert got == expected, f"parallel_collatz gave {got}, the serial job {expected}"
        yours, possible = serial / parallel, serial / control
        rounds.append(f"{yours:.2f}x (control {possible:.2f}x)")
        if yours >= REQUIRED_SPEEDUP:
            return
        if possible >= CONTROL_SPEEDUP and yours < SERIAL_SPEEDUP:
            serial_while_free.append(yours)
    if len(serial_while_free) >= 2:
        pytest.fail(
            f"speedups per round: {', '.join(rounds)}. While two processes could run at once "
            f"(the control reached {CONTROL_SPEEDUP}x or more), your pool ran the job no faster "
            f"than one process ({max(serial_while_free):.2f}x at best); {REQUIRED_SPEEDUP}x is "
            f"required. Hand the pool one task per range, all before waiting for any "
            f"(starmap), and never compute in the caller."
        )
    pytest.skip(
        f"the cores were too busy with other programs to measure a speedup (per round: "
        f"{', '.join(rounds)}); run this test again when the machine is quieter"
    )
