# mypy: disable-error-code="untyped-decorator"
# (Pyro4 ships no type hints, so @Pyro4.expose would make each method untyped to mypy.)
"""Pyro4 remote objects: a byte store and a money calculator in server processes, found by name.

The tests run `serve_store(name)` and `serve_calculator(name)` each in a process of its own and
call the objects from the test process through Pyro4 proxies. This run's Pyro name server
listens at the address in the environment variable KATA_PYRO_NS ("127.0.0.1:PORT"). It checks
the HMAC key in KATA_PYRO_KEY (text; Pyro wants bytes: `.encode()`), and so must every daemon
and every proxy. Pyro4 sends everything with serpent, which knows only Python's built-in types:
bytes travel as a {"data": <base64 text>, "encoding": "base64"} dict, and any other class needs
converters registered on both sides. `Money`, `Store.__init__`, `Store.clear`, `serve_store` and
`serve_calculator` are given.

§1 `money_to_dict(money)` returns {"__class__": "pyro_objects.Money", "currency": money.currency,
  "cents": money.cents}: the dict that serpent sends for a Money.
§2 `money_from_dict(classname, data)` returns the Money that such a dict describes.
§3 `register_money()` registers both with Pyro4: `money_to_dict` for the class Money
  (`Pyro4.util.SerializerBase.register_class_to_dict`) and `money_from_dict` for the name
  "pyro_objects.Money" (`register_dict_to_class`), so that Pyro's serpent serializer turns a
  Money into that dict and back into an equal Money. Unregistered, serpent sends a Money as the
  plain list of its fields, and refuses the dict when it arrives.
§4 `Store.put(key, data)`, `Store.get(key)` and `Store.size(key)` are exposed one by one, with
  `@Pyro4.expose` on each method: `put` stores bytes under key, `get` returns them, `size`
  returns how many bytes there are.
§5 `Store.clear()` is for the server's own use and is not exposed: a client that calls it gets
  an AttributeError, and the store keeps its contents.
§6 `Store.put(key, data)` stores bytes: bytes sent by a client arrive as serpent's dict, which
  `put` turns back into bytes with `serpent.tobytes`, so `size` counts the client's bytes.
§7 `Store.get(key)` raises KeyError, with key in its message, when nothing is stored under key.
§8 `Calculator` is exposed as a whole class, with `@Pyro4.expose` on the class, so each of its
  public methods is remote: `add(a, b)` returns the Money a + b and `times(a, factor)` the Money
  a * factor. Its helper `_same_currency` stays local (Pyro never exposes a name that starts
  with `_`).
§9 `Calculator.add(a, b)` raises ValueError, naming both currencies, when a and b are in
  different currencies; the client gets that ValueError.
§10 `serve(obj, name)` calls `register_money()`, creates a `Pyro4.Daemon` bound to 127.0.0.1
  only (any free port) with the HMAC key set (`daemon._pyroHmacKey`), registers `obj` with the
  daemon, registers the URI it gets under `name` with the name server at KATA_PYRO_NS (found
  with `Pyro4.locateNS` and the key), and serves until it is killed (`daemon.requestLoop()`).
§11 `serve`'s daemon refuses a client that does not have the HMAC key.
§12 `connect(name)` calls `register_money()` and returns a `Pyro4.Proxy` of
  "PYRONAME:<name>@<host>:<port>", with host and port from KATA_PYRO_NS read when `connect` is
  called, and the HMAC key set (`proxy._pyroHmacKey`).
§13 `connect(name)` for a name that nobody registered gives a proxy whose first call raises
  `Pyro4.errors.NamingError`.
§14 `fetch(name, key)` returns, as bytes, what the store registered as `name` holds under key:
  serpent delivers bytes as a dict, which `serpent.tobytes` turns back. For a missing key it
  lets the server's KeyError reach its caller.
§15 `remote_traceback(error)` returns the traceback of an exception that a remote call raised as
  one text, the server's part included, as `Pyro4.util.getPyroTraceback` formats it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import Pyro4
import Pyro4.util
import serpent

NS_VARIABLE = "KATA_PYRO_NS"
KEY_VARIABLE = "KATA_PYRO_KEY"
MONEY_CLASS = "pyro_objects.Money"


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in cents: Money("EUR", 1250) is 12.50 EUR. With slots=True it has no
    __dict__, so serpent, left alone, sends it as the plain list of its fields."""

    currency: str
    cents: int


def money_to_dict(money: Money) -> dict[str, Any]:
    """The dict serpent sends for `money`."""
    # "__class__" is how the receiving side knows which dict_to_class converter to call.
    return {"__class__": MONEY_CLASS, "currency": money.currency, "cents": money.cents}


