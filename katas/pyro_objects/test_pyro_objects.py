"""Kata `pyro_objects`: Pyro4 remote objects, a name server, HMAC keys and what serpent sends."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import Pyro4
import Pyro4.errors
import Pyro4.util
import pytest
import serpent
from pyro_objects import (
    Calculator,
    Money,
    connect,
    fetch,
    money_from_dict,
    money_to_dict,
    register_money,
    remote_traceback,
)

# Every remote call gives up after this many seconds (Pyro4.config.COMMTIMEOUT, which every
# proxy made during a test takes, yours too): a server that hangs fails the test, with the calls
# still in flight, instead of stalling the run.
CALL_TIMEOUT = 2.0
MONEY_CLASS = "pyro_objects.Money"
# Every byte value once, then some text: 300 bytes (never 2, the length of serpent's dict).
BLOB = bytes(range(256)) + b"pyro" * 11
KEY_HINT = (
    "daemon._pyroHmacKey = os.environ['KATA_PYRO_KEY'].encode() on the daemon, the key the "
    "name server and every client here use"
)


@pytest.fixture(autouse=True)
def bounded_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Pyro4.config, "COMMTIMEOUT", CALL_TIMEOUT)


@pytest.fixture(scope="module")
def store(pyro_server: Any, kata_namespace: Any) -> str:
    """The name of a Store served by your serve_store(name) in a process of its own."""
    name = str(kata_namespace.name("store"))
    pyro_server(name, "pyro_objects", "serve_store", name)
    return name


@pytest.fixture(scope="module")
def calculator(pyro_server: Any, kata_namespace: Any) -> str:
    """The name of a Calculator served by your serve_calculator(name)."""
    name = str(kata_namespace.name("calculator"))
    pyro_server(name, "pyro_objects", "serve_calculator", name)
    return name


def our_money_converters() -> None:
    """The tests' own Money converters, so that a test of a server does not rely on yours."""
    Pyro4.util.SerializerBase.register_class_to_dict(
        Money,
        lambda money: {"__class__": MONEY_CLASS, "currency": money.currency, "cents": money.cents},
    )
    Pyro4.util.SerializerBase.register_dict_to_class(
        MONEY_CLASS, lambda _, data: Money(data["currency"], data["cents"])
    )


def no_money_converters() -> None:
    Pyro4.util.SerializerBase.unregister_class_to_dict(Money)
    Pyro4.util.SerializerBase.unregister_dict_to_class(MONEY_CLASS)


@pytest.fixture
def unregistered() -> Iterator[None]:
    """No Money converters in this process when the test starts, and none after it."""
    no_money_converters()
    yield
    no_money_converters()


def proxy(pyro_ns: Any, name: str) -> Any:
    """The tests' own proxy of `name`: PYRONAME with the name server's address and the key."""
    our_money_converters()
    found = Pyro4.Proxy(f"PYRONAME:{name}@{pyro_ns.host}:{pyro_ns.port}")
    found._pyroHmacKey = pyro_ns.key
    return found


