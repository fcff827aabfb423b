"""Kata `mpi_collectives`: bcast, scatter and gather, Alltoall, reductions, scans and Barrier."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from mpi4py import MPI
from mpi_collectives import (
    all_values,
    deal_out,
    elementwise_max,
    gather_chunks,
    max_and_owner,
    run_in_steps,
    running_total,
    scatter_chunks,
    share,
    split_counts,
    start_offset,
    total_at_root,
    transpose,
)

# One rank alone is the edge case; three ranks split most things unevenly, and make the root
# (always the last rank) differ from rank 0.
pytestmark = pytest.mark.mpi(n=[1, 3])

# Every rank runs the test body, and every rank must draw the same examples, in the same
# order: no randomness, no database, and no shrinking (each rank would shrink its own way).
# Few examples: each one is a handful of collective calls.
LOCKSTEP = settings(
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    max_examples=8,
    deadline=None,
    report_multiple_bugs=False,
    # The `comm` fixture is meant to serve every example; and a health check that trips on
    # one rank only (a slow one) would make the ranks diverge.
    suppress_health_check=list(HealthCheck),
)
# Larger than 2**31 (int32 overflows) and than 2**53 / 2**40 apart (float64 garbage shows).
BIG = 3 * 10**9
# How long a rank lingers inside one step of run_in_steps, so that the others get ahead of it.
LINGER = 0.1

NUMPY_INT = (
    "np.int no longer exists: NumPy 1.24 removed it (the book's reduction.py uses "
    "numpy.int). Name the dtype you mean: np.int64, or the dtype of the array you reduce."
)
DTYPE_MISMATCH = (
    "mpi4py refused the call: {error}. The receive buffer's dtype differs from the send "
    "buffer's (an int32 buffer, np.zeros(n, dtype='i') or np.int32, for int64 values?): "
    "give both the same dtype, int64 here, or the sums past 2**31 would not fit anyway."
)
TRUNCATED = (
    "MPI refused the call: {error}. A rank sent more items than the receiving buffer's count "
    "for it: a count or a buffer size is wrong (every rank's share must come from the same "
    "split, and the root must learn every chunk's length before it receives them)."
)
SCATTER_LENGTH = (
    "comm.scatter refused the list: {error}. It takes exactly one entry per rank, which the "
    "book's scatter.py gets by running on exactly 10 ranks. Cut `items` into comm.size runs "
    "(split_counts) and scatter the list of runs."
)


def replays_its_failure(test: Callable[..., None]) -> Callable[..., None]:
    """Make a rank's failed example fail again at once when Hypothesis runs it a second time.

    Hypothesis reruns a failing example to report it. Under MPI that rerun would run on the
    failed rank alone, while the other ranks have gone on to the next example, and its
    collective calls would meet theirs: a confusing hang or a different error. So a rank that
    failed raises the same failure again without calling anything."""
    failed: dict[int, tuple[Any, BaseException]] = {}

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        comm = kwargs["comm"]
        earlier = failed.get(id(comm))
        if earlier is not None and earlier[0] is comm:
            raise earlier[1]
        try:
            test(*args, **kwargs)
        except BaseException as error:
            failed[id(comm)] = (comm, error)
            raise

    return run


def call(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)`, with the errors that mpi4py and NumPy raise for classic bugs
    explained."""
    __tracebackhide__ = True
    try:
        return function(*args)
    except AttributeError as error:
        if "numpy" in str(error) and "'int'" in str(error):
            pytest.fail(NUMPY_INT)
        raise
    except ValueError as error:
        if "mismatch in send and receive MPI datatypes" in str(error):
            pytest.fail(DTYPE_MISMATCH.format(error=error))
        if "expecting" in str(error) and "items" in str(error):
            pytest.fail(SCATTER_LENGTH.format(error=error))
        raise
    except MPI.Exception as error:
        if error.Get_error_class() == MPI.ERR_TRUNCATE:
            pytest.fail(TRUNCATED.format(error=error))
        raise


def runs(total: int, parts: int) -> list[tuple[int, int]]:
    """The test's own split: (start, stop) of each run, the longer runs first."""
    size, remainder = divmod(total, parts)
    bounds, start = [], 0
    for part in range(parts):
        stop = start + size + (part < remainder)
        bounds.append((start, stop))
        start = stop
    return bounds


