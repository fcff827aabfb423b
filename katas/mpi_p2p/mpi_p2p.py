"""Kata `mpi_p2p`: messages from one rank to another: objects and buffers, tags, Status, Probe.

A point-to-point message goes from one rank of a communicator (its source) to one other (its
destination). Besides its data it carries an envelope: the source, the destination, the
communicator and a *tag*, a number the sender picks to say what kind of message it is. A
receive names the source and the tag it wants, or `MPI.ANY_SOURCE` and `MPI.ANY_TAG` to accept
any, and takes only a message that matches: the others stay queued for later receives. Two
messages from the same source that match the same receive arrive in the order they were sent;
messages from different sources come in no order that a program can count on.

mpi4py has two families of calls. Lower-case `send` and `recv` pickle any Python object, and
`recv` returns it. Capitalized `Send` and `Recv` move the raw bytes of a buffer, such as a NumPy
array, with no pickling: the receiver provides the array to receive into, and it must have the
sender's dtype and room for the whole message (MPI only counts bytes; it does not check what
they mean).

A receive fills the `MPI.Status` passed to it (`Probe` fills one without receiving anything):
`status.source` and `status.tag` say which message it was, and `status.Get_count(datatype)`
how many elements of that MPI datatype the message holds (`Get_count()` with no datatype counts
bytes). `from_numpy_dtype(dtype)`, imported for you, gives the MPI datatype of a NumPy dtype.

Under test every send waits until its message is being received: code that only works because
MPI buffered a small message fails here at every size.

Contract (the tests check each point):

- `send_object(comm, obj, dest, tag)`:
  §1 `send_object` sends the Python object `obj`, pickled (`comm.send`), to rank `dest` of
  `comm` with tag `tag`.
- `receive_object(comm, source, tag)`:
  §2 `receive_object` returns the next object that rank `source` sent to this rank with tag
  `tag`, and receives nothing else: a message from another source, or with another tag, stays
  queued for a later receive.
- `receive_from_anyone(comm, count)`:
  §3 `receive_from_anyone` receives `count` objects from any source with any tag and returns
  them in the order they were received, each as `Envelope(source, tag, payload)`, with the
  source and tag read from that message's own `Status`.
- `send_array(comm, data, dest, tag)`:
  §4 `send_array` sends the NumPy array `data` as a buffer (`comm.Send`, no pickling) to rank
  `dest` with tag `tag`, its elements in row-major order (the order of `data.ravel()`): an
  array that is not C-contiguous (a slice with a step, a transpose) is sent as a C-contiguous
  copy.
- `recv_array(comm, source, tag, count, dtype)`:
  §5 `recv_array` receives a buffer message from rank `source` with tag `tag` into a new array
  of `count` elements of `dtype` (the sender's dtype), and returns that array.
  §6 `recv_array` raises `ValueError`, naming both numbers, when the message held fewer than
  `count` elements (as the Status of the receive counts them in elements of `dtype`), instead
  of returning an array whose tail was never written.
- `recv_any_size(comm, source, tag, dtype)`, for a buffer message of `dtype` whose length the
  receiver does not know; `source` may be `MPI.ANY_SOURCE` and `tag` may be `MPI.ANY_TAG`:
  §7 `recv_any_size` first probes for the message (`comm.Probe` with a Status), then
  allocates an array of exactly as many elements of `dtype` as the message holds
  (`status.Get_count(from_numpy_dtype(dtype))`), and receives the message into it.
  §8 `recv_any_size` receives the very message it probed, naming `status.source` and
  `status.tag` in the receive (never a wildcard), and returns `Envelope(status.source,
  status.tag, array)`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np  # noqa: F401  (imported for you: your code will need it)
import numpy.typing as npt
from mpi4py import MPI
from mpi4py.util.dtlib import from_numpy_dtype  # noqa: F401  (imported for you: you will need it)


class Envelope(NamedTuple):
    """A received message: who sent it, with which tag, and what it held."""

    source: int
    tag: int
    payload: Any


def send_object(comm: MPI.Intracomm, obj: Any, dest: int, tag: int) -> None:
    """Send any picklable object to rank `dest` with tag `tag`."""
    # TODO(kata): comm.send, naming dest and tag.
    raise NotImplementedError


def receive_object(comm: MPI.Intracomm, source: int, tag: int) -> Any:
    """The next object from rank `source` with tag `tag`; other messages stay queued."""
    # TODO(kata): comm.recv, naming source and tag.
    raise NotImplementedError


def receive_from_anyone(comm: MPI.Intracomm, count: int) -> list[Envelope]:
    """`count` objects from any source with any tag, in the order received, with their envelope."""
    # TODO(kata): for each message, a new MPI.Status() handed to comm.recv(source=MPI.ANY_SOURCE,
    # tag=MPI.ANY_TAG, status=...), then read its source and tag right away.
    raise NotImplementedError


def send_array(comm: MPI.Intracomm, data: npt.NDArray[Any], dest: int, tag: int) -> None:
    """Send `data`'s elements, in row-major order, as a buffer to rank `dest` with tag `tag`."""
    # TODO(kata): comm.Send a C-contiguous version of data (np.ascontiguousarray).
    raise NotImplementedError


def recv_array(
    comm: MPI.Intracomm, source: int, tag: int, count: int, dtype: npt.DTypeLike
) -> npt.NDArray[Any]:
    """Receive `count` elements of `dtype` from rank `source` with tag `tag` into a new array."""
    # TODO(kata): allocate np.empty(count, dtype); comm.Recv into it with a Status; raise
    # ValueError if the Status counts fewer than `count` elements of dtype.
    raise NotImplementedError


def recv_any_size(comm: MPI.Intracomm, source: int, tag: int, dtype: npt.DTypeLike) -> Envelope:
    """Receive a buffer message of unknown length: Probe it, size an array from its Status."""
    # TODO(kata): Probe with a Status; allocate exactly Get_count(from_numpy_dtype(dtype))
    # elements; Recv from status.source with status.tag; return the Envelope.
    raise NotImplementedError