@contextlib.contextmanager
def remote(calls: str) -> Iterator[None]:
    """Make remote calls; Pyro's terse errors about a server's setup become sentences."""
    __tracebackhide__ = True
    try:
        yield
    except Pyro4.errors.SerializeError as error:  # a CommunicationError: catch it first
        if getattr(error, "_pyroTraceback", None):  # raised in the server, sent back
            pytest.fail(
                f"{calls}: the server could not read what it was sent ({error}). A process "
                "reads a Money only with the converters registered in that process: serve() "
                "calls register_money() before it serves, which registers money_from_dict under "
                f"{MONEY_CLASS!r}, the '__class__' the dict carries",
                pytrace=False,
            )
        pytest.fail(
            f"{calls}: this process could not read the answer ({error}): the server sent a "
            "dict that no converter here knows; money_to_dict must give the '__class__' "
            "that register_money registers money_from_dict under",
            pytrace=False,
        )
    except Pyro4.errors.CommunicationError as error:
        if "hmac" not in str(error):
            raise
        pytest.fail(
            f"{calls}: the server refused a client that has this run's HMAC key ({error}): set "
            f"{KEY_HINT}",
            pytrace=False,
        )
    except Pyro4.errors.NamingError as error:
        if "Failed to locate the nameserver" not in str(error):
            raise
        pytest.fail(
            f"{calls}: the proxy could not reach this run's name server ({error}). A proxy "
            "needs PYRONAME:name@host:port, with the address in KATA_PYRO_NS (a bare "
            "PYRONAME:name looks for a name server by broadcast, which finds none here), and "
            "the key on the proxy (proxy._pyroHmacKey): the name server refuses a client "
            "without it",
            pytrace=False,
        )
    except AttributeError as error:
        if "no exposed attribute or method" not in str(error):
            raise
        pytest.fail(
            f"{calls}: {error}. Pyro calls only what is exposed: @Pyro4.expose on the method "
            "(or on the class, to expose all its public methods)",
            pytrace=False,
        )


def returned_or_raised(call: Callable[[], Any], kind: type[Exception]) -> tuple[Any, Any]:
    """(what call() returned, None), or (None, the `kind` exception it raised)."""
    try:
        return call(), None
    except kind as error:
        return None, error


def registered_uri(pyro_ns: Any, name: str) -> Any:
    with pyro_ns.locate() as ns:
        return ns.lookup(name)


# -- serpent and Money -----------------------------------------------------------------------


@pytest.mark.clause(1)
def test_money_to_dict_gives_the_class_name_and_both_fields() -> None:
    wanted = {"__class__": MONEY_CLASS, "currency": "NOK", "cents": 98765}
    got = money_to_dict(Money("NOK", 98765))
    assert got == wanted, (
        f"money_to_dict(Money('NOK', 98765)) returned {got!r}, not {wanted!r}: the receiving "
        "side reads '__class__' to choose the converter that turns the dict back into a Money; "
        "without it the dict arrives as a plain dict"
    )


@pytest.mark.clause(2)
def test_money_from_dict_rebuilds_an_equal_money() -> None:
    data = {"__class__": MONEY_CLASS, "currency": "JPY", "cents": 4321}
    got = money_from_dict(MONEY_CLASS, data)
    assert type(got) is Money and got == Money("JPY", 4321), (
        f"money_from_dict({MONEY_CLASS!r}, {data!r}) returned {got!r}, not Money('JPY', 4321)"
    )


@pytest.mark.clause(3)
def test_register_money_lets_pyros_serpent_send_money_and_read_it_back(
    unregistered: None,
) -> None:
    register_money()
    serializer = Pyro4.util.get_serializer("serpent")
    sent = [Money("CHF", 307), {"refund": Money("CHF", -5)}]
    data = serializer.dumps(sent)
    assert MONEY_CLASS.encode() in data, (
        f"after register_money(), Pyro's serpent sends {sent!r} as {data!r}: nothing in it says "
        f"{MONEY_CLASS!r}, so the receiver cannot know it was a Money (unregistered, serpent "
        "sends a Money as the plain list of its fields). Register money_to_dict for the class "
        "Money (Pyro4.util.SerializerBase.register_class_to_dict(Money, money_to_dict)), and "
        "give its dict a '__class__'"
    )
    try:
        back = serializer.loads(data)
    except Pyro4.errors.SerializeError as error:
        pytest.fail(
            f"Pyro's serpent refused the dict of a Money it had just sent ({error}): register "
            f"money_from_dict under the name the dict carries, {MONEY_CLASS!r}: "
            "Pyro4.util.SerializerBase.register_dict_to_class(...)",
            pytrace=False,
        )
    assert back == sent, f"{sent!r} went out and came back as {back!r}"


# -- the store: exposed method by method -----------------------------------------------------


