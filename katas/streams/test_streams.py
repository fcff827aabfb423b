"""Kata `streams`: a line-based key-value server and client on asyncio streams."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import pytest
from streams import HOST, KeyValueServer, request

# Everything here talks over loopback and answers within milliseconds. One second only runs
# out when a reply or a close never comes at all (a server busy with another client, a
# connection nobody closes, a reply to a command the server never saw), and then it always
# runs out.
PATIENCE = 1.0


class Client:
    """A test client: one connection, replies read with a time limit."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.unterminated = b""

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self) -> str | None:
        """The next reply line without its newline; None if none came in time (then what
        came without a newline is kept in `unterminated`)."""
        try:
            line = await asyncio.wait_for(self.reader.readline(), PATIENCE)
        except TimeoutError:
            with contextlib.suppress(TimeoutError, ConnectionError):
                self.unterminated += await asyncio.wait_for(self.reader.read(65536), 0.05)
            return None
        return line.decode().rstrip("\n")

    def no_reply(self) -> str:
        """What a None among the replies means, in words."""
        if self.unterminated:
            return (
                f"None: no reply line; the server sent {bytes(self.unterminated)!r} without "
                f"the b'\\n' that ends a line, so the client's readline() waited for the rest. "
                f"Write `reply.encode() + b'\\n'`"
            )
        return f"None: no reply within {PATIENCE:g} s"

    async def ask(self, line: str) -> str | None:
        await self.send(line.encode() + b"\n")
        return await self.reply()

    async def sees_the_end(self) -> bool:
        """Whether the server closes this connection in time (read() hits end of input)."""
        try:
            rest = await asyncio.wait_for(self.reader.read(), PATIENCE)
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return rest == b""


async def finishes(awaitable: Awaitable[object]) -> bool:
    """Whether `awaitable` finishes within PATIENCE (it is cancelled if not)."""
    try:
        await asyncio.wait_for(awaitable, PATIENCE)
    except TimeoutError:
        return False
    return True


async def until(condition: Callable[[], bool]) -> None:
    """Return once `condition()` holds, checking every millisecond (bound it with finishes)."""
    while not condition():
        await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def connected(port: int) -> AsyncIterator[Client]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), PATIENCE)
    try:
        yield Client(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), PATIENCE)


@contextlib.asynccontextmanager
async def running() -> AsyncIterator[tuple[KeyValueServer, int]]:
    kv = KeyValueServer()
    port = await asyncio.wait_for(kv.start(), PATIENCE)
    try:
        yield kv, port
    finally:
        # Whatever the code under test did, neither the server nor a connection outlives
        # the test.
        if kv.server is not None:
            kv.server.close()
        for writer in list(kv.writers):
            writer.close()
        await handlers_done(asyncio.all_tasks() - {asyncio.current_task()})


async def handlers_done(tasks: set[asyncio.Task[Any]]) -> None:
    """Give the connection handlers a moment to end, so none is cancelled mid-way when the
    test's event loop closes (asyncio would log that as an error below the test's report)."""
    if tasks:
        await asyncio.wait(tasks, timeout=0.1)


@pytest.mark.clause(1, 2)
@pytest.mark.asyncio
async def test_the_server_listens_on_127_0_0_1_on_the_port_it_returns() -> None:
    async with running() as (kv, port):
        assert isinstance(kv.server, asyncio.Server), (
            "start() must keep its asyncio.Server in self.server"
        )
        host, bound = kv.server.sockets[0].getsockname()[:2]
        assert host == "127.0.0.1", (
            f"the server listens on {host!r}: bind 127.0.0.1 only, so that nobody on the "
            f"network can reach a test server"
        )
        assert bound == port != 0, f"start() returned {port}, but the server is bound to {bound}"


@pytest.mark.clause(1)
@pytest.mark.asyncio
async def test_two_servers_started_side_by_side_each_get_a_port_of_their_own() -> None:
    async with running() as (_first, port):
        try:
            async with running() as (_second, other_port):
                pass
        except OSError as error:
            pytest.fail(
                f"a second server's start() failed with {error!r} while a first one listened "
                f"on port {port}: both asked for the same fixed port. Ask for port 0, and the "
                f"system picks a free one each time"
            )
    assert other_port != port, f"two servers running at once both report port {port}"


