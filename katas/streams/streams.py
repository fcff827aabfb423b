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
        # TODO(kata): asyncio.start_server(self.handle, HOST, 0); keep it in self.server and
        # return the port of its first socket (getsockname()).
        raise NotImplementedError

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one client: a reply line per command line, until QUIT or end of input."""
        # TODO(kata): track the writer; readline() until b"" or QUIT, write each reply + b"\n"
        # and await drain(); finally forget the writer, close it and await wait_closed().
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop listening, close every client connection, and wait until all are closed."""
        # TODO(kata): close the server, close every writer in self.writers, then wait for both.
        raise NotImplementedError


async def request(port: int, lines: Sequence[str]) -> list[str]:
    """Send each line to the server on 127.0.0.1:`port`; return one reply per line."""
    # TODO(kata): open_connection; for each line write it, drain and readline the reply;
    # close the writer (in a finally) and wait until it is closed.
    raise NotImplementedError
