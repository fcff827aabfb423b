"""Kata `mpi_patterns`: a ring allreduce, pi by the midpoint rule, and a 1-D heat equation."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mpi_patterns as kata
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor
from mpi_patterns import (
    chunk_bounds,
    exchange_ghosts,
    midpoint_integral,
    parallel_heat,
    parallel_pi,
    pi_share,
    pool_pi,
    ring_allreduce,
)

# Every rank must draw the same examples (derandomize); no shrinking, and no further example
# after a failure: the ranks would diverge, the failed one running an example the others left.
SAME_ON_EVERY_RANK = settings(
    derandomize=True,
    report_multiple_bugs=False,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
COLLECTIVES = {
    "barrier", "bcast", "scatter", "scatterv", "gather", "gatherv", "allgather", "allgatherv",
    "alltoall", "alltoallv", "alltoallw", "reduce", "allreduce", "reduce_scatter",
    "reduce_scatter_block", "scan", "exscan",
}  # fmt: skip
UNTOUCHED = -1.0


def rank_vector(rank: int, length: int, seed: int, dtype: Any = np.float64) -> np.ndarray:
    """Whole numbers, different on every rank: their sums are exact in any order."""
    return np.random.default_rng([seed, rank]).integers(-50, 50, length).astype(dtype)


def chunk_of(index: int, length: int, size: int) -> int:
    return next(c for c, (a, b) in enumerate(chunk_bounds(length, size)) if a <= index < b)


# -- ring_allreduce --------------------------------------------------------------------------


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(1)
@SAME_ON_EVERY_RANK
@given(length=st.integers(0, 40), seed=st.integers(0, 2**16))
@example(length=11, seed=1)  # not a multiple of 2 or 4: chunks of 3, 3, 3, 2
@example(length=3, seed=2)  # fewer elements than ranks: an empty chunk
@example(length=0, seed=3)
def test_ring_allreduce_gives_every_rank_the_sum_allreduce_gives(
    comm: Any, length: int, seed: int
) -> None:
    vector = rank_vector(comm.rank, length, seed)
    want = np.empty_like(vector)
    comm.Allreduce(vector, want, op=MPI.SUM)
    try:
        got = ring_allreduce(comm, vector)
    except MPI.Exception as error:
        pytest.fail(
            f"on rank {comm.rank} of {comm.size}, ring_allreduce of {length} elements failed "
            f"with {error.Get_error_string().splitlines()[0]!r}: a message did not fit the buffer it was "
            f"received into. At every step the chunk a rank sends must be the chunk its right "
            f"neighbour receives: reduce-scatter step s sends chunk (rank - s) % size and "
            f"receives chunk (rank - s - 1) % size, of chunk_bounds({length}, {comm.size})."
        )
    assert isinstance(got, np.ndarray) and got.shape == want.shape, (
        f"ring_allreduce returned {got!r} for a vector of {length} elements; want an array of "
        f"the same length"
    )
    wrong = np.flatnonzero(got != want)
    if wrong.size:
        chunks = sorted({chunk_of(int(i), length, comm.size) for i in wrong})
        bounds = chunk_bounds(length, comm.size)
        pytest.fail(
            f"on rank {comm.rank} of {comm.size}, ring_allreduce's result differs from Allreduce's "
            f"at elements {wrong.tolist()} of {length}, in chunk(s) {chunks} of "
            f"chunk_bounds({length}, {comm.size}) = {bounds}: got {got[wrong].tolist()}, want "
            f"{want[wrong].tolist()}. After reduce-scatter step s (s = 0 .. size-2) rank r must "
            f"have added chunk (r - s - 1) % size from its left; after the allgather every "
            f"chunk must have come round. A step too few, or a chunk index off by one, leaves "
            f"a chunk summed over some ranks only."
        )


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(1)
def test_ring_allreduce_returns_a_new_array_of_the_same_dtype_and_leaves_vector_alone(
    comm: Any,
) -> None:
    vector = rank_vector(comm.rank, 11, seed=5, dtype=np.int64)
    before = vector.copy()
    got = ring_allreduce(comm, vector)
    assert np.array_equal(vector, before), (
        f"ring_allreduce changed the caller's vector on rank {comm.rank}: sum into a copy "
        f"(np.array(vector, copy=True)), the caller still needs its own values"
    )
    assert got is not vector and got.dtype == vector.dtype, (
        f"ring_allreduce returned {'the vector itself' if got is vector else got.dtype} for an "
        f"int64 vector: return a new array of the vector's dtype"
    )
    want = sum(rank_vector(r, 11, seed=5, dtype=np.int64) for r in range(comm.size))
    assert np.array_equal(got, want), f"rank {comm.rank}: got {got}, want {want}"


def _sender(name: str) -> Callable[..., Any]:
    """A Recorder method that notes a send of `name` and passes it on."""

    def send(self: Recorder, buf: Any, dest: int, tag: int = 0) -> Any:
        self._sent(name, buf, dest)
        return getattr(self._comm, name)(buf, dest, tag)

    return send


def _receiver(name: str) -> Callable[..., Any]:
    """A Recorder method that notes a receive of `name` and passes it on."""

    def receive(self: Recorder, buf: Any = None, source: int = MPI.ANY_SOURCE, **kw: Any) -> Any:
        self.receives.append((name, source))
        return getattr(self._comm, name)(buf, source, **kw)

    return receive


class Recorder:
    """`comm` with its point-to-point calls noted (peer and element count) and passed on, and
    every collective refused."""

    def __init__(self, comm: Any) -> None:
        self._comm = comm
        self.sends: list[tuple[str, int, int]] = []  # (call, dest, element count)
        self.receives: list[tuple[str, int]] = []  # (call, source)

    def __getattr__(self, name: str) -> Any:
        plain = name.lower()
        if plain in COLLECTIVES or (plain.startswith("i") and plain[1:] in COLLECTIVES):

            def refused(*args: Any, **kwargs: Any) -> Any:
                raise AssertionError(
                    f"ring_allreduce called the collective {name}: build it from point-to-point "
                    f"calls only (Sendrecv with the left and right neighbours)"
                )

            return refused
        return getattr(self._comm, name)

    @staticmethod
    def _count(buf: Any) -> int:
        if isinstance(buf, list | tuple) and buf and not np.isscalar(buf[0]):
            buf = buf[0]
        return int(np.asarray(buf).size)

    def _sent(self, call: str, buf: Any, dest: int) -> None:
        self.sends.append((call, dest, self._count(buf)))

    def Sendrecv(
        self,
        sendbuf: Any,
        dest: int,
        sendtag: int = 0,
        recvbuf: Any = None,
        source: int = MPI.ANY_SOURCE,
        recvtag: int = MPI.ANY_TAG,
        status: Any = None,
    ) -> None:
        self._sent("Sendrecv", sendbuf, dest)
        self.receives.append(("Sendrecv", source))
        self._comm.Sendrecv(sendbuf, dest, sendtag, recvbuf, source, recvtag, status)

    def sendrecv(
        self,
        sendobj: Any,
        dest: int,
        sendtag: int = 0,
        recvbuf: Any = None,
        source: int = MPI.ANY_SOURCE,
        recvtag: int = MPI.ANY_TAG,
        status: Any = None,
    ) -> Any:
        self._sent("sendrecv", sendobj, dest)
        self.receives.append(("sendrecv", source))
        return self._comm.sendrecv(sendobj, dest, sendtag, recvbuf, source, recvtag, status)

    def Sendrecv_replace(
        self,
        buf: Any,
        dest: int,
        sendtag: int = 0,
        source: int = MPI.ANY_SOURCE,
        recvtag: int = MPI.ANY_TAG,
        status: Any = None,
    ) -> None:
        self._sent("Sendrecv_replace", buf, dest)
        self.receives.append(("Sendrecv_replace", source))
        self._comm.Sendrecv_replace(buf, dest, sendtag, source, recvtag, status)

    send, ssend, isend, issend = (_sender(n) for n in ("send", "ssend", "isend", "issend"))
    Send, Ssend, Isend, Issend = (_sender(n) for n in ("Send", "Ssend", "Isend", "Issend"))
    recv, Recv, irecv, Irecv = (_receiver(n) for n in ("recv", "Recv", "irecv", "Irecv"))


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(2, 3)
def test_ring_allreduce_sends_one_chunk_at_a_time_to_the_right_and_receives_from_the_left(
    comm: Any,
) -> None:
    length, size, rank = 11, comm.size, comm.rank
    right, left = (rank + 1) % size, (rank - 1) % size
    recorder = Recorder(comm)
    got = ring_allreduce(recorder, rank_vector(rank, length, seed=9))
    want = sum(rank_vector(r, length, seed=9) for r in range(size))
    assert np.array_equal(got, want), f"rank {rank}: got {got}, want {want}"
    wrong_way = [s for s in recorder.sends if s[1] != right]
    assert not wrong_way, (
        f"rank {rank} of {size} sent {wrong_way} (call, dest, elements): in a ring every rank "
        f"sends only to its right neighbour, rank {right}"
    )
    wrong_source = [r for r in recorder.receives if r[1] != left]
    assert not wrong_source, (
        f"rank {rank} of {size} received with {wrong_source} (call, source): in a ring every "
        f"rank receives only from its left neighbour, rank {left} (not ANY_SOURCE)"
    )
    sizes = {b - a for a, b in chunk_bounds(length, size)}
    counts = [count for _, _, count in recorder.sends]
    assert len(counts) == 2 * (size - 1) and set(counts) <= sizes, (
        f"rank {rank} of {size} sent {len(counts)} messages of {counts} elements for a vector "
        f"of {length}; the ring sends 2 * (size - 1) = {2 * (size - 1)} messages, each one "
        f"chunk of chunk_bounds({length}, {size}) ({sorted(sizes)} elements): size - 1 "
        f"reduce-scatter steps, then size - 1 allgather steps"
    )


# -- midpoint_integral and parallel_pi -------------------------------------------------------


def serial_midpoint(f: Callable[[np.ndarray], np.ndarray], a: float, b: float, n: int) -> float:
    h = (b - a) / n
    return h * float(np.sum(f(a + (np.arange(n) + 0.5) * h)))


def cubic(x: np.ndarray) -> np.ndarray:
    return x**3 - 2.0 * x + 1.0


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(4)
@pytest.mark.parametrize("intervals", [10, 3, 1])
def test_midpoint_integral_gives_every_rank_the_whole_midpoint_sum(
    comm: Any, intervals: int
) -> None:
    a, b = 0.5, 2.5
    got = midpoint_integral(comm, cubic, a, b, intervals)
    want = serial_midpoint(cubic, a, b, intervals)
    everyone = comm.allgather(got)
    assert all(v is not None for v in everyone), (
        f"midpoint_integral returned {everyone} on ranks 0..{comm.size - 1}: every rank needs "
        f"the answer, so reduce with allreduce, not reduce to one root"
    )
    if comm.size > 1 and math.isclose(sum(everyone), want, rel_tol=1e-12):
        advice = "each rank returned its own share: add the shares up with comm.allreduce"
    else:
        advice = (
            "check h = (b - a) / intervals, the midpoints a + (i + 0.5) * h, and that the "
            "shares are added up (op=MPI.SUM)"
        )
    assert math.isclose(got, want, rel_tol=1e-12), (
        f"rank {comm.rank} of {comm.size}: midpoint_integral(x**3 - 2x + 1 over [{a}, {b}], "
        f"{intervals} intervals) = {got!r}, want {want!r} (every rank: {everyone}): {advice}"
    )


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(5)
@pytest.mark.parametrize("intervals", [10, 3])
def test_midpoint_integral_evaluates_every_midpoint_once_and_shares_them_fairly(
    comm: Any, intervals: int
) -> None:
    a, b = -1.0, 1.5
    h = (b - a) / intervals
    seen: list[float] = []

    def f(x: np.ndarray) -> np.ndarray:
        points = np.atleast_1d(np.asarray(x, dtype=float))
        seen.extend(points.tolist())
        return np.cos(points).reshape(np.shape(x))

    midpoint_integral(comm, f, a, b, intervals)
    by_rank = comm.allgather(seen)
    where: dict[int, list[int]] = {}
    for rank, points in enumerate(by_rank):
        for x in points:
            i = round((x - a) / h - 0.5)
            assert 0 <= i < intervals and abs(x - (a + (i + 0.5) * h)) <= 1e-9 * h, (
                f"rank {rank} evaluated f at x = {x!r}, which is not one of the {intervals} "
                f"midpoints a + (i + 0.5) * h (a = {a}, h = {h}): the midpoint rule samples the "
                f"middle of each interval, not its ends"
            )
            where.setdefault(i, []).append(rank)
    twice = {i: ranks for i, ranks in where.items() if len(ranks) > 1}
    missing = sorted(set(range(intervals)) - set(where))
    assert not twice and not missing, (
        f"with {intervals} intervals on {comm.size} ranks, "
        + (f"midpoints {twice} were evaluated more than once (interval: ranks); " if twice else "")
        + (f"midpoints {missing} were evaluated by no rank; " if missing else "")
        + "each interval belongs to exactly one rank: take the range "
        "chunk_bounds(intervals, size)[rank] (rank r's stop is rank r + 1's start), which also "
        "places the remainder of intervals // size"
    )
    shares = [len(points) for points in by_rank]
    assert max(shares) - min(shares) <= 1, (
        f"with {intervals} intervals on {comm.size} ranks the ranks evaluated {shares} "
        f"midpoints: a fair split differs by at most one (the remainder spread one each)"
    )


@pytest.mark.mpi(n=[1, 4])
@pytest.mark.clause(6)
def test_parallel_pi_is_the_midpoint_sum_of_four_over_one_plus_x_squared(comm: Any) -> None:
    intervals = 50
    got = parallel_pi(comm, intervals)
    want = serial_midpoint(lambda x: 4.0 / (1.0 + x * x), 0.0, 1.0, intervals)
    assert math.isclose(got, want, rel_tol=1e-12) and abs(got - math.pi) < 1e-4, (
        f"rank {comm.rank}: parallel_pi(comm, {intervals}) = {got!r}; the midpoint sum of "
        f"4 / (1 + x**2) over [0, 1] is {want!r} (pi = {math.pi!r})"
        + (": did you forget the 4?" if math.isclose(got * 4, want, rel_tol=1e-9) else "")
    )


# -- exchange_ghosts and parallel_heat -------------------------------------------------------


def own_cells(rank: int) -> np.ndarray:
    """Rank r owns r + 1 cells (pieces of different lengths), worth 10 * r + 1, 10 * r + 2..."""
    return 10.0 * rank + np.arange(1, rank + 2)


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(7)
def test_exchange_ghosts_copies_the_neighbours_edge_cells_into_the_ghosts(comm: Any) -> None:
    rank, size = comm.rank, comm.size
    piece = np.full(rank + 3, UNTOUCHED)
    piece[1:-1] = own_cells(rank)
    exchange_ghosts(comm, piece)
    left = own_cells(rank - 1)[-1] if rank > 0 else UNTOUCHED
    right = own_cells(rank + 1)[0] if rank < size - 1 else UNTOUCHED
    assert np.array_equal(piece[1:-1], own_cells(rank)), (
        f"exchange_ghosts changed rank {rank}'s own cells piece[1:-1] to {piece[1:-1]}: it may "
        f"only write the two ghosts"
    )
    for name, got, want, whose in (
        ("left ghost piece[0]", piece[0], left, f"rank {rank - 1}'s last own cell"),
        ("right ghost piece[-1]", piece[-1], right, f"rank {rank + 1}'s first own cell"),
    ):
        if want == UNTOUCHED:
            whose = "its initial value: the rod ends here, the neighbour is MPI.PROC_NULL"
        assert got == want, (
            f"rank {rank} of {size} (own cells {own_cells(rank).tolist()}): its {name} holds "
            f"{got}, but must hold {want}, {whose}. Every rank sends its last own cell to the "
            f"right while it receives its left ghost from the left, then the other way round."
        )


def rod(cells: int) -> np.ndarray:
    """A rod with a hot spot and uneven ends, so every cell changes in every step."""
    x = np.linspace(0.0, 1.0, cells)
    return 20.0 + 80.0 * np.exp(-(((x - 0.3) / 0.15) ** 2)) + 30.0 * x


def serial_heat(u0: np.ndarray, alpha: float, steps: int) -> list[np.ndarray]:
    """The rod after 0, 1, ..., steps explicit steps, ends fixed: the same scheme, in NumPy."""
    states = [u0.copy()]
    u = u0.copy()
    for _ in range(steps):
        u[1:-1] = u[1:-1] + alpha * (u[:-2] - 2.0 * u[1:-1] + u[2:])
        states.append(u.copy())
    return states


def first_wrong_cell(got: np.ndarray, want: np.ndarray, size: int) -> str:
    i = int(np.flatnonzero(~np.isclose(got, want, rtol=1e-12, atol=1e-12))[0])
    bounds = chunk_bounds(len(want), size)
    owner = next(r for r, (a, b) in enumerate(bounds) if a <= i < b)
    start, stop = bounds[owner]
    if i in (0, len(want) - 1):
        place = "an end of the rod, which must keep its initial temperature"
    elif i in (start, stop - 1):
        place = (
            f"an end of rank {owner}'s piece {bounds[owner]}: its update needs the neighbouring "
            f"rank's cell in the ghost, exchanged before the step"
        )
    else:
        place = f"inside rank {owner}'s piece {bounds[owner]}"
    return f"cell {i} is {got[i]!r}, want {want[i]!r} ({place})"


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(8)
@pytest.mark.parametrize(("cells", "steps"), [(11, 7), (4, 3)])
def test_parallel_heat_gives_every_rank_what_the_serial_scheme_gives(
    comm: Any, cells: int, steps: int
) -> None:
    if cells < comm.size:
        pytest.skip("needs a cell per rank")
    alpha = 0.3
    u0 = rod(cells)
    got = parallel_heat(comm, u0.copy(), alpha, steps)
    want = serial_heat(u0, alpha, steps)[-1]
    assert isinstance(got, np.ndarray) and got.shape == want.shape, (
        f"parallel_heat returned {got!r}; want the whole rod ({cells} cells) on every rank: "
        f"gather the pieces with allgather and join them in rank order"
    )
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12), (
        f"rank {comm.rank} of {comm.size}: after {steps} steps (alpha {alpha}) of a "
        f"{cells}-cell rod, {first_wrong_cell(got, want, comm.size)}. Each step must use only "
        f"the previous step's values (compute the new cells whole, then store them)."
    )


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(9)
def test_parallel_heat_exchanges_the_ghosts_of_its_own_piece_before_every_step(
    comm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cells, alpha, steps = 11, 0.3, 5
    u0 = rod(cells)
    states = serial_heat(u0, alpha, steps)
    start, stop = chunk_bounds(cells, comm.size)[comm.rank]
    seen: list[np.ndarray] = []
    real = kata.exchange_ghosts

    def watched(comm_: Any, piece: np.ndarray) -> None:
        seen.append(np.array(piece[1:-1], copy=True))
        real(comm_, piece)

    monkeypatch.setattr(kata, "exchange_ghosts", watched)
    parallel_heat(comm, u0.copy(), alpha, steps)
    assert len(seen) == steps, (
        f"rank {comm.rank}: parallel_heat called exchange_ghosts {len(seen)} times for {steps} "
        f"steps; call it once before every step, so that the ghosts hold the neighbours' "
        f"current values"
    )
    for step, own in enumerate(seen):
        assert len(own) == stop - start, (
            f"rank {comm.rank} of {comm.size} passed exchange_ghosts a piece with {len(own)} own "
            f"cells; its own cells are chunk_bounds({cells}, {comm.size})[{comm.rank}] = "
            f"{(start, stop)}, {stop - start} of them, plus a ghost at each end"
        )
        before = states[step][start:stop]
        after = states[step + 1][start:stop]
        assert np.allclose(own, before, rtol=1e-12, atol=1e-12), (
            f"rank {comm.rank}: exchange_ghosts call {step + 1} saw own cells {own.tolist()}, "
            + (
                "the values after that step: the ghosts were exchanged after the update, so "
                "the update used ghosts one step old (or never filled). Exchange first, then "
                "update."
                if np.allclose(own, after, rtol=1e-12, atol=1e-12)
                else f"but before step {step + 1} they are {before.tolist()}"
            )
        )


# -- pi_share and pool_pi --------------------------------------------------------------------


def four_over(x: np.ndarray) -> np.ndarray:
    return 4.0 / (1.0 + x * x)


@pytest.mark.mpi(n=1)
@pytest.mark.clause(10)
def test_pi_share_is_the_midpoint_sum_over_its_intervals(comm: Any) -> None:
    got = pi_share(3, 7, 10)
    h = 0.1
    want = h * float(np.sum(four_over((np.arange(3, 7) + 0.5) * h)))
    assert math.isclose(got, want, rel_tol=1e-12), (
        f"pi_share(3, 7, 10) = {got!r}, want {want!r}: h = 1 / intervals = 0.1 times the sum of "
        f"4 / (1 + x**2) at the midpoints (i + 0.5) * h of intervals i = 3, 4, 5, 6 (not 7)"
    )


class Pools:
    """What pool_pi asked of MPIPoolExecutor: the pools it made and, in order, the tasks of
    pi_share it submitted and the results it waited for."""

    def __init__(self) -> None:
        self.workers: list[Any] = []
        self.events: list[Any] = []  # ("task", args) or "result"

    def executor(self) -> type[MPIPoolExecutor]:
        pools = self

        class Future(MPIPoolExecutor.Future):
            def result(self, timeout: float | None = None) -> Any:
                pools.events.append("result")
                return super().result(timeout)

        class Recording(MPIPoolExecutor):
            def __init__(self, max_workers: Any = None, *args: Any, **kwargs: Any) -> None:
                pools.workers.append(max_workers)
                super().__init__(max_workers, *args, **kwargs)

            def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
                if fn is kata.pi_share:
                    pools.events.append(("task", args))
                return super().submit(fn, *args, **kwargs)

            def map(self, fn: Any, *iterables: Any, **kwargs: Any) -> Any:
                columns = [list(column) for column in iterables]
                if fn is kata.pi_share:
                    pools.events.extend(("task", args) for args in zip(*columns, strict=True))
                return super().map(fn, *columns, **kwargs)

            def starmap(self, fn: Any, iterable: Any, **kwargs: Any) -> Any:
                rows = [tuple(args) for args in iterable]
                if fn is kata.pi_share:
                    pools.events.extend(("task", args) for args in rows)
                return super().starmap(fn, rows, **kwargs)

        Recording.Future = Future
        return Recording


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> Pools:
    """kata.MPIPoolExecutor replaced by a subclass that notes what it is asked."""
    recorded = Pools()
    monkeypatch.setattr(kata, "MPIPoolExecutor", recorded.executor())
    return recorded


@pytest.mark.mpi(n=1)
@pytest.mark.clause(11)
@pytest.mark.budget(20)  # starts 3 Python processes, each importing mpi4py: seconds on 2 cores
def test_pool_pi_submits_one_pi_share_per_chunk_to_a_pool_of_workers(
    comm: Any, pools: Pools
) -> None:
    intervals, workers = 10, 3
    got = pool_pi(intervals, workers)
    want = serial_midpoint(four_over, 0.0, 1.0, intervals)
    assert pools.workers == [workers], (
        f"pool_pi({intervals}, {workers}) made {len(pools.workers)} MPIPoolExecutor(s) with "
        f"max_workers {pools.workers}: make one, with max_workers={workers}"
    )
    tasks = [event[1] for event in pools.events if event != "result"]
    chunks = [(start, stop, intervals) for start, stop in chunk_bounds(intervals, workers)]
    assert sorted(tasks) == chunks, (
        f"pool_pi({intervals}, {workers}) gave the pool the pi_share tasks {tasks}; want one "
        f"per chunk of chunk_bounds({intervals}, {workers}): {chunks}"
    )
    first_result = pools.events.index("result") if "result" in pools.events else len(tasks)
    assert all(event != "result" for event in pools.events[: len(tasks)]), (
        f"pool_pi waited for a result after submitting only {first_result} of {len(tasks)} "
        f"tasks, so the workers took turns: submit them all, then collect the results"
    )
    assert math.isclose(got, want, rel_tol=1e-12), (
        f"pool_pi({intervals}, {workers}) = {got!r}, want {want!r}: add up every task's result"
    )
