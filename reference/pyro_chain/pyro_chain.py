# mypy: disable-error-code="untyped-decorator"
# (Pyro4 ships no type hints, so @Pyro4.expose and @Pyro4.oneway would make the methods untyped.)
"""Pyro chain: a ring of Pyro4 servers, one process each, that pass a message round to its start.

Each link of the ring is a `Link` object, served by a Pyro4 daemon in a process of its own and
registered with this run's name server under the link's name; it knows the name of the next
link. The tests start the links with `serve_link` (one process per link) and call them from the
test process. The name server's address is in the environment variable KATA_PYRO_NS
("HOST:PORT") and its HMAC key in KATA_PYRO_KEY (text; Pyro4 wants bytes): `name_server()` and
`hmac_key()` are given and read them when called, never at import. `Link.__init__` and
`Link.received()` are given too.

§1 `link_proxy(name)` returns a Pyro4 proxy of the object registered as `name` with the name
  server at KATA_PYRO_NS (the URI "PYRONAME:name@HOST:PORT"), carrying the HMAC key
  (`proxy._pyroHmacKey`), without which the name server and every link refuse it.
§2 `Link.forward(trail)` appends the link's own name to the list `trail` and returns the longer
  list when the message is back at its origin, the link named `trail[0]`: `forward([])` called
  on link a of the ring a -> b -> c -> a returns ["a", "b", "c", "a"], every link in the order
  the message visited it, the origin at both ends.
§3 `Link.forward(trail)` at any other link passes the longer list on to the next link (a remote
  call of `forward` on the link named `next_name`, through `link_proxy`) and returns that call's
  result unchanged.
§4 `Link.pass_note(trail, pause)` is a oneway method (`@Pyro4.oneway`): its caller gets control
  back at once, without waiting for that link or for the rest of the ring, although each link
  spends `pause` seconds on the note before it passes it on.
§5 `Link.pass_note(trail, pause)` waits `pause` seconds and appends the link's own name; back at
  its origin (`trail[0]`, as in `forward`) the link keeps the longer trail in `self.notes`
  (which `received()` returns), anywhere else it passes the trail on with a `pass_note` call
  on the next link. Only the origin keeps it.
§6 `serve_link(name, next_name, servertype)` sets `Pyro4.config.SERVERTYPE` to `servertype`
  ("thread" or "multiplex") before it creates its `Pyro4.Daemon` (a daemon chooses its server
  type when it is created), binds the daemon to 127.0.0.1 with the HMAC key, registers
  `Link(name, next_name)` with the name server under `name`, and serves until killed.
§7 `send_around(first_name, timeout)` calls `forward([])` on the link named `first_name`
  through a proxy whose `_pyroTimeout` is `timeout`, and returns the trail it gets back.
§8 `send_around` lets Pyro4.errors.TimeoutError reach its caller when the ring has not answered
  `timeout` seconds after the call: a ring whose first link is a multiplex server never
  answers, because that link is still busy with the message when the last link passes it back.
"""

from __future__ import annotations

import os
import threading
import time

import Pyro4

ADDRESS_VARIABLE = "KATA_PYRO_NS"
KEY_VARIABLE = "KATA_PYRO_KEY"


def name_server() -> tuple[str, int]:
    """This run's name server: (host, port), from KATA_PYRO_NS."""
    host, port = os.environ[ADDRESS_VARIABLE].rsplit(":", 1)
    return host, int(port)


def hmac_key() -> bytes:
    """This run's HMAC key, from KATA_PYRO_KEY."""
    return os.environ[KEY_VARIABLE].encode()


def link_proxy(name: str) -> Pyro4.Proxy:
    """A proxy of the link registered as `name`, with the key."""
    host, port = name_server()
    proxy = Pyro4.Proxy(f"PYRONAME:{name}@{host}:{port}")
    # Pyro4 4.82 keys each proxy and daemon on its own: a proxy without it is refused.
    proxy._pyroHmacKey = hmac_key()
    return proxy


@Pyro4.expose
class Link:
    """One link of the ring: it knows its own name and the next link's."""

    def __init__(self, name: str, next_name: str) -> None:
        self.name = name
        self.next_name = next_name
        self.notes: list[list[str]] = []  # the notes that came back here, their whole trails
        self.lock = threading.Lock()

    def received(self) -> list[list[str]]:
        """The trails of the notes that came back to this link, in arrival order."""
        with self.lock:
            return list(self.notes)

    def forward(self, trail: list[str]) -> list[str]:
        """Pass the message on until it is back at its origin; the trail of every link."""
        # Decide before appending: at the first link the trail is still empty.
        back_home = bool(trail) and trail[0] == self.name
        trail = [*trail, self.name]
        if back_home:
            return trail
        # A fresh proxy per call: this call may run in any thread of the daemon's pool.
        with link_proxy(self.next_name) as next_link:
            result: list[str] = next_link.forward(trail)
        return result

    @Pyro4.oneway
    def pass_note(self, trail: list[str], pause: float) -> None:
        """Pass the note on, without anyone waiting; its origin keeps it."""
        time.sleep(pause)
        back_home = bool(trail) and trail[0] == self.name
        trail = [*trail, self.name]
        if back_home:
            # The daemon may run two calls at once: keep the list behind the lock.
            with self.lock:
                self.notes.append(trail)
            return
        # Oneway again: this link is done as soon as the note is sent, waiting for nobody.
        with link_proxy(self.next_name) as next_link:
            next_link.pass_note(trail, pause)


def serve_link(name: str, next_name: str, servertype: str) -> None:
    """Serve Link(name, next_name) under `name` until killed."""
    # Before the Daemon: it reads SERVERTYPE once, when it is created.
    Pyro4.config.SERVERTYPE = servertype
    daemon = Pyro4.Daemon(host="127.0.0.1")
    daemon._pyroHmacKey = hmac_key()
    uri = daemon.register(Link(name, next_name))
    host, port = name_server()
    with Pyro4.locateNS(host, port, hmac_key=hmac_key()) as ns:
        ns.register(name, uri)
    daemon.requestLoop()


def send_around(first_name: str, timeout: float) -> list[str]:
    """Send a message round the ring from `first_name`; its trail, or TimeoutError."""
    with link_proxy(first_name) as first:
        # Per proxy: COMMTIMEOUT set now would only reach proxies created later.
        first._pyroTimeout = timeout
        trail: list[str] = first.forward([])
    return trail
