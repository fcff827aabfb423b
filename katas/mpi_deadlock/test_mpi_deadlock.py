"""Kata `mpi_deadlock`: pairwise exchanges and a ring shift that never wait for each other."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from mpi4py import MPI
from mpi_deadlock import partner, ring_shift, swap_arrays, swap_even_odd, swap_with_sendrecv

TAG = 7  # not MPI's default 0, so that a forgotten tag shows
OTHER_TAG = 8  # a message waiting beside the exchange, which it must not take
# An 8-byte message, which MPI would send eagerly, and an 8 MB one, which it would not: the
# tests make every send wait for its receive, so both must behave alike.
SIZES = ["8-byte", "8-MB"]
LARGE_ITEMS = 1 << 20  # float64: 8 MB
SENDS_FIRST_TOO = (
    "both ranks of the pair send first: each send waits until the other rank receives, so "
    "neither ever gets to its receive (the book's exchange, which only works while MPI buffers "
    "small messages)"
)


def message(rank: int, size: str) -> Any:
    """What `rank` sends in a test of messages of `size`: unmistakably rank's own."""
    if size == "8-byte":
        return 1000 + rank
    return np.full(LARGE_ITEMS, float(rank))


def shown(value: Any) -> str:
    if isinstance(value, np.ndarray):
        if value.size and np.all(value == value.flat[0]):
            return f"a {value.nbytes}-byte array of {value.flat[0]!r}s"
        return f"a {value.nbytes}-byte array {value!r}"
    return repr(value)


def assert_from(got: Any, sender: int, size: str, what: str) -> None:
    """`got` must be what `sender` sent in a test of messages of `size`."""
    __tracebackhide__ = True
    want = message(sender, size)
    same = (
        isinstance(got, np.ndarray) and np.array_equal(got, want)
        if isinstance(want, np.ndarray)
        else got == want
    )
    assert same, f"{what} returned {shown(got)}; it must be what rank {sender} sent: {shown(want)}"


def refuse_sendrecv(comm: Any, monkeypatch: pytest.MonkeyPatch, function: str) -> None:
    """Make sendrecv and Sendrecv fail on `comm`: the function must order its own calls."""

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(
            f"{function} called sendrecv: here the point is to order a blocking send and a "
            f"blocking recv yourself, by the parity of the rank"
        )

    for name in ("sendrecv", "Sendrecv", "Sendrecv_replace"):
        monkeypatch.setattr(comm, name, refused)


# -- partner ---------------------------------------------------------------------------------


@pytest.mark.mpi(n=[1, 3, 4])
@pytest.mark.clause(1)
def test_partner_is_the_rank_with_the_lowest_bit_flipped_or_nobody(comm: Any) -> None:
    want = comm.rank ^ 1 if comm.rank ^ 1 < comm.size else MPI.PROC_NULL
    got = partner(comm)
    meaning = (
        f"rank {want}: ranks pair up 0-1, 2-3, so the partner is rank ^ 1"
        if want != MPI.PROC_NULL
        else f"MPI.PROC_NULL: rank {comm.rank} is the last of {comm.size} ranks and rank "
        f"{comm.rank ^ 1} does not exist"
    )
    assert got == want, f"partner gave {got} on rank {comm.rank} of {comm.size}; want {meaning}"


# -- swap_with_sendrecv ----------------------------------------------------------------------


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(2)
@pytest.mark.parametrize("size", SIZES)
def test_swap_with_sendrecv_returns_the_partners_value(comm: Any, size: str) -> None:
    got = swap_with_sendrecv(comm, message(comm.rank, size), TAG)
    assert_from(got, comm.rank ^ 1, size, f"swap_with_sendrecv on rank {comm.rank}")


@pytest.mark.mpi(n=2)
@pytest.mark.clause(2)
def test_swap_with_sendrecv_sends_and_receives_with_the_tag_given(comm: Any) -> None:
    if comm.rank == 1:  # the partner, played by the test: a message with another tag first
        other = comm.isend("a message with another tag", dest=0, tag=OTHER_TAG)
        comm.sendrecv(message(1, "8-byte"), dest=0, sendtag=TAG, source=0, recvtag=TAG)
        other.wait()
        return
    got = swap_with_sendrecv(comm, message(0, "8-byte"), TAG)
    assert got == message(1, "8-byte"), (
        f"swap_with_sendrecv(comm, value, tag={TAG}) returned {got!r}, a message rank 1 sent "
        f"with tag {OTHER_TAG}: receive with recvtag=tag, not MPI.ANY_TAG (sendrecv's default)"
    )
    comm.recv(source=1, tag=OTHER_TAG)  # the other message, once the exchange got its own


