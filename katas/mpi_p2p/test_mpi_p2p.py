"""Kata `mpi_p2p`: point-to-point messages, objects and buffers, tags, Status and Probe."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from mpi4py import MPI
from mpi_p2p import (
    Envelope,
    receive_from_anyone,
    receive_object,
    recv_any_size,
    recv_array,
    send_array,
    send_object,
)

TAG = 7  # the tag of the message a test is about (not MPI's default 0)
OTHER_TAG = 3  # a message the function must leave alone
CUE = 99  # the tests' own messages that force an order between ranks
GAVE_UP = 98  # a rank whose kata function is not written yet tells the rank waiting for it

AN_OBJECT = {"numbers": [3, 1.5, -2], "text": "héllo", "nothing": None, "pair": (1, "b")}


def roles(comm: Any) -> tuple[int, int]:
    """(sender, receiver): the last rank sends to the one before it (1 -> 0, or 3 -> 2)."""
    return comm.size - 1, comm.size - 2


@contextmanager
def unblocking_the_receiver(comm: Any, receiver: int) -> Iterator[None]:
    """Around a kata function that sends: if it is not written yet, tell the receiver, so that
    it is not left waiting for a message that never comes (and the next test can run in the
    same launch of MPI)."""
    try:
        yield
    except NotImplementedError:
        comm.send("not written yet", dest=receiver, tag=GAVE_UP)
        raise


@contextmanager
def unblocking_the_senders(comm: Any, pending: list[tuple[int, int]]) -> Iterator[None]:
    """Around a kata function that receives: if it is not written yet, take the messages the
    test's other ranks send here ((source, tag) each, in the order they come), so that they are
    not left waiting (and the next test can run in the same launch of MPI)."""
    try:
        yield
    except NotImplementedError:
        for source, tag in pending:
            status = MPI.Status()
            comm.Probe(source=source, tag=tag, status=status)
            unread = bytearray(status.Get_count(MPI.BYTE))
            comm.Recv([unread, MPI.BYTE], source=source, tag=tag)
        raise


def receive_with_status(comm: Any, source: int) -> tuple[Any, Any] | None:
    """The tests' own receive of an object, with its Status (None: the sender gave up)."""
    status = MPI.Status()
    obj = comm.recv(source=source, tag=MPI.ANY_TAG, status=status)
    return None if status.tag == GAVE_UP else (obj, status)


def sent_array(rank: int, length: int, dtype: Any) -> np.ndarray:
    """The array rank `rank` sends in a buffer test: values that tell ranks and positions apart,
    and that a wrong dtype cannot read back (int64 values beyond 32 bits, fractions)."""
    values = np.arange(length) * 3 + 100 * rank + 1
    if np.dtype(dtype).kind == "f":
        return (values + 0.25).astype(dtype)
    if np.dtype(dtype).itemsize == 8:
        return (values + 2**40).astype(dtype)
    return values.astype(dtype)


def receive_buffer(
    comm: Any, source: int, length: int, dtype: Any
) -> tuple[np.ndarray, int] | None:
    """The tests' own receive of a buffer message from `source` with any tag, after checking
    that its size is `length` elements of `dtype`: (the array, the message's tag), or None when
    the sender gave up."""
    __tracebackhide__ = True
    status = MPI.Status()
    comm.Probe(source=source, tag=MPI.ANY_TAG, status=status)
    if status.tag == GAVE_UP:
        comm.recv(source=source, tag=GAVE_UP)
        return None
    size = status.Get_count(MPI.BYTE)
    want = length * np.dtype(dtype).itemsize
    if size != want:
        buffer = bytearray(size)
        comm.Recv([buffer, MPI.BYTE], source=source, tag=status.tag)
        pytest.fail(
            f"the message held {size} bytes, but {length} elements of {np.dtype(dtype)} take "
            f"{want}: "
            + (
                "it looks pickled: send the array's buffer with comm.Send, not the object "
                "with comm.send"
                if bytes(buffer[:1]) == b"\x80"
                else "send the whole array, in its own dtype"
            )
        )
    data = np.empty(length, dtype=dtype)
    comm.Recv(data, source=source, tag=status.tag)
    return data, status.tag


