"""Kata `fifos`: named pipes (os.mkfifo) between two unrelated processes, after B2 ch.6.

Contract (the tests check each point, running the writer and the reader as two separate
`python -c ...` programs that share nothing but the FIFO's path; POSIX only):

- §1 `make_fifo(path)` creates a named pipe (a FIFO) at `path` that only its owner can read and
  write (mode 0o600).
  §2 `make_fifo` raises `FileExistsError` when something already exists at `path`, and leaves
  that file alone.
- §3 `write_all(fd, data)` writes every byte of `data` to the file descriptor `fd`, each byte
  once and in order: `os.write` may write fewer bytes than it was given (it returns how many),
  so `write_all` goes on with the bytes not written yet.
- §4 `read_exactly(fd, count)` reads from `fd` until it has `count` bytes and returns exactly
  those, leaving whatever follows in the pipe: `os.read` may return fewer bytes than asked for
  (a *short read*: whatever the pipe holds right now), so `read_exactly` keeps asking for the
  bytes still missing.
  §5 `read_exactly` returns fewer than `count` bytes only at end of file (every writer gone:
  `os.read` returns `b""`), and then returns the bytes it got, `b""` if none.
- §6 `send_messages(path, messages)` opens the FIFO for writing, which waits until a reader has
  opened it.
  §7 `send_messages` writes each message as a 4-byte big-endian length (`HEADER`) followed by
  its bytes; empty messages are allowed.
  §8 `send_messages` closes the FIFO when it is done, and also when writing fails, so that the
  reader sees end of file.
- §9 `receive_messages(path)` opens the FIFO for reading, which waits until a writer has
  opened it.
  §10 `receive_messages` reads framed messages until end of file at a frame boundary and
  returns them in order, empty messages included.
  §11 `receive_messages` raises `EOFError` when the stream ends inside a frame (a writer died in
  the middle of a header or of a message).
  §12 `receive_messages` closes the FIFO when it returns and when it raises.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable

# Each message travels as its length (4 bytes, big-endian, unsigned) followed by its bytes.
HEADER = struct.Struct(">I")


def make_fifo(path: str) -> None:
    """Create a named pipe at `path`, readable and writable by its owner."""
    # A FIFO is a file-system name for a pipe: unrelated processes find it by its path.
    os.mkfifo(path, 0o600)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data` to `fd`, however many os.write calls it takes."""
    rest = memoryview(data)
    while rest:
        # os.write may take only part of the data (a signal, a non-blocking or full pipe).
        written = os.write(fd, rest)
        rest = rest[written:]


def read_exactly(fd: int, count: int) -> bytes:
    """Read `count` bytes from `fd`; fewer only at end of file."""
    chunks: list[bytes] = []
    missing = count
    while missing:
        # A pipe hands over what it holds right now, at most 64 KiB: a short read is normal.
        chunk = os.read(fd, missing)
        if not chunk:
            break  # end of file: every writer has closed its end
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def send_messages(path: str, messages: Iterable[bytes]) -> None:
    """Open the FIFO for writing, send each message with its length header, then close it."""
    # Opening a FIFO for writing blocks until a reader opens it: the two processes meet here.
    fd = os.open(path, os.O_WRONLY)
    try:
        for message in messages:
            # The length header tells the reader where one message ends and the next begins.
            write_all(fd, HEADER.pack(len(message)) + message)
    finally:
        # The reader sees end of file only when every write end is closed.
        os.close(fd)


def receive_messages(path: str) -> list[bytes]:
    """Open the FIFO for reading and return every message until end of file."""
    # Opening a FIFO for reading blocks until a writer opens it.
    fd = os.open(path, os.O_RDONLY)
    try:
        messages: list[bytes] = []
        while True:
            header = read_exactly(fd, HEADER.size)
            if not header:
                return messages  # end of file between two frames: the writer is done
            if len(header) < HEADER.size:
                raise EOFError(f"the stream ended inside a header ({len(header)} of 4 bytes)")
            (length,) = HEADER.unpack(header)
            payload = read_exactly(fd, length)
            if len(payload) < length:
                raise EOFError(
                    f"the stream ended inside a message ({len(payload)} of {length} bytes)"
                )
            messages.append(payload)
    finally:
        # Closed on every path, the error ones included: a leaked descriptor keeps the pipe open.
        os.close(fd)