@pytest.mark.mpi(n=[1, 3])
@pytest.mark.clause(3)
def test_swap_with_sendrecv_gives_none_to_the_rank_without_a_partner(comm: Any) -> None:
    got = swap_with_sendrecv(comm, message(comm.rank, "8-byte"), TAG)
    if comm.rank == comm.size - 1:
        assert got is None, (
            f"rank {comm.rank}, the last of {comm.size}, has no partner, yet "
            f"swap_with_sendrecv returned {got!r}: with MPI.PROC_NULL as dest and source, "
            f"sendrecv sends nothing and returns None"
        )
    else:
        assert_from(got, comm.rank ^ 1, "8-byte", f"swap_with_sendrecv on rank {comm.rank}")


# -- swap_arrays -----------------------------------------------------------------------------


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(4)
@pytest.mark.parametrize("size", SIZES)
def test_swap_arrays_returns_the_partners_array_and_leaves_its_own_untouched(
    comm: Any, size: str
) -> None:
    items = 1 if size == "8-byte" else LARGE_ITEMS
    mine = np.full(items, float(comm.rank))
    got = swap_arrays(comm, mine, TAG)
    assert isinstance(got, np.ndarray) and got is not mine, (
        f"swap_arrays returned {shown(got) if got is not mine else 'the array it was given'}: "
        f"it returns a new array, received into a buffer of its own"
    )
    assert np.array_equal(mine, np.full(items, float(comm.rank))), (
        f"swap_arrays changed the array it was given on rank {comm.rank} into {shown(mine)}: "
        f"never receive into the array being sent (Sendrecv_replace or recvbuf=array)"
    )
    other = comm.rank ^ 1
    assert np.array_equal(got, np.full(items, float(other))), (
        f"swap_arrays on rank {comm.rank} returned {shown(got)}; it must hold rank {other}'s "
        f"array: {shown(np.full(items, float(other)))}"
    )


@pytest.mark.mpi(n=[1, 3])
@pytest.mark.clause(5)
def test_swap_arrays_gives_a_copy_of_its_own_array_to_the_rank_without_a_partner(
    comm: Any,
) -> None:
    mine = np.arange(4.0) + 10 * comm.rank
    got = swap_arrays(comm, mine, TAG)
    if comm.rank != comm.size - 1:
        return
    assert isinstance(got, np.ndarray) and np.array_equal(got, mine) and got is not mine, (
        f"rank {comm.rank}, the last of {comm.size}, has no partner: swap_arrays must return a "
        f"copy of its own array {mine!r}, but returned "
        f"{'that array itself' if got is mine else repr(got)}. A receive from MPI.PROC_NULL "
        f"leaves its buffer as it was: start the buffer as array.copy(), not np.empty or "
        f"np.zeros."
    )


