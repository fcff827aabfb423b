"""Kata `mpi_deadlock`: exchanges between ranks that cannot deadlock, whatever the message size.

A blocking `send` may return as soon as MPI has copied the message into a buffer of its own
("eager" sending, usual for small messages) or only once the matching receive has taken it
(usual for large ones, and always so for `ssend`): the MPI standard allows both. Two ranks
that both send first and receive afterwards each wait for the other to receive: the exchange
works while messages are small and hangs once they are large. Under the tests every send
waits for its receive, so such an exchange hangs every time, at 8 bytes as at 8 MB, and the
test fails within a second saying which rank waits for which.

Partners: ranks pair up 0 with 1, 2 with 3, and so on; rank r's partner is `r ^ 1`. When the
number of ranks is odd, the last rank has no partner: its partner is `MPI.PROC_NULL`, the rank
"nobody", with which a send or a receive completes at once and moves nothing (a `recv` from
it returns None, a buffer receive leaves the buffer as it was).

The ring: rank r's right neighbour is `(r + 1) % size`, its left neighbour `(r - 1) % size`.
With one rank, the rank is its own left and right neighbour.

Contract (the tests check each point):

- `partner(comm)`:
  §1 `partner` returns this rank's partner in `comm`: `comm.rank ^ 1`, or `MPI.PROC_NULL` when
  no rank has that number (on the last rank of an odd number of ranks).
- `swap_with_sendrecv(comm, value, tag)`:
  §2 `swap_with_sendrecv` sends `value` (any picklable object) to this rank's partner and
  returns the object the partner sent, both with tag `tag`, in one `comm.sendrecv` call, which
  sends and receives at once so that neither half waits for the other.
  §3 `swap_with_sendrecv` returns None on a rank without a partner.
- `swap_arrays(comm, array, tag)`, where every rank passes an array of the same shape and dtype:
  §4 `swap_arrays` returns a new array holding the partner's `array` (tag `tag`), received
  with one `comm.Sendrecv` call into a buffer of its own; `array` itself is left untouched.
  §5 `swap_arrays` returns a copy of `array` on a rank without a partner.
- `swap_even_odd(comm, value, tag)`:
  §6 `swap_even_odd` returns the object the partner sent with tag `tag` (None without a
  partner), like `swap_with_sendrecv`, but exchanged with a blocking `send` and a blocking
  `recv`, never with `sendrecv`.
  §7 `swap_even_odd` sends first, then receives, on an even rank, and receives first, then
  sends, on an odd rank: in each pair one rank sends while the other receives.
- `ring_shift(comm, value, tag)`:
  §8 `ring_shift` sends `value` to the right neighbour and returns what the left neighbour
  sent (tag `tag`), on any number of ranks from 2 up, with a blocking `send` and a blocking
  `recv` (never `sendrecv`), ordered by parity: even ranks send first, odd ranks receive
  first.
  §9 `ring_shift` returns `value` itself, without sending, when `comm` has a single rank: a
  rank that is its own neighbour would wait in its send for a receive that comes only after it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mpi4py import MPI


def partner(comm: MPI.Intracomm) -> int:
    """This rank's partner: rank ^ 1, or MPI.PROC_NULL when there is no such rank."""
    # TODO(kata): comm.rank ^ 1 when it is below comm.size, else MPI.PROC_NULL.
    raise NotImplementedError


def swap_with_sendrecv(comm: MPI.Intracomm, value: Any, tag: int) -> Any:
    """The partner's value, exchanged for ours in one sendrecv (None without a partner)."""
    # TODO(kata): one comm.sendrecv(value, dest=..., sendtag=tag, source=..., recvtag=tag).
    raise NotImplementedError


def swap_arrays(comm: MPI.Intracomm, array: np.ndarray, tag: int) -> np.ndarray:
    """A new array holding the partner's array (a copy of ours without a partner)."""
    # TODO(kata): a receive buffer that starts as a copy of array; one comm.Sendrecv into it.
    raise NotImplementedError


def swap_even_odd(comm: MPI.Intracomm, value: Any, tag: int) -> Any:
    """The partner's value: even ranks send then receive, odd ranks receive then send."""
    # TODO(kata): by the parity of comm.rank, comm.send(...) then comm.recv(...), or the reverse.
    raise NotImplementedError


def ring_shift(comm: MPI.Intracomm, value: Any, tag: int) -> Any:
    """What the left neighbour sent; `value` goes to the right neighbour."""
    # TODO(kata): alone, return value; else send right and receive from the left, even ranks
    # sending first and odd ranks receiving first.
    raise NotImplementedError
