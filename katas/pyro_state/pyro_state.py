"""Pyro state: who gets which instance of a remote class (every client the same one, each
connection its own, or each call a fresh one), and a counter that many clients share safely.

The tests run `serve(...)` in a server process of their own, as Pyro4 clients through several
proxies at once. The name server's address is in the environment variable KATA_PYRO_NS
("host:port") and its HMAC key in KATA_PYRO_KEY; the given `name_server()` and `key()` read
them when called. Also given: `SlowStore`, where a Counter keeps its total (reading is quick,
`write` takes STORE_SECONDS, as a database round trip would, made long on purpose so that two
adds at once overlap every time), and `Receipt.__init__`, which gives each new Receipt the
next number. Every class is given already exposed (`@Pyro4.expose`); its instance mode is
yours to declare.

§1 `Counter` is declared with `@Pyro4.behavior(instance_mode="single")`: the server makes one
  Counter and every client, through every connection, adds to that same total.
§2 `Counter()` keeps its total in a new SlowStore of its own, `self.store`, starting at 0;
  `Counter.total()` returns the total, and `Counter.add(n)` reads it, writes total + n back
  with `self.store.write` and returns the total just after its own addition.
§3 `Counter.add` never loses an update when several clients add at once: reading the total,
  writing it back and taking the value to return happen under one lock that every add of that
  Counter shares, so the adds take turns.
§4 `Counter.wait_for(at_least, timeout)` blocks its caller until the total is at least
  `at_least` and returns the total; every waiting caller wakes as soon as an add (from any
  client) brings the total there, and a total already there returns at once.
§5 `Counter.wait_for` gives up after `timeout` seconds and returns the total as it is then,
  without holding the lock while it waits (other clients' adds go on meanwhile).
§6 `Tab` is declared with `@Pyro4.behavior(instance_mode="session")`: each connection (each
  proxy) gets a Tab of its own, so a client never sees another client's orders, and a new
  connection starts a new, empty Tab.
§7 `Tab.order(price)` appends price to this Tab's own orders and returns their sum;
  `Tab.orders()` returns this Tab's orders in the order they came.
§8 `Receipt` is declared with `@Pyro4.behavior(instance_mode="percall")`, so every call gets a
  new Receipt: `Receipt.issue(prices)` returns {"number": this Receipt's own `number`, "total":
  the sum of prices}, and no two calls ever get the same number.
§9 `serve(counter_name, tab_name, receipt_name)` registers the classes Counter, Tab and
  Receipt themselves with one Pyro daemon (not instances: the daemon would serve an instance
  to everybody, as if it were "single"), registers their URIs with the name server under the
  three names given, and serves until it is killed.
§10 `serve`'s daemon listens on 127.0.0.1 only and has the HMAC key from `key()`, so a client
  without the key is refused.
§11 `serve` uses Pyro's thread server (`Pyro4.config.SERVERTYPE = "thread"`), which runs each
  connection's calls in a thread of their own: a client blocked in `wait_for` never stops
  another client's `add`.
"""

from __future__ import annotations

import itertools
import os
import threading  # noqa: F401  # the Condition that guards a Counter comes from here
import time

import Pyro4

NAME_SERVER_VARIABLE = "KATA_PYRO_NS"
KEY_VARIABLE = "KATA_PYRO_KEY"
STORE_SECONDS = 0.05


def name_server() -> tuple[str, int]:
    """The name server's host and port, from KATA_PYRO_NS."""
    host, port = os.environ[NAME_SERVER_VARIABLE].rsplit(":", 1)
    return host, int(port)


def key() -> bytes:
    """The HMAC key of this run's name server and daemons, from KATA_PYRO_KEY."""
    return os.environ[KEY_VARIABLE].encode()


class SlowStore:
    """Where a Counter keeps its total: `read` is quick, `write` takes STORE_SECONDS."""

    def __init__(self) -> None:
        self.value = 0

    def read(self) -> int:
        """The value last written."""
        return self.value

    def write(self, value: int) -> None:
        """Store `value`, slowly: a database round trip, made long so that races show."""
        time.sleep(STORE_SECONDS)
        self.value = value


@Pyro4.expose
class Counter:
    """A total that every client of the server adds to."""

    def __init__(self) -> None:
        # TODO(kata): declare the mode above the class; here self.store = a new SlowStore and one lock (a Condition) for adds and waits
        raise NotImplementedError

    def total(self) -> int:
        """The total now."""
        # TODO(kata): the store's value
        raise NotImplementedError

    def add(self, n: int) -> int:
        """Add n; the total just after this addition."""
        # TODO(kata): under the lock: read, write total + n back, wake the waiters, return it
        raise NotImplementedError

    def wait_for(self, at_least: int, timeout: float) -> int:
        """The total once it is at least `at_least`, or after `timeout` seconds."""
        # TODO(kata): wait on the Condition (which releases its lock meanwhile), then the total
        raise NotImplementedError


@Pyro4.expose
class Tab:
    """One client's orders."""

    def __init__(self) -> None:
        # TODO(kata): declare the mode above the class; here this Tab's own (empty) orders
        raise NotImplementedError

    def order(self, price: int) -> int:
        """Add an order; the sum of this Tab's orders."""
        # TODO(kata): append, then the sum
        raise NotImplementedError

    def orders(self) -> list[int]:
        """This Tab's orders, oldest first."""
        # TODO(kata): a copy of the orders
        raise NotImplementedError


_receipt_numbers = itertools.count(1)


@Pyro4.expose
class Receipt:
    """A numbered receipt, made for one call."""

    def __init__(self) -> None:
        self.number = next(_receipt_numbers)

    def issue(self, prices: list[int]) -> dict[str, int]:
        """This Receipt's number and the sum of prices."""
        # TODO(kata): declare the mode above the class; here {"number": ..., "total": ...}
        raise NotImplementedError


def serve(counter_name: str, tab_name: str, receipt_name: str) -> None:
    """Serve Counter, Tab and Receipt under these names until killed."""
    # TODO(kata): a daemon on 127.0.0.1 with the key, the three classes registered, requestLoop
    raise NotImplementedError
