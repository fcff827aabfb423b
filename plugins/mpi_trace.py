"""Traced communicators for the MPI ranks: standard sends made synchronous, and every blocking
call recorded where the launcher can see it.

The MPI standard lets a standard-mode send (`send`, `Send`, `isend`, `Isend`) wait until a
matching receive is posted; small messages usually do not wait, because the library copies
them into a buffer. Code that only works thanks to that buffering is wrong, and would pass a
test by luck, so under test every standard send is a synchronous one (`ssend`, `Ssend`,
`issend`, `Issend`) and such code fails every time, whatever the message size.

While a rank is inside a blocking call, its state slot says which call (operation, peer, tag,
communicator, the learner's file:line) and which non-blocking operations it has posted and not
completed; the launcher reads every rank's slot to tell a deadlock from a slow transfer.
mpi4py's types cannot be patched, so the rank's communicators are instances of subclasses;
`install()` also puts one in place of `MPI.COMM_WORLD` for code that reaches for it directly.

Imported only inside an MPI rank (it imports mpi4py); it does not import pytest.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any, Literal, NoReturn, TypeVar

from mpi4py import MPI

from plugins import mpi_state

_THIS_FILE = __file__
_state: dict[str, Any] = {"phase": mpi_state.RUNNING, "test": None, "call": None}
_slot: mpi_state.Slot | None = None
_pending: list[TracedRequest] = []  # posted in this test and not seen completed
_world_ranks: dict[int, tuple[int, ...]] = {}  # a comm's local handle -> its members' world ranks
# A comm's local handle -> a name every member gives it alike ("world", "test3/dup1c0"): MPI
# handles are per process, and the launcher must tell which calls are on the same comm.
_comm_ids: dict[int, str] = {}
_derived: dict[str, itertools.count[int]] = {}
_tests = itertools.count(1)
_Request = MPI.Request  # before install() replaces the module's name with TracedRequest


# -- the state slot --------------------------------------------------------------------------


def open_slot(path: Path) -> None:
    global _slot
    _slot = mpi_state.Slot(path)
    _state.update(pid=os.getpid(), rank=MPI.COMM_WORLD.Get_rank())
    note_shared_memory()


def set_phase(phase: str, *, test: str | None = None, call: dict[str, Any] | None = None) -> None:
    _state.update(phase=phase, call=call)
    if test is not None:
        _state["test"] = test
    _publish()


def note_shared_memory() -> None:
    """Put in the state the shared-memory files MPI has mapped in this rank (MPICH makes one
    per communicator, and unlinks it only in MPI_Finalize): the launcher's side removes them
    when it ends a job by killing its ranks, or they would pile up in /dev/shm."""
    try:
        with open("/proc/self/maps") as maps:
            found = {
                line.split(maxsplit=5)[5].strip()
                for line in maps
                if "/dev/shm/" in line and not line.rstrip().endswith("(deleted)")
            }
    except OSError:  # not Linux: nothing known, nothing removed
        return
    _state["shm"] = sorted(set(_state.get("shm", [])) | found)
    _publish()


def _publish() -> None:
    if _slot is None:
        return
    _pending[:] = [request for request in _pending if request.outstanding]
    pending = [request.description for request in _pending]
    _slot.write({**_state, "pending": pending})


def _where() -> str:
    """file:line of the innermost frame outside this module: the learner's (or the test's) call."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == _THIS_FILE:
        frame = frame.f_back
    if frame is None:
        return "?"
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"


def _blocking(call: dict[str, Any], run: Callable[[], Any]) -> Any:
    """Run a blocking MPI call with the rank's state saying so."""
    previous = _state["phase"], _state["call"]
    set_phase(mpi_state.BLOCKED, call={**call, "where": _where()})
    try:
        return run()
    finally:
        set_phase(previous[0], call=previous[1])


# -- describing a call -----------------------------------------------------------------------


def _peer(comm: MPI.Comm, rank: int) -> int | None:
    """A peer as a world rank; None for ANY_SOURCE (and PROC_NULL, which matches nothing)."""
    if rank in (MPI.ANY_SOURCE, MPI.PROC_NULL):
        return None if rank == MPI.ANY_SOURCE else -1
    return members(comm)[rank]


def _tag(tag: int) -> int | None:
    return None if tag == MPI.ANY_TAG else tag