def mpi_error(error: Any) -> str:
    """An MPI error in words (MPICH's own text goes on with a long error stack)."""
    if error.Get_error_class() == MPI.ERR_TRUNCATE:
        return "the message was longer than the array it was received into (MPI_ERR_TRUNCATE)"
    return error.Get_error_string().splitlines()[0]


# -- send_object, receive_object --------------------------------------------------------------


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(1)
def test_send_object_delivers_the_object_to_dest_with_the_tag(comm: Any) -> None:
    sender, receiver = roles(comm)
    if comm.rank == sender:
        with unblocking_the_receiver(comm, receiver):
            send_object(comm, AN_OBJECT, receiver, TAG)
    elif comm.rank == receiver:
        received = receive_with_status(comm, MPI.ANY_SOURCE)
        if received is None:
            return
        got, status = received
        assert got == AN_OBJECT, f"send_object sent {got!r}, want {AN_OBJECT!r}"
        assert status.source == sender, f"the object came from rank {status.source}, not {sender}"
        assert status.tag == TAG, (
            f"send_object(comm, obj, dest={receiver}, tag={TAG}) sent it with tag {status.tag}: "
            f"pass the tag to comm.send (its default is 0)"
        )


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(2)
def test_receive_object_returns_the_object_from_the_source_and_tag_asked_for(comm: Any) -> None:
    sender, receiver = roles(comm)
    if comm.rank == sender:
        comm.send(AN_OBJECT, dest=receiver, tag=TAG)
    elif comm.rank == receiver:
        with unblocking_the_senders(comm, [(sender, TAG)]):
            got = receive_object(comm, sender, TAG)
        assert got == AN_OBJECT, f"receive_object returned {got!r}, want {AN_OBJECT!r}"


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(2)
def test_receive_object_leaves_a_message_with_another_tag_queued(comm: Any) -> None:
    sender, receiver = roles(comm)
    if comm.rank == sender:
        # Sent first, so a receive that takes any tag gets it first (same source: in order).
        other = comm.isend("the tag-3 message", dest=receiver, tag=OTHER_TAG)
        comm.send("the tag-7 message", dest=receiver, tag=TAG)
        other.wait()
    elif comm.rank == receiver:
        with unblocking_the_senders(comm, [(sender, OTHER_TAG), (sender, TAG)]):
            got = receive_object(comm, sender, TAG)
        left, status = receive_with_status(comm, sender) or (None, None)
        assert got == "the tag-7 message", (
            f"receive_object(comm, source={sender}, tag={TAG}) returned {got!r}, which rank "
            f"{sender} sent before its tag-{TAG} message: receive with tag={TAG}; a receive "
            f"that takes any tag gets the first message in the queue"
        )
        assert status.tag == OTHER_TAG, f"the message left queued had tag {status.tag}: {left!r}"


@pytest.mark.mpi(n=4)
@pytest.mark.clause(2)
def test_receive_object_leaves_a_message_from_another_rank_queued(comm: Any) -> None:
    sender, receiver, intruder = 3, 2, 1
    if comm.rank == intruder:
        # The intruder's message, with the right tag, reaches the receiver before the
        # sender's: the receiver takes the intruder's cue (sent after it) before it calls
        # receive_object, and the sender starts only on the intruder's word.
        other = comm.isend("rank 1's message", dest=receiver, tag=TAG)
        comm.send("queued", dest=receiver, tag=CUE)
        comm.send("go", dest=sender, tag=CUE)
        other.wait()
    elif comm.rank == sender:
        comm.recv(source=intruder, tag=CUE)
        comm.send("rank 3's message", dest=receiver, tag=TAG)
    elif comm.rank == receiver:
        comm.recv(source=intruder, tag=CUE)
        with unblocking_the_senders(comm, [(intruder, TAG), (sender, TAG)]):
            got = receive_object(comm, sender, TAG)
        _, status = receive_with_status(comm, MPI.ANY_SOURCE) or (None, None)
        assert got == "rank 3's message", (
            f"receive_object(comm, source={sender}, tag={TAG}) returned {got!r}, which was "
            f"waiting in the queue: receive with source={sender}; a receive that takes any "
            f"source gets whichever matching message came first"
        )
        assert status.source == intruder, f"the message left queued came from {status.source}"


