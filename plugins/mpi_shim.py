"""What the MPI launcher starts as each rank when a warm rank server runs (plugins/mpi_warm.py).

Run as `python -I -S plugins/mpi_shim.py -m pytest ARGS...`: it starts in about 20 ms, hands its
environment, working folder, arguments and its standard and PMI file descriptors to the server
named by KATA_MPI_WARM, which forks the real rank from a process that has pytest, the plugins,
Hypothesis and mpi4py imported already. The shim then waits for the rank's exit status and exits
with it, so that the launcher sees what it would have seen. When the shim dies (the job is
ended), the rank gets SIGIO from the closed connection and dies with it.

With no server to reach it becomes the ordinary rank: `python -m pytest ARGS...`.

Standard library only, and nothing else: this is the first Python the launcher starts.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys

SERVER_VARIABLE = "KATA_MPI_WARM"
PMI_FD_VARIABLE = "PMI_FD"  # the launcher's connection to this rank (MPICH's PMI-1)
STATUS = struct.Struct("!i")


def handed_fds() -> list[int]:
    fds = [0, 1, 2]
    pmi = os.environ.get(PMI_FD_VARIABLE, "")
    if pmi.isdigit():
        fds.append(int(pmi))
    return fds


def become_an_ordinary_rank(arguments: list[str]) -> None:
    os.execv(sys.executable, [sys.executable, *arguments])


def main() -> None:
    arguments = sys.argv[1:]
    server = os.environ.get(SERVER_VARIABLE, "")
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        connection.connect(server)
    except OSError:
        connection.close()
        become_an_ordinary_rank(arguments)
    fds = handed_fds()
    request = {"argv": arguments, "env": dict(os.environ), "cwd": os.getcwd(), "fds": fds}
    socket.send_fds(connection, [json.dumps(request).encode()], fds)
    # A signal that ends this shim (the launcher's Ctrl-C, the job's SIGKILL) closes the
    # connection, and that ends the rank.
    answer = connection.recv(STATUS.size)
    if len(answer) != STATUS.size:
        sys.stderr.write("mpi_shim: the warm rank server went away before the rank ended\n")
        sys.exit(1)
    (code,) = STATUS.unpack(answer)
    if code < 0:  # killed by a signal: end the same way, for the launcher to report
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if __name__ == "__main__":
    main()