def members(comm: MPI.Comm) -> tuple[int, ...]:
    """The world ranks of `comm`'s members, in `comm`'s rank order."""
    key = comm.py2f()
    if key not in _world_ranks:
        group, world = comm.Get_group(), MPI.COMM_WORLD.Get_group()
        try:
            translated = MPI.Group.Translate_ranks(group, list(range(group.Get_size())), world)
        finally:
            group.Free()
            world.Free()
        _world_ranks[key] = tuple(int(r) for r in translated)
    return _world_ranks[key]


def _shown_peer(name: str, rank: int) -> str:
    if rank == MPI.ANY_SOURCE:
        return f"{name}=ANY_SOURCE"
    if rank == MPI.PROC_NULL:
        return f"{name}=PROC_NULL"
    return f"{name}={rank}"


def _shown_tag(tag: int) -> str:
    return "tag=ANY_TAG" if tag == MPI.ANY_TAG else f"tag={tag}"


def _send(comm: MPI.Comm, op: str, dest: int, tag: int) -> dict[str, Any]:
    return {
        "kind": "send",
        "op": op,
        "comm": comm_id(comm),
        "peer": _peer(comm, dest),
        "tag": tag,
        "shown": f"{op}({_shown_peer('dest', dest)}, {_shown_tag(tag)})",
    }


def _recv(comm: MPI.Comm, op: str, source: int, tag: int) -> dict[str, Any]:
    return {
        "kind": "recv",
        "op": op,
        "comm": comm_id(comm),
        "peer": _peer(comm, source),
        "tag": _tag(tag),
        "shown": f"{op}({_shown_peer('source', source)}, {_shown_tag(tag)})",
    }


def _collective(comm: MPI.Comm, op: str, root: int | None = None) -> dict[str, Any]:
    shown = f"{op}(root={root})" if root is not None else f"{op}()"
    return {
        "kind": "coll",
        "op": op,
        "comm": comm_id(comm),
        "members": list(members(comm)),
        "shown": shown,
    }


# -- requests --------------------------------------------------------------------------------


class TracedRequest(_Request):
    """A request that remembers what it was posted for, so a rank blocked elsewhere still
    offers it to the others (a posted receive can match another rank's send)."""

    description: dict[str, Any]

    @property
    def outstanding(self) -> bool:
        """Posted and not yet matched: waited requests are null, and Get_status tells a
        completed one without freeing it (a completed send can match nothing more)."""
        return bool(self != MPI.REQUEST_NULL) and not _Request.Get_status(self)

    def Wait(self, status: MPI.Status | None = None) -> Literal[True]:
        _waiting([self], "Wait", lambda: _Request.Wait(self, status))
        return True

    def wait(self, status: MPI.Status | None = None) -> Any:
        return _waiting([self], "wait", lambda: _Request.wait(self, status))

    @classmethod
    def Waitall(cls, requests: Any, statuses: Any = None) -> Literal[True]:
        _waiting(requests, "Waitall", lambda: _Request.Waitall(requests, statuses))
        return True

    @classmethod
    def waitall(cls, requests: Any, statuses: Any = None) -> Any:
        return _waiting(requests, "waitall", lambda: _Request.waitall(requests, statuses))

    @classmethod
    def Waitany(cls, requests: Any, status: MPI.Status | None = None) -> int:
        return int(_waiting(requests, "Waitany", lambda: _Request.Waitany(requests, status)))

    @classmethod
    def waitany(cls, requests: Any, status: MPI.Status | None = None) -> Any:
        return _waiting(requests, "waitany", lambda: _Request.waitany(requests, status))

    @classmethod
    def Waitsome(cls, requests: Any, statuses: Any = None) -> Any:
        return _waiting(requests, "Waitsome", lambda: _Request.Waitsome(requests, statuses))

    @classmethod
    def waitsome(cls, requests: Any, statuses: Any = None) -> Any:
        return _waiting(requests, "waitsome", lambda: _Request.waitsome(requests, statuses))


def _waiting(requests: Iterable[Any], op: str, run: Callable[[], Any]) -> Any:
    waited = [r.description for r in requests if isinstance(r, TracedRequest) and r.outstanding]
    shown = ", ".join(d["shown"] for d in waited) or "requests that were not traced"
    # A wait on requests we cannot see (made outside the traced communicator) might match
    # anything: it is recorded as such, so the launcher never calls it a deadlock.
    untraced = any(not isinstance(r, TracedRequest) for r in requests)
    call = {
        "kind": "wait",
        "op": op,
        "ops": waited,
        "untraced": untraced,
        "shown": f"{op}({shown})",
    }
    return _blocking(call, run)


