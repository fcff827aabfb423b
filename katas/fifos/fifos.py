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

import os  # noqa: F401 (mkfifo, open, read, write, close: the kata is about these calls)
import struct
from collections.abc import Iterable

# Each message travels as its length (4 bytes, big-endian, unsigned) followed by its bytes.
HEADER = struct.Struct(">I")


def make_fifo(path: str) -> None:
    """Create a named pipe at `path`, readable and writable by its owner."""
    # TODO(kata): os.mkfifo(path, 0o600).
    raise NotImplementedError


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data` to `fd`, however many os.write calls it takes."""
    # TODO(kata): loop: n = os.write(fd, rest); drop the n bytes written; stop when none is left.
    raise NotImplementedError


def read_exactly(fd: int, count: int) -> bytes:
    """Read `count` bytes from `fd`; fewer only at end of file."""
    # TODO(kata): loop on os.read(fd, bytes still missing); b"" from os.read means end of file.
    raise NotImplementedError


def send_messages(path: str, messages: Iterable[bytes]) -> None:
    """Open the FIFO for writing, send each message with its length header, then close it."""
    # TODO(kata): fd = os.open(path, os.O_WRONLY); write HEADER.pack(len(m)) + m for each
    # message with write_all; close the fd in a finally block.
    raise NotImplementedError


def receive_messages(path: str) -> list[bytes]:
    """Open the FIFO for reading and return every message until end of file."""
    # TODO(kata): fd = os.open(path, os.O_RDONLY); repeat: read a header with read_exactly (b""
    # means done, a partial header or payload means EOFError), then its payload; close the fd
    # in a finally block.
    raise NotImplementedError