# -- receive_from_anyone ------------------------------------------------------------------


def order_of_sends(comm: Any) -> list[tuple[int, int]]:
    """(sender, tag) of each message to rank 1, in the order the test forces them to come:
    not in rank order, and from one rank twice (on 2 ranks: one rank, tags out of order)."""
    if comm.size == 2:
        return [(0, 5), (0, 9), (0, 2)]
    return [(3, 5), (0, 9), (2, 2), (3, 8)]


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(3)
def test_receive_from_anyone_returns_each_message_with_its_own_source_and_tag(
    comm: Any,
) -> None:
    receiver, order = 1, order_of_sends(comm)
    want = [Envelope(s, t, f"message {k} from rank {s}") for k, (s, t) in enumerate(order)]
    if comm.rank == receiver:
        with unblocking_the_senders(comm, order):
            got = receive_from_anyone(comm, len(order))
        assert isinstance(got, list) and len(got) == len(order), (
            f"receive_from_anyone(comm, {len(order)}) returned {got!r}: want a list of "
            f"{len(order)} Envelopes"
        )
        for k, (mine, right) in enumerate(zip(got, want, strict=True)):
            source, tag, payload = mine
            hint = ""
            if (source, tag) == (MPI.ANY_SOURCE, MPI.ANY_TAG):
                hint = (
                    " (that is MPI.ANY_SOURCE and MPI.ANY_TAG: a Status that no receive filled; "
                    "hand it to comm.recv as status=...)"
                )
            elif (source, tag) == order[-1][:2] and k < len(order) - 1:
                hint = (
                    " (the last message's: one Status read after all the receives; take each "
                    "message's source and tag as soon as it is received)"
                )
            assert (source, tag) == (right.source, right.tag), (
                f"message {k} ({payload!r}) came from rank {right.source} with tag {right.tag}, "
                f"but its Envelope says source {source}, tag {tag}{hint}"
            )
            assert payload == right.payload, (
                f"message {k} received should be {right.payload!r} (the test made the senders "
                f"take turns: each sends only once the one before has been received), got "
                f"{payload!r}: return the messages in the order they were received"
            )
        return
    for k, (sender, tag) in enumerate(order):
        if comm.rank != sender:
            continue
        if k > 0 and order[k - 1][0] != sender:
            comm.recv(source=order[k - 1][0], tag=CUE)  # wait for this rank's turn
        # Under test a send returns only once the receiver has taken the message: only then
        # is the next sender told to go.
        comm.send(f"message {k} from rank {sender}", dest=receiver, tag=tag)
        if k + 1 < len(order) and order[k + 1][0] != sender:
            comm.send("your turn", dest=order[k + 1][0], tag=CUE)


# -- send_array -------------------------------------------------------------------------------


# Arrays of three dtypes and shapes: C-ordered, a transpose (Fortran-ordered), a strided slice.
def arrays_to_send(rank: int) -> list[tuple[str, np.ndarray]]:
    grid = sent_array(rank, 6, np.int64).reshape(2, 3)
    return [
        ("a 1-D int64 array", sent_array(rank, 5, np.int64)),
        ("a 2x3 float32 array", sent_array(rank, 6, np.float32).reshape(2, 3)),
        ("a transposed 2x3 array (grid.T, Fortran order)", grid.T),
        ("a slice with a step (values[::2])", sent_array(rank, 9, np.int16)[::2]),
    ]


