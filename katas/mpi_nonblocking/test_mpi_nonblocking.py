"""Kata `mpi_nonblocking`: isend/irecv, Isend/Irecv, waits and tests, and work overlapping them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mpi_nonblocking as kata
import numpy as np
import pytest
from mpi4py import MPI
from mpi_nonblocking import (
    neighbour_exchange,
    receive_columns,
    receive_polling,
    send_columns,
    smooth,
)

TAG = 7  # not MPI's default 0, so that a forgotten tag shows
GO_TAG = 40  # the test's own signals, far from TAG and the column tags after it
OTHER_TAG = 50  # a message waiting beside the real one, which must not be taken
# Columns of 16384 float64 (128 KB): MPI sends a message that large only once its receive is
# posted, reading the send buffer at that moment, so a buffer refilled before its send
# completed shows in what arrives. (A column of a few bytes would be copied at once.)
BIG_ROWS = 16384
COLUMNS = 3
# The arguments of the non-blocking calls, in order, as mpi4py names them.
NONBLOCKING = {
    "isend": ("obj", "dest", "tag"),
    "issend": ("obj", "dest", "tag"),
    "Isend": ("buf", "dest", "tag"),
    "Issend": ("buf", "dest", "tag"),
    "irecv": ("buf", "source", "tag"),
    "Irecv": ("buf", "source", "tag"),
}


class Requests:
    """The requests started on a communicator while it was recorded, and what each was for."""

    def __init__(self) -> None:
        self.started: list[tuple[str, Any]] = []

    def named(self, *names: str) -> list[str]:
        return [what for what, _ in self.started if what.split("(")[0] in names]

    def unfinished(self) -> list[str]:
        return [what for what, request in self.started if request != MPI.REQUEST_NULL]


def call_text(name: str, parameters: tuple[str, ...], args: Any, kwargs: Any) -> str:
    given = {**dict(zip(parameters, args, strict=False)), **kwargs}
    peer = "dest" if "dest" in parameters else "source"
    where = given.get(peer, MPI.ANY_SOURCE)
    shown = "ANY_SOURCE" if where == MPI.ANY_SOURCE else str(where)
    tag = given.get("tag", 0 if peer == "dest" else MPI.ANY_TAG)
    return f"{name}({peer}={shown}, tag={'ANY_TAG' if tag == MPI.ANY_TAG else tag})"


@contextmanager
def recording(comm: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Requests]:
    """Note every request the code run inside starts on `comm` (the calls still happen)."""
    requests = Requests()
    with monkeypatch.context() as patch:
        for name, parameters in NONBLOCKING.items():
            original = getattr(comm, name)

            def started(
                *args: Any,
                _original: Any = original,
                _name: str = name,
                _parameters: tuple[str, ...] = parameters,
                **kwargs: Any,
            ) -> Any:
                request = _original(*args, **kwargs)
                requests.started.append((call_text(_name, _parameters, args, kwargs), request))
                return request

            patch.setattr(comm, name, started)
        yield requests


def assert_all_finished(requests: Requests, function: str) -> None:
    __tracebackhide__ = True
    left = requests.unfinished()
    assert not left, (
        f"{function} returned with {len(left)} of its {len(requests.started)} requests never "
        f"finished: {', '.join(left)}. A request is finished only by a wait (or a test that "
        f"says done); pass every request, the sends as well as the receives, to one waitall."
    )


def left_and_right(comm: Any) -> tuple[int, int]:
    return (comm.rank - 1) % comm.size, (comm.rank + 1) % comm.size


# -- neighbour_exchange ----------------------------------------------------------------------


def going(rank: int, direction: str) -> str:
    return f"rank {rank}'s message going {direction}"


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(1, 2)
def test_neighbour_exchange_returns_what_each_neighbour_sent_towards_this_rank(comm: Any) -> None:
    left, right = left_and_right(comm)
    got = neighbour_exchange(comm, going(comm.rank, "left"), going(comm.rank, "right"), TAG)
    want = (going(left, "right"), going(right, "left"))
    assert tuple(got) == want, (
        f"neighbour_exchange on rank {comm.rank} of {comm.size} (left neighbour {left}, right "
        f"neighbour {right}) returned {tuple(got)}; want (from_left, from_right) = {want}. "
        f"Send to_left to the left neighbour with tag + 1 and to_right to the right one with "
        f"tag; receive from the left with tag and from the right with tag + 1. With "
        f"{comm.size} rank(s) both neighbours are rank {left}: only the tags tell its two "
        f"messages apart."
    )


@pytest.mark.mpi(n=2)
@pytest.mark.clause(1, 3)
def test_neighbour_exchange_finishes_its_sends_as_well_as_its_receives(
    comm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recording(comm, monkeypatch) as requests:
        neighbour_exchange(comm, going(comm.rank, "left"), going(comm.rank, "right"), TAG)
    posted = requests.named("isend", "issend", "irecv")
    assert len(posted) == 4, (
        f"neighbour_exchange started {len(posted)} non-blocking requests ({', '.join(posted)}); "
        f"it must post two irecv and two isend, then wait for all four"
    )
    assert_all_finished(requests, "neighbour_exchange")


# -- send_columns and receive_columns --------------------------------------------------------


def make_matrix(rows: int, columns: int) -> np.ndarray:
    """Column j holds j + 1 + i / 2**20 in row i: no two columns alike, no column constant."""
    return (np.arange(columns) + 1.0)[np.newaxis, :] + (np.arange(rows) / 2**20)[:, np.newaxis]


def column_text(column: np.ndarray, matrix: np.ndarray) -> str:
    for j in range(matrix.shape[1]):
        if np.array_equal(column, matrix[:, j]):
            return f"column {j}'s values"
    return f"values that are no column of the matrix ({column[:3]}...)"


def receive_reversed(comm: Any, matrix: np.ndarray, source: int) -> list[str]:
    """The test as receiver: each column by tag, last column first; what was wrong."""
    wrong = []
    for j in reversed(range(matrix.shape[1])):
        column = np.empty(matrix.shape[0])
        comm.Recv(column, source=source, tag=TAG + j)
        if not np.array_equal(column, matrix[:, j]):
            wrong.append(f"the message with tag {TAG + j} held {column_text(column, matrix)}")
    return wrong


@pytest.mark.mpi(n=2)
@pytest.mark.clause(5)
def test_send_columns_runs_work_once_after_posting_every_send(
    comm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix = make_matrix(4, COLUMNS)
    if comm.rank == 1:
        comm.recv(source=0, tag=GO_TAG)
        receive_reversed(comm, matrix, 0)
        return
    calls: list[int] = []
    with recording(comm, monkeypatch) as requests:

        def work() -> str:
            calls.append(len(requests.named("Isend", "Issend")))
            assert len(calls) > 1 or calls[0] == COLUMNS, (
                f"send_columns called work() after posting {calls[0]} of its {COLUMNS} Isend "
                f"calls; post every send first, so that all of them travel while work() runs"
            )
            if len(calls) == 1:  # the receiver waits for this before it receives anything
                comm.send("go", dest=1, tag=GO_TAG)
            return "what work() returned"

        got = send_columns(comm, matrix, 1, TAG, work)
    assert calls == [COLUMNS], (
        f"send_columns called work() {len(calls)} times; call it once, after posting every "
        f"send and before waiting for them"
    )
    assert got == "what work() returned", (
        f"send_columns returned {got!r}; return what work() returned"
    )


@pytest.mark.mpi(n=2)
@pytest.mark.clause(4)
def test_send_columns_sends_each_column_from_a_buffer_of_its_own(comm: Any) -> None:
    matrix = make_matrix(BIG_ROWS, COLUMNS)
    if comm.rank == 0:

        def work() -> None:  # only now does the receiver post its receives
            comm.send("go", dest=1, tag=GO_TAG)

        send_columns(comm, matrix, 1, TAG, work)
        return
    comm.recv(source=0, tag=GO_TAG)
    wrong = receive_reversed(comm, matrix, 0)
    assert not wrong, (
        f"send_columns sent {COLUMNS} columns with tags {TAG}..{TAG + COLUMNS - 1}, received "
        f"only once work() had run, but {'; '.join(wrong)}. Until its send completes MPI may "
        f"read a buffer at any moment: a buffer refilled with the next column before that sends "
        f"the wrong values. Give each column a new contiguous copy "
        f"(np.ascontiguousarray(matrix[:, j])) and keep them all until Waitall returns."
    )


@pytest.mark.mpi(n=2)
@pytest.mark.clause(6)
def test_send_columns_has_finished_every_send_when_it_returns(
    comm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix = make_matrix(BIG_ROWS, COLUMNS)
    if comm.rank == 1:
        comm.recv(source=0, tag=GO_TAG)
        wrong = receive_reversed(comm, matrix, 0)
        assert not wrong, (
            f"the caller changed its matrix as soon as send_columns returned, and then "
            f"{'; '.join(wrong)}: send_columns returned before its sends had completed"
        )
        return
    with recording(comm, monkeypatch) as requests:
        send_columns(comm, matrix, 1, TAG, lambda: comm.send("go", dest=1, tag=GO_TAG))
    assert_all_finished(requests, "send_columns")


@pytest.mark.mpi(n=2)
@pytest.mark.clause(7)
def test_receive_columns_posts_every_receive_before_it_waits(
    comm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix = make_matrix(BIG_ROWS, COLUMNS)
    if comm.rank == 0:  # the test as sender: last column first, each send blocking
        for j in reversed(range(COLUMNS)):
            comm.Send(np.ascontiguousarray(matrix[:, j]), dest=1, tag=TAG + j)
        return
    with recording(comm, monkeypatch) as requests:
        got = receive_columns(comm, matrix.shape, 0, TAG)
    received = requests.named("Irecv")
    assert len(received) == COLUMNS, (
        f"receive_columns started {len(received)} Irecv ({', '.join(received)}); post one "
        f"Irecv per column, each into a buffer of its own, then wait for all of them"
    )
    assert_all_finished(requests, "receive_columns")
    assert isinstance(got, np.ndarray) and got.shape == matrix.shape, (
        f"receive_columns returned {type(got).__name__} of shape {getattr(got, 'shape', '?')}; "
        f"want a float64 array of shape {matrix.shape}"
    )
    wrong = [
        f"column {j} holds {column_text(got[:, j], matrix)}"
        for j in range(COLUMNS)
        if not np.array_equal(got[:, j], matrix[:, j])
    ]
    assert not wrong, (
        f"receive_columns: {'; '.join(wrong)}. Column j is the message with tag tag + j, "
        f"whatever order the columns arrive in (here the last one was sent first)."
    )


@pytest.mark.mpi(n=2)
@pytest.mark.clause(4, 5, 7)
def test_columns_sent_by_send_columns_come_back_from_receive_columns(comm: Any) -> None:
    matrix = make_matrix(5, 4)
    if comm.rank == 0:
        got = send_columns(comm, matrix, 1, TAG, lambda: 42)
        assert got == 42, f"send_columns returned {got!r}; return what work() returned (42)"
        return
    got = receive_columns(comm, (5, 4), 0, TAG)
    assert isinstance(got, np.ndarray) and np.array_equal(got, matrix), (
        f"receive_columns returned\n{got}\nfor the 5x4 matrix send_columns sent:\n{matrix}"
    )


# -- smooth ----------------------------------------------------------------------------------


def field_slices(comm: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the whole field, its smoothed version, this rank's slice of both as start:stop):
    rank r holds 2 + r values, so the slices differ in length."""
    lengths = [2 + r for r in range(comm.size)]
    field = np.arange(sum(lengths), dtype=float) ** 2
    smoothed = (np.roll(field, 1) + field + np.roll(field, -1)) / 3
    start = sum(lengths[: comm.rank])
    bounds = np.array([start, start + lengths[comm.rank]])
    return field, smoothed, bounds