@pytest.mark.clause(4)
def test_put_get_and_size_are_remote(pyro_ns: Any, store: str) -> None:
    with proxy(pyro_ns, store) as remote_store, remote("put, get and size on the store"):
        remote_store.put("put-get-size", BLOB)
        got = remote_store.get("put-get-size")
        size = remote_store.size("put-get-size")
    assert isinstance(got, dict) and serpent.tobytes(got) == BLOB, (
        f"get('put-get-size') after put('put-get-size', <{len(BLOB)} bytes>) returned "
        f"{got!r:.120}: it must return the bytes put stored (which arrive at the client as "
        "serpent's {'data': ..., 'encoding': 'base64'} dict)"
    )
    assert isinstance(size, int), f"size('put-get-size') returned {size!r}, not an int"


@pytest.mark.clause(5)
def test_clear_is_not_remote_and_the_store_keeps_its_contents(pyro_ns: Any, store: str) -> None:
    with proxy(pyro_ns, store) as remote_store:
        with remote("put"):
            remote_store.put("kept", b"abc")
        try:
            remote_store.clear()
        except AttributeError:
            pass
        else:
            pytest.fail(
                "a client called clear() and emptied the store: clear is for the server's own "
                "use. Expose put, get and size one by one (@Pyro4.expose on each method), not "
                "the whole class, which exposes every public method",
                pytrace=False,
            )
        with remote("size"):
            assert remote_store.size("kept") == 3, "the store lost what was put under 'kept'"


@pytest.mark.clause(6)
def test_put_stores_the_clients_bytes_not_serpents_dict(pyro_ns: Any, store: str) -> None:
    with proxy(pyro_ns, store) as remote_store, remote("put, get and size"):
        for key, data in (("none", b""), ("one", b"\x00"), ("blob", BLOB)):
            remote_store.put(key, data)
            size = remote_store.size(key)
            assert size == len(data), (
                f"after put({key!r}, <{len(data)} bytes>), size({key!r}) is {size}: bytes "
                "arrive at the server as serpent's {'data': <base64>, 'encoding': 'base64'} "
                "dict, which has 2 keys; put must store serpent.tobytes(data)"
            )
            back = serpent.tobytes(remote_store.get(key))
            assert back == data, f"put({key!r}, {data!r:.40}) and get({key!r}) gave {back!r:.40}"


@pytest.mark.clause(7)
def test_get_of_a_missing_key_raises_key_error_naming_it(pyro_ns: Any, store: str) -> None:
    with proxy(pyro_ns, store) as remote_store, remote("get"):
        got, error = returned_or_raised(lambda: remote_store.get("never-put"), KeyError)
    if error is None:
        pytest.fail(
            f"get('never-put') returned {got!r} for a key nobody stored: raise KeyError, so the "
            "client can tell a missing key from stored bytes",
            pytrace=False,
        )
    assert "never-put" in str(error), f"the KeyError says {error}, not the key"


# -- the calculator: exposed as a whole class ------------------------------------------------


@pytest.mark.clause(8)
def test_calculator_is_exposed_as_a_whole_class() -> None:
    assert getattr(Calculator, "_pyroExposed", False) is True, (
        "Calculator has no @Pyro4.expose on the class: every public method of Calculator is "
        "for clients, so expose the class as a whole"
    )


@pytest.mark.clause(8, 10)
def test_add_and_times_take_and_return_money_remotely(pyro_ns: Any, calculator: str) -> None:
    with proxy(pyro_ns, calculator) as remote_calculator, remote("add and times"):
        total = remote_calculator.add(Money("EUR", 1250), Money("EUR", 199))
        scaled = remote_calculator.times(Money("SEK", -30), 7)
        with pytest.raises(AttributeError):
            remote_calculator._same_currency(Money("EUR", 1), Money("EUR", 2))
    assert type(total) is Money and total == Money("EUR", 1449), (
        f"add(Money('EUR', 1250), Money('EUR', 199)) returned {total!r}, not Money('EUR', 1449)"
    )
    assert type(scaled) is Money and scaled == Money("SEK", -210), (
        f"times(Money('SEK', -30), 7) returned {scaled!r}, not Money('SEK', -210)"
    )


