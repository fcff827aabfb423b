"""Kata `streams`: a line-based key-value server and client on asyncio streams.

The protocol is one command per line (UTF-8, ending in `\\n`) and one reply line per command;
`execute` (given) runs a command: `SET key value` -> `OK`, `GET key` -> `VALUE value` or
`MISSING`, `QUIT` -> `BYE`, anything else -> `ERROR ...`.

Contract (the tests check each point, over real TCP connections on 127.0.0.1):

- §1 `KeyValueServer.start()` listens with `asyncio.start_server` on 127.0.0.1 only, on a
  port the system picks (port 0), serving each connection with `handle`.
  §2 `start` keeps the `asyncio.Server` in `self.server` and returns the port actually bound.
- §3 `KeyValueServer.handle(reader, writer)` serves one client: it reads one whole line at a
  time and writes back the reply line of `execute(self.store, line)`, the command without
  its newline and the reply with one.
  §4 `handle` keeps the writer in `self.writers` while its client is connected, and removes
  it when the conversation ends.
  §5 `handle` waits for `writer.drain()` after each reply (back-pressure: a client that reads
  slowly must slow the server down, not fill its memory).
  §6 After replying `BYE` to `QUIT`, `handle` stops reading, closes the writer and waits
  until it is closed.
  §7 When the client closes its side (end of input), `handle` closes the writer and waits
  until it is closed.
  §8 Many clients are served at the same time: a client that stays connected never holds up
  the others.
- §9 `KeyValueServer.stop()` stops listening: new connections are refused.
  §10 `stop()` closes every connected client's writer, and waits until the server and those
  connections are closed.
- §11 `request(port, lines)` connects to 127.0.0.1:`port` with `asyncio.open_connection`,
  sends each line, reads one whole reply line per line sent, and returns the replies without
  their newlines.
  §12 `request` closes its connection and waits until it is closed, also when it ends
  without its replies (an error, or its caller cancelled it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

HOST = "127.0.0.1"


def execute(store: dict[str, str], line: str) -> str:
    """Run one command line against `store`; return the reply line, without its newline."""
    command, _, rest = line.partition(" ")
    if command == "SET":
        key, _, value = rest.partition(" ")
        store[key] = value
        return "OK"
    if command == "GET":
        return f"VALUE {store[rest]}" if rest in store else "MISSING"
    if command == "QUIT":
        return "BYE"
    return f"ERROR unknown command {command!r}"


class KeyValueServer:
    """A key-value store served over TCP, one command per line, many clients at once."""

    def __init__(self) -> None:
        self.store: dict[str, str] = {}
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        """Listen on 127.0.0.1, on a port the system picks; return that port."""
        # Port 0 lets the system pick a free port, and 127.0.0.1 keeps it off the network.
        self.server = await asyncio.start_server(self.handle, HOST, 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client: a reply line per command line, until QUIT or end of input."""
        self.writers.add(writer)
        # readline() waits for a whole line, however the bytes were split on the network;
        # drain() pauses this client's handler (only it) while its reader lags behind.
        try:
            while line := await reader.readline():
                reply = execute(self.store, line.decode().rstrip("\n"))
                writer.write(reply.encode() + b"\n")
                await writer.drain()
                if reply == "BYE":
                    break
        except ConnectionError:
            pass  # the client vanished mid-conversation: nothing left to answer
        finally:
            self.writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def stop(self) -> None:
        """Stop listening, close every client connection, and wait until all are closed."""
        assert self.server is not None, "stop() before start()"
        # close() only stops accepting; open connections must be closed one by one.
        self.server.close()
        writers = list(self.writers)
        for writer in writers:
            writer.close()
        await self.server.wait_closed()
        for writer in writers:
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def request(port: int, lines: Sequence[str]) -> list[str]:
    """Send each line to the server on 127.0.0.1:`port`; return one reply per line."""
    reader, writer = await asyncio.open_connection(HOST, port)
    # The connection is closed in `finally`, so the server sees the end of input even when
    # reading a reply fails.
    try:
        replies = []
        for line in lines:
            writer.write(line.encode() + b"\n")
            await writer.drain()
            replies.append((await reader.readline()).decode().rstrip("\n"))
        return replies
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
