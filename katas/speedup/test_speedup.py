"""Kata `speedup`: Amdahl's and Gustafson's laws, and a speedup measured with a process pool."""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import time
from collections.abc import Callable, Iterator
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


@pytest.fixture
def pool_of_three() -> Iterator[Pool]:
    """A pool of three workers: more than this machine's two cores, and than a default."""
    with multiprocessing.Pool(3) as workers:
        yield workers


def _call(law: Callable[..., Any], *args: Any) -> Any:
    """law(*args), or the name of the exception it raised (for the messages)."""
    try:
        return law(*args)
    except Exception as error:
        return f"{type(error).__name__}: {error}"


# -- Amdahl -----------------------------------------------------------------------------------


@pytest.mark.clause(1)
def test_amdahl_gives_the_textbook_values() -> None:
    cases = {(0.5, 2): 4 / 3, (0.9, 10): 1 / (0.1 + 0.09), (0.75, 3): 1 / (0.25 + 0.25)}
    got = {case: _call(amdahl, *case) for case in cases}
    wrong = {case: value for case, value in got.items() if value != pytest.approx(cases[case])}
    assert not wrong, (
        f"amdahl(f, n) gave {wrong}, expected {dict((c, cases[c]) for c in wrong)}: the serial "
        f"part (1 - f) keeps its full time and only f shrinks to f / n; speedup is 1 over that"
    )


@pytest.mark.clause(1)
@given(f=fractions, n=counts)
def test_amdahl_never_beats_the_processor_count_or_the_serial_limit(f: float, n: int) -> None:
    speedup, limit = _call(amdahl, f, n), _call(amdahl_limit, f)
    _no_error(f"amdahl({f}, {n})", speedup)
    _no_error(f"amdahl_limit({f})", limit)
    bound = min(n, limit)
    assert 1 - 1e-9 <= speedup <= bound * (1 + 1e-9), (
        f"amdahl({f}, {n}) = {speedup}: a speedup lies between 1 (no gain) and the smaller of "
        f"n = {n} and the serial limit 1 / (1 - f) = {amdahl_limit(f)}"
    )


@pytest.mark.clause(2)
def test_amdahl_with_infinitely_many_processors_reaches_the_limit() -> None:
    got = {f: _call(amdahl, f, math.inf) for f in (0.9, 0.5, 0.0)}
    expected = {0.9: 10.0, 0.5: 2.0, 0.0: 1.0}
    assert got == pytest.approx(expected), (
        f"amdahl(f, math.inf) for f = 0.9, 0.5, 0 gave {got}, expected {expected}: f / math.inf "
        f"is 0.0 in Python, so the law needs no special case; only the serial part is left "
        f"(do not turn n into an int, and do not refuse an infinite n)"
    )


@pytest.mark.clause(3)
def test_amdahl_accepts_the_edges_of_its_ranges() -> None:
    cases = {(0.0, 4): 1.0, (1.0, 4): 4.0, (0.5, 1): 1.0}
    got = {case: _call(amdahl, *case) for case in cases}
    assert got == pytest.approx(cases), (
        f"amdahl gave {got} for the edges f = 0 (all serial), f = 1 (all parallel) and n = 1, "
        f"expected {cases}: both edges belong to the ranges, 0 <= f <= 1 and n >= 1"
    )


@pytest.mark.clause(3)
def test_amdahl_refuses_fractions_outside_zero_to_one_and_fewer_than_one_processor() -> None:
    cases = [(1.5, 4), (-0.1, 4), (0.5, 0), (0.5, 0.5)]
    accepted = {
        case: got for case in cases if not str(got := _call(amdahl, *case)).startswith("ValueError")
    }
    assert not accepted, (
        f"amdahl did not raise ValueError for {accepted} (arguments: result): a fraction must "
        f"lie in [0, 1] and there must be at least one processor (n >= 1), or the law gives "
        f"meaningless numbers"
    )