@pytest.mark.mpi(n=2)
@pytest.mark.clause(4)
def test_send_array_sends_the_elements_in_row_major_order_as_a_buffer(comm: Any) -> None:
    sender, receiver = roles(comm)
    for what, data in arrays_to_send(sender):
        if comm.rank == sender:
            try:
                with unblocking_the_receiver(comm, receiver):
                    send_array(comm, data, receiver, TAG)
            except BufferError as error:
                pytest.fail(
                    f"send_array(comm, {what}, ...) raised BufferError({error}): Send needs "
                    f"contiguous memory; send np.ascontiguousarray(data)"
                )
        elif comm.rank == receiver:
            received = receive_buffer(comm, sender, data.size, data.dtype)
            if received is None:
                return
            got, tag = received
            assert tag == TAG, (
                f"send_array(comm, data, dest={receiver}, tag={TAG}) sent {what} with tag "
                f"{tag}: pass the tag to comm.Send (its default is 0)"
            )
            want = data.ravel()
            assert np.array_equal(got, want), (
                f"{what}: the receiver got {got.tolist()}, want {want.tolist()} (data.ravel())"
                + (
                    ": Send sends the memory as it lies, and a transpose's memory is in the "
                    "original's order; send np.ascontiguousarray(data)"
                    if not data.flags.c_contiguous
                    else ""
                )
            )


# -- recv_array -------------------------------------------------------------------------------


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(5)
@pytest.mark.parametrize("dtype", [np.int64, np.float32, np.int16])
def test_recv_array_returns_the_elements_sent_in_the_senders_dtype(comm: Any, dtype: Any) -> None:
    sender, receiver = roles(comm)
    data = sent_array(sender, 6, dtype)
    if comm.rank == sender:
        comm.Send(data, dest=receiver, tag=TAG)
    elif comm.rank == receiver:
        try:
            with unblocking_the_senders(comm, [(sender, TAG)]):
                got = recv_array(comm, sender, TAG, 6, dtype)
        except MPI.Exception as error:
            pytest.fail(
                f"recv_array(comm, {sender}, {TAG}, 6, {np.dtype(dtype)}) failed in Recv: "
                f"{mpi_error(error)} (the 6 {np.dtype(dtype)} elements "
                f"sent take {data.nbytes} bytes): allocate count elements of dtype"
            )
        assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype), (
            f"recv_array(..., dtype={np.dtype(dtype)}) returned "
            f"{getattr(got, 'dtype', type(got).__name__)}: allocate np.empty(count, dtype=dtype)"
            + (
                " (np.empty's default is float64)"
                if getattr(got, "dtype", None) == np.float64
                else ""
            )
        )
        assert got.tolist() == data.tolist(), (
            f"recv_array returned {got.tolist()}, but rank {sender} sent {data.tolist()}"
        )


