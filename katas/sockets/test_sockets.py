"""Kata `sockets`: framed messages over blocking TCP sockets, a time server and a file server."""

from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import itertools
import random
import re
import socket
import struct
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from sockets import (
    CHUNK,
    HOST,
    POLL,
    fetch_file,
    get_time,
    listen,
    recv_exactly,
    recv_message,
    send_file,
    send_message,
    send_time,
    serve,
)

T = TypeVar("T")

# Everything here talks over loopback and answers within milliseconds. Every socket made
# during a test gets this timeout, so a reply that never comes raises TimeoutError after one
# second instead of hanging the test; a correct program never meets it.
PATIENCE = 1.0
# A stand-in socket that has answered b"" (end of stream) this many times fails the test:
# the code reading from it waits for bytes that can never come.
SPIN_LIMIT = 100
# A serve() that does not wait for its client threads returns a few microseconds after it has
# seen stop set: 5 x POLL is a generous time to give it to show that it returns too early.
EARLY_RETURN_WINDOW = 5 * POLL
# A serve() that looks at stop in time has returned well within this after stop is set.
STOP_WITHIN = 10 * POLL
BIG_FILE = 5 * 1024 * 1024
SPIN = (
    "went on calling recv() after it had returned b'' ({count} times): b'' means the other "
    "side has closed the connection and nothing more will ever come, so a loop that waits for "
    "more spins for ever. When recv() returns b'' before you have all the bytes, raise "
    "ConnectionError"
)


def frame(payload: bytes) -> bytes:
    """A message as send_message must send it: 8 bytes of length, big-endian, then the payload."""
    return struct.pack(">Q", len(payload)) + payload


def pseudo_random_bytes(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def attempt(
    function: Callable[..., T], *args: Any, **kwargs: Any
) -> tuple[T | None, Exception | None]:
    """Call `function`; return its result, or the exception it raised (so that the test can
    fail with an explanation outside the except block, without a chained traceback)."""
    try:
        return function(*args, **kwargs), None
    except Exception as error:
        return None, error


def unexpected(error: Exception | None) -> None:
    """Let an exception that no message of the test explains through, as it came."""
    __tracebackhide__ = True
    if error is not None:
        raise error


# -- a stand-in socket -------------------------------------------------------------------------


class Dribble:
    """A stand-in socket that cuts data up as a real connection may. `recv` hands out
    `incoming` in pieces of the sizes in `pieces` (in turn, and never more than asked for),
    then answers b"" for ever (the other side has closed). `send` takes only part of what it
    is given (the sizes in `takes`, in turn); `sendall` takes everything. What is sent is
    recorded in `sent`, and the size of each write in `writes`."""

    def __init__(
        self,
        incoming: bytes = b"",
        *,
        pieces: Iterable[int] = (1,),
        takes: Iterable[int] = (1, 7, 65521, 13),
    ) -> None:
        self.incoming = bytearray(incoming)
        self._pieces = itertools.cycle(pieces)
        self._takes = itertools.cycle(takes)
        self.asked: list[int] = []  # the size asked for by each recv call
        self.eof_reads = 0  # recv calls answered with b"" because nothing is left
        self.sent = bytearray()
        self.writes: list[int] = []
        self.closed = False

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        __tracebackhide__ = True
        self._check_open("recv")
        self.asked.append(bufsize)
        if not self.incoming:
            self.eof_reads += 1
            if self.eof_reads > SPIN_LIMIT:
                pytest.fail("your code " + SPIN.format(count=SPIN_LIMIT))
            return b""
        size = min(bufsize, next(self._pieces), len(self.incoming))
        data = bytes(self.incoming[:size])
        del self.incoming[:size]
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        __tracebackhide__ = True
        view = memoryview(buffer).cast("B")
        data = self.recv(nbytes or len(view))
        view[: len(data)] = data
        return len(data)

    def send(self, data: Any, flags: int = 0) -> int:
        self._check_open("send")
        taken = bytes(data)[: next(self._takes)]
        self.sent += taken
        self.writes.append(len(taken))
        return len(taken)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self._check_open("sendall")
        self.sent += bytes(data)
        self.writes.append(len(bytes(data)))

    def close(self) -> None:
        self.closed = True

    def settimeout(self, value: float | None) -> None:
        pass

    def gettimeout(self) -> float | None:
        return None

    def __enter__(self) -> Dribble:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"the test's stand-in socket has no {name!r}: the tests feed your functions a "
            f"stand-in that offers recv, recv_into, send, sendall, close, settimeout, "
            f"gettimeout and a with-block"
        )

    def _check_open(self, call: str) -> None:
        if self.closed:
            raise OSError(errno.EBADF, f"Bad file descriptor ({call}() on a closed socket)")

    @property
    def as_socket(self) -> socket.socket:
        return cast(socket.socket, self)


# -- real connections --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def sockets_time_out() -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(PATIENCE)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


@pytest.fixture
def port(kata_namespace: Any) -> int:
    """A free port on 127.0.0.1, reserved for this run."""
    return int(kata_namespace.port())