@pytest.mark.clause(9)
def test_adding_two_currencies_raises_value_error_at_the_client(
    pyro_ns: Any, calculator: str
) -> None:
    with proxy(pyro_ns, calculator) as remote_calculator, remote("add"):
        try:
            got = remote_calculator.add(Money("EUR", 100), Money("USD", 100))
        except ValueError as error:
            message = str(error)
        else:
            pytest.fail(
                f"add(Money('EUR', 100), Money('USD', 100)) returned {got!r}: euros and dollars "
                "do not add up; raise ValueError naming both currencies",
                pytrace=False,
            )
    assert "EUR" in message and "USD" in message, f"the ValueError says {message!r}"


@pytest.mark.clause(15)
def test_remote_traceback_shows_the_servers_frames_and_the_clients(
    pyro_ns: Any, calculator: str
) -> None:
    with proxy(pyro_ns, calculator) as remote_calculator, remote("add"):
        try:
            remote_calculator.add(Money("GBP", 1), Money("DKK", 1))
        except ValueError as error:
            text = remote_traceback(error)
        else:
            pytest.fail("add(GBP, DKK) raised nothing", pytrace=False)
    assert isinstance(text, str), f"remote_traceback returned {text!r}, not a str"
    assert "Remote traceback" in text and ", in add" in text, (
        "remote_traceback gave no server frames (no 'Remote traceback', no frame of add): the "
        "exception was raised in the server, and Pyro keeps the server's traceback on it; "
        f"Pyro4.util.getPyroTraceback(type(error), error, error.__traceback__) joins it in. "
        f"It gave:\n{text}"
    )
    assert "in test_remote_traceback_shows" in text, (
        "remote_traceback gave only the server's part, not where the call was made in the "
        f"client: getPyroTraceback gives both. It gave:\n{text}"
    )


# -- the daemon ------------------------------------------------------------------------------


@pytest.mark.clause(10)
def test_the_daemon_listens_on_127_0_0_1_only(pyro_ns: Any, store: str) -> None:
    uri = registered_uri(pyro_ns, store)
    assert uri.host == "127.0.0.1", (
        f"{store!r} is registered as {uri}: the daemon listens on {uri.host!r}. "
        + (
            "That is every network interface: anyone who can reach this machine can call it. "
            if uri.host in ("", "0.0.0.0", "::")
            else "Another machine may reach that address. "
        )
        + "Bind the loopback address only: Pyro4.Daemon(host='127.0.0.1')"
    )


@pytest.mark.clause(11)
def test_a_client_without_the_key_is_refused(pyro_ns: Any, store: str) -> None:
    uri = registered_uri(pyro_ns, store)
    with Pyro4.Proxy(uri) as stranger:
        try:
            stranger._pyroBind()
        except Pyro4.errors.CommunicationError:
            pass
        else:
            pytest.fail(
                f"a client without the HMAC key connected to {uri} and could call it: set "
                f"{KEY_HINT}",
                pytrace=False,
            )
    with proxy(pyro_ns, store) as remote_store, remote("connecting with the key"):
        remote_store._pyroBind()


# -- the client ------------------------------------------------------------------------------