@pytest.mark.clause(3)
@pytest.mark.asyncio
async def test_a_client_can_set_a_value_and_get_it_back() -> None:
    async with running() as (_kv, port), connected(port) as client:
        replies = [await client.ask(line) for line in ["SET colour blue", "GET colour", "GET size"]]
    assert replies != ["OK", "MISSING", "MISSING"], (
        "SET colour blue got OK, and then GET colour found nothing: the commands reached "
        "execute() with their newline, so the value was stored as 'blue\\n' and the key "
        "looked up was 'colour\\n'. Strip it: `line.decode().rstrip('\\n')`"
    )
    assert replies == ["OK", "VALUE blue", "MISSING"], (
        f"SET colour blue / GET colour / GET size got the replies {replies} "
        f"({client.no_reply()}); expected OK, VALUE blue, MISSING"
    )


@pytest.mark.clause(3)
@pytest.mark.asyncio
async def test_two_commands_sent_in_one_write_get_two_replies() -> None:
    async with running() as (_kv, port), connected(port) as client:
        await client.send(b"SET a 1\nGET a\n")
        replies = [await client.reply(), await client.reply()]
    assert replies == ["OK", "VALUE 1"], (
        f"two command lines sent in one write got the replies {replies} "
        f"({client.no_reply()}): TCP is a stream of bytes, not of messages, so one read can "
        f"hold two commands or half of one. Read whole lines with `await reader.readline()`, "
        f"not chunks with read()"
    )


@pytest.mark.clause(4)
@pytest.mark.asyncio
async def test_the_server_tracks_a_connected_client_and_forgets_it_afterwards() -> None:
    async with running() as (kv, port), connected(port) as client:
        assert await client.ask("GET a") == "MISSING", f"GET a got no reply ({client.no_reply()})"
        tracked = list(kv.writers)
        assert len(tracked) == 1 and isinstance(tracked[0], asyncio.StreamWriter), (
            f"while one client is connected, self.writers holds {tracked}, not its one "
            f"StreamWriter: add the writer when handle() starts, so stop() can close it"
        )
        client.writer.write_eof()  # the client is done: the conversation ends
        forgotten = await finishes(until(lambda: not kv.writers))
        left = list(kv.writers)
    assert forgotten, (
        f"a client closed its side and {PATIENCE:g} s later self.writers still holds {left}: "
        f"discard the writer in handle()'s `finally`, or the set grows with every client that "
        f"ever connected, and stop() closes connections long gone"
    )


@pytest.mark.clause(6)
@pytest.mark.asyncio
async def test_quit_gets_bye_and_then_the_server_closes_the_connection() -> None:
    async with running() as (kv, port), connected(port) as client:
        bye = await client.ask("QUIT")
        closed = await client.sees_the_end()
        still_served = bool(kv.writers)
    assert bye == "BYE", f"QUIT got the reply {bye!r}, not 'BYE'"
    assert closed or not still_served, (
        f"after BYE the connection was still open {PATIENCE:g} s later, and its handler still "
        f"ran, waiting for another line: after replying BYE, stop reading (break out of the "
        f"loop) so the handler closes the writer"
    )
    assert closed, (
        f"after BYE the connection was still open {PATIENCE:g} s later: the handler returned "
        f"without closing its writer, so the socket stays open (and leaks) until the process "
        f"ends. Close the writer in a `finally` and await wait_closed()"
    )


@pytest.mark.clause(7)
@pytest.mark.asyncio
async def test_the_server_closes_its_side_when_the_client_stops_sending() -> None:
    async with running() as (_kv, port), connected(port) as client:
        assert await client.ask("SET a 1") == "OK", f"SET a 1 got no OK ({client.no_reply()})"
        client.writer.write_eof()
        closed = await client.sees_the_end()
    assert closed, (
        "the client closed its sending side, and the server kept the connection open: "
        "readline() returns b'' at the end of input, which means the client is done; stop "
        "there and close the writer"
    )