@pytest.mark.mpi(n=[1, 2])
@pytest.mark.clause(10)
def test_smooth_leaves_its_input_untouched(comm: Any) -> None:
    field, _, (start, stop) = field_slices(comm)
    u = field[start:stop].copy()
    smooth(comm, u, TAG)
    assert np.array_equal(u, field[start:stop]), (
        f"smooth changed its input u from {field[start:stop]} to {u}: write the result into a "
        f"new array (and u[:1], u[-1:] are send buffers until the wait returns)"
    )


@pytest.mark.mpi(n=[1, 2, 4])
@pytest.mark.clause(8)
def test_smooth_averages_each_value_with_its_two_neighbours_across_the_ring(comm: Any) -> None:
    field, smoothed, (start, stop) = field_slices(comm)
    u = field[start:stop].copy()
    got = smooth(comm, u, TAG)
    want = smoothed[start:stop]
    assert isinstance(got, np.ndarray) and got.shape == want.shape, (
        f"smooth returned {got!r}; want a new array of {len(want)} values"
    )
    left_value, right_value = field[start - 1], field[stop % len(field)]
    for i, what in (
        (0, f"the left neighbour's last value {left_value}"),
        (-1, f"the right neighbour's first value {right_value}"),
    ):
        assert np.isclose(got[i], want[i]), (
            f"rank {comm.rank} of {comm.size} holds u = {u}: smooth gave new[{i}] = {got[i]}, "
            f"want {want[i]}, which takes {what} as its missing neighbour. It arrives by Irecv "
            f"(from the left with tag, from the right with tag + 1), each into a buffer of its "
            f"own, and is there only after the wait."
        )
    assert np.allclose(got, want), (
        f"rank {comm.rank} holds u = {u}: smooth gave {got}, want {want} "
        f"(new[i] = (u[i - 1] + u[i] + u[i + 1]) / 3)"
    )