def assert_int64_array(got: Any, expected: np.ndarray, what: str, why: str = "") -> None:
    __tracebackhide__ = True
    assert isinstance(got, np.ndarray), f"{what} returned {got!r}, not a NumPy array"
    assert got.dtype == np.int64, (
        f"{what} returned an array of dtype {got.dtype}, not int64: a receive buffer made "
        f"with np.empty(n) is float64, and the int64 bits sent into it read as garbage "
        f"floats ({got[:4]}...). Make receive buffers with the data's dtype, np.int64."
    )
    assert got.shape == expected.shape and np.array_equal(got, expected), (
        f"{what} returned {got.tolist()}, expected {expected.tolist()}{why}"
    )


# -- split_counts (no communication) ---------------------------------------------------------


@pytest.mark.mpi(n=1)
@pytest.mark.clause(2)
@LOCKSTEP
@given(total=st.integers(0, 40), parts=st.integers(1, 5))
@example(total=10, parts=3)
@example(total=2, parts=3)
@replays_its_failure
def test_split_counts_puts_the_longer_runs_first_and_says_where_each_starts(
    comm: Any, total: int, parts: int
) -> None:
    counts, displacements = split_counts(total, parts)
    expected = runs(total, parts)
    expected_counts = [stop - start for start, stop in expected]
    assert list(counts) == expected_counts, (
        f"split_counts({total}, {parts}) gave counts {list(counts)}, expected "
        f"{expected_counts}: {parts} runs that add up to {total}, differ by at most one, "
        f"the longer ones first (the first {total % parts} get {total // parts + 1} items)"
    )
    expected_displacements = [start for start, _ in expected]
    assert list(displacements) == expected_displacements, (
        f"split_counts({total}, {parts}) gave displacements {list(displacements)}, expected "
        f"{expected_displacements}: run i starts after the runs before it, so displacements[i] "
        f"is the sum of counts[:i] (0 for the first run, and the run's own count not included)"
    )


# -- share (bcast) ---------------------------------------------------------------------------


@pytest.mark.clause(1)
def test_share_gives_every_rank_the_value_of_the_root(comm: Any) -> None:
    root = comm.size - 1
    got = share(comm, {"from rank": comm.rank, "items": [comm.rank] * 3}, root)
    expected = {"from rank": root, "items": [root] * 3}
    assert got == expected, (
        f"rank {comm.rank} got {got!r} from share(comm, value, root={root}), expected the "
        f"root's value {expected!r}. bcast's root defaults to 0: pass root=root, the same on "
        f"every rank."
    )


# -- deal_out (scatter) and scatter_chunks (Scatterv) ----------------------------------------


@pytest.mark.clause(3)
@LOCKSTEP
@given(total=st.integers(0, 10))
@example(total=5)
@example(total=1)
@replays_its_failure
def test_deal_out_gives_each_rank_its_consecutive_run_of_the_roots_list(
    comm: Any, total: int
) -> None:
    root = comm.size - 1
    items = [f"item {i}" for i in range(total)]
    got = call(deal_out, comm, items if comm.rank == root else None, root)
    start, stop = runs(total, comm.size)[comm.rank]
    expected = items[start:stop]
    hint = ""
    if got == items[comm.rank :: comm.size] and got != expected:
        hint = " It got every comm.size-th item instead: the runs must be consecutive."
    assert got == expected, (
        f"rank {comm.rank} of {comm.size} got {got!r} from deal_out over {total} items with "
        f"root={root}, expected its run items[{start}:{stop}] = {expected!r} (the longer runs "
        f"go to the first ranks).{hint}"
    )


@pytest.mark.clause(4)
@LOCKSTEP
@given(total=st.integers(0, 12))
@example(total=7)
@example(total=2)
@replays_its_failure
def test_scatter_chunks_gives_each_rank_its_run_of_the_roots_array(comm: Any, total: int) -> None:
    root = comm.size - 1
    data = np.arange(total, dtype=np.int64) * 7 + BIG
    got = call(scatter_chunks, comm, data.copy() if comm.rank == root else None, root)
    start, stop = runs(total, comm.size)[comm.rank]
    assert_int64_array(
        got,
        data[start:stop],
        f"scatter_chunks on rank {comm.rank} of {comm.size} ({total} items, root={root}, "
        f"its run data[{start}:{stop}])",
    )


