"""Kata `select_loop`: a single-threaded echo server on a selector and non-blocking sockets."""

from __future__ import annotations

import fcntl
import selectors
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from select_loop import CHUNK, HOST, EchoServer

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
    return turn_of(server, TURN)


def turn_of(server: EchoServer, timeout: float) -> int:
    """serve_once(timeout), with a plain-words failure for each classic mistake."""
    __tracebackhide__ = True
    try:
        return server.serve_once(timeout)
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
    except ConnectionError as error:
        problem = (
            f"serve_once raised {error!r}: a client broke its connection (here: it reset it), "
            f"and recv() or send() on its socket raised. That is one client's problem, not the "
            f"server's: catch ConnectionError in receive() and send(), drop that client and "
            f"return, so the loop goes on serving the others"
        )
    except KeyError as error:
        problem = (
            f"serve_once raised KeyError({error}): self.outgoing has no buffer for that client. "
            f"Either accept() never gave it one (`self.outgoing[conn] = bytearray()`), or "
            f"receive() dropped the client during this turn and serve_once then handed it to "
            f"send(): call send() only `if mask & selectors.EVENT_WRITE and conn in "
            f"self.outgoing`"
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
    echo.selector.select = SelectGuard(echo)  # type: ignore[method-assign]
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


def accepted(server: EchoServer, clients: list[Client]) -> list[socket.socket]:
    """Turn the loop until the server has accepted every client; its sockets, new ones last."""
    __tracebackhide__ = True
    before = set(server.outgoing)
    run(server, clients, lambda: len(server.outgoing) >= len(before) + len(clients))
    new = [conn for conn in server.outgoing if conn not in before]
    assert len(new) == len(clients), (
        f"{len(clients)} client(s) connected, and the server put {len(new)} of them into "
        f"self.outgoing: accept() must give each accepted socket an empty buffer there "
        f"(`self.outgoing[conn] = bytearray()`) and register it for reading"
    )
    return new


def slow_client(server: EchoServer, connect: Callable[..., Client]) -> tuple[Client, socket.socket]:
    """A client on a connection whose socket buffers are small at both ends, and the server's
    socket for it."""
    __tracebackhide__ = True
    client = connect(small_buffers=True)
    (conn,) = accepted(server, [client])
    shrink_buffers(conn)
    client.to_send += BIG
    return client, conn


EVENT_NAMES = {selectors.EVENT_READ: "EVENT_READ", selectors.EVENT_WRITE: "EVENT_WRITE"}


def watched(server: EchoServer, conn: socket.socket) -> str:
    """What the selector watches `conn` for, in words."""
    try:
        events = server.selector.get_key(conn).events
    except (KeyError, ValueError):
        return "nothing (it is not registered)"
    names = [name for flag, name in EVENT_NAMES.items() if events & flag]
    return " | ".join(names) or "nothing"


def readable_bytes(conn: socket.socket) -> int:
    """How many received bytes wait in `conn`'s kernel buffer, not yet taken by recv()."""
    answer = fcntl.ioctl(conn.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", answer)[0])


def unsent(sock: socket.socket) -> int:
    """How many bytes `sock` has sent that the other side has not yet acknowledged."""
    answer = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    return int(struct.unpack("i", answer)[0])


class SelectGuard:
    """Stands in for server.selector.select in every test: records each timeout, and fails at
    once, in plain words, where a select() without a timeout would wait forever."""

    def __init__(self, server: EchoServer) -> None:
        self.real = server.selector.select
        self.timeouts: list[float | None] = []

    def __call__(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        __tracebackhide__ = True
        self.timeouts.append(timeout)
        if timeout is None:
            pytest.fail(
                "serve_once called selector.select() without a timeout (or with None): that "
                "waits until some socket is ready, so on an idle server serve_once would "
                "never return. Pass its timeout on: `self.selector.select(timeout)`"
            )
        return self.real(timeout)


@pytest.mark.clause(2, 6)
def test_a_client_gets_its_bytes_echoed(server: EchoServer, connect: Callable[..., Client]) -> None:
    client = connect()
    (conn,) = accepted(server, [client])
    client.to_send += b"hello, select"
    run(server, [client], lambda: len(client.received) >= 13)
    owed = bytes(server.outgoing.get(conn, b""))
    assert client.received or not owed, (
        f"the server received {owed!r} and never sent it back: the client's socket is watched "
        f"for {watched(server, conn)}. After receive() has queued data, watch the socket for "
        f"writing too (`modify(conn, EVENT_READ | EVENT_WRITE)`), so select() reports it "
        f"writable and serve_once calls send()"
    )
    assert client.received == b"hello, select", (
        f"sent b'hello, select' and got back {bytes(client.received)!r}"
    )


@pytest.mark.clause(1)
def test_serve_once_waits_its_timeout_in_select_when_nothing_happens(
    server: EchoServer,
) -> None:
    guard = server.selector.select
    assert isinstance(guard, SelectGuard)
    started = time.monotonic()
    handled = turn_of(server, 0.05)
    seconds = time.monotonic() - started
    assert guard.timeouts == [0.05], (
        f"serve_once(0.05) called selector.select with the timeouts {guard.timeouts}, not "
        f"once with 0.05"
        + (
            ": select(0) only polls and returns at once, so a loop around serve_once spins "
            "at 100% CPU while nothing happens"
            if 0 in guard.timeouts
            else ""
        )
    )
    assert handled == 0 and seconds >= 0.045, (
        f"on an idle server serve_once(0.05) handled {handled} events and returned after "
        f"{seconds:.3f} s: it must wait in select() for up to its timeout"
    )


@pytest.mark.clause(1)
def test_serve_once_returns_as_soon_as_it_has_handled_the_ready_events(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    connect()  # the listener is ready at once: a connection waits to be accepted
    started = time.monotonic()
    turn_of(server, PATIENCE)
    seconds = time.monotonic() - started
    assert seconds < PATIENCE / 2, (
        f"serve_once({PATIENCE:g}) took {seconds:.3f} s although a connection was waiting "
        f"from the start: one turn is one select() call and the events it returned, not a "
        f"loop that serves until the timeout is over"
    )


@pytest.mark.clause(3)
def test_serve_once_returns_how_many_events_it_handled(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    talker = connect()
    accepted(server, [talker, connect(), connect()])
    talker.to_send += b"x"
    talker.step()
    connect()  # the listener becomes readable in the same turn as the talker's socket
    counts, idle_writers = [], set()
    for _ in range(2):
        counts.append(turn(server))
        idle_writers |= {
            conn
            for conn, owed in server.outgoing.items()
            if not owed and "WRITE" in watched(server, conn)
        }
    assert counts == [2, 1] or not idle_writers, (
        f"two turns returned {counts}, not [2, 1], because {len(idle_writers)} client(s) owed "
        f"nothing were watched for EVENT_WRITE: a socket with room in its buffer is always "
        f"writable, so select() reports it on every turn. Register an accepted socket for "
        f"EVENT_READ only, and watch for EVENT_WRITE only while bytes wait for it"
    )
    assert counts == [2, 1], (
        f"two turns returned {counts}, not [2, 1] (a new connection and one client's byte, "
        f"then the echo of that byte): serve_once returns the number of (key, events) pairs "
        f"select() gave it, len(events), not the number of clients or bytes"
    )


@pytest.mark.clause(4, 5)
def test_the_server_makes_every_client_socket_non_blocking(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    conns = accepted(server, [connect(), connect()])
    modes = [conn.gettimeout() for conn in conns]
    assert modes == [0.0, 0.0], (
        f"the server's sockets for its clients have the timeouts {modes}, not 0.0 "
        f"(non-blocking): on a blocking socket, send() waits until the client has taken "
        f"everything, and the whole loop, every other client included, waits with it. Call "
        f"conn.setblocking(False) right after accept()"
    )


@pytest.mark.clause(2, 4)
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


@pytest.mark.clause(5)
def test_a_silent_client_does_not_wake_the_loop(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    (conn,) = accepted(server, [connect()])
    watched_at_first = watched(server, conn)
    woken = [turn(server) for _ in range(3)]
    assert woken == [0, 0, 0], (
        f"a client that connected and sent nothing woke three turns with {woken} events; "
        f"right after accept() the server watched it for {watched_at_first}"
        + (
            ". A socket with room in its buffer is always writable: register an accepted "
            "socket for EVENT_READ only, and add EVENT_WRITE only once bytes wait for it"
            if "WRITE" in watched_at_first
            else ""
        )
    )


@pytest.mark.clause(6)
def test_receive_takes_up_to_chunk_bytes_in_one_recv(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    client = connect()
    (conn,) = accepted(server, [client])
    client.sock.setblocking(True)
    client.sock.sendall(bytes(CHUNK + 1000))
    deadline = time.monotonic() + PATIENCE
    while readable_bytes(conn) < CHUNK + 1000 and time.monotonic() < deadline:
        time.sleep(0.001)  # the bytes cross the loopback connection
    before = readable_bytes(conn)
    assert before == CHUNK + 1000, f"only {before} of {CHUNK + 1000} bytes reached the server"
    turn(server)
    taken = before - readable_bytes(conn)
    assert taken == CHUNK, (
        f"with {before} bytes waiting, one turn took {taken} of them: receive() makes one "
        f"recv(CHUNK) call ({CHUNK} bytes)"
        + (
            "; a smaller size (the books' recv(1024)) makes a big message take many turns"
            if taken < CHUNK
            else "; a loop of recv calls until BlockingIOError lets one fast client hold up "
            "every other one"
        )
    )


@pytest.mark.clause(6, 9)
def test_a_large_echo_comes_back_whole_to_a_client_that_reads_slowly(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    client, conn = slow_client(server, connect)
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
    if got == BIG:
        return
    same = next((i for i, (a, b) in enumerate(zip(got, BIG, strict=False)) if a != b), None)
    owed = len(server.outgoing.get(conn, b""))
    if same is None and owed and "WRITE" not in watched(server, conn):
        pytest.fail(
            f"the client got back the first {len(got)} of {len(BIG)} bytes; the server still "
            f"owes it {owed} but watches its socket for {watched(server, conn)}, so it never "
            f"sends them. After a send() that took only part of the buffer, keep watching for "
            f"EVENT_WRITE; go back to EVENT_READ only once nothing is owed"
        )
    pytest.fail(
        f"the client sent {len(BIG)} bytes and got back {len(got)}, equal to what it sent "
        f"only up to byte {min(len(got), len(BIG)) if same is None else same}: send() on a "
        f"non-blocking socket takes only what fits in the socket's buffer and returns how "
        f"many bytes that was. Remove exactly those from the client's buffer, append new "
        f"data after the rest, and send the rest when select() reports the socket "
        f"writable again"
    )


@pytest.mark.clause(7)
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


@pytest.mark.clause(8, 10)
def test_a_client_that_stops_sending_gets_everything_back_before_the_server_closes(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    client, conn = slow_client(server, connect)
    run(server, [client], lambda: not client.to_send, read=False)
    client.sock.shutdown(socket.SHUT_WR)
    # The server reads the rest and then the end of input, while it still owes most of BIG.
    run(server, [client], lambda: bool(server.finishing) or not server.outgoing, read=False)
    if conn in server.finishing and server.outgoing.get(conn):
        assert watched(server, conn) == "EVENT_WRITE", (
            f"a client that has sent b'' and is still owed {len(server.outgoing[conn])} bytes "
            f"is watched for {watched(server, conn)}: a socket at end of input is readable on "
            f"every turn forever, so watch it for EVENT_WRITE only"
        )
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


@pytest.mark.clause(10)
def test_a_client_owed_nothing_is_watched_for_reading_only(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    client = connect()
    (conn,) = accepted(server, [client])
    client.to_send += b"ping"
    run(server, [client], lambda: len(client.received) >= 4)
    assert client.received == b"ping", f"sent b'ping' and got back {bytes(client.received)!r}"
    assert watched(server, conn) == "EVENT_READ", (
        f"with nothing left to echo, the client's socket is watched for "
        f"{watched(server, conn)}: a socket with room in its buffer is always writable, so "
        f"select() returns at once on every turn and the loop spins instead of sleeping. Once "
        f"send() has emptied the buffer, `modify(conn, EVENT_READ)`"
    )
    woken = [turn(server) for _ in range(3)]
    assert woken == [0, 0, 0], (
        f"with nothing left to echo, three turns handled {woken} events, not [0, 0, 0]"
    )


@pytest.mark.clause(8)
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


@pytest.mark.clause(2, 11)
def test_a_client_that_resets_its_connection_is_dropped_and_the_others_are_still_served(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    other = connect()
    accepted(server, [other])
    client, conn = slow_client(server, connect)
    # The client sends everything and the server reads it all, so the reset is the next
    # thing the server's recv() meets.
    run(
        server,
        [client],
        lambda: not client.to_send and unsent(client.sock) == 0 and readable_bytes(conn) == 0,
        read=False,
    )
    assert server.outgoing.get(conn), "the server owes the client nothing: nothing to test"
    client.sock.close()  # with its echo unread: the client's side resets the connection
    run(server, [], lambda: conn not in server.outgoing)
    assert conn not in server.outgoing and conn.fileno() == -1, (
        f"a client reset its connection, and the server still keeps it (its socket is "
        f"{'closed' if conn.fileno() == -1 else 'open'}, watched for "
        f"{watched(server, conn)}): drop a client whose recv() or send() raises "
        f"ConnectionError"
    )
    other.to_send += b"still here"
    run(server, [other], lambda: len(other.received) >= 10)
    assert other.received == b"still here", (
        f"after another client reset its connection, a client sent b'still here' and got "
        f"back {bytes(other.received)!r}"
    )


@pytest.mark.clause(12)
def test_close_closes_every_client_the_listener_and_the_selector(
    server: EchoServer, connect: Callable[..., Client]
) -> None:
    clients = [connect(), connect()]
    accepted(server, clients)
    clients[0].to_send += b"last words"
    run(server, clients, lambda: len(clients[0].received) >= 10)
    assert clients[0].received == b"last words", f"got back {bytes(clients[0].received)!r}"
    try:
        server.close()
    except RuntimeError as error:
        pytest.fail(
            f"close() raised RuntimeError: {error}. drop() removes the client from "
            f"self.outgoing while your loop still walks over that dict: loop over a copy, "
            f"`for conn in list(self.outgoing):`"
        )
    for number, client in enumerate(clients):
        client.sock.settimeout(PATIENCE)
        try:
            ended = client.sock.recv(1) == b""
        except TimeoutError:
            ended = False
        except ConnectionError:
            ended = True
        assert ended, (
            f"connected client {number} saw no close within {PATIENCE:g} s of server.close(): "
            f"close every client's socket, not only the listener"
        )
    assert server.listener.fileno() == -1, "close() left the listening socket open"
    assert server.selector.get_map() is None, "close() left the selector open"
