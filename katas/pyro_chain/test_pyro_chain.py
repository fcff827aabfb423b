"""Kata `pyro_chain`: a ring of Pyro4 servers in separate processes passing a message round."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import Pyro4
import Pyro4.constants
import Pyro4.errors
import pytest
from pyro_chain import link_proxy, send_around

# A ring of thread servers answers in milliseconds; a call still unanswered after this long is
# stuck (a deadlock, or a message that never stops), and fails its test instead of hanging.
ANSWER_WITHIN = 2.0
# What each link spends on a note before passing it on, in the oneway test.
PAUSE = 0.15
# send_around's timeout on the deadlocking ring, which never answers: each run of that test
# costs this long, so it is short.
DEADLOCK_TIMEOUT = 0.5


@dataclass
class Ring:
    """A ring of links, each served by `serve_link` in a process of its own."""

    names: list[str]
    servertypes: list[str]
    servers: list[Any]

    def describe(self) -> str:
        return " -> ".join([*self.short, self.short[0]])

    @property
    def short(self) -> list[str]:
        return [name.split("-")[1] for name in self.names]


def start_ring(pyro_server: Callable[..., Any], namespace: Any, servertypes: list[str]) -> Ring:
    """Links a, b, c, ... each passing to the next, the last to the first; link i is served
    with servertypes[i]."""
    size = len(servertypes)
    names = [
        namespace.name(f"link-{letter}-{kind}{size}")
        for letter, kind in zip("abcdefgh"[:size], servertypes, strict=True)
    ]
    servers = [
        pyro_server(name, "pyro_chain", "serve_link", name, names[(i + 1) % size], kind)
        for i, (name, kind) in enumerate(zip(names, servertypes, strict=True))
    ]
    return Ring(names, servertypes, servers)


@pytest.fixture(scope="module")
def ring_of_three(pyro_server: Callable[..., Any], kata_namespace: Any) -> Ring:
    """The book's ring: three links a -> b -> c -> a, each a thread server."""
    return start_ring(pyro_server, kata_namespace, ["thread"] * 3)


@pytest.fixture(scope="module")
def ring_of_four(pyro_server: Callable[..., Any], kata_namespace: Any) -> Ring:
    """Four links a -> b -> c -> d -> a: a is a multiplex server (one call at a time), the
    others thread servers. A message from b, c or d passes through a once, which is fine; a
    message from a comes back into a while a is still busy with it: a deadlock."""
    return start_ring(pyro_server, kata_namespace, ["multiplex", "thread", "thread", "thread"])


def own_proxy(pyro_ns: Any, name: str, timeout: float = ANSWER_WITHIN) -> Any:
    """The test's own proxy of `name` (not the kata's), keyed, with a timeout."""
    proxy = Pyro4.Proxy(f"PYRONAME:{name}@{pyro_ns.host}:{pyro_ns.port}")
    proxy._pyroHmacKey = pyro_ns.key
    proxy._pyroTimeout = timeout
    return proxy


def remote_traceback(error: BaseException) -> str:
    """Where `error` was raised in a server (the end of its remote traceback), if it was."""
    lines = "".join(getattr(error, "_pyroTraceback", [])).splitlines()
    if not lines:
        return ""
    return "where it was raised, in the server:\n" + "\n".join(lines[-40:])


def go_round(pyro_ns: Any, ring: Ring, start: int) -> Any:
    """forward([]) on link `start` of `ring`, through the test's own proxy; fails readably
    when the ring does not answer or raises."""
    __tracebackhide__ = True
    name = ring.names[start]
    where = f"forward([]) on link {ring.short[start]} of the ring {ring.describe()}"
    with own_proxy(pyro_ns, name) as first:
        try:
            return first.forward([])
        except Pyro4.errors.TimeoutError:
            failure = (
                f"{where} (served with servertype {ring.servertypes[start]!r}) had no answer "
                f"within {ANSWER_WITHIN:g} s, though it answers in milliseconds. Either the "
                "message never stops "
                "(the test for its origin, trail[0] == the link's own name, is never true, "
                "so it circles for ever), or the links serve one call at a time "
                "(Pyro4.config.SERVERTYPE must be the `servertype` argument, set before the "
                "Daemon is created). The calls still in flight are listed below."
            )
        except Exception as error:  # a remote error: show where it happened
            failure = f"{where} raised {type(error).__name__}: {error}\n{remote_traceback(error)}"
    pytest.fail(failure, pytrace=False)