# -- gather_chunks (Gatherv) -----------------------------------------------------------------


@pytest.mark.clause(5)
@LOCKSTEP
@given(lengths=st.lists(st.integers(0, 3), min_size=3, max_size=3))
@example(lengths=[2, 0, 3])
@example(lengths=[1, 3, 1])
@replays_its_failure
def test_gather_chunks_joins_every_chunk_in_rank_order_on_the_root(
    comm: Any, lengths: list[int]
) -> None:
    root = comm.size - 1
    lengths = lengths[: comm.size]
    start = sum(lengths[: comm.rank])
    chunk = np.arange(start, start + lengths[comm.rank], dtype=np.int64) + BIG
    got = call(gather_chunks, comm, chunk, root)
    if comm.rank == root:
        assert_int64_array(
            got,
            np.arange(sum(lengths), dtype=np.int64) + BIG,
            f"gather_chunks on the root (rank {root}), the ranks' chunks having {lengths} items,",
            ": each chunk goes where the chunks of the ranks before it end, so the root must "
            "learn every rank's length (gather) before Gatherv, and pass those counts and "
            "their running sums as displacements",
        )


@pytest.mark.clause(6)
def test_gather_chunks_returns_none_on_every_rank_but_the_root(comm: Any) -> None:
    root = comm.size - 1
    got = call(gather_chunks, comm, np.arange(comm.rank + 1, dtype=np.int64), root)
    if comm.rank != root:
        assert got is None, (
            f"gather_chunks returned {got!r} on rank {comm.rank}, which is not the root "
            f"({root}): only the root receives, the others return None"
        )
    else:
        assert got is not None, f"gather_chunks returned None on the root (rank {root})"


# -- all_values (allgather) ------------------------------------------------------------------


@pytest.mark.clause(7)
def test_all_values_gives_every_rank_every_value_in_rank_order(comm: Any) -> None:
    got = all_values(comm, {"rank": comm.rank})
    expected = [{"rank": rank} for rank in range(comm.size)]
    hint = " gather gives the list to its root only; allgather gives it to every rank." * (
        got is None
    )
    assert got == expected, f"rank {comm.rank} got {got!r}, expected {expected!r}.{hint}"


# -- transpose (Alltoall) --------------------------------------------------------------------


@pytest.mark.clause(8)
@LOCKSTEP
@given(b=st.integers(1, 3), c=st.integers(1, 3), dtype=st.sampled_from(["int64", "float64"]))
@example(b=2, c=3, dtype="int64")
@example(b=3, c=1, dtype="float64")
@replays_its_failure
def test_transpose_returns_this_ranks_rows_of_the_transposed_matrix(
    comm: Any, b: int, c: int, dtype: str
) -> None:
    n, r = comm.size, comm.rank
    matrix = (np.arange(n * b * n * c).reshape(n * b, n * c) + BIG).astype(dtype)
    rows = matrix[r * b : (r + 1) * b].copy()
    got = transpose(comm, rows)
    expected = matrix.T[r * c : (r + 1) * c]
    what = (
        f"transpose on rank {r} of {n}, each rank holding {b} rows of a "
        f"{n * b}x{n * c} {dtype} matrix A (rank {r} rows {r * b} to {(r + 1) * b - 1}),"
    )
    assert isinstance(got, np.ndarray), f"{what} returned {got!r}, not a NumPy array"
    assert got.dtype == rows.dtype, (
        f"{what} returned dtype {got.dtype}: its receive buffer's dtype must be the rows' "
        f"({rows.dtype}), or the bytes Alltoall moves are read as another type"
    )
    assert got.shape == expected.shape, (
        f"{what} returned shape {got.shape}, expected {expected.shape}: rows {r * c} to "
        f"{(r + 1) * c - 1} of A.T, each as long as A's columns ({n * b})"
    )
    assert np.array_equal(got, expected), (
        f"{what} returned\n{got}\nexpected rows {r * c} to {(r + 1) * c - 1} of A.T:\n"
        f"{expected}\nAlltoall sends the j-th equal slice of the send buffer to rank j: slice "
        f"j must hold the columns j*{c} to j*{c}+{c - 1} of this rank's rows, and each (b, c) "
        f"block that arrives must itself be transposed and put in the sender's place."
    )