@pytest.mark.clause(8)
@pytest.mark.asyncio
async def test_a_client_that_stays_connected_does_not_hold_up_the_others() -> None:
    async with running() as (_kv, port), connected(port) as first:
        assert await first.ask("SET a 1") == "OK", f"SET a 1 got no OK ({first.no_reply()})"
        async with connected(port) as second:
            answer = await second.ask("GET a")
    assert answer == "VALUE 1", (
        f"while a first client stayed connected, a second client's GET a got {answer!r} "
        f"(None: no reply within {PATIENCE:g} s): the server served one client at a time. "
        f"start_server runs each connection's handler in its own task; nothing may make one "
        f"handler wait for another (no lock held for a whole conversation)"
    )


class SlowReaderWriter:
    """Stands in for the StreamWriter of a client that reads slowly.

    Bytes written pile up in `buffered` until the handler awaits drain(), which is where a
    real writer waits for the client to catch up.
    """

    def __init__(self) -> None:
        self.buffered = 0
        self.most_buffered = 0
        self.sent = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent += data
        self.buffered += len(data)
        self.most_buffered = max(self.most_buffered, self.buffered)

    def writelines(self, data: Iterable[bytes]) -> None:
        for chunk in data:
            self.write(chunk)

    async def drain(self) -> None:
        await asyncio.sleep(0)
        self.buffered = 0

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    async def wait_closed(self) -> None:
        await asyncio.sleep(0)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


@pytest.mark.clause(5, 7)
@pytest.mark.asyncio
async def test_the_handler_waits_for_a_slow_reader_with_drain() -> None:
    kv = KeyValueServer()
    kv.store["big"] = "x" * 65536
    reader = asyncio.StreamReader()
    reader.feed_data(b"GET big\n" * 20)
    reader.feed_eof()
    writer = SlowReaderWriter()
    await asyncio.wait_for(kv.handle(reader, writer), PATIENCE)  # type: ignore[arg-type]
    reply = len("VALUE ") + 65536 + 1
    assert len(writer.sent) == 20 * reply, (
        f"20 GETs of a 64 KiB value produced {len(writer.sent)} bytes, not {20 * reply}"
    )
    assert writer.most_buffered < 2 * reply, (
        f"the handler wrote {writer.most_buffered // reply} replies ({writer.most_buffered} "
        f"bytes) without ever awaiting drain(): a client that reads slowly makes such a server "
        f"pile every reply up in memory. `await writer.drain()` after each write waits until "
        f"the client has caught up"
    )
    assert writer.closed, "the handler did not close the writer at the end of input"


async def stopped(kv: KeyValueServer) -> None:
    """kv.stop(), failing in plain words if it hangs or trips over self.writers."""
    __tracebackhide__ = True
    try:
        finished = await finishes(kv.stop())
    except RuntimeError as error:
        pytest.fail(
            f"stop() raised RuntimeError: {error}. While stop() awaited inside its loop over "
            f"self.writers, the closed clients' handlers ran and removed their writers from "
            f"that set. Loop over a copy (`for writer in list(self.writers)`), or close them "
            f"all first and await them afterwards"
        )
    assert finished, (
        f"stop() had not returned after {PATIENCE:g} s: server.wait_closed() waits for a "
        f"server that is closed with server.close() (and, since Python 3.12, until every "
        f"client connection is closed too)"
    )


@pytest.mark.clause(10)
@pytest.mark.asyncio
async def test_stop_closes_the_connected_clients() -> None:
    async with running() as (kv, port), connected(port) as first, connected(port) as second:
        for client in (first, second):
            assert await client.ask("GET a") == "MISSING", f"GET a: {client.no_reply()}"
        await stopped(kv)
        ended = [await client.sees_the_end() for client in (first, second)]
        assert ended == [True, True], (
            f"after stop() the connected clients saw their connection closed: {ended}. "
            f"server.close() only stops accepting new clients; close each connected client's "
            f"writer (the ones in self.writers) as well"
        )


@pytest.mark.clause(9)
@pytest.mark.asyncio
async def test_stop_refuses_new_clients() -> None:
    async with running() as (kv, port):
        await stopped(kv)
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), PATIENCE)
        except OSError:
            refused = True
        else:
            writer.close()
            refused = False
        assert refused, "a new client could still connect after stop(): call server.close()"


