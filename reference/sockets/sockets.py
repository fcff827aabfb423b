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

import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"
POLL = 0.05  # seconds serve() may wait in accept() before it looks at its stop event again
CHUNK = 1024  # bytes of a file send_file() reads and sends at a time, as B1's server does


def send_message(sock: socket.socket, payload: bytes) -> None:
    """Send one message: the payload's length (8 bytes, big-endian), then the payload."""
    # One sendall for both: send() may take part of it, and sendall loops until all is gone.
    sock.sendall(struct.pack(">Q", len(payload)) + payload)


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """Receive exactly `n` bytes, however `recv` cuts them up; ConnectionError at early EOF."""
    data = bytearray()
    while len(data) < n:
        # Ask only for what is missing (any more would eat the start of the next message), and
        # 64 KiB at most: recv(size) allocates size bytes, and n comes from the other side.
        chunk = sock.recv(min(n - len(data), 65536))
        # b"" is the end of the stream: nothing more will come, so waiting again would spin.
        if not chunk:
            raise ConnectionError(
                f"the connection closed after {len(data)} of {n} bytes of the message"
            )
        data += chunk
    return bytes(data)


def recv_message(sock: socket.socket) -> bytes:
    """Receive one message sent by send_message and return its payload."""
    # The length comes first, so the receiver knows where this message ends.
    (length,) = struct.unpack(">Q", recv_exactly(sock, 8))
    return recv_exactly(sock, length)


def listen(port: int) -> socket.socket:
    """A TCP socket bound to 127.0.0.1:`port`, listening; closed again if binding fails."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Loopback only: nobody outside this machine can reach the server.
        listener.bind((HOST, port))
        listener.listen()
    except OSError:
        listener.close()
        raise
    return listener


def serve(
    listener: socket.socket, handle: Callable[[socket.socket], None], stop: threading.Event
) -> None:
    """Serve each client in a thread of its own until `stop` is set; then wait for them."""

    def converse(conn: socket.socket) -> None:
        # The with-block closes the connection however handle ends, an exception included.
        with conn:
            handle(conn)

    # accept() gives up every POLL seconds, so the loop sees stop even when nobody connects.
    listener.settimeout(POLL)
    threads: list[threading.Thread] = []
    while not stop.is_set():
        try:
            conn, _address = listener.accept()
        except TimeoutError:
            continue
        # A thread per client: one that stays connected holds up only its own thread.
        thread = threading.Thread(target=converse, args=(conn,), name="sockets-client")
        thread.start()
        threads = [t for t in threads if t.is_alive()]
        threads.append(thread)
    # A clean stop: every conversation in progress ends before serve returns.
    for thread in threads:
        thread.join()


def send_time(conn: socket.socket) -> None:
    """Send the current time, str(time.time()) in ASCII, as one message."""
    # Framed like every message, so the client knows where the time ends.
    send_message(conn, str(time.time()).encode("ascii"))


def get_time(port: int) -> float:
    """Ask the time server on 127.0.0.1:`port` for the time."""
    # The with-block closes the socket on every way out, an exception included.
    with socket.create_connection((HOST, port)) as sock:
        return float(recv_message(sock).decode("ascii"))


def send_file(conn: socket.socket, folder: Path) -> None:
    """Receive a file name, send that file of `folder` back as one message, CHUNK at a time."""
    name = recv_message(conn).decode("utf-8")
    with open(Path(folder) / name, "rb") as file:
        # The size is known before the first byte goes out: it is the message's length.
        size = os.fstat(file.fileno()).st_size
        conn.sendall(struct.pack(">Q", size))
        while chunk := file.read(CHUNK):
            conn.sendall(chunk)


def fetch_file(port: int, name: str) -> bytes:
    """Ask the file server on 127.0.0.1:`port` for the file `name`; return its bytes."""
    # The with-block closes the socket on every way out, an exception included.
    with socket.create_connection((HOST, port)) as sock:
        send_message(sock, name.encode("utf-8"))
        return recv_message(sock)