def _no_error(call: str, got: Any) -> None:
    __tracebackhide__ = True
    if isinstance(got, str):
        pytest.fail(
            f"{call} raised {got}: f = 0 and f = 1 belong to the range 0 <= f <= 1, and n = 1 to "
            f"n >= 1; only values outside them are refused (and amdahl_limit(1.0) is math.inf)"
        )


def _refused(law: Callable[..., Any], cases: list[tuple[float, ...]]) -> dict[Any, Any]:
    """{arguments: what law returned or raised} for the cases it did not refuse with ValueError."""
    results = {case: _call(law, *case) for case in cases}
    return {case: got for case, got in results.items() if not str(got).startswith("ValueError")}


@pytest.mark.clause(4)
def test_amdahl_limit_for_a_ninety_percent_parallel_program_is_ten_not_nine() -> None:
    limit = _call(amdahl_limit, 0.9)
    assert limit == pytest.approx(10), (
        f"amdahl_limit(0.9) = {limit}: with the parallel 90% taking no time at all, the serial "
        f"10% is left, and 1 / 0.1 = 10. B1 ch.1 says 9 (that is f / (1 - f)); 9 is what 81 "
        f"processors reach"
    )
    assert _call(amdahl_limit, 0.0) == pytest.approx(1), "a fully serial program's limit is 1"


@pytest.mark.clause(5)
def test_amdahl_limit_of_a_fully_parallel_program_is_infinite() -> None:
    limit = _call(amdahl_limit, 1.0)
    assert limit == math.inf, (
        f"amdahl_limit(1.0) gave {limit!r}: with no serial part, 1 / (1 - f) divides by zero; "
        f"return math.inf for that case instead (no number of processors is too many)"
    )


@pytest.mark.clause(6)
def test_amdahl_limit_refuses_fractions_outside_zero_to_one() -> None:
    accepted = _refused(amdahl_limit, [(1.5,), (-0.1,)])
    assert not accepted, (
        f"amdahl_limit did not raise ValueError for {accepted} (arguments: result): a fraction "
        f"above 1 gives a negative limit, one below 0 a limit under 1; check 0 <= f <= 1 as in "
        f"amdahl"
    )


# -- Gustafson and efficiency -----------------------------------------------------------------


@pytest.mark.clause(7)
def test_gustafson_grows_with_the_processors_where_amdahl_levels_off() -> None:
    values = {n: _call(gustafson, 0.9, n) for n in (1, 10, 100)}
    expected = {1: 1.0, 10: 9.1, 100: 90.1}
    assert values == pytest.approx(expected), (
        f"gustafson(0.9, n) for n = 1, 10, 100 gave {values}, expected {expected}: the problem "
        f"grows with n, so one processor would need (1 - f) + f * n times as long"
    )


@pytest.mark.clause(7)
@given(f=fractions, n=counts)
def test_gustafson_is_never_below_amdahl_for_the_same_fraction(f: float, n: int) -> None:
    scaled, fixed = _call(gustafson, f, n), _call(amdahl, f, n)
    _no_error(f"gustafson({f}, {n})", scaled)
    _no_error(f"amdahl({f}, {n})", fixed)
    assert scaled >= fixed * (1 - 1e-9), (
        f"gustafson({f}, {n}) = {scaled} < amdahl = {fixed}: a problem that "
        f"grows with the machine can only scale better than a fixed one"
    )


@pytest.mark.clause(8)
def test_gustafson_accepts_the_edges_of_its_ranges() -> None:
    cases = {(0.0, 4): 1.0, (1.0, 4): 4.0, (0.5, 1): 1.0}
    got = {case: _call(gustafson, *case) for case in cases}
    assert got == pytest.approx(cases), (
        f"gustafson gave {got} for the edges f = 0 (all serial), f = 1 (all parallel) and "
        f"n = 1, expected {cases}: both edges belong to the ranges, 0 <= f <= 1 and n >= 1"
    )


