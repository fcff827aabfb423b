"""Kata `mpi_nonblocking`: messages that travel while the ranks go on working.

A non-blocking call starts a transfer and returns a `Request` at once: `comm.isend(obj, dest,
tag)` and `comm.irecv(source=..., tag=...)` for Python objects, `comm.Isend(buf, dest, tag)`
and `comm.Irecv(buf, source, tag)` for buffers (contiguous NumPy arrays). A transfer is
finished only when a wait or a test says so: `request.wait()` (for an `irecv` it returns the
object), `request.Wait()`, `MPI.Request.waitall(requests)` (returns the list of received
objects, None for each send), `MPI.Request.Waitall(requests)`, or `request.test()` (returns
`(done, object)`) and `request.Test()` (returns `done`) once they say it is done. Until then
the buffer of an `Isend` still belongs to MPI, which may read it at any moment, so it must not
change; the buffer of an `Irecv` is not filled yet; and a request that nobody waits for is
never finished. Under the tests every send completes only once its receive has been posted.

The ring: rank r's left neighbour is `(r - 1) % size`, its right neighbour `(r + 1) % size`;
with two ranks both neighbours are the same rank, with one rank they are the rank itself. A
message travelling right (sent to the right neighbour) carries tag `tag`, one travelling left
carries tag `tag + 1`: with one or two ranks, the tags are all that tells the two apart.

Contract (the tests check each point):

- `neighbour_exchange(comm, to_left, to_right, tag)`:
  §1 `neighbour_exchange` posts an `irecv` from each neighbour, an `isend` of `to_left` to the
  left neighbour and an `isend` of `to_right` to the right neighbour, all four before it waits
  for any of them.
  §2 `neighbour_exchange` returns `(from_left, from_right)`: what the left neighbour sent
  travelling right (tag `tag`) and what the right neighbour sent travelling left (tag
  `tag + 1`).
  §3 `neighbour_exchange` completes all four requests, the sends as well as the receives,
  before it returns (one `MPI.Request.waitall` does it).
- `send_columns(comm, matrix, dest, tag, work)`, for a 2-D float64 `matrix`:
  §4 `send_columns` sends column j of `matrix` to `dest` with tag `tag + j`, by `Isend`, each
  from a contiguous buffer of its own (a column of a row-major matrix is not contiguous): no
  buffer is refilled for another column while its send may still be under way.
  §5 `send_columns` calls `work()` once, after posting every send and before waiting for any,
  and returns what `work()` returned.
  §6 `send_columns` completes every send before it returns (one `MPI.Request.Waitall` does
  it), so that the caller may change `matrix` as soon as it has returned.
- `receive_columns(comm, shape, source, tag)`:
  §7 `receive_columns` returns the float64 matrix of `shape` whose column j is the message
  from `source` with tag `tag + j`, each received by `Irecv` into a contiguous buffer of its
  own, all posted before it waits for any (then one `MPI.Request.Waitall` completes them).
- `smooth(comm, u, tag)`: a 1-D field is split along the ring (rank 0 holds its first values,
  rank 1 the next ones, and so on) and wraps around (after the last value of the last rank
  comes the first value of rank 0).
  §8 `smooth` returns a new array `new`, as long as `u`, with `new[i] = (u[i - 1] + u[i] +
  u[i + 1]) / 3` over the whole field: beside `u[0]` lies the left neighbour's last value, and
  beside `u[-1]` the right neighbour's first value. They arrive by `Irecv` while `u[:1]` and
  `u[-1:]` leave by `Isend`, tagged as in the ring (`tag` travelling right, `tag + 1`
  travelling left).
  §9 `smooth` calls `interior(u)` (given) for `new[1:-1]` after posting its four requests and
  before waiting for them, so that this computation overlaps the messages; then it completes
  all four, and only then computes `new[0]` and `new[-1]`.
  §10 `smooth` leaves `u` untouched.
- `receive_polling(comm, source, tag, idle)`:
  §11 `receive_polling` posts an `irecv` from `source` with tag `tag`, then asks
  `request.test()` whether it is done; each time it is not, it calls `idle()` and asks again.
  It returns `(message, idles)`, where `idles` counts the calls of `idle()`: zero when the
  message was there at the first test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from mpi4py import MPI

T = TypeVar("T")


def interior(u: np.ndarray) -> np.ndarray:
    """The smoothed values of u[1:-1], which need nothing from the neighbours (given)."""
    smoothed: np.ndarray = (u[:-2] + u[1:-1] + u[2:]) / 3
    return smoothed


def neighbour_exchange(
    comm: MPI.Intracomm, to_left: Any, to_right: Any, tag: int
) -> tuple[Any, Any]:
    """(from_left, from_right): the neighbours' objects, exchanged without blocking."""
    # TODO(kata): two irecv, two isend (tag going right, tag + 1 going left), one waitall.
    raise NotImplementedError


def send_columns(
    comm: MPI.Intracomm, matrix: np.ndarray, dest: int, tag: int, work: Callable[[], T]
) -> T:
    """Send each column of `matrix` to `dest`, running work() while they travel."""
    # TODO(kata): one Isend per column from a new contiguous copy; work(); Waitall.
    raise NotImplementedError


def receive_columns(
    comm: MPI.Intracomm, shape: tuple[int, int], source: int, tag: int
) -> np.ndarray:
    """The matrix whose columns `source` sent with tags tag, tag + 1, ..."""
    # TODO(kata): one Irecv per column into a buffer of its own; one Waitall; stack them.
    raise NotImplementedError


def smooth(comm: MPI.Intracomm, u: np.ndarray, tag: int) -> np.ndarray:
    """One 3-point smoothing step of the ring-wide field whose slice this rank holds."""
    # TODO(kata): post two Irecv and two Isend; interior(u) for new[1:-1]; Waitall; the edges.
    raise NotImplementedError


def receive_polling(
    comm: MPI.Intracomm, source: int, tag: int, idle: Callable[[], object]
) -> tuple[Any, int]:
    """(message, idles): the message, received by polling, and how often idle() ran."""
    # TODO(kata): request = comm.irecv(...); loop on request.test(), calling idle() while not done.
    raise NotImplementedError