# -- total_at_root (Reduce, SUM) -------------------------------------------------------------


def rank_values(rank: int, length: int) -> np.ndarray:
    return np.arange(length, dtype=np.int64) * (rank + 1) + BIG


@pytest.mark.clause(9)
@LOCKSTEP
@given(length=st.integers(1, 5))
@example(length=4)
@replays_its_failure
def test_total_at_root_sums_element_wise_on_the_root(comm: Any, length: int) -> None:
    root = comm.size - 1
    got = call(total_at_root, comm, rank_values(comm.rank, length), root)
    if comm.rank == root:
        expected = sum(rank_values(rank, length) for rank in range(comm.size))
        assert_int64_array(
            got,
            np.asarray(expected, dtype=np.int64),
            f"total_at_root on the root (rank {root}), every value above {BIG},",
        )


@pytest.mark.clause(10)
def test_total_at_root_returns_none_on_every_rank_but_the_root(comm: Any) -> None:
    root = comm.size - 1
    got = call(total_at_root, comm, rank_values(comm.rank, 3), root)
    if comm.rank != root:
        assert got is None, (
            f"total_at_root returned {got!r} on rank {comm.rank}, which is not the root "
            f"({root}): Reduce fills the root's receive buffer only, so anything else holds "
            f"no total. Return None there."
        )
    else:
        assert got is not None, f"total_at_root returned None on the root (rank {root})"


# -- elementwise_max (Allreduce, MAX) --------------------------------------------------------


def float_values(seed: int, rank: int, length: int) -> np.ndarray:
    """Each rank's array: every rank can build every other rank's, to know the answer."""
    return np.random.default_rng([seed, rank]).uniform(-100.0, -1.0, length).round(2)


@pytest.mark.clause(11)
@LOCKSTEP
@given(seed=st.integers(0, 1000), length=st.integers(1, 5))
@replays_its_failure
def test_elementwise_max_gives_every_rank_the_maximum_and_keeps_values(
    comm: Any, seed: int, length: int
) -> None:
    values = float_values(seed, comm.rank, length)
    before = values.copy()
    got = elementwise_max(comm, values)
    expected = np.max([float_values(seed, rank, length) for rank in range(comm.size)], axis=0)
    assert isinstance(got, np.ndarray) and np.array_equal(got, expected), (
        f"rank {comm.rank} of {comm.size} got {got!r}, expected the element-wise maximum "
        f"{expected.tolist()} of every rank's values (all of them negative) on every rank"
    )
    assert np.array_equal(values, before), (
        f"elementwise_max changed the caller's array on rank {comm.rank}: it holds "
        f"{values.tolist()}, not {before.tolist()}. MPI.IN_PLACE reduces into the array you "
        f"pass it; receive into a new array instead."
    )


# -- max_and_owner (allreduce, MAXLOC) -------------------------------------------------------


@pytest.mark.clause(12)
@LOCKSTEP
@given(values=st.lists(st.integers(-2, 2), min_size=3, max_size=3))
@example(values=[1, 1, 1])
@example(values=[0, 2, 2])
@replays_its_failure
def test_max_and_owner_names_the_lowest_rank_holding_the_maximum(
    comm: Any, values: list[int]
) -> None:
    values = values[: comm.size]
    got = max_and_owner(comm, float(values[comm.rank]))
    largest = max(values)
    expected = (float(largest), values.index(largest))
    holders = [rank for rank, value in enumerate(values) if value == largest]
    owner = got[1] if isinstance(got, tuple) and len(got) == 2 else None
    tie = (
        " MAX on (value, rank) pairs compares the ranks too when the values tie, and names the "
        "highest; MAXLOC names the lowest."
    )
    hint = ""
    if owner == comm.rank != expected[1]:
        hint = " It named this rank itself: the owner is the rank holding the maximum."
        if owner == holders[-1]:
            hint += f" (Or, rank {owner} being the highest of them:{tie})"
    elif owner == holders[-1] != holders[0]:
        hint = f" It named the highest of them.{tie}"
    assert got == expected, (
        f"rank {comm.rank} got {got!r}, the ranks holding {values}; expected {expected}: the "
        f"largest value and the lowest of the ranks {holders} that hold it, the same answer "
        f"on every rank.{hint}"
    )