def short(names: list[Any]) -> list[Any]:
    """Link names as their letters ("link-b-thread3-..." -> "b"), for messages."""
    return [name.split("-")[1] if isinstance(name, str) and "-" in name else name for name in names]


def check_trail(got: Any, ring: Ring, start: int, where: str = "") -> None:
    """`got`, which `where` returned, must be every link from `start` round the ring and back
    to `start`."""
    __tracebackhide__ = True
    size = len(ring.names)
    wanted = [ring.names[(start + i) % size] for i in range(size + 1)]
    origin = ring.short[start]
    where = where or f"forward([]) on link {origin} of the ring {ring.describe()}"
    if got is None:
        pytest.fail(
            f"{where} returned None: a oneway method (@Pyro4.oneway) never sends its result "
            "back, so forward, whose caller needs the trail, must not be oneway",
            pytrace=False,
        )
    assert isinstance(got, list), f"{where} returned {got!r}, not a list of link names"
    shown = short(got)
    why = (
        "each link appends its own name and passes the list on; the origin, back at trail[0], "
        "appends its name once more and returns the list"
    )
    if got == [wanted[0], *reversed(wanted[1:-1]), wanted[-1]] and size > 2:
        why = (
            "the links come in reverse order: each link must append its own name before it "
            "passes the list on, not add it to the answer on the way back"
        )
    elif len(got) == 1:
        why = (
            f"{origin} returned at once: it appended its own name and then found it at "
            "trail[0]. Decide whether the message is home before appending (the first link "
            "gets an empty trail)"
        )
    elif got == wanted[:-1]:
        why = (
            f"the message stopped before it was back at its origin {origin}: stop only at the "
            "link whose name is trail[0], and there append that name once more (a fixed "
            "number of names is right for one size of ring only)"
        )
    elif len(got) > len(wanted) and got[: len(wanted)] == wanted:
        why = (
            f"the message went on past its origin: it must stop as soon as it is back at "
            f"{origin}, the link whose name is trail[0]"
        )
    elif len(got) < len(wanted) and got == wanted[: len(got)]:
        why = (
            f"the message stopped after {len(got)} names, before it was back at {origin}: "
            f"it stops only at the link whose name is trail[0] (the ring has {size} links; "
            "no length is written into the code)"
        )
    elif size > 1 and len(got) > 1 and got[1] == got[0]:
        why = f"{origin} passed the message to itself: pass it to the link named next_name"
    assert got == wanted, f"{where} returned {shown}, not {short(wanted)}: {why}"


# -- the proxy and the server ----------------------------------------------------------------


@pytest.mark.clause(1)
def test_link_proxy_finds_an_object_by_its_name_through_the_name_server_with_the_key(
    pyro_ns: Any,
) -> None:
    # The name server registers itself under this name: no link of yours is needed here.
    name = Pyro4.constants.NAMESERVER_NAME
    proxy = link_proxy(name)
    assert isinstance(proxy, Pyro4.Proxy), f"link_proxy({name!r}) returned {proxy!r}, not a proxy"
    with proxy:
        wanted = f"PYRONAME:{name}@{pyro_ns.host}:{pyro_ns.port}"
        assert str(proxy._pyroUri) == wanted, (
            f"link_proxy gave a proxy of {proxy._pyroUri}, not {wanted}: look the object up by "
            "its name, at the name server whose address is in KATA_PYRO_NS (name_server())"
        )
        assert proxy._pyroHmacKey == pyro_ns.key, (
            "link_proxy's proxy has no HMAC key (or a wrong one): set proxy._pyroHmacKey = "
            "hmac_key(); the name server and every link refuse a proxy without it"
        )
        proxy._pyroTimeout = ANSWER_WITHIN
        proxy.ping()


