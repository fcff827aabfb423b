"""The warm servers' listening socket (plugins/mpi_warm.py, plugins/celery_warm.py).

A warm server imports its heavy modules first and only then listens; its clients wait for the
socket's name to appear. So the socket is bound under another name and renamed once it listens:
the name appearing means "ready", never "bound but not yet listening".
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def listen_when_ready(path: Path, backlog: int) -> socket.socket:
    """A SOCK_SEQPACKET Unix socket listening at `path`, which appears only now."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    staging = path.with_name(path.name + ".new")
    listener.bind(str(staging))
    listener.listen(backlog)
    os.rename(staging, path)
    return listener
