"""Each MPI rank's state, written by the rank and read by the launcher: which test it runs and
which MPI call it is blocked in.

One small file per rank, mapped into memory: the rank rewrites it at every blocking call (a
few microseconds), the launcher reads it while the job runs. A sequence number, odd while a
write is under way, lets the reader tell a torn read from a state.

This module imports neither pytest nor mpi4py: both sides use it.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
from pathlib import Path
from typing import Any

SLOT_BYTES = 1 << 16
HEADER = struct.Struct("<QI")  # sequence number, payload length

# phases a rank goes through (the launcher's verdicts depend on them)
RUNNING = "running"  # in a test, not inside a traced MPI call
BLOCKED = "blocked"  # inside a traced blocking MPI call (`call` says which)
FINISHED = "finished"  # done with every test it was given


def slot_path(job: Path, rank: int) -> Path:
    return job / f"rank{rank}.state"


def results_path(job: Path, rank: int) -> Path:
    return job / f"rank{rank}.results.jsonl"


def fault_path(job: Path, rank: int) -> Path:
    return job / f"rank{rank}.fault"


def go_on_path(job: Path, test: str) -> Path:
    """Made by the launcher's side when every rank got through `test`, which one failed: the
    failed ranks wait for it before they go on to the next test."""
    return job / f"go-on-{hashlib.sha1(test.encode()).hexdigest()[:16]}"


class Slot:
    """The writing side: one rank's state file."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, SLOT_BYTES)
            self._map = mmap.mmap(fd, SLOT_BYTES)
        finally:
            os.close(fd)
        self._sequence = 0

    def write(self, state: dict[str, Any]) -> None:
        payload = json.dumps(state, separators=(",", ":")).encode()
        if len(payload) > SLOT_BYTES - HEADER.size:  # a huge pending list: keep the head of it
            state = {**state, "pending": state.get("pending", [])[:20], "truncated": True}
            payload = json.dumps(state, separators=(",", ":")).encode()[: SLOT_BYTES - HEADER.size]
        self._sequence += 1  # odd: a write is under way
        self._map[: HEADER.size] = HEADER.pack(self._sequence, 0)
        self._map[HEADER.size : HEADER.size + len(payload)] = payload
        self._sequence += 1
        self._map[: HEADER.size] = HEADER.pack(self._sequence, len(payload))


def read(path: Path) -> tuple[int, dict[str, Any]] | None:
    """(sequence number, state) of one rank, or None before its first write or mid-write."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) < HEADER.size:
        return None
    sequence, length = HEADER.unpack_from(data)
    if sequence == 0 or sequence % 2 or length == 0:
        return None
    try:
        state = json.loads(data[HEADER.size : HEADER.size + length])
    except ValueError:  # overwritten while we read it
        return None
    if HEADER.unpack_from(path.read_bytes())[0] != sequence:
        return None
    return sequence, state