# -- running_total (scan) and start_offset (exscan) ------------------------------------------


@pytest.mark.clause(13)
@LOCKSTEP
@given(values=st.lists(st.integers(-5, 20), min_size=3, max_size=3))
@example(values=[4, 1, 2])
@replays_its_failure
def test_running_total_includes_this_ranks_own_value(comm: Any, values: list[int]) -> None:
    got = running_total(comm, values[comm.rank])
    expected = sum(values[: comm.rank + 1])
    assert got == expected, (
        f"rank {comm.rank} got {got!r}, the ranks holding {values[: comm.size]}; expected "
        f"{expected}, the sum over ranks 0 to {comm.rank}, this one included (an inclusive "
        f"scan: Scan, not Exscan)"
    )


@pytest.mark.clause(14)
@LOCKSTEP
@given(counts=st.lists(st.integers(0, 20), min_size=3, max_size=3))
@example(counts=[4, 1, 2])
@replays_its_failure
def test_start_offset_sums_the_ranks_below_and_is_zero_on_rank_0(
    comm: Any, counts: list[int]
) -> None:
    got = start_offset(comm, counts[comm.rank])
    expected = sum(counts[: comm.rank])
    hint = ""
    if got is None:
        hint = " exscan leaves rank 0 without a result (None): return 0 there yourself."
    elif got == expected + counts[comm.rank] != expected:
        hint = " That includes this rank's own count: an exclusive scan (Exscan) leaves it out."
    assert got == expected, (
        f"rank {comm.rank} got {got!r}, the ranks holding {counts[: comm.size]}; expected "
        f"{expected}, the sum over the ranks below this one.{hint}"
    )


# -- run_in_steps (Barrier) ------------------------------------------------------------------


@pytest.mark.clause(15)
def test_run_in_steps_returns_what_every_step_returned_in_order(comm: Any) -> None:
    called: list[int] = []

    def step(k: int) -> Callable[[], str]:
        def run() -> str:
            called.append(k)
            return f"step {k} on rank {comm.rank}"

        return run

    got = run_in_steps(comm, [step(k) for k in range(3)])
    expected = [f"step {k} on rank {comm.rank}" for k in range(3)]
    assert called == [0, 1, 2], f"the steps ran in the order {called} on rank {comm.rank}"
    assert got == expected, f"run_in_steps returned {got!r} on rank {comm.rank}, not {expected!r}"


@pytest.mark.clause(16)
def test_no_rank_starts_a_step_before_every_rank_finished_the_last_one(comm: Any) -> None:
    # The last rank lingers in step 0 and rank 0 in step 1: without a barrier between two
    # steps, the others start the next step before the lingering rank has finished this one.
    lingers = {0: comm.size - 1, 1: 0}
    times: list[tuple[float, float]] = []

    def step(k: int) -> Callable[[], None]:
        def run() -> None:
            started = time.monotonic()
            if lingers.get(k) == comm.rank:
                time.sleep(LINGER)
            times.append((started, time.monotonic()))

        return run

    comm.Barrier()  # the test's own: every rank starts at once
    run_in_steps(comm, [step(k) for k in range(3)])
    every = comm.allgather(times)  # the test's own: every rank's (start, end) of each step
    for k in range(2):
        finished = max(range(comm.size), key=lambda rank: every[rank][k][1])
        for rank in range(comm.size):
            early = every[finished][k][1] - every[rank][k + 1][0]
            assert early <= 0, (
                f"rank {rank} started step {k + 1} {early:.2f} s before rank {finished} had "
                f"finished step {k}: call comm.Barrier() between two steps, so that no rank "
                f"leaves it before every rank has entered it"
            )