@pytest.mark.clause(8)
def test_gustafson_refuses_fractions_outside_zero_to_one_and_fewer_than_one_processor() -> None:
    accepted = _refused(gustafson, [(1.5, 4), (-0.1, 4), (0.5, 0), (0.5, 0.5)])
    assert not accepted, (
        f"gustafson did not raise ValueError for {accepted} (arguments: result): the same rule "
        f"as amdahl, 0 <= f <= 1 and n >= 1"
    )


@pytest.mark.clause(9)
def test_efficiency_is_speedup_per_processor() -> None:
    got = _call(efficiency, 6.0, 8)
    assert got == pytest.approx(0.75), (
        f"efficiency(6.0, 8) = {got}: a speedup of 6 on 8 processors uses three quarters of "
        f"them, 0.75"
    )


# -- processors_for ---------------------------------------------------------------------------


@pytest.mark.clause(10, 11)
def test_processors_for_finds_the_81_processors_that_reach_a_speedup_of_nine() -> None:
    needed = _call(processors_for, 0.9, 9)
    assert needed == 81, (
        f"processors_for(0.9, 9) = {needed}: 1 / (0.1 + 0.9 / 81) = 9, so 81 processors reach "
        f"the speedup of 9 that B1 ch.1 gives as the limit; 82 are needed for 9.01"
    )
    assert _call(processors_for, 0.9, 9.01) == 82, "a hair above 9 needs the 82nd processor"


@pytest.mark.clause(10)
@given(
    f=st.floats(min_value=0.05, max_value=0.95),
    n=st.integers(min_value=2, max_value=1_000),
    between=st.floats(min_value=0.01, max_value=0.99),
)
def test_processors_for_returns_the_fewest_processors_that_reach_the_speedup(
    f: float, n: int, between: float
) -> None:
    # The speedup that n - 1 + between processors would give: n - 1 fall short, n reach it.
    wanted = 1 / ((1 - f) + f / (n - 1 + between))
    needed = processors_for(f, wanted)
    assert isinstance(needed, int), (
        f"processors_for({f}, {wanted}) returned {needed!r}, a {type(needed).__name__}: a "
        f"number of processors is a whole number; math.ceil returns an int"
    )
    assert needed == n, (
        f"processors_for({f}, {wanted}) = {needed}, but {n - 1} processors give "
        f"{amdahl(f, n - 1)} (too little) and {n} give {amdahl(f, n)} (enough): solve "
        f"1 / ((1 - f) + f / n) = speedup for n, n = f / (1 / speedup - (1 - f)), and round "
        f"*up* (math.ceil), neither down nor to the nearest"
    )


@pytest.mark.clause(11)
def test_processors_for_is_not_fooled_by_float_rounding() -> None:
    needed = _call(processors_for, 0.5, 1.5)
    assert needed == 3, (
        f"processors_for(0.5, 1.5) = {needed}, but 1 / (0.5 + 0.5 / 3) = 1.5: 3 processors "
        f"suffice. Solved in floats, n comes out as 3.000000000000001; round up only what "
        f"lies more than a relative 1e-9 above a whole number"
    )


@pytest.mark.clause(12)
def test_processors_for_needs_one_processor_for_a_speedup_of_one_or_less() -> None:
    cases = [(0.5, 1), (0.0, 1), (0.0, 0.5), (0.9, 0.8)]
    got = {case: _call(processors_for, *case) for case in cases}
    wrong = {case: value for case, value in got.items() if value != 1}
    assert not wrong, (
        f"processors_for gave {wrong} (arguments: result), not 1: one processor always gives "
        f"a speedup of 1, whatever f, even f = 0 where the law cannot be solved for n (its gap "
        f"1 / speedup - (1 - f) is 0); return 1 for a speedup <= 1 before solving"
    )


