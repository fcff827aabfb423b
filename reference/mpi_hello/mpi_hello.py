"""Kata `mpi_hello`: one program on every rank, and each rank's own share of the work.

`mpiexec -n N python program.py` starts N copies of one program at the same time (SPMD:
single program, multiple data). The processes that can send messages to each other form a
*communicator*; in it each process has a *rank*, a number from 0 to `comm.size - 1`. The copies
run the same code, so the rank is the only thing that tells one copy which part of the job is
its own.

Every function here takes the communicator as its first argument, and everything it needs to
know about the processes comes from that communicator: the tests hand you duplicates and
parts of `MPI.COMM_WORLD` whose ranks are numbered differently from the world's.

Contract (the tests check each point):

- `greeting(comm)`:
  §1 `greeting` returns `"Hello from rank R of N"`, where R is this process's rank in `comm`
  (counted from 0) and N is the number of ranks in `comm`.
- `my_share(comm, start, stop)`, called on every rank of `comm` with the same `start <= stop`:
  §2 `my_share` returns a `range` with step 1 that lies inside `range(start, stop)`: this
  rank's own contiguous block of it.
  §3 `my_share`'s blocks, taken in rank order, cut `range(start, stop)` into consecutive
  pieces: every number of the range is in exactly one rank's block, and rank r's block comes
  right before rank r + 1's.
  §4 `my_share`'s blocks differ in length by at most one, and the longer blocks go to the
  lowest ranks: 10 numbers on 4 ranks make blocks of 3, 3, 2 and 2 numbers.
  §5 `my_share` gives an empty range to every rank past the last number when there are fewer
  numbers than ranks (and to every rank when `start == stop`), and the whole range to the one
  rank of a communicator of size 1.
- `parallel_sum(comm, start, stop, term)`, called on every rank of `comm` with the same
  arguments:
  §6 `parallel_sum` calls `term` only on the numbers of this rank's own block (`my_share`),
  once each: no rank does another rank's work.
  §7 `parallel_sum` returns the sum of `term(i)` over all of `range(start, stop)` on every rank
  of `comm`: each rank adds up its own block's terms, and `comm.allreduce` adds up those partial
  sums and hands the total to every rank.
"""

from __future__ import annotations

from collections.abc import Callable

from mpi4py import MPI


def greeting(comm: MPI.Intracomm) -> str:
    """The sentence "Hello from rank R of N": this process's rank in `comm`, and comm's size."""
    # The communicator given, never COMM_WORLD: the same process has another rank in a part.
    return f"Hello from rank {comm.rank} of {comm.size}"


def my_share(comm: MPI.Intracomm, start: int, stop: int) -> range:
    """This rank's contiguous block of range(start, stop); lengths differ by at most one."""
    # The first `extra` ranks take one leftover each, so rank r begins r * base + min(r, extra) in.
    base, extra = divmod(stop - start, comm.size)
    rank = comm.rank
    begin = start + rank * base + min(rank, extra)
    return range(begin, begin + base + (1 if rank < extra else 0))


def parallel_sum(comm: MPI.Intracomm, start: int, stop: int, term: Callable[[int], int]) -> int:
    """The sum of term(i) over range(start, stop), each rank computing only its own block."""
    # Each rank works on its own block only; allreduce (not reduce) leaves the total on every rank.
    partial = sum(term(i) for i in my_share(comm, start, stop))
    total: int = comm.allreduce(partial, op=MPI.SUM)
    return total
