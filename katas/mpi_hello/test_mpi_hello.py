"""Kata `mpi_hello`: ranks, sizes, and a fair split of a range over any number of ranks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mpi_hello import greeting, my_share, parallel_sum

# (start, stop) pairs: a remainder of every size on 4 ranks (10 numbers: 2 left over, 7: 3,
# 13: 1), a range that does not start at 0, one that starts below 0, fewer numbers than ranks,
# and an empty one.
RANGES = [(0, 10), (3, 10), (-4, 9), (20, 33), (0, 12), (7, 9), (5, 5)]


@pytest.fixture
def odd_even(comm: Any) -> Iterator[Any]:
    """`comm` cut in two: its even ranks and its odd ranks, each part numbering its ranks
    backwards. A process's rank and size here differ from its rank and size in `comm` and in
    COMM_WORLD. (The runner's parent process, which never runs the test body, gets None.)"""
    if comm is None:
        yield None
        return
    part = comm.Split(comm.rank % 2, -comm.rank)
    yield part
    part.Free()


def expected_share(rank: int, size: int, start: int, stop: int) -> range:
    """Rank `rank`'s block: the first (stop - start) % size ranks hold one number more."""
    base, extra = divmod(stop - start, size)
    begin = start + rank * base + min(rank, extra)
    return range(begin, begin + base + (rank < extra))


def shown(block: object) -> str:
    if isinstance(block, range) and block.step == 1:
        return f"range({block.start}, {block.stop})" + (" (empty)" if not block else "")
    return repr(block)


def blocks_text(blocks: list[Any]) -> str:
    return "; ".join(f"rank {rank}: {shown(block)}" for rank, block in enumerate(blocks))


def everyones_share(comm: Any, start: int, stop: int) -> list[Any]:
    """Every rank's my_share(comm, start, stop), in rank order, on every rank."""
    mine = my_share(comm, start, stop)
    return list(comm.allgather(mine))


def check_cover(blocks: list[Any], start: int, stop: int, where: str) -> None:
    """The blocks, in rank order, are range(start, stop) cut into consecutive pieces."""
    __tracebackhide__ = True
    numbers = [number for block in blocks for number in block]
    want = list(range(start, stop))
    if numbers == want:
        return
    missing = sorted(set(want) - set(numbers))
    twice = sorted({n for n in numbers if numbers.count(n) > 1})
    outside = sorted(set(numbers) - set(want))
    problems = []
    if missing:
        problems.append(f"no rank has {missing}")
    if twice:
        problems.append(f"several ranks have {twice}")
    if outside:
        problems.append(f"{outside} are not in range({start}, {stop}) at all")
    if not problems:
        problems.append("every number is there once, but not in rank order")
    pytest.fail(
        f"{where}, my_share(comm, {start}, {stop}) gave {blocks_text(blocks)}: "
        f"{'; '.join(problems)}. Taken in rank order, the blocks must be range({start}, {stop}) "
        f"cut into consecutive pieces (a remainder that does not divide evenly still has to go "
        f"to some rank; block r begins where block r - 1 ends)."
    )


# -- greeting --------------------------------------------------------------------------------


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(1)
def test_greeting_names_this_ranks_number_and_the_number_of_ranks(comm: Any) -> None:
    want = f"Hello from rank {comm.rank} of {comm.size}"
    got = greeting(comm)
    assert got == want, (
        f"greeting gave {got!r} on rank {comm.rank} of {comm.size}, want {want!r}: ranks count "
        f"from 0, and N is comm.size"
    )


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(1)
def test_greeting_asks_the_communicator_it_is_given(odd_even: Any) -> None:
    want = f"Hello from rank {odd_even.rank} of {odd_even.size}"
    got = greeting(odd_even)
    assert got == want, (
        f"greeting(comm) gave {got!r}, but this process is rank {odd_even.rank} of the "
        f"{odd_even.size} ranks of the communicator it was given (a part of the world, numbered "
        f"backwards): want {want!r}. Ask comm, never MPI.COMM_WORLD."
    )


# -- my_share --------------------------------------------------------------------------------


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(2)
def test_my_share_is_a_range_with_step_one_inside_the_whole_range(comm: Any) -> None:
    for start, stop in RANGES:
        got = my_share(comm, start, stop)
        assert isinstance(got, range), (
            f"my_share(comm, {start}, {stop}) returned {type(got).__name__} {got!r}, not a range"
        )
        assert got.step == 1, f"my_share returned {got!r}: a block is contiguous, step 1"
        assert not got or (start <= got.start and got.stop <= stop), (
            f"rank {comm.rank} of {comm.size} got {shown(got)} from my_share(comm, {start}, "
            f"{stop}): it reaches outside range({start}, {stop})"
        )


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(3)
def test_the_blocks_in_rank_order_cover_the_range_once(comm: Any) -> None:
    everyone = {(start, stop): everyones_share(comm, start, stop) for start, stop in RANGES}
    for (start, stop), blocks in everyone.items():
        check_cover(blocks, start, stop, f"On {comm.size} rank(s)")


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(4)
def test_the_blocks_differ_by_at_most_one_and_the_lowest_ranks_hold_the_longer_ones(
    comm: Any,
) -> None:
    everyone = {(start, stop): everyones_share(comm, start, stop) for start, stop in RANGES}
    for (start, stop), blocks in everyone.items():
        lengths = [len(block) for block in blocks]
        want = [len(expected_share(r, comm.size, start, stop)) for r in range(comm.size)]
        assert max(lengths) - min(lengths) <= 1, (
            f"{stop - start} numbers on {comm.size} ranks made blocks of {lengths} numbers "
            f"({blocks_text(blocks)}): one rank works {max(lengths) - min(lengths)} numbers more "
            f"than another, and everyone waits for it. Spread the {(stop - start) % comm.size} "
            f"numbers divmod leaves over one each over the first ranks, instead of giving them "
            f"all to one rank or rounding the block length up. Want {want}."
        )
        assert lengths == want, (
            f"{stop - start} numbers on {comm.size} ranks made blocks of {lengths} numbers, want "
            f"{want}: the {(stop - start) % comm.size} number(s) divmod leaves over go one each "
            f"to the lowest ranks (rank r < extra), not to the last ones"
        )


@pytest.mark.mpi(n=[1, 4])
@pytest.mark.clause(5)
def test_ranks_past_the_last_number_get_empty_blocks_and_a_lone_rank_gets_everything(
    comm: Any,
) -> None:
    cases = [(7, 9), (5, 5), (-3, 8)]
    everyone = {(start, stop): everyones_share(comm, start, stop) for start, stop in cases}
    for (start, stop), blocks in everyone.items():
        want = [expected_share(r, comm.size, start, stop) for r in range(comm.size)]
        assert [list(b) for b in blocks] == [list(w) for w in want], (
            f"{stop - start} number(s) on {comm.size} rank(s): my_share gave "
            f"{blocks_text(blocks)}, want {blocks_text(want)}. "
            + (
                "On a communicator of one rank, that rank is everyone: it gets the whole range "
                "(a split that keeps rank 0 out of the work leaves nobody to do it)."
                if comm.size == 1
                else "With fewer numbers than ranks, the first ranks get one number each and "
                "the others an empty block; no block reaches past stop."
            )
        )


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(2, 3, 4)
def test_my_share_splits_over_the_communicator_it_is_given(odd_even: Any) -> None:
    cases = [(0, 10), (3, 10)]
    everyone = {(start, stop): everyones_share(odd_even, start, stop) for start, stop in cases}
    where = (
        f"On a part of the world of {odd_even.size} rank(s) numbered backwards (this process is "
        f"its rank {odd_even.rank}; use that communicator's rank and size, never COMM_WORLD's)"
    )
    for (start, stop), blocks in everyone.items():
        check_cover(blocks, start, stop, where)
        mine = blocks[odd_even.rank]
        want = expected_share(odd_even.rank, odd_even.size, start, stop)
        assert list(mine) == list(want), (
            f"{where}: my_share(comm, {start}, {stop}) gave this rank {shown(mine)}, want "
            f"{shown(want)}"
        )


# -- parallel_sum ----------------------------------------------------------------------------


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(6)
def test_parallel_sum_computes_only_this_ranks_terms(comm: Any) -> None:
    calls: dict[tuple[int, int], list[int]] = {}
    for start, stop in [(3, 17), (7, 9)]:
        called = calls[start, stop] = []
        parallel_sum(comm, start, stop, lambda i, called=called: called.append(i) or i)
    for (start, stop), called in calls.items():
        want = list(expected_share(comm.rank, comm.size, start, stop))
        everything = len(called) == stop - start and comm.size > 1 and stop - start > 1
        assert sorted(called) == want, (
            f"rank {comm.rank} of {comm.size} called term on {sorted(called)}, but its own "
            f"block of range({start}, {stop}) is {want}"
            + (
                ": every rank computed the whole range, so nothing was shared out (the total "
                "is right, but it took as long as on one rank)"
                if everything
                else ": compute the terms of my_share(comm, start, stop), once each"
            )
        )


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(7)
def test_parallel_sum_gives_the_total_on_every_rank(comm: Any) -> None:
    cases = [(3, 17), (-6, 5), (7, 9), (4, 4)]
    results = {(start, stop): parallel_sum(comm, start, stop, square) for start, stop in cases}
    for (start, stop), got in results.items():
        want = sum(square(i) for i in range(start, stop))
        mine = sum(square(i) for i in expected_share(comm.rank, comm.size, start, stop))
        hint = ""
        if got is None:
            hint = (
                ": only the root of comm.reduce gets the result, the other ranks get None; "
                "comm.allreduce gives it to every rank"
            )
        elif got == mine:
            hint = ": that is this rank's own partial sum; add up every rank's partial sum"
        elif comm.size > 1:
            hint = ": add up the partial sums with op=MPI.SUM (the default of allreduce)"
        assert got == want, (
            f"rank {comm.rank} of {comm.size}: parallel_sum(comm, {start}, {stop}, i -> i * i) "
            f"gave {got!r}, want {want}{hint}"
        )


def square(i: int) -> int:
    return i * i


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(7)
def test_parallel_sum_adds_up_over_the_communicator_it_is_given(odd_even: Any) -> None:
    want = sum(range(3, 17))
    got = parallel_sum(odd_even, 3, 17, lambda i: i)
    assert got == want, (
        f"on a part of the world of {odd_even.size} rank(s), parallel_sum(comm, 3, 17, i -> i) "
        f"gave {got!r}, want {want}"
        + (
            f" ({got // want} times too much: the partial sums were added up over COMM_WORLD, "
            f"where every part of the world had computed the total; allreduce over comm)"
            if isinstance(got, int) and got != want and got % want == 0
            else ""
        )
    )