@pytest.mark.clause(13)
def test_processors_for_refuses_a_speedup_at_or_beyond_the_limit() -> None:
    # At the limit: 10 for f = 0.9 (in floats 1 - 0.9 leaves a crumb of gap), 2 for f = 0.5
    # (exactly no gap). Beyond it: 11 for f = 0.9, and any gain at all for f = 0.
    accepted = _refused(processors_for, [(0.9, 10), (0.5, 2), (0.9, 11), (0.0, 1.5)])
    assert not accepted, (
        f"processors_for did not raise ValueError for {accepted} (arguments: result): those "
        f"speedups are at or beyond amdahl_limit(f), which no finite number of processors "
        f"reaches. Refuse them when the gap 1 / speedup - (1 - f) is not clearly positive "
        f"(a tiny tolerance such as 1e-12 absorbs float rounding), before dividing by it"
    )


# -- decomposition and the pool ---------------------------------------------------------------


@pytest.mark.clause(14)
@given(stop=st.integers(min_value=1, max_value=2_000), parts=st.integers(min_value=1, max_value=40))
def test_split_covers_every_number_once_in_consecutive_ranges(stop: int, parts: int) -> None:
    ranges = split(stop, parts)
    covered = [n for start, end in ranges for n in range(start, end)]
    assert len(ranges) == parts, f"split({stop}, {parts}) gave {len(ranges)} ranges, not {parts}"
    assert covered == list(range(1, stop)), (
        f"split({stop}, {parts}) = {ranges} does not cover 1 .. {stop - 1} exactly once, in "
        f"order: numbers are missing, repeated (is the end inclusive?) or out of place"
    )


@pytest.mark.clause(15)
@given(stop=st.integers(min_value=1, max_value=2_000), parts=st.integers(min_value=1, max_value=40))
def test_split_gives_ranges_whose_sizes_differ_by_at_most_one(stop: int, parts: int) -> None:
    ranges = split(stop, parts)
    sizes = [end - start for start, end in ranges]
    assert sizes and max(sizes) - min(sizes) <= 1, (
        f"split({stop}, {parts}) gave range sizes {sizes}: give the leftover numbers to the "
        f"first ranges, one each, so no worker gets more than one extra"
    )


def _pickling_error(error: BaseException) -> bool:
    return isinstance(error, (pickle.PicklingError, AttributeError)) and "pickle" in str(error)


@pytest.mark.clause(16)
def test_parallel_collatz_gives_the_serial_total(pool_of_three: Pool) -> None:
    expected = collatz_steps_total(1, 3_000)
    try:
        got = parallel_collatz(pool_of_three, 3_000, 7)
    except Exception as error:
        if not _pickling_error(error):
            raise
        got = None
    assert got is not None, (
        "the pool could not send your task to its workers (a pickling error): a lambda or a "
        "function defined inside another one has no importable name. Hand the pool the "
        "module-level collatz_steps_total itself: pool.starmap(collatz_steps_total, ranges)"
    )
    assert got == expected, (
        f"parallel_collatz(pool, 3000, 7) = {got}, but collatz_steps_total(1, 3000) = "
        f"{expected}: the ranges must cover 1 .. 2999 exactly once and their totals be summed"
    )


@pytest.mark.clause(18)
def test_parallel_collatz_leaves_the_pool_open_for_the_next_call(pool_of_three: Pool) -> None:
    expected = collatz_steps_total(1, 1_000)
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(parallel_collatz(pool_of_three, 1_000, 5))
        except ValueError as error:  # "Pool not running"
            outcomes.append(f"ValueError: {error}")
    assert outcomes == [expected, expected], (
        f"two calls of parallel_collatz on the same pool, back to back, gave {outcomes}, not "
        f"{expected} twice: the first call closed or terminated the caller's pool (a `with "
        f"pool:` block terminates it on the way out). The pool belongs to the caller, who "
        f"reuses it; only use it"
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


@pytest.mark.clause(16, 17)
def test_parallel_collatz_hands_the_pool_every_range_before_waiting_for_any() -> None:
    with RecordingPool(3) as recording:
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


@pytest.mark.clause(19)
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