def read_exactly(sock: socket.socket, n: int) -> bytes:
    """The tests' own receive loop (raises TimeoutError after PATIENCE without a byte)."""
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(min(n - len(data), 65536))
        if not chunk:
            raise ConnectionError(f"the connection closed after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def read_frame(sock: socket.socket) -> bytes:
    header = read_exactly(sock, 8)
    (length,) = struct.unpack(">Q", header)
    if length > 2 * BIG_FILE:
        raise ValueError(
            f"a message began with {header!r}, which as 8 bytes of length, big-endian, means "
            f"{length} bytes: far more than anything the tests send or expect"
        )
    return read_exactly(sock, length)


def sees_the_end(sock: socket.socket) -> bool:
    """Whether the other side closes the connection within PATIENCE."""
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def shout(conn: socket.socket) -> None:
    """A handler for serve(): one request, answered in capitals."""
    conn.sendall(frame(read_frame(conn).upper()))


class WatchedListener(socket.socket):
    """The tests' own listening socket, which counts the calls serve() makes to accept()."""

    def __init__(self) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_STREAM)
        self.accepting = threading.Condition()
        self.accept_calls = 0

    def accept(self) -> tuple[socket.socket, Any]:
        with self.accepting:
            self.accept_calls += 1
            self.accepting.notify_all()
        return super().accept()


def new_listener(port: int) -> WatchedListener:
    listener = WatchedListener()
    listener.bind((HOST, port))
    listener.listen()
    return listener


class WatchedEvent(threading.Event):
    """serve()'s stop event, which tells the test when serve() has seen it set."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def is_set(self) -> bool:
        answer = super().is_set()
        if answer:
            self.seen.set()
        return answer

    def wait(self, timeout: float | None = None) -> bool:
        answer = super().wait(timeout)
        if answer:
            self.seen.set()
        return answer


class Serving:
    """serve(listener, handle, stop) running in a thread of the test's."""

    def __init__(self, listener: socket.socket, port: int) -> None:
        self.listener, self.port = listener, port
        self.stop = WatchedEvent()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=lambda: None)

    def start(self, handle: Callable[[socket.socket], None]) -> None:
        __tracebackhide__ = True

        def run() -> None:
            try:
                serve(self.listener, handle, self.stop)
            except BaseException as error:
                self.errors.append(error)

        self.thread = threading.Thread(target=run, name="test-serve", daemon=True)
        self.thread.start()
        self.thread.join(0.01)  # serve() that raises at once is told at once
        self.check()

    def check(self) -> None:
        __tracebackhide__ = True
        if not self.errors:
            return
        error = self.errors[0]
        if isinstance(error, NotImplementedError):
            raise error
        where = "".join(traceback.format_exception(error)[-3:]).rstrip()
        pytest.fail(f"serve() raised {error!r}, in the thread the test runs it in:\n{where}")

    def connect(self) -> socket.socket:
        return socket.create_connection((HOST, self.port))

    def ask(self, request: bytes) -> bytes:
        """One request by a test client, with a plain-words failure if no answer comes."""
        __tracebackhide__ = True
        with self.connect() as client:
            client.sendall(frame(request))
            answer, error = attempt(read_frame, client)
        if isinstance(error, (TimeoutError, ConnectionError)):
            self.check()
            pytest.fail(
                f"a client sent {request!r} and got no answer ({error!r}); serve() is "
                f"{'still running' if self.thread.is_alive() else 'no longer running'}"
            )
        unexpected(error)
        return cast(bytes, answer)

    def wait_for(self, event: threading.Event, failure: str) -> None:
        """Wait up to PATIENCE for `event`; else fail with `failure`."""
        __tracebackhide__ = True
        deadline = time.monotonic() + PATIENCE
        while not event.wait(0.01):
            self.check()
            if time.monotonic() > deadline:
                pytest.fail(failure)

    def end(self) -> None:
        self.stop.set()
        self.thread.join(STOP_WITHIN)
        if self.thread.is_alive():  # stuck in accept(): shutdown() wakes it up
            with contextlib.suppress(OSError):
                self.listener.shutdown(socket.SHUT_RDWR)
            self.thread.join(PATIENCE)
        self.listener.close()


@contextlib.contextmanager
def serving(
    port: int, handle: Callable[[socket.socket], None], listener: socket.socket | None = None
) -> Iterator[Serving]:
    """serve() in a thread, on the tests' own listener unless one is given; stopped at the end."""
    __tracebackhide__ = True
    server = Serving(listener if listener is not None else new_listener(port), port)
    try:
        server.start(handle)
        yield server
    finally:
        server.end()


@contextlib.contextmanager
def one_shot_server(port: int, script: Callable[[socket.socket], None]) -> Iterator[list[str]]:
    """The tests' own server: accepts one client, runs `script(conn)` and closes the connection.
    Yields the list where a failure of the script is described."""
    listener = new_listener(port)
    problems: list[str] = []

    def run() -> None:
        try:
            conn, _address = listener.accept()
            with conn:
                script(conn)
        except (OSError, ValueError) as error:
            problems.append(f"the test's server met {error}")

    thread = threading.Thread(target=run, name="test-server", daemon=True)
    thread.start()
    try:
        yield problems
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes accept() if nobody ever connected
        thread.join(PATIENCE * 2)
        listener.close()