def money_from_dict(classname: str, data: dict[str, Any]) -> Money:
    """The Money that `data` (made by money_to_dict) describes."""
    # Build it from the fields only: the dict came from the network, so nothing in it is run.
    return Money(str(data["currency"]), int(data["cents"]))


def register_money() -> None:
    """Teach Pyro4 to send and receive Money, in this process."""
    # Both directions, in every process: the sender converts to a dict, the receiver back.
    Pyro4.util.SerializerBase.register_class_to_dict(Money, money_to_dict)
    Pyro4.util.SerializerBase.register_dict_to_class(MONEY_CLASS, money_from_dict)


def _address() -> tuple[str, int]:
    # Read when called: the name server of this run exists only once the tests started it.
    host, port = os.environ[NS_VARIABLE].rsplit(":", 1)
    return host, int(port)


def _key() -> bytes:
    return os.environ[KEY_VARIABLE].encode()


class Store:
    """Bytes by key, in the server's memory."""

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    @Pyro4.expose
    def put(self, key: str, data: bytes | dict[str, str]) -> None:
        """Store `data` (bytes, or serpent's dict for bytes) under key."""
        # Serpent delivers bytes as {"data": base64, "encoding": "base64"}: turn it back.
        self._blobs[key] = bytes(serpent.tobytes(data))

    @Pyro4.expose
    def get(self, key: str) -> bytes:
        """The bytes stored under key."""
        # A missing key raises KeyError(key): Pyro carries it to the client, traceback and all.
        return self._blobs[key]

    @Pyro4.expose
    def size(self, key: str) -> int:
        """How many bytes are stored under key."""
        # put stored real bytes, so this counts the client's bytes, not the keys of a dict.
        return len(self._blobs[key])

    def clear(self) -> None:
        """Forget everything: for the server's own use, never for clients."""
        self._blobs.clear()


# The whole class is remote API; its one helper starts with "_", which Pyro never exposes.
@Pyro4.expose
class Calculator:
    """Sums of Money, for any client."""

    def add(self, a: Money, b: Money) -> Money:
        """a + b, in their common currency."""
        # Exposed with the class: every public method of Calculator is meant for clients.
        return Money(self._same_currency(a, b), a.cents + b.cents)

    def times(self, a: Money, factor: int) -> Money:
        """a * factor."""
        # A plain int travels unchanged; only Money needs the registered converters.
        return Money(a.currency, a.cents * factor)

    def _same_currency(self, a: Money, b: Money) -> str:
        """The currency of a and b; ValueError naming both when they differ."""
        # The ValueError travels to the client, which sees it raised by its own call.
        if a.currency != b.currency:
            raise ValueError(f"cannot add {a.currency} and {b.currency}")
        return a.currency


def serve(obj: object, name: str) -> None:
    """Serve `obj` under `name` until killed."""
    # The server reads and writes Money too: it needs the converters as much as a client.
    register_money()
    host, port = _address()
    # 127.0.0.1 only: "", "0.0.0.0" or gethostname() would let other machines call in.
    with Pyro4.Daemon(host="127.0.0.1") as daemon:
        daemon._pyroHmacKey = _key()
        uri = daemon.register(obj)
        with Pyro4.locateNS(host, port, hmac_key=_key()) as ns:
            ns.register(name, uri)
        daemon.requestLoop()


def serve_store(name: str) -> None:
    """Serve a new Store under `name` until killed (the tests run it in a process of its own)."""
    serve(Store(), name)


def serve_calculator(name: str) -> None:
    """Serve a new Calculator under `name` until killed (in a process of its own)."""
    serve(Calculator(), name)


def connect(name: str) -> Pyro4.Proxy:
    """A proxy of the object registered as `name`, found through this run's name server."""
    # This side sends and receives Money as well.
    register_money()
    host, port = _address()
    # PYRONAME with the name server's address: looked up at the first call, no broadcast.
    proxy = Pyro4.Proxy(f"PYRONAME:{name}@{host}:{port}")
    proxy._pyroHmacKey = _key()
    return proxy


def fetch(name: str, key: str) -> bytes:
    """The bytes stored under key in the store registered as `name`."""
    # No try/except: a KeyError from the server must reach the caller as it came.
    with connect(name) as store:
        return bytes(serpent.tobytes(store.get(key)))


def remote_traceback(error: BaseException) -> str:
    """The whole traceback of `error`, raised by a remote call, the server's part included."""
    # getPyroTraceback appends the server's traceback (error._pyroTraceback) to the local one.
    return "".join(Pyro4.util.getPyroTraceback(type(error), error, error.__traceback__))