@pytest.mark.mpi(n=2)
@pytest.mark.clause(9)
def test_smooth_computes_the_interior_while_its_messages_travel(
    comm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    field, smoothed, (start, stop) = field_slices(comm)
    if comm.rank == 1:  # the test plays rank 1: it answers only once rank 0 is computing
        first, last = np.empty(1), np.empty(1)
        comm.Recv(last, source=0, tag=TAG)  # rank 0's last value, travelling right
        comm.Recv(first, source=0, tag=TAG + 1)  # rank 0's first value, travelling left
        comm.recv(source=0, tag=GO_TAG)
        comm.Send(field[stop - 1 : stop].copy(), dest=0, tag=TAG)
        comm.Send(field[start : start + 1].copy(), dest=0, tag=TAG + 1)
        return
    computed = kata.interior
    seen: list[list[str]] = []
    with recording(comm, monkeypatch) as requests:

        def interior(u: np.ndarray) -> np.ndarray:
            seen.append(requests.named("Irecv", "Isend", "Issend"))
            # Rank 1 has received both of our values; it sends its own once we say so.
            comm.send("computing the interior", dest=1, tag=GO_TAG)
            return computed(u)

        monkeypatch.setattr(kata, "interior", interior)
        got = smooth(comm, field[start:stop].copy(), TAG)
    assert len(seen) == 1 and len(seen[0]) == 4, (
        f"smooth called interior(u) {len(seen)} time(s), "
        f"{'after posting ' + ', '.join(seen[0]) if seen and seen[0] else 'before posting any request'}"
        f"; call it once, after posting both Irecv and both Isend and before waiting, so that "
        f"the computation overlaps the messages"
    )
    assert_all_finished(requests, "smooth")
    assert np.allclose(got, smoothed[start:stop]), f"smooth gave {got}, want {smoothed[start:stop]}"


# -- receive_polling -------------------------------------------------------------------------


@pytest.mark.mpi(n=2)
@pytest.mark.clause(11)
def test_receive_polling_calls_idle_until_the_message_arrives(comm: Any) -> None:
    if comm.rank == 1:  # the sender waits until rank 0 has been idle once
        comm.recv(source=0, tag=GO_TAG)
        comm.send("the message", dest=0, tag=TAG)
        return
    calls = 0

    def idle() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            comm.send("idle once", dest=1, tag=GO_TAG)
        time.sleep(0.001)  # a little work, without spinning a core the sender needs

    message, idles = receive_polling(comm, 1, TAG, idle)
    assert message == "the message", f"receive_polling returned the message {message!r}"
    assert calls >= 1, (
        "receive_polling never called idle(), yet the message was sent only after idle() had "
        "run once: poll with request.test() and call idle() each time it is not done"
    )
    assert idles == calls, f"receive_polling called idle() {calls} times but returned {idles}"


@pytest.mark.mpi(n=2)
@pytest.mark.clause(11)
def test_receive_polling_takes_a_message_already_there_without_idling(comm: Any) -> None:
    if comm.rank == 1:  # a message with another tag first, then the real one, then "sent"
        other = comm.isend("a message with another tag", dest=0, tag=OTHER_TAG)
        real = comm.isend("the message", dest=0, tag=TAG)
        comm.send("both sent", dest=0, tag=GO_TAG)
        MPI.Request.waitall([other, real])
        return
    comm.recv(source=1, tag=GO_TAG)
    calls = 0

    def idle() -> None:
        nonlocal calls
        calls += 1

    message, idles = receive_polling(comm, 1, TAG, idle)
    assert message == "the message", (
        f"receive_polling(comm, 1, tag={TAG}, idle) returned {message!r}: receive with the tag "
        f"given, not MPI.ANY_TAG"
    )
    comm.recv(source=1, tag=OTHER_TAG)  # the other message, once the real one was checked
    assert calls == 0 and idles == 0, (
        f"the message was already there, yet receive_polling called idle() {calls} time(s) and "
        f"returned {idles}: test first, and call idle() only after a test that says not done"
    )