def sockets_connected_to(port: int) -> list[socket.socket]:
    found = []
    for obj in gc.get_objects():
        if isinstance(obj, socket.socket) and obj.fileno() != -1:
            with contextlib.suppress(OSError):
                if obj.getpeername() == (HOST, port):
                    found.append(obj)
    return found


def call(function: Callable[..., T], *args: Any, port: int) -> T:
    """Run one of your clients in a thread of its own, so that a loop that never ends fails the
    test instead of hanging it (its sockets to `port` are then closed to stop it)."""
    __tracebackhide__ = True
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, name=f"test-{function.__name__}", daemon=True)
    thread.start()
    thread.join(2 * PATIENCE)
    if thread.is_alive():
        for sock in sockets_connected_to(port):
            sock.close()
        thread.join(PATIENCE)
        pytest.fail(
            f"{function.__name__}() had not returned after {2 * PATIENCE:g} s, although its "
            f"socket times out after {PATIENCE:g} s: it must be looping. Most likely it "
            + SPIN.format(count="thousands of")
        )
    if "error" in outcome:
        # Popped, so that no cycle keeps the exception (and the sockets its frames hold) alive.
        raise outcome.pop("error")
    return cast(T, outcome["value"])


def together(function: Callable[..., T], *args: Any, port: int, what: str) -> T:
    """One of your clients against your own server: any exception fails the test with a
    pointer to the tests that check each piece alone."""
    __tracebackhide__ = True
    result, error = attempt(call, function, *args, port=port)
    if error is not None:
        pytest.fail(
            f"{what}: {function.__name__}() raised {error!r}. This test puts your pieces "
            f"together; the tests that check each piece alone say which one is wrong (and a "
            f"server thread that raised is shown below)"
        )
    return cast(T, result)


@contextlib.contextmanager
def unclosed_sockets(port: int | None = None) -> Iterator[list[str]]:
    """Collects the ResourceWarnings Python gives when a socket is garbage-collected without
    having been closed (only those of sockets connected to `port`, when it is given)."""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield found
        # A socket nobody refers to any more is freed at once; one caught in a reference
        # cycle made during the test is young, and a collection of the young generations
        # finds it (a full collection would cost a tenth of a second here).
        gc.collect(1)
    peer = f"raddr=('{HOST}', {port})" if port is not None else "socket"
    found += [
        str(w.message)
        for w in caught
        if issubclass(w.category, ResourceWarning) and peer in str(w.message)
    ]


# -- §1-§2 send_message ------------------------------------------------------------------------


@pytest.mark.clause(1)
def test_send_message_puts_the_length_first_as_8_big_endian_bytes() -> None:
    payload = bytes(range(256)) + b"!!"  # 258 bytes: 0x0102
    sock = Dribble()
    send_message(sock.as_socket, payload)
    sent = bytes(sock.sent)
    expected = b"\x00\x00\x00\x00\x00\x00\x01\x02"
    if sent[:8] != expected:
        meaning = "neither"
        if sent[:8] == struct.pack("<Q", 258):
            meaning = (
                "the length little-endian (struct's native order on this machine: a format "
                "without '>' or '!'): write '>Q'"
            )
        elif sent[:4] == struct.pack(">I", 258):
            meaning = "the length in 4 bytes ('>I'): write 8 ('>Q')"
        elif sent.startswith(b"258"):
            meaning = "the length as text: pack it as 8 bytes with struct.pack('>Q', n)"
        elif len(sent) < 8:
            meaning = (
                f"only {len(sent)} byte(s) went out at all: one send() call takes only part "
                f"of what it is given; sendall() sends every byte"
            )
        pytest.fail(
            f"for a payload of 258 bytes, send_message sent {sent[:8]!r} first, not the "
            f"length as 8 bytes, big-endian ({expected!r}); it looks like {meaning}"
        )
    assert sent == frame(payload), (
        f"send_message sent the right 8 bytes of length, then {len(sent) - 8} bytes "
        f"instead of the 258 bytes of the payload"
    )


@pytest.mark.clause(2)
def test_send_message_sends_every_byte_although_send_takes_only_part() -> None:
    payload = pseudo_random_bytes(100_000)
    sock = Dribble(takes=(1, 7, 65521, 13))
    send_message(sock.as_socket, payload)
    assert len(sock.sent) == len(payload) + 8, (
        f"send_message got {len(sock.sent)} of {len(payload) + 8} bytes out, in writes of "
        f"{sock.writes[:6]}{'...' if len(sock.writes) > 6 else ''} bytes: one send() call "
        f"takes only what fits in the socket's buffer and returns how many bytes that was. "
        f"Use sendall(), which calls send() until every byte is gone"
    )
    assert bytes(sock.sent) == frame(payload), (
        "send_message sent as many bytes as one message of 100000 bytes takes, but not that "
        "message: see the test of the 8 bytes of length"
    )