def _posted(request: Any, description: dict[str, Any]) -> TracedRequest:
    traced = TracedRequest(request)  # the copy keeps the request's buffers alive
    traced.description = description
    _pending.append(traced)
    return traced


# -- communicators ---------------------------------------------------------------------------


def comm_id(comm: MPI.Comm) -> str:
    return _comm_ids.get(comm.py2f(), f"untraced-{comm.py2f()}")


CommT = TypeVar("CommT", bound=MPI.Comm)


def _named(new: CommT, parent: MPI.Comm, how: str) -> CommT:
    """Name a communicator made collectively from `parent`: every member makes the same
    number of them from `parent`, in the same order, so the k-th one has the same name."""
    counter = _derived.setdefault(comm_id(parent), itertools.count(1))
    _comm_ids[new.py2f()] = f"{comm_id(parent)}/{how}{next(counter)}"
    note_shared_memory()
    _world_ranks.pop(new.py2f(), None)  # a reused handle: look its members up again
    return new


class _Traced:
    """The traced methods, mixed into a subclass of each communicator type."""

    # standard sends, made synchronous
    def send(self, obj: Any, dest: int, tag: int = 0) -> None:
        comm: Any = self
        _blocking(_send(comm, "send", dest, tag), lambda: MPI.Comm.ssend(comm, obj, dest, tag))

    def ssend(self, obj: Any, dest: int, tag: int = 0) -> None:
        comm: Any = self
        _blocking(_send(comm, "ssend", dest, tag), lambda: MPI.Comm.ssend(comm, obj, dest, tag))

    def Send(self, buf: Any, dest: int, tag: int = 0) -> None:
        comm: Any = self
        _blocking(_send(comm, "Send", dest, tag), lambda: MPI.Comm.Ssend(comm, buf, dest, tag))

    def Ssend(self, buf: Any, dest: int, tag: int = 0) -> None:
        comm: Any = self
        _blocking(_send(comm, "Ssend", dest, tag), lambda: MPI.Comm.Ssend(comm, buf, dest, tag))

    def isend(self, obj: Any, dest: int, tag: int = 0) -> TracedRequest:
        comm: Any = self
        return _posted(MPI.Comm.issend(comm, obj, dest, tag), _send(comm, "isend", dest, tag))

    def issend(self, obj: Any, dest: int, tag: int = 0) -> TracedRequest:
        comm: Any = self
        return _posted(MPI.Comm.issend(comm, obj, dest, tag), _send(comm, "issend", dest, tag))

    def Isend(self, buf: Any, dest: int, tag: int = 0) -> TracedRequest:
        comm: Any = self
        return _posted(MPI.Comm.Issend(comm, buf, dest, tag), _send(comm, "Isend", dest, tag))

    def Issend(self, buf: Any, dest: int, tag: int = 0) -> TracedRequest:
        comm: Any = self
        return _posted(MPI.Comm.Issend(comm, buf, dest, tag), _send(comm, "Issend", dest, tag))

    # receives
    def recv(
        self,
        buf: Any = None,
        source: int = MPI.ANY_SOURCE,
        tag: int = MPI.ANY_TAG,
        status: Any = None,
    ) -> Any:
        comm: Any = self
        call = _recv(comm, "recv", source, tag)
        return _blocking(call, lambda: MPI.Comm.recv(comm, buf, source, tag, status))

    def Recv(
        self, buf: Any, source: int = MPI.ANY_SOURCE, tag: int = MPI.ANY_TAG, status: Any = None
    ) -> None:
        comm: Any = self
        call = _recv(comm, "Recv", source, tag)
        _blocking(call, lambda: MPI.Comm.Recv(comm, buf, source, tag, status))

    def irecv(
        self, buf: Any = None, source: int = MPI.ANY_SOURCE, tag: int = MPI.ANY_TAG
    ) -> TracedRequest:
        comm: Any = self
        return _posted(MPI.Comm.irecv(comm, buf, source, tag), _recv(comm, "irecv", source, tag))

    def Irecv(
        self, buf: Any, source: int = MPI.ANY_SOURCE, tag: int = MPI.ANY_TAG
    ) -> TracedRequest:
        comm: Any = self
        return _posted(MPI.Comm.Irecv(comm, buf, source, tag), _recv(comm, "Irecv", source, tag))

    def probe(
        self, source: int = MPI.ANY_SOURCE, tag: int = MPI.ANY_TAG, status: Any = None
    ) -> Any:
        comm: Any = self
        call = _recv(comm, "probe", source, tag)
        return _blocking(call, lambda: MPI.Comm.probe(comm, source, tag, status))

    def Probe(
        self, source: int = MPI.ANY_SOURCE, tag: int = MPI.ANY_TAG, status: Any = None
    ) -> Any:
        comm: Any = self
        call = _recv(comm, "Probe", source, tag)
        return _blocking(call, lambda: MPI.Comm.Probe(comm, source, tag, status))

    # both at once: it can complete only if both halves match, so either half is an offer
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
        comm: Any = self
        call = _sendrecv(comm, "sendrecv", dest, sendtag, source, recvtag)
        return _blocking(
            call,
            lambda: MPI.Comm.sendrecv(
                comm, sendobj, dest, sendtag, recvbuf, source, recvtag, status
            ),
        )

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
        comm: Any = self
        call = _sendrecv(comm, "Sendrecv", dest, sendtag, source, recvtag)
        _blocking(
            call,
            lambda: MPI.Comm.Sendrecv(
                comm, sendbuf, dest, sendtag, recvbuf, source, recvtag, status
            ),
        )

    def Sendrecv_replace(
        self,
        buf: Any,
        dest: int,
        sendtag: int = 0,
        source: int = MPI.ANY_SOURCE,
        recvtag: int = MPI.ANY_TAG,
        status: Any = None,
    ) -> None:
        comm: Any = self
        call = _sendrecv(comm, "Sendrecv_replace", dest, sendtag, source, recvtag)
        _blocking(
            call,
            lambda: MPI.Comm.Sendrecv_replace(comm, buf, dest, sendtag, source, recvtag, status),
        )