@pytest.mark.mpi(n=2)
@pytest.mark.clause(5)
def test_recv_array_reads_int64_values_as_int64_not_as_float64_or_int32(comm: Any) -> None:
    sender, receiver = roles(comm)
    data = np.array([2**40 + 5, -(2**35), 7], dtype=np.int64)
    if comm.rank == sender:
        comm.Send(data, dest=receiver, tag=TAG)
    elif comm.rank == receiver:
        try:
            with unblocking_the_senders(comm, [(sender, TAG)]):
                got = recv_array(comm, sender, TAG, 3, np.int64)
        except MPI.Exception as error:
            pytest.fail(
                f"recv_array(comm, {sender}, {TAG}, 3, int64) failed in Recv: "
                f"{mpi_error(error)}: three int64 take 24 bytes; "
                f"an int32 buffer (C's int, MPI.INT) holds 12"
            )
        assert got.tolist() == data.tolist(), (
            f"three int64 values {data.tolist()} came back as {got.tolist()} ({got.dtype}): "
            f"MPI copies bytes and never converts them, so the receive buffer must have the "
            f"sender's dtype (the book's numpy.int is gone; int64 is np.int64)"
        )


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(6)
def test_recv_array_raises_value_error_when_the_message_is_short(comm: Any) -> None:
    sender, receiver = roles(comm)
    if comm.rank == sender:
        comm.Send(sent_array(sender, 3, np.int64), dest=receiver, tag=TAG)
    elif comm.rank == receiver:
        try:
            with unblocking_the_senders(comm, [(sender, TAG)]):
                got = recv_array(comm, sender, TAG, 5, np.int64)
        except ValueError as error:
            message = str(error)
        else:
            pytest.fail(
                f"recv_array(..., count=5, ...) returned {got.tolist()} from a message of 3 "
                f"elements: its last 2 were never written. Read the count from the Status of "
                f"the receive (Get_count with the datatype) and raise ValueError"
            )
        assert "3" in message and "5" in message, (
            f"the ValueError says {message!r}: name both the 3 elements received and the 5 expected"
        )


@pytest.mark.mpi(n=2)
@pytest.mark.clause(6)
@pytest.mark.parametrize("dtype", [np.int64, np.int16])
def test_recv_array_accepts_a_message_of_exactly_count_elements(comm: Any, dtype: Any) -> None:
    sender, receiver = roles(comm)
    data = sent_array(sender, 4, dtype)
    if comm.rank == sender:
        comm.Send(data, dest=receiver, tag=TAG)
    elif comm.rank == receiver:
        try:
            with unblocking_the_senders(comm, [(sender, TAG)]):
                got = recv_array(comm, sender, TAG, 4, dtype)
        except ValueError as error:
            pytest.fail(
                f"recv_array raised ValueError({error}) on a message of exactly 4 "
                f"{np.dtype(dtype)} elements ({data.nbytes} bytes): status.Get_count(datatype) "
                f"counts elements of the datatype it is given; give it the datatype of dtype, "
                f"from_numpy_dtype(dtype), not a fixed one such as MPI.DOUBLE (and receive "
                f"into an array of dtype, not np.empty's default float64)"
            )
        assert got.tolist() == data.tolist(), f"recv_array returned {got.tolist()}"