# -- §3-§5 recv_exactly ------------------------------------------------------------------------


def received_exactly(sock: Dribble, n: int) -> bytes:
    """recv_exactly, with plain words for a ConnectionError where the data was all there."""
    __tracebackhide__ = True
    got, error = attempt(recv_exactly, sock.as_socket, n)
    if isinstance(error, ConnectionError):
        pytest.fail(
            f"recv_exactly(sock, {n}) raised {error!r} although the other side had sent "
            f"all {n} bytes and kept the connection open (it asked recv() for "
            f"{sock.asked[:8]}{'...' if len(sock.asked) > 8 else ''} bytes, and the last "
            f"recv() returned b'' because nothing was left): stop calling recv() as soon as "
            f"you have n bytes, `while len(data) < n`"
        )
    unexpected(error)
    return cast(bytes, got)


@pytest.mark.clause(3)
def test_recv_exactly_collects_a_message_delivered_one_byte_at_a_time() -> None:
    data = b"one byte at a time"
    sock = Dribble(data, pieces=(1,))
    got = received_exactly(sock, len(data))
    assert got == data, (
        f"the other side sent {data!r}, which arrived one byte per recv(), and "
        f"recv_exactly(sock, {len(data)}) returned {got!r}: one recv() returns what has "
        f"arrived so far, maybe a single byte, not a whole message. Call recv() again and "
        f"again until you have all {len(data)} bytes"
    )


@pytest.mark.clause(3)
def test_recv_exactly_collects_bytes_delivered_in_odd_sized_pieces() -> None:
    data = pseudo_random_bytes(70_001)
    sock = Dribble(data, pieces=(3, 1, 4093, 7, 65536))
    got = received_exactly(sock, len(data))
    assert len(got) == len(data) and got == data, (
        f"70001 bytes arrived in pieces of 3, 1, 4093, 7, 65536... bytes and recv_exactly "
        f"returned {len(got)} bytes{'' if len(got) != len(data) else ', not the ones sent'}: "
        f"keep every piece, in order, until you have them all"
    )


@pytest.mark.clause(4)
def test_recv_exactly_leaves_the_next_message_in_the_socket() -> None:
    sock = Dribble(b"first" + b"second!", pieces=(2, 100))
    first = received_exactly(sock, 5)
    left = bytes(sock.incoming)
    # The first recv() gets 2 bytes, so the second may ask for 3 at most.
    too_big = len(sock.asked) > 1 and sock.asked[1] > 3
    assert first == b"first" and left == b"second!", (
        f"the socket held b'firstsecond!' (a message of 5 bytes, then the next one); "
        f"recv_exactly(sock, 5) returned {first!r} and left {left!r}. It asked recv() for "
        f"{sock.asked} bytes"
        + (
            ": after a first piece of 2 bytes only 3 were missing, and recv() hands out up "
            "to the size asked for, so the start of the next message was taken. Ask for "
            "n - len(received) each time"
            if too_big
            else ""
        )
    )


@pytest.mark.clause(4)
def test_recv_exactly_of_zero_bytes_returns_nothing_without_reading() -> None:
    sock = Dribble(b"next message")
    got, error = attempt(recv_exactly, sock.as_socket, 0)
    if isinstance(error, ConnectionError):
        pytest.fail(
            f"recv_exactly(sock, 0) raised {error!r}: with nothing to receive it must return "
            f"b'' at once. It called recv({sock.asked[0] if sock.asked else ''}), which "
            f"returns b'' and looks like the end of the stream: test `len(data) < n` before "
            f"each recv() (a while loop, not a loop that reads first). A message can be "
            f"empty: a file of 0 bytes is one"
        )
    unexpected(error)
    assert got == b"" and bytes(sock.incoming) == b"next message", (
        f"recv_exactly(sock, 0) returned {got!r} and left {bytes(sock.incoming)!r} of "
        f"b'next message' in the socket"
    )


@pytest.mark.clause(5)
@pytest.mark.parametrize("arrived", [7, 0], ids=["7 of 13 bytes", "0 of 13 bytes"])
def test_recv_exactly_raises_connection_error_when_the_connection_closes_early(
    arrived: int,
) -> None:
    sock = Dribble(b"partial"[:arrived], pieces=(3,))
    try:
        got = recv_exactly(sock.as_socket, 13)
    except ConnectionError as error:
        message = str(error)
    else:
        pytest.fail(
            f"the other side sent {arrived} bytes and closed the connection, and "
            f"recv_exactly(sock, 13) returned {got!r} instead of raising ConnectionError: "
            f"the caller would take a piece of a message for the whole of it"
        )
    assert re.search(rf"\b{arrived}\b", message) and re.search(r"\b13\b", message), (
        f"recv_exactly raised ConnectionError({message!r}): say how many bytes of how many "
        f"arrived ({arrived} of 13), so whoever reads it knows the message was cut short"
    )
    assert sock.eof_reads == 1, (
        f"recv_exactly called recv() {sock.eof_reads} times after it had returned b'': b'' is "
        f"the end of the stream, nothing more will come. Raise at the first b''"
    )