def _sendrecv(
    comm: MPI.Comm, op: str, dest: int, sendtag: int, source: int, recvtag: int
) -> dict[str, Any]:
    send, recv = _send(comm, op, dest, sendtag), _recv(comm, op, source, recvtag)
    shown = (
        f"{op}({_shown_peer('dest', dest)}, sendtag={sendtag}, "
        f"{_shown_peer('source', source)}, recv{_shown_tag(recvtag)})"
    )
    return {"kind": "sendrecv", "op": op, "parts": [send, recv], "shown": shown}


# Collectives: (name, index of the root argument or None). Every member must call them, in
# the same order; the launcher compares the names ranks are blocked in.
COLLECTIVES: tuple[tuple[str, int | None], ...] = (
    ("barrier", None),
    ("Barrier", None),
    ("bcast", 1),
    ("Bcast", 1),
    ("scatter", 1),
    ("Scatter", 2),
    ("Scatterv", 2),
    ("gather", 1),
    ("Gather", 2),
    ("Gatherv", 2),
    ("allgather", None),
    ("Allgather", None),
    ("Allgatherv", None),
    ("alltoall", None),
    ("Alltoall", None),
    ("Alltoallv", None),
    ("reduce", 2),
    ("Reduce", 3),
    ("allreduce", None),
    ("Allreduce", None),
    ("Reduce_scatter", None),
    ("Reduce_scatter_block", None),
    ("scan", None),
    ("Scan", None),
    ("exscan", None),
    ("Exscan", None),
)
ROOT_KEYWORD = "root"


def _traced_collective(name: str, root_index: int | None) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        root: int | None = None
        if root_index is not None:  # positional, else the keyword, else MPI's default 0
            root = args[root_index] if len(args) > root_index else kwargs.get(ROOT_KEYWORD, 0)
        base = getattr(MPI.Intracomm, name)
        return _blocking(_collective(self, name, root), lambda: base(self, *args, **kwargs))

    method.__name__ = name
    return method


for _name, _root in COLLECTIVES:
    setattr(_Traced, _name, _traced_collective(_name, _root))


def _abort(comm: Any, errorcode: int) -> NoReturn:
    """MPI_Abort ends every rank of the job at once; say who called it, and where, first."""
    set_phase(
        mpi_state.BLOCKED,
        call={"kind": "abort", "op": "Abort", "shown": f"Abort({errorcode})", "where": _where()},
    )
    MPI.Comm.Abort(comm, errorcode)
    raise SystemExit(errorcode)  # not reached: MPI ends this process


