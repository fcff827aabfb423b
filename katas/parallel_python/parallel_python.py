"""Kata `parallel_python`: Parallel Python (`pp`) on local workers and a cluster of ppservers.

Needs the `pp` package (Parallel Python, PyPI `pp` >= 1.7). Import it inside your functions
(`import pp`), as the given code does nowhere at module level: this file must stay importable
where pp is not installed, so that the tests can be skipped there with a reason.

Contract (the tests check each point):

- §1 `local_server(ncpus)` returns a `pp.Server` with exactly `ncpus` local worker processes and
  no remote ppservers. The caller destroys it (`server.destroy()`).
- §2 `run_all(server, function, argument_tuples, depfuncs=(), modules=())` submits one job per
  tuple, `function(*arguments)`, every job before it waits for any, so that the jobs run side
  by side on the server's workers.
  §3 `run_all` ships the functions in `depfuncs` with each job and imports the modules named in
  `modules` on the worker.
  §4 `run_all` returns the results in the order of the tuples, whatever order the jobs finish in.
  §5 `run_all` raises `RuntimeError` naming the arguments of the first failed job when a job
  raised on its worker: pp prints the worker's traceback and gives `None` as that job's result.
  (The functions used here never return None; they may return 0 or another false value.)
- §6 `count_primes_in_parallel(server, limit, parts)` returns how many primes lie below `limit`,
  computed as one `count_primes(start, stop)` job per range of `chunks(limit, parts)`.
  §7 `count_primes_in_parallel` ships `is_prime` and the `math` module with each job, which
  the worker needs to run `count_primes`.
- §8 `fibonacci_table(server, numbers)` computes `fibonacci(n)` for every n as pp jobs whose
  *callback* files each result under its n (`callbackargs`), and returns `{n: fibonacci(n)}`.
  §9 `fibonacci_table` returns its table complete: it waits for every job first (B2 ch.6's SMP
  recipe).
- §10 `connect(addresses, secret, timeout=10.0)` returns a `pp.Server` with no local workers
  that sends its jobs to the ppservers at `addresses` ("127.0.0.1:port"), authenticating with
  `secret`.
  §11 `connect` returns only once every address is an active node (`get_active_nodes()`).
  §12 `connect` raises `TimeoutError` when not every address has become an active node within
  `timeout` seconds (a wrong secret is refused by the ppservers, for instance), and not before.
  §13 `connect` destroys the server it gives up on before it raises `TimeoutError`.

The job functions (`is_prime`, `count_primes`, `fibonacci`, `meet`, `fail_on`) are given. pp sends
their *source code* to the workers, so they live at module level and name what they need.
"""

from __future__ import annotations

import math
import os
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any

# A pp.Server (typed loosely: pp is imported inside the functions, not here).
Server = Any
# How long `meet` waits for its partner: far longer than a job takes to reach a worker.
MEETING_SECONDS = 3.0


# -- job functions (given) --------------------------------------------------------------------


def is_prime(number: int) -> bool:
    """Whether `number` is prime (trial division up to its square root)."""
    if number < 2:
        return False
    return all(number % divisor for divisor in range(2, math.isqrt(number) + 1))


def count_primes(start: int, stop: int) -> int:
    """How many primes lie in [start, stop); calls is_prime."""
    return sum(1 for number in range(start, stop) if is_prime(number))


def fibonacci(n: int) -> int:
    """The n-th Fibonacci number, computed the slow recursive way (a CPU-bound job)."""
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


def meet(folder: str) -> tuple[int, int, bool]:
    """Wait until a second job has arrived in `folder` (at most MEETING_SECONDS).
    Returns (this worker's pid, its parent's pid, whether it met its partner)."""
    pathlib.Path(folder, str(os.getpid())).touch()
    # 3.0 written out: pp ships a function's source, not the constants of its module.
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if len(os.listdir(folder)) >= 2:
            return os.getpid(), os.getppid(), True
        time.sleep(0.01)
    return os.getpid(), os.getppid(), False


def fail_on(number: int, bad: int) -> int:
    """number * 2, but raises ValueError for `bad`."""
    if number == bad:
        raise ValueError(f"{number} is the bad number")
    return number * 2


def chunks(limit: int, parts: int) -> list[tuple[int, int]]:
    """Cut [0, limit) into `parts` consecutive (start, stop) ranges of nearly equal size."""
    size, remainder = divmod(limit, parts)
    ranges, start = [], 0
    for index in range(parts):
        stop = start + size + (1 if index < remainder else 0)
        ranges.append((start, stop))
        start = stop
    return ranges


# -- the kata ---------------------------------------------------------------------------------


def local_server(ncpus: int) -> Server:
    """A pp.Server with `ncpus` local workers and no remote servers."""
    # TODO(kata): import pp here and return pp.Server(ncpus=ncpus, ppservers=()).
    raise NotImplementedError


def run_all(
    server: Server,
    function: Callable[..., Any],
    argument_tuples: Sequence[tuple[Any, ...]],
    depfuncs: tuple[Callable[..., Any], ...] = (),
    modules: tuple[str, ...] = (),
) -> list[Any]:
    """function(*arguments) for every tuple, as pp jobs; RuntimeError if a job failed."""
    # TODO(kata): submit every job first (server.submit(function, arguments, depfuncs=...,
    # modules=...)), then call each job to get its result; a None result means it failed.
    raise NotImplementedError


def count_primes_in_parallel(server: Server, limit: int, parts: int) -> int:
    """The number of primes below `limit`, one count_primes job per range of chunks()."""
    # TODO(kata): run_all count_primes over chunks(limit, parts), shipping is_prime and
    # importing math on the workers, and add up the counts.
    raise NotImplementedError


def fibonacci_table(server: Server, numbers: Sequence[int]) -> dict[int, int]:
    """{n: fibonacci(n)}, filled in by job callbacks; complete when it returns."""
    # TODO(kata): submit fibonacci(n) with callback=<a function storing table[n] = result> and
    # callbackargs=(n,); then server.wait() before returning the table.
    raise NotImplementedError


def connect(addresses: Sequence[str], secret: str, timeout: float = 10.0) -> Server:
    """A pp.Server with no local workers, connected to every ppserver in `addresses`."""
    # TODO(kata): pp.Server(ncpus=0, ppservers=tuple(addresses), secret=secret); poll
    # get_active_nodes() until it lists every address; on timeout destroy() and raise.
    raise NotImplementedError