@pytest.mark.clause(6)
def test_serve_link_binds_the_loopback_address_and_refuses_a_client_without_the_key(
    pyro_ns: Any, ring_of_three: Ring
) -> None:
    name = ring_of_three.names[0]
    with pyro_ns.locate() as ns:
        uri = ns.lookup(name)
    assert uri.host == "127.0.0.1", (
        f"serve_link registered {uri}: its daemon listens on {uri.host!r}, not 127.0.0.1; "
        "create it with Pyro4.Daemon(host='127.0.0.1') so that only this machine can call it "
        "(Pyro's default host is a name, which may resolve to another interface)"
    )
    with Pyro4.Proxy(uri) as stranger:
        stranger._pyroTimeout = ANSWER_WITHIN
        try:
            stranger.received()
        except Pyro4.errors.CommunicationError:
            pass  # refused: what the key is for
        else:
            pytest.fail(
                f"a client without the HMAC key called {name}'s received() and got an answer: "
                "set daemon._pyroHmacKey = hmac_key() before serving, so that only holders of "
                "the key can call the links",
                pytrace=False,
            )


@pytest.mark.clause(6)
def test_serve_link_gives_each_daemon_the_server_type_it_was_asked_for(
    pyro_ns: Any, ring_of_three: Ring, ring_of_four: Ring
) -> None:
    kinds = {"thread": "SocketServer_Threadpool", "multiplex": "SocketServer_Multiplex"}
    for ring, link in ((ring_of_three, 0), (ring_of_four, 0), (ring_of_four, 1)):
        with pyro_ns.locate() as ns:
            uri = ns.lookup(ring.names[link])
        # Every daemon also serves an object of its own, under a fixed name, that describes it.
        with Pyro4.Proxy(f"PYRO:{Pyro4.constants.DAEMON_NAME}@{uri.location}") as daemon:
            daemon._pyroHmacKey = pyro_ns.key
            daemon._pyroTimeout = ANSWER_WITHIN
            try:
                info = daemon.info()
            except Pyro4.errors.PyroError as error:
                info = f"{type(error).__name__}: {error}"
                pytest.fail(
                    f"asking the daemon of link {ring.short[link]} which server type it runs "
                    f"failed with {info}: a daemon answers keyed clients only when it has the "
                    "key itself (daemon._pyroHmacKey = hmac_key())",
                    pytrace=False,
                )
        asked = ring.servertypes[link]
        assert kinds[asked] in info, (
            f"serve_link(..., {asked!r}) made a daemon that says {info!r}. Set "
            "Pyro4.config.SERVERTYPE = servertype before Pyro4.Daemon(...): a daemon chooses "
            "its server type once, when it is created, so a setting made after that (or "
            "never) leaves it with the default, 'thread'"
        )


# -- forward round thread rings --------------------------------------------------------------


@pytest.mark.clause(2, 3)
def test_a_message_goes_round_the_books_ring_of_three_and_back_to_its_origin(
    pyro_ns: Any, ring_of_three: Ring
) -> None:
    for start in (0, 1):
        check_trail(go_round(pyro_ns, ring_of_three, start), ring_of_three, start)


@pytest.mark.clause(2, 3)
def test_a_message_goes_round_a_ring_of_four_from_any_link(
    pyro_ns: Any, ring_of_four: Ring
) -> None:
    for start in (3, 1):
        check_trail(go_round(pyro_ns, ring_of_four, start), ring_of_four, start)


# -- send_around -----------------------------------------------------------------------------


