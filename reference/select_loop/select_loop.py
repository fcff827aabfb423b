"""Kata `select_loop`: a single-threaded echo server on a selector and non-blocking sockets.

`EchoServer()` (given) listens on 127.0.0.1 on a port the system picks (`port`), with a
non-blocking listening socket registered in `selector` (a `selectors.DefaultSelector`) for
reading. `outgoing` maps each connected client's socket to the bytes the server still owes
it; `finishing` holds the clients that have stopped sending; `drop(conn)` (given) forgets a
client: it unregisters, closes and removes it.

Contract (the tests check each point; they drive the server by calling `serve_once` in a
loop, in the test's own thread, while their clients send and read between the turns):

- §1 `serve_once(timeout)` is one turn of the event loop: it waits in
  `selector.select(timeout)` until a socket is ready or `timeout` seconds have passed, never
  longer and never without waiting.
  §2 `serve_once` handles every ready event of its turn: the listener is readable -> `accept`;
  a client is readable -> `receive`; a client is writable -> `send` (unless `receive` has
  just dropped it).
  §3 `serve_once` returns the number of events it handled (0 when it had nothing to do).
  §4 `serve_once` never blocks on one socket: many clients are served at once, in this one
  thread.
- §5 `accept()` accepts one connection, makes it non-blocking, gives it an empty `outgoing`
  buffer and registers it for reading only.
- §6 `receive(conn)` makes one `recv` call of up to `CHUNK` bytes, appends the data to
  `outgoing[conn]` (after any bytes still owed), and watches the socket for writing too.
  §7 A short read is normal: `receive` takes it for what has arrived so far, never for the
  end of the client's data.
  §8 When `recv` returns `b""` (the client will send nothing more), `receive` adds the client
  to `finishing`, drops it at once if nothing is owed to it, and else watches it for writing
  only.
- §9 `send(conn)` makes one `send` call with what is owed to `conn` and removes from
  `outgoing[conn]` only the bytes that `send` reports as sent (the socket takes only what
  fits in its buffer); the rest stays owed, and the socket stays watched for writing.
  §10 Once nothing is owed to a client any more, `send` drops it if it is finishing, and
  otherwise watches it for reading only: a socket with room in its buffer is always
  writable, so watching it for writing with nothing to send would wake the loop for nothing
  on every turn.
- §11 A client whose connection breaks (`recv` or `send` raises `ConnectionError`, e.g. the
  client reset it) is dropped, and the loop goes on serving the others.
- §12 `close()` drops every client, unregisters and closes the listener, and closes the
  selector.
"""

from __future__ import annotations

import selectors
import socket

HOST = "127.0.0.1"
CHUNK = 65536


class EchoServer:
    """An echo server: one thread, one selector, any number of clients."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((HOST, 0))
        self.listener.listen()
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.port: int = self.listener.getsockname()[1]
        self.outgoing: dict[socket.socket, bytearray] = {}
        self.finishing: set[socket.socket] = set()

    def drop(self, conn: socket.socket) -> None:
        """Forget a client: stop watching its socket, close it, and discard its buffers."""
        self.selector.unregister(conn)
        conn.close()
        del self.outgoing[conn]
        self.finishing.discard(conn)

    def serve_once(self, timeout: float) -> int:
        """One turn: wait up to `timeout` for ready sockets, handle each; return how many."""
        # select() is the only place the loop waits; everything after it finds data or room.
        events = self.selector.select(timeout)
        for key, mask in events:
            conn = key.fileobj
            assert isinstance(conn, socket.socket)
            if conn is self.listener:
                self.accept()
                continue
            if mask & selectors.EVENT_READ:
                self.receive(conn)
            if mask & selectors.EVENT_WRITE and conn in self.outgoing:
                self.send(conn)
        return len(events)

    def accept(self) -> None:
        """Accept one client: non-blocking, an empty buffer, watched for reading."""
        conn, _address = self.listener.accept()
        # A blocking client socket could stall the whole loop on one slow client.
        conn.setblocking(False)
        self.outgoing[conn] = bytearray()
        self.selector.register(conn, selectors.EVENT_READ)

    def receive(self, conn: socket.socket) -> None:
        """One recv: queue the data for echoing; on b"" the client is finishing."""
        try:
            data = conn.recv(CHUNK)
        except ConnectionError:
            self.drop(conn)
            return
        # Only b"" means the client is done; a short read is just what has arrived so far.
        if not data:
            self.finishing.add(conn)
            if self.outgoing[conn]:
                self.selector.modify(conn, selectors.EVENT_WRITE)
            else:
                self.drop(conn)
            return
        self.outgoing[conn] += data
        self.selector.modify(conn, selectors.EVENT_READ | selectors.EVENT_WRITE)

    def send(self, conn: socket.socket) -> None:
        """One send: keep what the socket did not take; stop watching for writing when done."""
        pending = self.outgoing[conn]
        try:
            sent = conn.send(pending)
        except ConnectionError:
            self.drop(conn)
            return
        # send() may take only part of the buffer: remove exactly what it reports as sent.
        del pending[:sent]
        if pending:
            return
        if conn in self.finishing:
            self.drop(conn)
        else:
            self.selector.modify(conn, selectors.EVENT_READ)

    def close(self) -> None:
        """Drop every client, close the listener and the selector."""
        # Clients first: a listener closed alone would leave their sockets open.
        for conn in list(self.outgoing):
            self.drop(conn)
        self.selector.unregister(self.listener)
        self.listener.close()
        self.selector.close()
