"""Kata `sockets`: a time server and a file server on blocking TCP sockets, a thread per client.

TCP carries a stream of bytes, not messages: one `send` may take only part of what it is
given, and one `recv` returns whatever has arrived, from 1 byte up to the size asked for. So
every message here is framed: its length as 8 bytes (an unsigned integer, big-endian, which
is network byte order), then its payload. `HOST` is the one address anything here binds or
connects to; `POLL` and `CHUNK` are given.

Contract (the tests check each point; they hand `send_message`, `recv_exactly` and the
handlers stand-in sockets that deliver bytes 1 at a time or in odd-sized pieces, and run
`serve` in a thread of their own, with real clients on 127.0.0.1):

- §1 `send_message(sock, payload)` sends one message: the payload's length as 8 bytes,
  unsigned and big-endian (`struct.pack(">Q", len(payload))`), then the payload.
  §2 `send_message` sends every byte with `sendall`: one `send` call may take only part of
  what it is given.
- §3 `recv_exactly(sock, n)` returns exactly `n` bytes, calling `sock.recv` as many times as
  it takes: one `recv` returns what has arrived so far, maybe a single byte.
  §4 `recv_exactly` never asks `recv` for more than the bytes still missing, so the bytes of
  the next message stay in the socket; `recv_exactly(sock, 0)` returns `b""` at once.
  §5 `recv_exactly` raises `ConnectionError` when `recv` returns `b""` (the other side closed
  the connection) before `n` bytes have arrived, with a message saying how many of the `n`
  bytes arrived; it never calls `recv` again after `b""`.
- §6 `recv_message(sock)` receives one message sent by `send_message`: the 8 bytes of length
  with `recv_exactly`, then exactly that many bytes, and returns those (the payload).
- §7 `listen(port)` returns a TCP socket bound to `HOST` and `port`, listening: loopback only,
  never `gethostname()`, `""` or `"0.0.0.0"`, which put the server on the network.
  §8 When binding fails (the port is taken), `listen` closes its socket and lets the
  `OSError` through.
- §9 `serve(listener, handle, stop)` accepts connections on `listener` until `stop` is set
  and runs `handle(conn)` for each in a thread of its own: a client that keeps its
  connection open never holds up the others.
  §10 `serve` closes each connection once its `handle` has returned, also when `handle`
  raised, and goes on serving.
  §11 `serve` looks at `stop` at least every `POLL` seconds (`listener.settimeout(POLL)`:
  `accept` then raises `TimeoutError` when nobody connects in time).
  §12 Once `stop` is set, `serve` stops accepting, waits until every client thread it
  started has finished, and returns.
- §13 `send_time(conn)` sends one message: `str(time.time())` in ASCII.
  §14 `get_time(port)` connects to `HOST` on `port`, receives one message and returns the
  time in it as a float.
- §15 `send_file(conn, folder)` receives one message, a file name in UTF-8, and sends the file
  of that name in `folder` back as one message: its size in the 8 bytes of length, then its
  bytes, read and sent `CHUNK` bytes at a time (a file never sits in memory whole).
  §16 `fetch_file(port, name)` connects to `HOST` on `port`, sends `name` in UTF-8 as one
  message, and returns the payload of the one message it receives back.
- §17 `get_time` and `fetch_file` close their socket before they return, also when they
  raise (e.g. the connection broke in the middle of a message).
"""

from __future__ import annotations

import socket
import struct  # noqa: F401  # struct.pack/unpack(">Q", ...): the 8 bytes of length
import threading
import time  # noqa: F401  # time.time() for send_time
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"
POLL = 0.05  # seconds serve() may wait in accept() before it looks at its stop event again
CHUNK = 1024  # bytes of a file send_file() reads and sends at a time, as B1's server does


def send_message(sock: socket.socket, payload: bytes) -> None:
    """Send one message: the payload's length (8 bytes, big-endian), then the payload."""
    # TODO(kata): sendall the 8-byte length (struct.pack(">Q", ...)) and the payload.
    raise NotImplementedError


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Receive exactly `n` bytes, however `recv` cuts them up; ConnectionError at early EOF."""
    # TODO(kata): loop on sock.recv(bytes still missing) until n bytes; b"" -> ConnectionError.
    raise NotImplementedError


def recv_message(sock: socket.socket) -> bytes:
    """Receive one message sent by send_message and return its payload."""
    # TODO(kata): recv_exactly the 8-byte length, unpack it, recv_exactly that many bytes.
    raise NotImplementedError


def listen(port: int) -> socket.socket:
    """A TCP socket bound to 127.0.0.1:`port`, listening; closed again if binding fails."""
    # TODO(kata): socket.socket(AF_INET, SOCK_STREAM), bind((HOST, port)), listen(); on
    # OSError close the socket and re-raise.
    raise NotImplementedError


def serve(
    listener: socket.socket, handle: Callable[[socket.socket], None], stop: threading.Event
) -> None:
    """Serve each client in a thread of its own until `stop` is set; then wait for them."""
    # TODO(kata): settimeout(POLL); until stop: accept (TimeoutError -> look at stop again),
    # start a thread that runs handle(conn) and closes conn; at the end join every thread.
    raise NotImplementedError


def send_time(conn: socket.socket) -> None:
    """Send the current time, str(time.time()) in ASCII, as one message."""
    # TODO(kata): send_message with the time as ASCII text.
    raise NotImplementedError


def get_time(port: int) -> float:
    """Ask the time server on 127.0.0.1:`port` for the time."""
    # TODO(kata): connect in a with-block, recv_message, decode, float().
    raise NotImplementedError


def send_file(conn: socket.socket, folder: Path) -> None:
    """Receive a file name, send that file of `folder` back as one message, CHUNK at a time."""
    # TODO(kata): recv_message the name; open the file; sendall its size as 8 bytes, then
    # each CHUNK you read, until read() returns b"".
    raise NotImplementedError


def fetch_file(port: int, name: str) -> bytes:
    """Ask the file server on 127.0.0.1:`port` for the file `name`; return its bytes."""
    # TODO(kata): connect in a with-block, send_message the name, return recv_message.
    raise NotImplementedError