class TracedIntracomm(_Traced, MPI.Intracomm):
    """COMM_WORLD and its duplicates and splits, traced."""

    def Abort(self, errorcode: int = 0) -> NoReturn:
        _abort(self, errorcode)

    def Dup(self, info: Any = None) -> TracedIntracomm:
        base = MPI.Intracomm.Dup
        new = _blocking(
            _collective(self, "Dup"), lambda: base(self) if info is None else base(self, info)
        )
        return _named(TracedIntracomm(new), self, "dup")

    def Clone(self) -> TracedIntracomm:
        return self.Dup()

    def Split(self, color: int = 0, key: int = 0) -> TracedIntracomm:
        new = _blocking(_collective(self, "Split"), lambda: MPI.Intracomm.Split(self, color, key))
        return _named(TracedIntracomm(new), self, f"split-color{color}-")

    def Create_cart(self, dims: Any, periods: Any = None, reorder: bool = False) -> TracedCartcomm:
        new = _blocking(
            _collective(self, "Create_cart"),
            lambda: MPI.Intracomm.Create_cart(self, dims, periods, reorder),
        )
        return _named(TracedCartcomm(new), self, "cart")


class TracedCartcomm(_Traced, MPI.Cartcomm):
    """A Cartesian topology made from a traced communicator, traced too."""

    def Abort(self, errorcode: int = 0) -> NoReturn:
        _abort(self, errorcode)

    def Dup(self, info: Any = None) -> TracedCartcomm:
        new = _blocking(_collective(self, "Dup"), lambda: MPI.Cartcomm.Dup(self))
        return _named(TracedCartcomm(new), self, "dup")

    def Clone(self) -> TracedCartcomm:
        return self.Dup()

    def Sub(self, remain_dims: Any) -> TracedCartcomm:
        new = _blocking(_collective(self, "Sub"), lambda: MPI.Cartcomm.Sub(self, remain_dims))
        return _named(TracedCartcomm(new), self, "sub")

    def Split(self, color: int = 0, key: int = 0) -> TracedIntracomm:
        new = _blocking(_collective(self, "Split"), lambda: MPI.Intracomm.Split(self, color, key))
        return _named(TracedIntracomm(new), self, f"split-color{color}-")


# The real one, for the runner's own use (the per-test duplicate of COMM_WORLD).
REAL_WORLD = MPI.COMM_WORLD


def install() -> TracedIntracomm:
    """Put a traced COMM_WORLD and the traced Request type where `from mpi4py import MPI` finds
    them (code that names MPI.COMM_WORLD or MPI.Request.Waitall directly is traced too)."""
    world = TracedIntracomm(REAL_WORLD)
    _comm_ids[world.py2f()] = "world"
    MPI.COMM_WORLD = world  # type: ignore[misc]
    MPI.Request = TracedRequest  # type: ignore[misc]
    return world


# Ranks reach the start of a test at different times (the first start waits for every rank's
# Python to start). MPI's own waits spin on a core; with more ranks than cores a spinning rank
# slows the ones it waits for, so the runner waits for the others asleep, polling a barrier.
ARRIVAL_POLL_SECONDS = 0.0005


def sleep_until_all_arrive(comm: MPI.Intracomm) -> None:
    barrier = MPI.Intracomm.Ibarrier(comm)
    while not barrier.Test():
        time.sleep(ARRIVAL_POLL_SECONDS)


def _dup_when_all_arrive(comm: MPI.Intracomm) -> MPI.Intracomm:
    sleep_until_all_arrive(comm)
    return MPI.Intracomm.Dup(comm)


def per_test_communicator(test: str) -> TracedIntracomm:
    """A fresh duplicate of COMM_WORLD for one test, so that a message a test leaves behind
    can never be received by the next one. Every rank must call it: it is collective."""
    _pending.clear()  # the last test's communicator is gone, and its requests with it
    set_phase(mpi_state.RUNNING, test=test)
    _comm_ids.setdefault(REAL_WORLD.py2f(), "world")
    start = {
        **_collective(REAL_WORLD, "start"),
        "runner": True,
        "shown": "the start of the next test (every rank must arrive)",
    }
    comm = TracedIntracomm(_blocking(start, lambda: _dup_when_all_arrive(REAL_WORLD)))
    _comm_ids[comm.py2f()] = f"test{next(_tests)}"
    note_shared_memory()
    _world_ranks.pop(comm.py2f(), None)
    return comm