# -- §6 recv_message ---------------------------------------------------------------------------


@pytest.mark.clause(6)
def test_recv_message_reads_the_length_then_exactly_that_many_bytes() -> None:
    payloads = [b"hello", b"", pseudo_random_bytes(70_000), b"bye"]
    sock = Dribble(b"".join(frame(p) for p in payloads), pieces=(1, 5, 3, 16384, 2))
    for number, payload in enumerate(payloads):
        header = frame(payload)[:8]
        got, error = attempt(recv_message, sock.as_socket)
        if isinstance(error, struct.error):
            pytest.fail(
                f"message {number}: recv_message raised {error!r}: it got fewer than 8 bytes "
                f"of length, which came in pieces of 1, 5, 3... bytes. Receive them with "
                f"recv_exactly(sock, 8), which collects every piece"
            )
        if isinstance(error, ConnectionError):
            pytest.fail(
                f"message {number} ({len(payload)} bytes) began with the length "
                f"{header!r}, and recv_message raised {error!r}: read those 8 bytes as an "
                f"unsigned big-endian integer, struct.unpack('>Q', ...), then receive "
                f"exactly that many bytes (big-endian {header!r} is {len(payload)}; "
                f"little-endian it would be {struct.unpack('<Q', header)[0]})"
            )
        unexpected(error)
        assert got == payload, (
            f"message {number}: the other side sent {len(payload)} bytes "
            f"(digest {digest(payload)}) framed by their length, and recv_message returned "
            f"{len(got or b'')} bytes (digest {digest(got or b'')}): receive the 8 bytes of length with "
            f"recv_exactly, then exactly that many bytes with recv_exactly"
        )


# -- §7-§8 listen ------------------------------------------------------------------------------