@pytest.mark.mpi(n=2)
@pytest.mark.clause(2, 4)
def test_the_sendrecv_swaps_use_one_sendrecv_call_each(
    comm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    for name in ("sendrecv", "Sendrecv"):
        original = getattr(comm, name)

        def counted(*args: Any, _original: Any = original, _name: str = name, **kw: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kw)

        monkeypatch.setattr(comm, name, counted)
    swap_with_sendrecv(comm, message(comm.rank, "8-byte"), TAG)
    assert calls == ["sendrecv"], (
        f"swap_with_sendrecv made {len(calls)} sendrecv/Sendrecv calls ({calls}); exchange "
        f"with exactly one comm.sendrecv(value, dest=..., sendtag=tag, source=..., recvtag=tag)"
    )
    calls.clear()
    swap_arrays(comm, np.full(3, float(comm.rank)), TAG)
    assert calls == ["Sendrecv"], (
        f"swap_arrays made {len(calls)} sendrecv/Sendrecv calls ({calls}); exchange with "
        f"exactly one comm.Sendrecv(array, dest=..., recvbuf=..., source=...), which moves the "
        f"array's bytes without pickling them"
    )


# -- swap_even_odd ---------------------------------------------------------------------------


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(6, 7)
@pytest.mark.parametrize("size", SIZES)
def test_swap_even_odd_returns_the_partners_value(comm: Any, size: str) -> None:
    got = swap_even_odd(comm, message(comm.rank, size), TAG)
    assert_from(got, comm.rank ^ 1, size, f"swap_even_odd on rank {comm.rank}")


@pytest.mark.mpi(n=[1, 3])
@pytest.mark.clause(6)
def test_swap_even_odd_gives_none_to_the_rank_without_a_partner(comm: Any) -> None:
    got = swap_even_odd(comm, message(comm.rank, "8-byte"), TAG)
    if comm.rank == comm.size - 1:
        assert got is None, (
            f"rank {comm.rank}, the last of {comm.size}, has no partner, yet swap_even_odd "
            f"returned {got!r}: a recv from MPI.PROC_NULL returns None"
        )
    else:
        assert_from(got, comm.rank ^ 1, "8-byte", f"swap_even_odd on rank {comm.rank}")


@pytest.mark.mpi(n=2)
@pytest.mark.clause(6)
def test_swap_even_odd_orders_send_and_recv_itself_without_sendrecv(
    comm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_sendrecv(comm, monkeypatch, "swap_even_odd")
    got = swap_even_odd(comm, message(comm.rank, "8-byte"), TAG)
    assert_from(got, comm.rank ^ 1, "8-byte", f"swap_even_odd on rank {comm.rank}")


@pytest.mark.mpi(n=2)
@pytest.mark.clause(6, 7)
def test_swap_even_odd_on_an_even_rank_sends_first_to_a_partner_that_receives_first(
    comm: Any,
) -> None:
    if comm.rank == 1:  # the odd partner, played by the test: it receives first
        got = comm.recv(source=0, tag=TAG)
        comm.send(message(1, "8-byte"), dest=0, tag=TAG)
        assert got == message(0, "8-byte"), f"rank 0's swap_even_odd sent {got!r}"
        return
    got = swap_even_odd(comm, message(0, "8-byte"), TAG)
    assert_from(got, 1, "8-byte", "swap_even_odd on rank 0")


@pytest.mark.mpi(n=2)
@pytest.mark.clause(6, 7)
def test_swap_even_odd_on_an_odd_rank_receives_first_from_a_partner_that_sends_first(
    comm: Any,
) -> None:
    if comm.rank == 0:  # the even partner, played by the test: it sends first
        comm.send(message(0, "8-byte"), dest=1, tag=TAG)
        got = comm.recv(source=1, tag=TAG)
        assert got == message(1, "8-byte"), f"rank 1's swap_even_odd sent {got!r}"
        return
    got = swap_even_odd(comm, message(1, "8-byte"), TAG)
    assert_from(got, 0, "8-byte", "swap_even_odd on rank 1")


# -- ring_shift ------------------------------------------------------------------------------


@pytest.mark.mpi(n=[2, 3, 4])
@pytest.mark.clause(8)
@pytest.mark.parametrize("size", SIZES)
def test_ring_shift_returns_the_left_neighbours_value(comm: Any, size: str) -> None:
    got = ring_shift(comm, message(comm.rank, size), TAG)
    left = (comm.rank - 1) % comm.size
    assert_from(
        got,
        left,
        size,
        f"ring_shift on rank {comm.rank} of {comm.size} (left neighbour {left}, right "
        f"neighbour {(comm.rank + 1) % comm.size})",
    )


@pytest.mark.mpi(n=3)
@pytest.mark.clause(8)
def test_ring_shift_orders_send_and_recv_itself_without_sendrecv(
    comm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_sendrecv(comm, monkeypatch, "ring_shift")
    got = ring_shift(comm, message(comm.rank, "8-byte"), TAG)
    assert_from(got, (comm.rank - 1) % 3, "8-byte", f"ring_shift on rank {comm.rank} of 3")


@pytest.mark.mpi(n=2)
@pytest.mark.clause(8)
@pytest.mark.parametrize("played", [0, 1], ids=["test-plays-rank-0", "test-plays-rank-1"])
def test_ring_shift_sends_first_on_even_ranks_and_receives_first_on_odd_ones(
    comm: Any, played: int
) -> None:
    if comm.rank == played:  # played by the test: rank 0 sends first, rank 1 receives first
        other = 1 - played
        if played == 0:
            comm.send(message(0, "8-byte"), dest=1, tag=TAG)
            got = comm.recv(source=1, tag=TAG)
        else:
            got = comm.recv(source=0, tag=TAG)
            comm.send(message(1, "8-byte"), dest=0, tag=TAG)
        assert got == message(other, "8-byte"), f"rank {other}'s ring_shift sent {got!r}"
        return
    got = ring_shift(comm, message(comm.rank, "8-byte"), TAG)
    assert_from(got, played, "8-byte", f"ring_shift on rank {comm.rank}")


@pytest.mark.mpi(n=1)
@pytest.mark.clause(9)
@pytest.mark.parametrize("size", SIZES)
def test_ring_shift_on_a_single_rank_returns_the_value_itself(comm: Any, size: str) -> None:
    mine = message(0, size)
    got = ring_shift(comm, mine, TAG)
    assert got is mine, (
        f"ring_shift on a single rank returned {shown(got)}, not the value it was given: rank "
        f"0 is its own left neighbour, so what it would receive is its own value; return it "
        f"without sending (a blocking send to yourself waits for a receive you only post "
        f"after it)"
    )