@pytest.mark.clause(12)
def test_connect_reads_the_name_server_and_the_key_when_it_is_called(
    pyro_ns: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KATA_PYRO_NS", "127.0.0.2:1919")
    monkeypatch.setenv("KATA_PYRO_KEY", "another-key")
    try:
        found = connect("elsewhere")
    except Pyro4.errors.PyroError as error:
        pytest.fail(
            f"connect('elsewhere') called a name server at once ({error}): return a PYRONAME "
            "proxy, which looks the name up at its first call",
            pytrace=False,
        )
    with found:
        assert str(found._pyroUri) == "PYRONAME:elsewhere@127.0.0.2:1919", (
            f"with KATA_PYRO_NS=127.0.0.2:1919, connect('elsewhere') gave a proxy of "
            f"{found._pyroUri}, not PYRONAME:elsewhere@127.0.0.2:1919: read the variable "
            "inside connect, and put the name server's address after '@' (a bare "
            "PYRONAME:name looks for a name server by broadcast, which finds none here)"
        )
        assert found._pyroHmacKey == b"another-key", (
            f"with KATA_PYRO_KEY=another-key, connect gave a proxy whose key is "
            f"{found._pyroHmacKey!r}, not b'another-key': proxy._pyroHmacKey = "
            "os.environ['KATA_PYRO_KEY'].encode(), read when connect is called"
        )


@pytest.mark.clause(12)
def test_connect_finds_the_object_by_name_and_sends_and_reads_money(
    pyro_ns: Any, calculator: str, unregistered: None
) -> None:
    with connect(calculator) as remote_calculator, remote("add through connect"):
        try:
            got = remote_calculator.add(Money("EUR", 5), Money("EUR", 6))
        except Pyro4.errors.SerializeError as error:
            where = "the server" if getattr(error, "_pyroTraceback", None) else "this client"
            pytest.fail(
                f"add(Money, Money) through connect({calculator!r}): {where} could not read a "
                f"Money ({error}). Both sides need the converters: serve() and connect() each "
                f"call register_money(), which registers money_from_dict under {MONEY_CLASS!r}",
                pytrace=False,
            )
        except AttributeError as error:
            pytest.fail(
                f"add(Money, Money) through connect({calculator!r}) failed in the server: "
                f"{error!r}. The server got something else than a Money: this process sends "
                "Money too, so connect() calls register_money() (without working converters "
                "serpent sends a Money as the list of its fields)",
                pytrace=False,
            )
    assert type(got) is Money and got == Money("EUR", 11), (
        f"add(Money('EUR', 5), Money('EUR', 6)) through connect returned {got!r}"
    )


@pytest.mark.clause(13)
def test_an_unknown_name_raises_naming_error(pyro_ns: Any, kata_namespace: Any) -> None:
    nobody = str(kata_namespace.name("nobody"))
    with connect(nobody) as remote_store:
        got, error = returned_or_raised(
            lambda: remote_store.size("anything"), Pyro4.errors.NamingError
        )
    if error is None:
        pytest.fail(f"a call through connect({nobody!r}) answered {got!r}", pytrace=False)
    assert nobody in str(error), (
        f"the call raised NamingError({error}), which is not about the unknown name "
        f"{nobody!r}: the proxy did not reach this run's name server. Use "
        "PYRONAME:name@host:port with the address in KATA_PYRO_NS, and the key on the proxy"
    )


@pytest.mark.clause(14)
def test_fetch_returns_the_stored_bytes_as_bytes(pyro_ns: Any, store: str) -> None:
    with proxy(pyro_ns, store) as remote_store, remote("put"):
        remote_store.put("to-fetch", BLOB)
    with remote("fetch"):
        got = fetch(store, "to-fetch")
    assert isinstance(got, bytes), (
        f"fetch returned a {type(got).__name__}, {got!r:.80}, not bytes: serpent delivers bytes "
        "as {'data': <base64>, 'encoding': 'base64'}; serpent.tobytes(...) turns that back"
    )
    assert got == BLOB, f"fetch returned {len(got)} bytes, not the {len(BLOB)} stored"


@pytest.mark.clause(14)
def test_fetch_lets_the_servers_key_error_through(pyro_ns: Any, store: str) -> None:
    with remote("fetch"):
        got, error = returned_or_raised(lambda: fetch(store, "never-fetched"), KeyError)
    if error is None:
        pytest.fail(
            f"fetch(..., 'never-fetched') returned {got!r} for a key nobody stored: let the "
            "server's KeyError reach the caller, who cannot tell a missing key from empty bytes "
            "otherwise",
            pytrace=False,
        )
    assert "never-fetched" in str(error), f"the KeyError says {error}, not the key"
    assert getattr(error, "_pyroTraceback", None), (
        "fetch raised a KeyError of its own: let the server's KeyError through as it came, with "
        "its remote traceback"
    )