@pytest.mark.clause(7)
def test_listen_binds_loopback_only_on_the_given_port(
    port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Here, as on many machines, /etc/hosts maps the host name to 127.0.0.1, which would hide
    # the bug; on a machine on a network the name resolves to its network address. So the
    # test gives the host name such an address: 192.0.2.1, reserved for documentation, and
    # never an address of this machine.
    monkeypatch.setattr(socket, "gethostname", lambda: "192.0.2.1")
    listener, error = attempt(listen, port)
    if isinstance(error, OSError):
        pytest.fail(
            f"listen({port}) raised {error!r}. Did it bind socket.gethostname()? That is the "
            f"machine's name on the network (this test makes it resolve to 192.0.2.1, which "
            f"is not an address of this machine), and it puts the server where everybody on "
            f"the network can reach it. Bind HOST, 127.0.0.1"
        )
    unexpected(error)
    assert listener is not None
    with listener:
        bound = listener.getsockname()
        try:
            with socket.create_connection((HOST, port)):
                pass
            listening = True
        except ConnectionRefusedError:
            listening = False
    assert bound[0] == HOST, (
        f"listen() bound {bound[0]!r}"
        + (" (every interface)" if bound[0] == "0.0.0.0" else "")
        + ": anybody on the network can connect to that. Bind 127.0.0.1, which only "
        "programs on this machine can reach"
    )
    assert bound[1] == port, f"listen({port}) bound port {bound[1]}, not the port asked for"
    assert listening, (
        f"a client could not connect to 127.0.0.1:{port}: the socket is bound but not "
        f"listening; call listen() on it after bind()"
    )


@pytest.mark.clause(8)
def test_listen_closes_its_socket_when_the_port_is_taken(port: int) -> None:
    with new_listener(port), unclosed_sockets() as leaked:
        try:
            listener = listen(port)
        except OSError:
            raised = True
        else:
            listener.close()
            raised = False
    assert raised, (
        f"listen({port}) did not raise OSError although another socket was already "
        f"listening on that port"
    )
    assert not leaked, (
        f"listen() raised OSError (the port was taken) and left its socket for the garbage "
        f"collector, which warned: {leaked[0]}. Close the socket before you let the error "
        f"through (try/except OSError: close, raise): a server that retries would otherwise "
        f"leak a file descriptor on every try"
    )


# -- §9-§12 serve ------------------------------------------------------------------------------


@pytest.mark.clause(9)
def test_a_client_that_keeps_its_connection_open_does_not_hold_up_the_others(
    port: int,
) -> None:
    with serving(port, shout) as server:
        quiet = [server.connect() for _ in range(2)]  # connected; they say nothing for now
        try:
            answers: dict[int, object] = {}

            def talk(number: int) -> None:
                try:
                    with server.connect() as client:
                        client.sendall(frame(f"client {number}".encode()))
                        answers[number] = read_frame(client)
                except OSError as error:
                    answers[number] = error

            talkers = [threading.Thread(target=talk, args=(n,)) for n in range(3)]
            for talker in talkers:
                talker.start()
            for talker in talkers:
                talker.join(2 * PATIENCE)
            unanswered = [n for n in range(3) if answers.get(n) != f"CLIENT {n}".encode()]
            assert not unanswered, (
                f"two clients connected and said nothing; then three more each sent a "
                f"request, and {len(unanswered)} of them got no answer within {PATIENCE:g} s "
                f"({[answers.get(n) for n in unanswered]}): serve() waits for one client's "
                f"handle() to end before it accepts the next, so a client that keeps its "
                f"connection open holds up everybody. Run each handle(conn) in a thread of "
                f"its own"
            )
            server.check()
            for number, sock in enumerate(quiet):
                sock.sendall(frame(f"quiet {number}".encode()))
                answer = read_frame(sock)
                assert answer == f"QUIET {number}".encode(), f"quiet client got {answer!r}"
        finally:
            for sock in quiet:
                sock.close()


@pytest.mark.clause(10)
def test_serve_closes_each_connection_once_handle_returns(port: int) -> None:
    given: list[socket.socket] = []

    def answer_once(conn: socket.socket) -> None:
        given.append(conn)
        conn.sendall(frame(b"done"))

    try:
        with serving(port, answer_once) as server, server.connect() as client:
            reply = read_frame(client)
            ended = sees_the_end(client)
        assert reply == b"done", f"the client got {reply!r}"
        assert ended and given[0].fileno() == -1, (
            f"handle() returned, and the client saw no end of the connection within "
            f"{PATIENCE:g} s: serve() must close each connection once its handle() has "
            f"returned (`with conn: handle(conn)`), or the client waits for ever and the "
            f"server leaks a file descriptor per client"
        )
    finally:
        for conn in given:
            conn.close()


@pytest.mark.clause(10)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_serve_closes_the_connection_when_handle_raises_and_goes_on_serving(port: int) -> None:
    given: list[socket.socket] = []

    def fragile(conn: socket.socket) -> None:
        given.append(conn)
        request = read_frame(conn)
        if request == b"break":
            raise RuntimeError("this handler fails on purpose (the test asked it to)")
        conn.sendall(frame(request.upper()))

    try:
        with serving(port, fragile) as server:
            with server.connect() as client:
                client.sendall(frame(b"break"))
                ended = sees_the_end(client)
            assert ended and given[0].fileno() == -1, (
                f"handle() raised, and the client saw no end of the connection within "
                f"{PATIENCE:g} s: close the connection also when handle() raises (a "
                f"with-block or try/finally around handle(conn)), or every failed request "
                f"leaks a connection"
            )
            assert server.ask(b"still there?") == b"STILL THERE?"
            assert server.thread.is_alive(), (
                "after one handle() raised, serve() stopped serving: one client's failure "
                "must end only that client's connection"
            )
    finally:
        for conn in given:
            conn.close()


@pytest.mark.clause(11, 12)
def test_serve_returns_soon_after_stop_is_set(port: int) -> None:
    listener = new_listener(port)
    with serving(port, shout, listener=listener) as server:
        assert server.ask(b"are you there?") == b"ARE YOU THERE?"
        # Wait until serve() has gone back to accept() after its first client: it has looked
        # at stop (not yet set) and now waits for the next client, which never comes.
        with listener.accepting:
            back = listener.accepting.wait_for(lambda: listener.accept_calls >= 2, PATIENCE)
        assert back, "after serving one client, serve() never called accept() again"
        server.stop.set()
        server.thread.join(STOP_WITHIN)
        server.check()
        assert not server.thread.is_alive(), (
            f"serve() was still running {STOP_WITHIN:g} s after stop was set, with no client "
            f"connected: it must look at stop at least every POLL ({POLL:g}) s. With "
            f"listener.settimeout(POLL), accept() raises TimeoutError when nobody connects in "
            f"time: catch it and go back to `while not stop.is_set()`"
        )


@pytest.mark.clause(12)
def test_serve_waits_for_the_clients_it_is_serving_before_it_returns(port: int) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(conn: socket.socket) -> None:
        started.set()
        release.wait(2 * PATIENCE)

    with serving(port, slow) as server, server.connect():
        server.wait_for(
            started, f"a client connected, and serve() did not call handle() within {PATIENCE:g} s"
        )
        server.stop.set()
        server.wait_for(
            server.stop.seen,
            f"stop was set, and serve() did not look at it within {PATIENCE:g} s while a "
            f"client's handle() was still running: does serve() run handle() itself, in its "
            f"accepting loop, rather than in a thread of its own?",
        )
        # serve() has seen stop set; one that does not wait for its clients returns now.
        server.thread.join(EARLY_RETURN_WINDOW)
        returned_early = not server.thread.is_alive()
        release.set()
        server.thread.join(PATIENCE)
        server.check()
        assert not returned_early, (
            "stop was set while a client was still being served, and serve() returned at "
            "once: it must wait for every client thread it started (join them), so that "
            "nothing of the server is still running once serve() has returned"
        )
        assert not server.thread.is_alive(), (
            f"serve() was still running {PATIENCE:g} s after its last client was done"
        )


# -- §13-§14 the time server -------------------------------------------------------------------


@pytest.mark.clause(13)
def test_send_time_sends_the_current_time_as_one_message() -> None:
    conn = Dribble()
    before = time.time()
    send_time(conn.as_socket)
    after = time.time()
    sent = bytes(conn.sent)
    (length,) = struct.unpack(">Q", sent[:8].rjust(8, b"\0"))
    payload = sent[8:]
    assert len(sent) >= 8 and length == len(payload), (
        f"send_time sent {sent!r}: not one message (8 bytes of length, big-endian, then the "
        f"payload). Unframed, the client cannot tell where the time ends; send it with "
        f"send_message (once send_message passes its own tests)"
    )
    try:
        told = float(payload.decode("ascii"))
    except ValueError:
        pytest.fail(f"send_time sent {payload!r}: send str(time.time()) in ASCII")
    assert before <= told <= after, (
        f"send_time sent {told}, but time.time() was between {before} and {after} during the call"
    )


@pytest.mark.clause(14)
def test_get_time_reads_the_time_from_one_message(port: int) -> None:
    def tell(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        message = frame(b"1234567890.25")
        for start, end in [(0, 3), (3, 9), (9, len(message))]:  # in pieces, as it may arrive
            conn.sendall(message[start:end])

    with one_shot_server(port, tell) as problems:
        told, error = attempt(call, get_time, port, port=port)
    if isinstance(error, (ValueError, UnicodeDecodeError, struct.error, ConnectionError)):
        pytest.fail(
            f"get_time raised {error!r}: the server sent one whole message, "
            f"{frame(b'1234567890.25')!r}, in pieces, then closed the connection. The 8 bytes "
            f"of length are not part of the time, and one recv() is not one message: receive "
            f"it with recv_message"
        )
    unexpected(error)
    assert not problems, f"the test's time server failed: {problems}"
    assert told == 1234567890.25, f"the server told 1234567890.25 and get_time returned {told!r}"


@pytest.mark.clause(7, 9, 13, 14)
def test_the_time_server_tells_the_time(port: int) -> None:
    with serving(port, send_time, listener=listen(port)):
        before = time.time()
        told = together(get_time, port, port=port, what="asking your time server the time")
        after = time.time()
    assert isinstance(told, float) and before <= told <= after, (
        f"get_time() returned {told!r}, but the time was between {before} and {after}"
    )


# -- §15-§16 the file server -------------------------------------------------------------------


SIZES = [0, CHUNK + 1, BIG_FILE]
SIZE_IDS = ["0 B", "1 KB + 1 B", "5 MB"]


@pytest.mark.clause(15)
@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_send_file_sends_the_file_as_one_message_chunk_by_chunk(size: int, tmp_path: Path) -> None:
    name = f"résumé {size}.bin"
    content = pseudo_random_bytes(size)
    (tmp_path / name).write_bytes(content)
    conn = Dribble(frame(name.encode("utf-8")), pieces=(1, 5, 3))
    _, error = attempt(send_file, conn.as_socket, tmp_path)
    if isinstance(error, (struct.error, ConnectionError)):
        pytest.fail(
            f"send_file raised {error!r} while it received the file name, which came as one "
            f"message in pieces of 1, 5 and 3 bytes: receive it with recv_message (see the "
            f"recv_exactly tests)"
        )
    if isinstance(error, (FileNotFoundError, IsADirectoryError)):
        pytest.fail(
            f"send_file raised {error!r}: the name it received was not {name!r}, which came "
            f"as one message (8 bytes of length, then the name in UTF-8): receive it with "
            f"recv_message and decode it from UTF-8"
        )
    if isinstance(error, OSError) and conn.closed:
        pytest.fail(
            f"send_file raised {error!r} after sending {max(len(conn.sent) - 8, 0)} of the "
            f"{size} bytes of the file: it closed the connection and then went on writing to "
            f"it. B1's file server closes it inside its send loop, so only a file that fits "
            f"in one chunk arrives whole; leave the closing to serve(), after the last chunk"
        )
    unexpected(error)
    sent = bytes(conn.sent)
    assert sent[:8] == struct.pack(">Q", size), (
        f"a file of {size} bytes went out with {sent[:8]!r} as its 8 bytes of length, not "
        f"{struct.pack('>Q', size)!r}: send the file as one message, the file's size first"
    )
    assert sent == frame(content), (
        f"a file of {size} bytes (digest {digest(content)}) went out as {len(sent) - 8} bytes "
        f"after its length (digest {digest(sent[8:])}): send every byte of the file once, in "
        f"order, after the 8 bytes of length"
    )
    assert max(conn.writes, default=0) <= CHUNK + 8, (
        f"send_file wrote {max(conn.writes)} bytes in one call: read and send the file "
        f"CHUNK ({CHUNK}) bytes at a time, so that a big file never sits in memory whole"
    )


@pytest.mark.clause(16)
def test_fetch_file_sends_the_name_as_one_message_and_returns_the_answer(port: int) -> None:
    name, content = "résumé ü.txt", pseudo_random_bytes(3000)
    requests: list[bytes] = []

    def answer(conn: socket.socket) -> None:
        requests.append(read_frame(conn))
        conn.sendall(frame(content))

    with one_shot_server(port, answer) as problems:
        got, error = attempt(call, fetch_file, port, name, port=port)
    assert requests == [name.encode("utf-8")], (
        f"fetch_file(port, {name!r}) sent "
        + (repr(requests[0]) if requests else f"no message the server could read ({problems})")
        + f": send the name in UTF-8 as one message ({frame(name.encode('utf-8'))!r})"
    )
    if isinstance(error, (struct.error, ConnectionError)):
        pytest.fail(
            f"fetch_file raised {error!r}, although the server answered one whole message of "
            f"{len(content)} bytes: receive it with recv_message"
        )
    unexpected(error)
    assert got is not None and got == content, (
        f"the server answered one message of {len(content)} bytes (digest {digest(content)}), "
        f"and fetch_file returned {len(got or b'')} bytes (digest {digest(got or b'')}, "
        f"beginning {(got or b'')[:10]!r}): return the payload of one message, received with "
        f"recv_message"
    )


@pytest.mark.clause(7, 9, 15, 16)
@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_files_of_every_size_arrive_intact(size: int, port: int, tmp_path: Path) -> None:
    name = f"data {size}.bin"
    content = pseudo_random_bytes(size)
    (tmp_path / name).write_bytes(content)

    def send_from_folder(conn: socket.socket) -> None:
        send_file(conn, tmp_path)

    what = f"fetching a file of {size} bytes from your file server" + (
        f" (B1's file server closes the connection inside its send loop, so only a file "
        f"that fits in one chunk, {CHUNK} bytes, arrives)"
        if size > CHUNK
        else ""
    )
    with serving(port, send_from_folder, listener=listen(port)):
        got = together(fetch_file, port, name, port=port, what=what)
    assert len(got) == size and digest(got) == digest(content), (
        f"a file of {size} bytes (sha256 {digest(content)}) arrived as {len(got)} bytes "
        f"(sha256 {digest(got)})"
        + (
            ": 8 bytes too many, the 8 bytes of length went into the file. Receive one "
            "message with recv_message, rather than everything until the server closes"
            if len(got) == size + 8
            else ""
        )
    )


# -- §17 the clients close their sockets -------------------------------------------------------


def answering_client(client: str, port: int) -> Callable[[], object]:
    if client == "get_time":
        return lambda: call(get_time, port, port=port)
    return lambda: call(fetch_file, port, "notes.txt", port=port)


def run_client(client: str, port: int) -> None:
    """The client against a server that answers one whole message."""
    __tracebackhide__ = True
    _, error = attempt(answering_client(client, port))
    if error is not None:
        pytest.fail(
            f"{client}() raised {error!r} although the server answered one whole message, "
            f"{frame(b'1700000000.5')!r}: this test checks that the socket gets closed; the "
            f"tests of {client} and recv_message say what went wrong"
        )


@pytest.mark.clause(17)
@pytest.mark.parametrize("client", ["get_time", "fetch_file"])
def test_the_clients_close_their_socket(client: str, port: int) -> None:
    def answer(conn: socket.socket) -> None:
        if client == "fetch_file":
            read_frame(conn)
        conn.sendall(frame(b"1700000000.5"))

    with one_shot_server(port, answer), unclosed_sockets(port) as leaked:
        run_client(client, port)
    assert not leaked, (
        f"{client}() returned and left its socket for the garbage collector, which warned: "
        f"{leaked[0]}. Close it: `with socket.create_connection((HOST, port)) as sock:`. A "
        f"program that asks often runs out of file descriptors"
    )


@pytest.mark.clause(5, 17)
@pytest.mark.parametrize("client", ["get_time", "fetch_file"])
def test_the_clients_close_their_socket_when_the_connection_breaks_mid_message(
    client: str, port: int
) -> None:
    def break_off(conn: socket.socket) -> None:
        if client == "fetch_file":
            read_frame(conn)
        conn.sendall(struct.pack(">Q", 100) + b"1700000000")  # 10 of 100 bytes, then close

    raised = "nothing"
    with one_shot_server(port, break_off), unclosed_sockets(port) as leaked:
        try:
            answering_client(client, port)()
        except ConnectionError as error:
            raised = f"ConnectionError {error}"
    assert raised.startswith("ConnectionError"), (
        f"the server sent 10 bytes of a 100-byte message and closed the connection, and "
        f"{client}() raised {raised}: recv_exactly must raise ConnectionError"
    )
    assert not leaked, (
        f"{client}() raised ({raised}) and left its socket for the garbage collector, which "
        f"warned: {leaked[0]}. Close the socket on every way out: a with-block does it also "
        f"when an exception goes through"
    )