# -- recv_any_size ----------------------------------------------------------------------------


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(7)
@pytest.mark.parametrize(
    ("length", "dtype"), [(13, np.int16), (5, np.float32), (1, np.int64), (0, np.float64)]
)
def test_recv_any_size_allocates_exactly_the_length_of_the_message(
    comm: Any, length: int, dtype: Any
) -> None:
    sender, receiver = roles(comm)
    data = sent_array(sender, length, dtype)
    if comm.rank == sender:
        comm.Send(data, dest=receiver, tag=TAG)
    elif comm.rank == receiver:
        try:
            with unblocking_the_senders(comm, [(sender, TAG)]):
                got = recv_any_size(comm, sender, TAG, dtype)
        except MPI.Exception as error:
            pytest.fail(
                f"recv_any_size failed in Recv: {mpi_error(error)}: the "
                f"array was smaller than the message ({data.nbytes} bytes). Size it from the "
                f"Status that Probe filled: status.Get_count(from_numpy_dtype(dtype))"
            )
        assert isinstance(got, Envelope), f"recv_any_size returned {got!r}, not an Envelope"
        array = got.payload
        assert isinstance(array, np.ndarray) and array.dtype == np.dtype(dtype), (
            f"recv_any_size(..., dtype={np.dtype(dtype)}) returned a payload of "
            f"{getattr(array, 'dtype', type(array).__name__)}: allocate with dtype=dtype"
        )
        nbytes = length * np.dtype(dtype).itemsize
        assert len(array) == length, (
            f"a message of {length} {np.dtype(dtype)} elements became an array of {len(array)}"
            + (
                ": that is its size in bytes. Get_count() with no datatype counts bytes; "
                "count elements with status.Get_count(from_numpy_dtype(dtype))"
                if len(array) == nbytes != length
                else ": count elements of dtype with status.Get_count(from_numpy_dtype(dtype))"
            )
        )
        assert array.tolist() == data.tolist(), (
            f"recv_any_size returned {array.tolist()}, but rank {sender} sent {data.tolist()}"
        )


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(8)
def test_recv_any_size_receives_the_message_it_probed_not_another(comm: Any) -> None:
    sender, receiver = roles(comm)
    other, wanted = -sent_array(sender, 4, np.int64), sent_array(sender, 4, np.int64)
    if comm.rank == sender:
        # Sent first, so a receive that takes any tag gets it first (same source: in order).
        first = comm.Isend(other, dest=receiver, tag=OTHER_TAG)
        comm.Send(wanted, dest=receiver, tag=TAG)
        first.Wait()
    elif comm.rank == receiver:
        with unblocking_the_senders(comm, [(sender, OTHER_TAG), (sender, TAG)]):
            got = recv_any_size(comm, sender, TAG, np.int64)
        status = MPI.Status()  # take the message recv_any_size left, whatever its size
        comm.Probe(source=sender, tag=MPI.ANY_TAG, status=status)
        comm.Recv([bytearray(status.Get_count(MPI.BYTE)), MPI.BYTE], sender, status.tag)
        payload = got.payload.tolist()
        assert payload == wanted.tolist(), (
            f"recv_any_size(comm, {sender}, tag={TAG}, int64) returned {payload[:8]}"
            f"{' ...' if len(payload) > 8 else ''}, want the tag-{TAG} message it probed, "
            f"{wanted.tolist()}"
            + (
                f": that is the tag-{OTHER_TAG} message sent before it. Receive with "
                f"source=status.source and tag=status.tag; Recv's default tag is MPI.ANY_TAG"
                if payload == other.tolist()
                else ""
            )
        )
        assert (got.source, got.tag) == (sender, TAG), (
            f"recv_any_size returned source {got.source}, tag {got.tag}; want {sender}, {TAG}"
        )


@pytest.mark.mpi(n=[2, 4])
@pytest.mark.clause(7, 8)
def test_recv_any_size_from_any_source_reports_who_sent_each_message(comm: Any) -> None:
    receiver = 0
    senders = [rank for rank in range(comm.size) if rank != receiver]
    if comm.rank != receiver:
        # Each sender its own length and tag: whatever order they come in, every Envelope
        # must match its own message.
        data = sent_array(comm.rank, comm.rank + 2, np.float32)
        comm.Send(data, dest=receiver, tag=30 + comm.rank)
        return
    with unblocking_the_senders(comm, [(rank, 30 + rank) for rank in senders]):
        got = [recv_any_size(comm, MPI.ANY_SOURCE, MPI.ANY_TAG, np.float32) for _ in senders]
    for source, tag, array in got:
        assert source in senders, (
            f"recv_any_size(comm, MPI.ANY_SOURCE, MPI.ANY_TAG, ...) returned source {source}"
            + (
                " (that is MPI.ANY_SOURCE itself): return status.source, the rank the probed "
                "message came from"
                if source == MPI.ANY_SOURCE
                else ""
            )
        )
        assert tag == 30 + source, (
            f"the message from rank {source} had tag {30 + source}, but the Envelope says {tag}"
            + (" (MPI.ANY_TAG itself): return status.tag" if tag == MPI.ANY_TAG else "")
        )
        want = sent_array(source, source + 2, np.float32)
        assert array.tolist() == want.tolist(), (
            f"the Envelope says rank {source}, tag {tag}, but holds {array.tolist()}; rank "
            f"{source} sent {want.tolist()}"
        )
    assert sorted(source for source, _, _ in got) == senders, (
        f"{len(senders)} calls returned messages from ranks {[s for s, _, _ in got]}: each "
        f"of ranks {senders} sent one"
    )
