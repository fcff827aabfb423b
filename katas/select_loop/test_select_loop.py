"""Kata `select_loop`: a single-threaded echo server on a selector and non-blocking sockets."""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from select_loop import HOST, EchoServer

# How long the server may wait in select() on each turn of the loop the tests drive.
TURN = 0.005
# A run gives up after this many turns in a row in which no client got or sent a byte;
# a correct server makes progress on nearly every turn.
IDLE_TURNS = 40
MAX_TURNS = 5000
# Every socket made during a test (the server's client sockets too) gets this timeout, so a
# socket left in blocking mode raises TimeoutError instead of hanging the test. A correct
# server never waits on a socket at all, so it never meets this timeout.
PATIENCE = 1.0
# The tests with a slow reader shrink the socket buffers on both ends of the connection to
# SMALL_BUFFER, so that the kernel holds well under 1 MiB of BIG: the server must keep most
# of BIG in its own buffer, and its send() calls find room for only part of it.
SMALL_BUFFER = 32 * 1024
BIG = bytes(range(256)) * (2 * 1024 * 1024 // 256)


class Client:
    """A non-blocking test client, stepped by the test between the server's turns."""

    def __init__(self, port: int, *, small_buffers: bool = False) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if small_buffers:
            shrink_buffers(self.sock)
        self.sock.connect((HOST, port))  # completes in the listen backlog, before any accept()
        self.sock.setblocking(False)
        self.to_send = bytearray()
        self.received = bytearray()
        self.ended = False  # the server closed the connection

    def step(self, *, read: bool = True) -> None:
        if self.to_send and not self.ended:
            try:
                sent = self.sock.send(self.to_send)
                del self.to_send[:sent]
            except BlockingIOError:
                pass
            except ConnectionError:
                self.ended = True
        while read and not self.ended:
            try:
                data = self.sock.recv(1 << 20)
            except BlockingIOError:
                break
            except ConnectionError:
                self.ended = True
                break
            if not data:
                self.ended = True
            self.received += data

    def progress(self) -> tuple[int, int, bool]:
        return len(self.received), len(self.to_send), self.ended


def shrink_buffers(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)


def turn(server: EchoServer) -> int:
    """One serve_once, with a plain-words failure when it waited on a single socket."""
    __tracebackhide__ = True
    try:
        return server.serve_once(TURN)
    except BlockingIOError as error:
        problem = (
            f"serve_once raised {error!r}: a non-blocking socket's send takes only what fits "
            f"in its buffer, and sendall() cannot wait for room on a non-blocking socket. Use "
            f"send(), which returns how many bytes it took, and keep the rest for later"
        )
    except TimeoutError:
        problem = (
            f"serve_once waited {PATIENCE:g} s on a single socket (the tests give every socket "
            f"that timeout; outside the tests it would have waited forever, and every other "
            f"client with it). Make accepted sockets non-blocking, and call recv or send only "
            f"once per event, when select() says the socket is ready"
        )
    pytest.fail(problem)


def run(
    server: EchoServer, clients: list[Client], done: Callable[[], bool], *, read: bool = True
) -> None:
    """Alternate server turns and client steps until `done()` or nothing moves any more."""
    idle = 0
    for _ in range(MAX_TURNS):
        if done() or idle >= IDLE_TURNS:
            return
        before = [c.progress() for c in clients]
        turn(server)
        for client in clients:
            client.step(read=read)
        idle = 0 if [c.progress() for c in clients] != before else idle + 1


@pytest.fixture(autouse=True)
def sockets_time_out() -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(PATIENCE)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


@pytest.fixture
def server() -> Iterator[EchoServer]:
    echo = EchoServer()
    try:
        yield echo
    finally:
        # Close everything the server may still hold, whatever its own close() does.
        mapping = echo.selector.get_map()
        for key in list(mapping.values()) if mapping is not None else []:
            key.fileobj.close()  # type: ignore[union-attr]
        for conn in list(echo.outgoing):
            conn.close()
        echo.listener.close()
        echo.selector.close()


@pytest.fixture
def connect(server: EchoServer) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(*, small_buffers: bool = False) -> Client:
        client = Client(server.port, small_buffers=small_buffers)
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            client.sock.close()


def test_a_client_gets_its_bytes_echoed(server: EchoServer, connect: Callable[..., Client]) -> None:
    client = connect()
    client.to_send += b"hello, select"
    run(server, [client], lambda: len(client.received) >= 13)
    assert client.received == b"hello, select", (
        f"sent b'hello, select' and got back {bytes(client.received)!r}"
    )


def test_the_server_makes_every_client_socket_non_blocking(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    clients = [connect(), connect()]
    run(server, clients, lambda: len(server.outgoing) == 2)
    modes = [conn.gettimeout() for conn in server.outgoing]
    assert len(modes) == 2, f"2 clients connected, and self.outgoing holds {len(modes)}"
    assert modes == [0.0, 0.0], (
        f"the server's sockets for its clients have the timeouts {modes}, not 0.0 "
        f"(non-blocking): on a blocking socket, send() waits until the client has taken "
        f"everything, and the whole loop, every other client included, waits with it. Call "
        f"conn.setblocking(False) right after accept()"
    )


def test_several_clients_are_served_at_once_in_one_thread(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    threads_before = set(threading.enumerate())
    silent = connect()
    talkers = [connect() for _ in range(3)]
    for number, talker in enumerate(talkers):
        talker.to_send += f"client {number} says hi".encode()
    run(server, [silent, *talkers], lambda: all(len(t.received) >= 15 for t in talkers))
    got = [bytes(t.received) for t in talkers]
    assert got == [f"client {n} says hi".encode() for n in range(3)], (
        f"three clients, while a fourth stayed connected and silent, got back {got}: the "
        f"server must serve every client whose socket is ready, in the same loop"
    )
    new_threads = [t.name for t in set(threading.enumerate()) - threads_before]
    assert not new_threads, (
        f"the server started threads {new_threads}: the point of a selector is that one thread "
        f"serves every client"
    )


def slow_client(server: EchoServer, connect: Callable[..., Client]) -> Client:
    """A client on a connection whose socket buffers are small at both ends."""
    __tracebackhide__ = True
    client = connect(small_buffers=True)
    run(server, [client], lambda: bool(server.outgoing))
    assert len(server.outgoing) == 1, "the server did not accept the client into self.outgoing"
    for conn in server.outgoing:
        shrink_buffers(conn)
    client.to_send += BIG
    return client


def test_a_large_echo_comes_back_whole_to_a_client_that_reads_slowly(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    client = slow_client(server, connect)
    # First the client only sends, so the server's sends soon find the socket full...
    run(server, [client], lambda: not client.to_send, read=False)
    # ...then it reads everything that comes back.
    run(server, [client], lambda: len(client.received) >= len(BIG))
    got = bytes(client.received)
    assert not client.ended, (
        f"the server closed the connection while the client was still sending ({len(got)} of "
        f"{len(BIG)} bytes came back): a recv() shorter than CHUNK is only what has arrived so "
        f"far; only b'' means the client has finished sending"
    )
    if got != BIG:
        same = next((i for i, (a, b) in enumerate(zip(got, BIG, strict=False)) if a != b), None)
        pytest.fail(
            f"the client sent {len(BIG)} bytes and got back {len(got)}, equal to what it sent "
            f"only up to byte {min(len(got), len(BIG)) if same is None else same}: send() on a "
            f"non-blocking socket takes only what fits in the socket's buffer and returns how "
            f"many bytes that was. Remove exactly those from the client's buffer, append new "
            f"data after the rest, and send the rest when select() reports the socket "
            f"writable again"
        )


def test_a_message_sent_one_byte_at_a_time_comes_back_whole(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    message = b"one byte at a time"
    client = connect()
    for byte in message:
        client.to_send += bytes([byte])
        client.step()
        turn(server)
    run(server, [client], lambda: len(client.received) >= len(message) or client.ended)
    assert client.received == message and not client.ended, (
        f"a message sent one byte per turn came back as {bytes(client.received)!r}"
        f"{' and then the server closed the connection' if client.ended else ''}: a recv() "
        f"shorter than you asked for is just what has arrived so far; only b'' means the "
        f"client has finished sending"
    )


def test_a_client_that_stops_sending_gets_everything_back_before_the_server_closes(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    client = slow_client(server, connect)
    run(server, [client], lambda: not client.to_send, read=False)
    client.sock.shutdown(socket.SHUT_WR)
    # The server reads the rest and then the end of input, while it still owes most of BIG.
    run(server, [client], lambda: bool(server.finishing) or not server.outgoing, read=False)
    run(server, [client], lambda: client.ended)
    assert len(client.received) == len(BIG), (
        f"the client sent {len(BIG)} bytes, stopped sending, and got back only "
        f"{len(client.received)} before the connection closed: when recv() returns b'', the "
        f"server must still send what it owes that client, and close only once all is sent"
    )
    assert client.ended, (
        "the client stopped sending and got its whole echo back, but the server never closed "
        "the connection: once a client has sent b'' and is owed nothing more, drop it"
    )


def test_an_idle_server_sleeps_in_select_instead_of_spinning(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    client = connect()
    client.to_send += b"ping"
    run(server, [client], lambda: len(client.received) >= 4)
    assert client.received == b"ping", f"sent b'ping' and got back {bytes(client.received)!r}"
    watched = {server.selector.get_key(conn).events for conn in server.outgoing}
    woken = [turn(server) for _ in range(3)]
    assert watched == {selectors.EVENT_READ} and woken == [0, 0, 0], (
        f"with nothing left to echo, three turns handled {woken} events: the server still "
        f"asks select() about writability, and a socket with room in its buffer is always "
        f"writable, so the loop spins instead of sleeping. Watch a socket for EVENT_WRITE "
        f"only while bytes wait to be sent to it"
    )


def test_the_server_forgets_a_client_that_disconnects(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    client = connect()
    client.to_send += b"bye"
    run(server, [client], lambda: len(client.received) >= 3)
    client.sock.close()
    run(server, [], lambda: len(server.selector.get_map()) == 1 and not server.outgoing)
    left = len(server.selector.get_map()) - 1
    assert left == 0 and not server.outgoing, (
        f"after its only client disconnected the server still watches {left} client "
        f"socket(s) and keeps {len(server.outgoing)} buffer(s): recv() returning b'' means the "
        f"client is gone; drop it (unregister, close, forget), or select() reports its socket "
        f"readable on every turn forever"
    )


def test_close_closes_every_client_the_listener_and_the_selector(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    client = connect()
    client.to_send += b"last words"
    run(server, [client], lambda: len(client.received) >= 10)
    assert client.received == b"last words", f"got back {bytes(client.received)!r}"
    server.close()
    client.sock.settimeout(PATIENCE)
    try:
        ended = client.sock.recv(1) == b""
    except TimeoutError:
        ended = False
    except ConnectionError:
        ended = True
    assert ended, (
        f"a connected client saw no close within {PATIENCE:g} s of server.close(): close "
        f"every client's socket, not only the listener"
    )
    assert server.listener.fileno() == -1, "close() left the listening socket open"
    assert server.selector.get_map() is None, "close() left the selector open"
