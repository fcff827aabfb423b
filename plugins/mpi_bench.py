"""Benchmark: the reference ring allreduce (point-to-point calls only) against MPI's Allreduce.

    python -m plugins.mpi_bench [--sizes 2,4] [--bytes 1024,8388608] [--repeats 20]

launches itself under the launcher the MPI runner uses, once per number of ranks, with the real
(untraced) communicator, and prints one line per (ranks, message size): the median seconds of
each, and their ratio. The ring is the algorithm behind data-parallel training: each rank
sends and receives 2 (n - 1) / n of the vector, whatever n, so on many ranks it approaches
the bandwidth bound; on 2 cores with 4 ranks it mostly measures the oversubscription.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

from plugins.backends import mpi_launcher
from plugins.mpi_runner import RANK_ENVIRONMENT

REFERENCE = (
    Path(__file__).resolve().parent.parent / "reference" / "mpi_patterns" / "mpi_patterns.py"
)
RANK_FLAG = "--rank"


def _reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mpi_patterns_reference", REFERENCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rank(sizes_in_bytes: list[int], repeats: int) -> None:
    """One rank's side: time both algorithms on vectors of float64; rank 0 prints JSON lines."""
    import numpy as np
    from mpi4py import MPI

    ring_allreduce = _reference().ring_allreduce
    comm = MPI.COMM_WORLD
    for nbytes in sizes_in_bytes:
        vector = np.arange(max(1, nbytes // 8), dtype=np.float64) + comm.rank
        timings: dict[str, list[float]] = {"ring": [], "Allreduce": []}
        expected = np.empty_like(vector)
        for _ in range(repeats):
            comm.Barrier()
            started = time.perf_counter()
            result = ring_allreduce(comm, vector)
            timings["ring"].append(time.perf_counter() - started)
            comm.Barrier()
            started = time.perf_counter()
            comm.Allreduce(vector, expected, op=MPI.SUM)
            timings["Allreduce"].append(time.perf_counter() - started)
        assert np.allclose(result, expected), "the ring allreduce disagrees with Allreduce"
        slowest = {
            name: comm.allreduce(statistics.median(t), op=MPI.MAX) for name, t in timings.items()
        }
        if comm.rank == 0:
            print(json.dumps({"ranks": comm.size, "bytes": nbytes, **slowest}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,4", help="numbers of ranks (default 2,4)")
    parser.add_argument(
        "--bytes", default="1024,8388608", help="message sizes (default 1 KB, 8 MB)"
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(RANK_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes_in_bytes = [int(b) for b in args.bytes.split(",")]
    if args.rank:
        _rank(sizes_in_bytes, args.repeats)
        return 0
    launcher = mpi_launcher()
    if launcher is None:
        print("no MPI launcher: pip install -e '.[mpi]'", file=sys.stderr)
        return 1
    print(f"{'ranks':>5} {'bytes':>9} {'ring s':>10} {'Allreduce s':>12} {'ratio':>6}")
    for ranks in (int(n) for n in args.sizes.split(",")):
        command = [
            *launcher,
            "-n",
            str(ranks),
            sys.executable,
            "-m",
            "plugins.mpi_bench",
            RANK_FLAG,
            "--bytes",
            args.bytes,
            "--repeats",
            str(args.repeats),
        ]
        env = {**RANK_ENVIRONMENT, **os.environ}  # the ranks' transport, as under test
        output = subprocess.run(
            command, capture_output=True, text=True, timeout=600, check=True, env=env
        )
        for line in output.stdout.splitlines():
            row = json.loads(line)
            ratio = row["ring"] / row["Allreduce"]
            print(
                f"{row['ranks']:>5} {row['bytes']:>9} {row['ring']:>10.6f} "
                f"{row['Allreduce']:>12.6f} {ratio:>6.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