async def echo_server(
    closed_by_client: asyncio.Event,
    writers: set[asyncio.StreamWriter],
    handlers: set[asyncio.Task[None]],
    *,
    replies: bool,
) -> asyncio.Server:
    """A server the tests trust: replies `ECHO <line>` to each line, each reply cut in two
    pieces sent a moment apart (as TCP may deliver it), or never replies at all."""

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while line := await reader.readline():
                if not replies:
                    continue
                writer.write(b"ECHO ")
                await writer.drain()
                await asyncio.sleep(0.01)
                writer.write(line)
                await writer.drain()
            closed_by_client.set()
        finally:
            writer.close()

    return await asyncio.start_server(echo, HOST, 0)


@contextlib.asynccontextmanager
async def echoing(*, replies: bool = True) -> AsyncIterator[tuple[int, asyncio.Event]]:
    closed_by_client = asyncio.Event()
    writers: set[asyncio.StreamWriter] = set()
    handlers: set[asyncio.Task[None]] = set()
    server = await echo_server(closed_by_client, writers, handlers, replies=replies)
    try:
        yield server.sockets[0].getsockname()[1], closed_by_client
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()
        await handlers_done(handlers)


@pytest.mark.clause(11)
@pytest.mark.asyncio
async def test_request_sends_each_line_and_returns_one_reply_per_line() -> None:
    async with echoing() as (port, _closed):
        try:
            replies = await asyncio.wait_for(request(port, ["GET a", "SET b two words"]), PATIENCE)
        except TimeoutError:
            pytest.fail(
                f"request() had not returned after {PATIENCE:g} s, although the echo server "
                f"answers every line at once: the server saw no whole line. Send each line "
                f"with its newline, `writer.write(line.encode() + b'\\n')`"
            )
    assert replies == ["ECHO GET a", "ECHO SET b two words"], (
        f"an echo server that sends each reply in two pieces answered {replies}: send each "
        f"line with its b'\\n', read one whole reply line per line sent with readline() (a "
        f"read() returns whatever piece has arrived), and strip the newline"
    )


@pytest.mark.clause(12)
@pytest.mark.asyncio
async def test_request_closes_its_connection_when_it_is_done() -> None:
    async with echoing() as (port, closed_by_client):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            await asyncio.wait_for(request(port, ["hello"]), PATIENCE)
        closed = await finishes(closed_by_client.wait())
        assert closed, (
            f"request() returned, and {PATIENCE:g} s later the server still had its "
            f"connection open: close the writer (in a `finally`) and await wait_closed()"
        )
    unclosed = [str(w.message) for w in caught if "unclosed" in str(w.message)]
    assert not unclosed, (
        f"request() returned with its connection still open; Python closed it only when it "
        f"threw the writer away ({unclosed[0]}). Do not leave that to the garbage collector "
        f"(other Pythons collect later, or never): close the writer in a `finally` and await "
        f"wait_closed()"
    )


@pytest.mark.clause(12)
@pytest.mark.asyncio
async def test_a_cancelled_request_still_closes_its_connection() -> None:
    async with echoing(replies=False) as (port, closed_by_client):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            with pytest.raises(TimeoutError):
                # The server never answers: request() waits for its reply until cancelled.
                await asyncio.wait_for(request(port, ["hello"]), 0.1)
        closed = await finishes(closed_by_client.wait())
    unclosed = [str(w.message) for w in caught if "unclosed" in str(w.message)]
    assert not unclosed, (
        f"request() was cancelled while it waited for a reply, and it left its connection "
        f"open: Python closed it only when it threw the writer away ({unclosed[0]}). The "
        f"CancelledError left request() before it closed the writer; close it in a `finally`, "
        f"which runs however the function ends"
    )
    assert closed, (
        f"request() was cancelled while it waited for a reply, and {PATIENCE:g} s later the "
        f"server still had its connection open: the CancelledError left request() before it "
        f"closed the writer. Close it in a `finally`, which runs however the function ends"
    )