@pytest.fixture
def config_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pyro4.config as it was, back after the test: a send_around that changes a global
    setting such as COMMTIMEOUT must not change the proxies of the tests after it."""
    for setting in ("COMMTIMEOUT", "SERVERTYPE"):
        monkeypatch.setattr(Pyro4.config, setting, getattr(Pyro4.config, setting))


def bounded(call: Callable[[], Any], seconds: float) -> tuple[str, Any, float]:
    """Run `call` in a thread for at most `seconds`: ("returned", value, elapsed),
    ("raised", error, elapsed) or ("waiting", None, seconds)."""
    outcome: list[tuple[str, Any, float]] = []
    started = time.monotonic()

    def run() -> None:
        try:
            value = call()
        except BaseException as error:  # reported to the test, which judges it
            outcome.append(("raised", error, time.monotonic() - started))
        else:
            outcome.append(("returned", value, time.monotonic() - started))

    thread = threading.Thread(target=run, name="send_around", daemon=True)
    thread.start()
    thread.join(seconds)
    return outcome[0] if outcome else ("waiting", None, seconds)


@pytest.mark.clause(7)
def test_send_around_returns_the_trail_of_a_message_sent_from_the_link_it_names(
    pyro_ns: Any, ring_of_four: Ring, config_kept: None
) -> None:
    start = 2
    # forward itself first, through the test's own proxy: its bugs are told as such.
    check_trail(go_round(pyro_ns, ring_of_four, start), ring_of_four, start)
    name, letter = ring_of_four.names[start], ring_of_four.short[start]
    call = (
        f"send_around({letter!r}, timeout={ANSWER_WITHIN:g}) on the ring {ring_of_four.describe()}"
    )
    how, value, _ = bounded(lambda: send_around(name, ANSWER_WITHIN), ANSWER_WITHIN + 2.0)
    if how == "waiting":
        pytest.fail(f"{call} had not returned {ANSWER_WITHIN + 2.0:g} s later", pytrace=False)
    if how == "raised":
        pytest.fail(
            f"{call} raised {type(value).__name__}: {value}, though forward([]) on {letter} "
            f"answers\n{remote_traceback(value)}",
            pytrace=False,
        )
    if value == [name, name]:
        pytest.fail(
            f"{call} returned {[letter, letter]}: it sent a trail that already held the first "
            "link's name, so that link thought the message was home; send forward([]), an "
            "empty trail",
            pytrace=False,
        )
    check_trail(value, ring_of_four, start, call)


# -- link a is a multiplex server: a oneway note passes round, a message deadlocks ----------


@pytest.mark.clause(4, 5)
def test_a_oneway_note_returns_at_once_and_comes_back_to_its_origin_alone(
    pyro_ns: Any, ring_of_four: Ring
) -> None:
    names = ring_of_four.names
    full = [*names, names[0]]
    with own_proxy(pyro_ns, names[0], timeout=1.0) as first:
        first._pyroBind()  # connect now, so that only the call itself is timed
        started = time.monotonic()
        try:
            first.pass_note([], PAUSE)
        except Pyro4.errors.TimeoutError:
            waited = True
        else:
            waited = False
        returned = time.monotonic() - started
        if waited:
            pytest.fail(
                "pass_note on link a kept its caller waiting for over 1 s: it is not oneway. "
                "Mark it @Pyro4.oneway, so that its caller sends the call and goes on. Link a "
                "is a multiplex server: a two-way pass_note that comes back round to a "
                "deadlocks, as forward does (see the calls in flight below)",
                pytrace=False,
            )
        # A oneway call returns once its message is sent, in about a millisecond; a two-way
        # call waits for the link's own PAUSE at least: a lower bound wrong code always hits.
        assert returned < PAUSE, (
            f"pass_note took {returned:.2f} s to return to its caller, though a oneway call "
            f"returns as soon as it is sent: the link's {PAUSE:g} s of work made the caller "
            "wait, so pass_note is not oneway (@Pyro4.oneway on the method)"
        )
        deadline = started + len(names) * PAUSE + 3.0  # generous: the machine may be loaded
        kept = first.received()
        while full not in kept and time.monotonic() < deadline:
            time.sleep(0.02)
            kept = first.received()
        arrived = time.monotonic() - started
    shown = [short(trail) for trail in kept]
    assert full in kept, (
        f"link a kept {shown} {arrived:.1f} s after the note was passed to it, not "
        f"[{[*ring_of_four.short, 'a']}]: the note goes round {ring_of_four.describe()}, each "
        "link waiting `pause` seconds, appending its own name and passing it on with "
        "pass_note on the next link; back at its origin (trail[0]) the link appends its name "
        "and keeps the trail in self.notes"
    )
    assert kept == [full], (
        f"link a kept {shown}: a link keeps the note only when it is back at its origin "
        "(trail[0] is its name); on the note's first visit, and at every other link, it "
        "passes it on"
    )
    # Each link waits PAUSE before passing the note on: a lower bound.
    assert arrived >= len(names) * PAUSE * 0.9, (
        f"the note was back at a {arrived:.2f} s after it was sent, sooner than the "
        f"{len(names)} x {PAUSE:g} s its links spend on it: each link sleeps `pause` seconds "
        "first"
    )
    for name in names[1:]:
        with own_proxy(pyro_ns, name, timeout=1.0) as other:
            elsewhere = other.received()
        assert elsewhere == [], (
            f"link {name.split('-')[1]}, not the note's origin, kept {elsewhere}: only the "
            "origin keeps the note; the other links pass it on"
        )


@pytest.mark.clause(2, 6, 8)
def test_a_message_from_a_multiplex_link_deadlocks_and_send_around_times_out(
    ring_of_four: Ring, config_kept: None
) -> None:
    # Link a runs forward, which calls b, c, d in turn, and d calls a again: a re-entrant
    # call. a is a multiplex server: it runs one call at a time, and it is still in its first
    # one, waiting for b, so nobody ever takes d's call. A circle of waits (a -> b -> c -> d
    # -> a) that only the caller's timeout ends. (The same message from b, c or d passes.)
    a = ring_of_four.names[0]
    call = f"send_around('a', timeout={DEADLOCK_TIMEOUT:g}) on the ring {ring_of_four.describe()}"
    limit = DEADLOCK_TIMEOUT + 2.5
    how, value, elapsed = bounded(lambda: send_around(a, DEADLOCK_TIMEOUT), limit)
    if how == "waiting":
        for server in ring_of_four.servers:
            server.stop(grace=0.5)  # a dead ring ends the call, and the thread that made it
        pytest.fail(
            f"{call}, which deadlocks, was still waiting {limit:g} s later: it has no timeout. "
            "Set first._pyroTimeout = timeout on its proxy (Pyro4.config.COMMTIMEOUT set "
            "after the proxy exists reaches only proxies created later)",
            pytrace=False,
        )
    if how == "returned":
        shown = short(value) if isinstance(value, list) else value
        assert value, (
            f"{call}, which deadlocks, returned {value!r} instead of raising "
            "Pyro4.errors.TimeoutError: let the timeout reach the caller, who cannot tell an "
            "empty answer from a ring that never answered"
        )
        pytest.fail(
            f"{call} answered {shown}, yet link a is a multiplex server and cannot answer: "
            "it is busy with the message until the answer comes back, so when d passes the "
            "message back to a, nobody takes the call. Either the message never went back "
            "into a (a link must not append its origin's name itself: only the origin, called "
            "once more, does that), or a is not a multiplex server (see the server type test)",
            pytrace=False,
        )
    if not isinstance(value, Pyro4.errors.TimeoutError):
        pytest.fail(
            f"{call}, which deadlocks, raised {type(value).__name__}: {value}, not "
            f"Pyro4.errors.TimeoutError\n{remote_traceback(value)}",
            pytrace=False,
        )
    assert elapsed >= DEADLOCK_TIMEOUT * 0.9, f"{call} gave up after {elapsed:.2f} s, too soon"
    # Generous: a loaded machine may be late to wake the caller, but not by a second.
    assert elapsed < DEADLOCK_TIMEOUT + 1.0, (
        f"{call} raised TimeoutError only after {elapsed:.2f} s, not at its timeout: give its "
        "proxy the `timeout` argument as _pyroTimeout (a number written into the code is not "
        "the caller's timeout)"
    )
