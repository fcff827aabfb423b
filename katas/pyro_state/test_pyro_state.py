"""Kata `pyro_state`: one remote object for everybody, one per connection, one per call, and a
shared counter that many clients use at once.

The tests judge the lost update in two ways. In-process, the tests marked `probe` run Counter
under the controlled scheduler (one thread at a time, switching at every bytecode and every
lock operation, hundreds of seeded interleavings): a race is found every time. Remotely, three
clients add at once through real connections to a real server process, and the given
SlowStore takes 0.05 s to write, so adds that do not take turns overlap every time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import Pyro4
import Pyro4.errors
import pyro_state
import pytest
from pyro_state import Counter, Receipt, SlowStore, Tab

from plugins.probe import Prober

# A remote call that does not answer in this many seconds fails its test, with the calls in
# flight told as a chain, instead of hanging. (A call here takes a few milliseconds, an add
# 0.05 s; wait_for's timeouts below are at most 1.5 s.)
CALL_TIMEOUT = 3.0
# wait_for's timeout in the remote tests: every waiter must be back well before it.
WAIT_TIMEOUT = 1.5
# An idle server takes a call off its socket within milliseconds: after this pause, a waiter's
# call is surely being served before the test's adds are sent. (Generous, for a loaded machine;
# the in-process probe tests judge wait_for's logic without any pause.)
SETTLE = 0.2


@dataclass(frozen=True)
class Served:
    """The names that this module's server registered, and the name server's address."""

    counter: str
    tab: str
    receipt: str
    ns: Any


def client(served: Served, name: str) -> Any:
    """A new proxy (a connection of its own, once used) to the object registered as `name`."""
    proxy = Pyro4.Proxy(f"PYRONAME:{name}@{served.ns.host}:{served.ns.port}")
    proxy._pyroHmacKey = served.ns.key
    proxy._pyroTimeout = CALL_TIMEOUT
    return proxy


@pytest.fixture(scope="module")
def served(pyro_ns: Any, pyro_server: Callable[..., Any], kata_namespace: Any) -> Served:
    """serve(counter_name, tab_name, receipt_name) in a process of its own."""
    names = [kata_namespace.name(kind) for kind in ("counter", "tab", "receipt")]
    pyro_server(names[0], "pyro_state", "serve", *names)
    deadline = time.monotonic() + 5.0
    with pyro_ns.locate() as ns:
        while not set(names) <= set(ns.list()):
            if time.monotonic() > deadline:
                pytest.fail(
                    f"serve(...) registered {sorted(set(names) & set(ns.list()))} with the name "
                    f"server, not all of {names}: register each class under the name given",
                    pytrace=False,
                )
            time.sleep(0.02)
    served = Served(*names, ns=pyro_ns)
    with client(served, served.counter) as keyed:
        try:
            keyed._pyroBind()
        except Pyro4.errors.CommunicationError as error:
            pytest.fail(
                f"the server refused a client that has the key ({error}): give the daemon the "
                "key, daemon._pyroHmacKey = key()",
                pytrace=False,
            )
    return served


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads of their own, released together; their results in order."""
    barrier = threading.Barrier(len(calls))

    def released(call: Callable[[], Any]) -> Any:
        barrier.wait(timeout=CALL_TIMEOUT)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(released, call) for call in calls]
        return [future.result(timeout=2 * CALL_TIMEOUT) for future in futures]


def connected(served: Served, name: str, count: int) -> list[Any]:
    """`count` proxies to `name`, each already connected (so each is a session of its own)."""
    proxies = [client(served, name) for _ in range(count)]
    for proxy in proxies:
        proxy._pyroBind()
    return proxies


def assert_shared(proxies: list[Any]) -> None:
    """The proxies all reach one Counter: an add through the last shows through the first."""
    __tracebackhide__ = True
    total = proxies[-1].add(7)
    seen = [proxy.total() for proxy in proxies]
    assert seen == [total] * len(proxies), (
        f"after one client's add(7) returned {total}, the {len(proxies)} clients read the totals "
        f"{seen}: they do not share one Counter. Counter must be 'single' (one instance for "
        "every connection)"
    )


# -- the classes, in this process --------------------------------------------------------------


@pytest.mark.clause(1, 6, 8)
@pytest.mark.parametrize(
    ("cls", "mode"), [(Counter, "single"), (Tab, "session"), (Receipt, "percall")]
)
def test_each_class_declares_its_instance_mode(cls: type, mode: str) -> None:
    declared = getattr(cls, "_pyroInstancing", None)
    assert declared is not None, (
        f"{cls.__name__} declares no instance mode: put @Pyro4.behavior(instance_mode="
        f"{mode!r}) above the class (without it, Pyro4 makes a class 'session')"
    )
    assert declared[0] == mode, (
        f"{cls.__name__} is declared with instance mode {declared[0]!r}, not {mode!r}"
    )


@pytest.mark.clause(2)
def test_a_counter_keeps_its_total_in_a_store_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyro_state, "STORE_SECONDS", 0.0)  # no need to be slow here
    first, second = Counter(), Counter()
    assert isinstance(first.store, SlowStore), (
        f"Counter().store is {first.store!r}, not a SlowStore: keep the total in the given store"
    )
    assert first.store is not second.store, (
        "two Counters share one store: make the SlowStore in __init__, not on the class"
    )
    assert first.total() == 0, f"a new Counter's total is {first.total()}, not 0"
    assert first.add(5) == 5, "add(5) to a new Counter must return the new total, 5"
    assert first.add(-2) == 3, "add(-2) to a Counter at 5 must return 3"
    assert first.total() == 3 and first.store.read() == 3, (
        f"after add(5) and add(-2) total() is {first.total()} and the store holds "
        f"{first.store.read()}, not 3: write the new total with self.store.write"
    )
    assert second.total() == 0, "an add to one Counter changed another one"


@pytest.mark.clause(3)
def test_no_add_is_lost_when_two_threads_add_at_once(
    probe: Prober, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scheduler switches threads at every bytecode, so it needs no slow write to find a
    # race; without one, it also tries a second add that finishes while the first returns.
    monkeypatch.setattr(pyro_state, "STORE_SECONDS", 0.0)

    def add(n: int) -> Callable[[Counter], int]:
        return lambda counter: counter.add(n)

    def no_update_lost(counter: Counter, results: list[object]) -> None:
        total = counter.store.read()
        assert total == 3, (
            f"after add(1) and add(2) at once the total is {total}, not 3: both adds read the "
            "total before either wrote its new value back, so one addition was lost. Read, "
            "write and return under one lock that every add of the Counter shares"
        )
        assert results in ([1, 3], [3, 2]), (
            f"add(1) returned {results[0]} and add(2) returned {results[1]}: each must return "
            "the total just after its own addition (1 then 3, or 2 then 3), taken before the "
            "lock is released, not read again after another add has run"
        )

    probe.explore(Counter, [add(1), add(2)], no_update_lost)


@pytest.mark.clause(4)
def test_every_waiter_wakes_as_soon_as_an_add_brings_the_total_there(probe: Prober) -> None:
    patience = 30.0  # virtual seconds: the two adds take 2 * STORE_SECONDS

    def waiter(at_least: int) -> Callable[[Counter], tuple[int, float]]:
        def wait(counter: Counter) -> tuple[int, float]:
            started = time.monotonic()
            got = counter.wait_for(at_least, patience)
            return got, time.monotonic() - started

        return wait

    def adder(counter: Counter) -> None:
        counter.add(2)
        counter.add(3)

    def all_woke(counter: Counter, results: list[Any]) -> None:
        for at_least, (got, waited) in zip((5, 4), results[:2], strict=True):
            assert got == 5 or waited < patience, (
                f"wait_for({at_least}, timeout={patience}) gave up at its timeout with the total "
                f"at {got}: no add could run while it waited. Sleep with the Condition's wait, "
                "which releases the lock meanwhile (time.sleep keeps it held)"
            )
            assert got == 5, (
                f"wait_for({at_least}, ...) returned {got} before its timeout, while add(2) and "
                "add(3) brought the total to 5: a waiter woken by an add must check the total "
                "again and go back to sleep while it is short (a while loop, or "
                "Condition.wait_for)"
            )
            assert waited < patience, (
                f"wait_for({at_least}, timeout={patience}) slept its whole timeout although "
                f"the total reached 5 after {2 * pyro_state.STORE_SECONDS:g} s: add must wake "
                "every waiter (notify_all; notify wakes only one, and each waiter may wait for a "
                "different total)"
            )

    probe.explore(
        Counter,
        {"waits-for-5": waiter(5), "waits-for-4": waiter(4), "adds-2-then-3": adder},
        all_woke,
        explain={
            "deadlock": "wait_for must release the Counter's lock while it sleeps "
            "(Condition.wait does), or no add can ever bring the total up."
        },
    )


@pytest.mark.clause(4, 5)
def test_wait_for_returns_at_once_when_there_and_after_its_timeout_when_not(
    probe: Prober,
) -> None:
    def waits(counter: Counter) -> list[tuple[int, float]]:
        seen = []
        for at_least in (0, 3):
            started = time.monotonic()
            got = counter.wait_for(at_least, 0.25)
            seen.append((got, time.monotonic() - started))
        return seen

    def timed(counter: Counter, results: list[Any]) -> None:
        (there, waited_there), (short, waited_short) = results[0]
        assert (there, waited_there) == (0, 0.0), (
            f"wait_for(0, 0.25) on a total of 0 returned {there} after {waited_there} s: a "
            "total already there returns at once, without waiting"
        )
        assert short == 0 and 0.25 <= waited_short < 1.0, (
            f"wait_for(3, timeout=0.25), with nobody adding, returned {short} after "
            f"{waited_short:.2f} s: it must wait 0.25 s, then return the total as it is"
        )

    probe.explore(
        Counter,
        [waits],
        timed,
        explain={
            "deadlock": "wait_for(3, timeout=0.25), with nobody adding, never returned: give "
            "the wait its timeout."
        },
    )


@pytest.mark.clause(7)
def test_two_tabs_keep_their_own_orders() -> None:
    mine, yours = Tab(), Tab()
    assert mine.orders() == [], f"a new Tab has orders {mine.orders()}, not []"
    assert mine.order(5) == 5, "order(5) on a new Tab must return 5"
    assert mine.order(12) == 17, "order(12) after order(5) must return the sum, 17"
    assert yours.order(1) == 1, (
        "order(1) on a second Tab returned the sum of the first Tab's orders too: keep the "
        "orders in self (made in __init__); a list made on the class is every Tab's list"
    )
    assert mine.orders() == [5, 12] and yours.orders() == [1], (
        f"the Tabs hold {mine.orders()} and {yours.orders()}, not [5, 12] and [1]"
    )
    mine.orders().append(99)
    assert mine.orders() == [5, 12], "changing the list orders() returned changed the Tab"


@pytest.mark.clause(8)
def test_a_receipt_issues_its_own_number_and_the_sum() -> None:
    receipt = Receipt()
    got = receipt.issue([2, 3, 5])
    assert got == {"number": receipt.number, "total": 10}, (
        f"Receipt number {receipt.number} issued {got} for prices [2, 3, 5], not "
        f"{{'number': {receipt.number}, 'total': 10}}"
    )


# -- one server, several clients ---------------------------------------------------------------


@pytest.mark.clause(1, 9)
def test_every_client_adds_to_the_one_counter(served: Served) -> None:
    first, second = connected(served, served.counter, 2)
    with first, second:
        before = first.total()
        assert first.add(3) == before + 3, "add(3) did not return the total after it"
        got = second.add(4)
        assert got == before + 7, (
            f"a second client's add(4) returned {got}, not {before + 7}: it did not add to the "
            f"total of {before + 3} that the first client had made. Counter must be 'single' "
            "(one instance for every connection), or each connection counts apart"
        )
        assert first.total() == second.total() == before + 7, (
            "the two clients see different totals: they must share the one Counter"
        )


@pytest.mark.clause(3)
def test_adds_from_three_clients_at_once_are_all_counted(served: Served) -> None:
    proxies = connected(served, served.counter, 3)
    try:
        assert_shared(proxies)
        before = proxies[0].total()
        amounts = (1, 10, 100)
        returned = at_once(
            *(lambda p=p, n=n: p.add(n) for p, n in zip(proxies, amounts, strict=True))
        )
        after = proxies[0].total()
    finally:
        for proxy in proxies:
            proxy._pyroRelease()
    assert after - before == sum(amounts), (
        f"three clients added {amounts} at once and the total grew by {after - before}, not "
        f"{sum(amounts)}: their adds read the same total while another add's slow write was "
        "still under way, and the last write wins. Hold one lock across read, write and return"
    )
    orders = sorted(returned)
    assert orders[-1] == after and len(set(orders)) == 3, (
        f"the adds returned {returned} (from {before}): each returns the total just after its "
        f"own addition, so they are three different totals and the last one is {after}"
    )


@pytest.mark.clause(4, 11)
def test_a_client_waiting_on_the_counter_does_not_stop_another_from_adding(
    served: Served,
) -> None:
    waiters = connected(served, served.counter, 2)
    adder = client(served, served.counter)
    adder._pyroBind()
    assert_shared([*waiters, adder])
    before = adder.total()

    def wait(proxy: Any) -> tuple[int | None, float]:
        started = time.monotonic()
        try:
            got = proxy.wait_for(before + 5, WAIT_TIMEOUT)
        except Pyro4.errors.TimeoutError:
            got = None  # no answer within CALL_TIMEOUT
        return got, time.monotonic() - started

    with ThreadPoolExecutor(2) as pool:
        try:
            futures = [pool.submit(wait, proxy) for proxy in waiters]
            time.sleep(SETTLE)
            try:
                adder.add(2)
                adder.add(3)
            except Pyro4.errors.TimeoutError:
                pytest.fail(
                    f"another client's add did not get through in {CALL_TIMEOUT} s while two "
                    "clients were waiting in wait_for: the server runs one call at a time "
                    "(multiplex), or wait_for holds the Counter's lock while it waits",
                    pytrace=False,
                )
            results = [future.result(timeout=2 * CALL_TIMEOUT) for future in futures]
        finally:
            for proxy in [*waiters, adder]:
                proxy._pyroRelease()
    for got, waited in results:
        assert got is not None, (
            f"a client's wait_for(..., timeout={WAIT_TIMEOUT}) had not returned after "
            f"{CALL_TIMEOUT} s: it could not even start while the other client's wait_for "
            "ran. Pyro's thread server gives each connection a thread of its own, and wait_for "
            "must release the lock while it waits"
        )
        assert got == before + 5 or waited < WAIT_TIMEOUT, (
            f"a client's wait_for({before + 5}, timeout={WAIT_TIMEOUT}) gave up at its timeout "
            f"with the total at {got}: another client's adds of 2 and 3 could not run while it "
            "waited. Pyro's thread server gives each connection a thread of its own (the "
            "multiplex server runs one call at a time), and wait_for must release the lock "
            "while it waits"
        )
        assert got == before + 5, (
            f"a client's wait_for({before + 5}) returned {got} before its timeout, while "
            f"another client's adds of 2 and 3 brought the total to {before + 5}: a waiter "
            "woken by an add must check the total again while it is short"
        )
        assert waited < WAIT_TIMEOUT - 0.25, (
            f"a client's wait_for returned after {waited:.2f} s, at its {WAIT_TIMEOUT} s "
            "timeout, although the total got there "
            f"{SETTLE + 2 * pyro_state.STORE_SECONDS:g} s after it started waiting: every add "
            "must wake every waiter (notify_all)"
        )


@pytest.mark.clause(5)
def test_a_remote_wait_for_gives_up_after_its_timeout(served: Served) -> None:
    with client(served, served.counter) as counter:
        before = counter.total()
        started = time.monotonic()
        try:
            got = counter.wait_for(before + 1000, 0.2)
        except Pyro4.errors.TimeoutError:
            pytest.fail(
                f"wait_for(total + 1000, timeout=0.2), with nobody adding, had not returned "
                f"after {CALL_TIMEOUT} s: it must give up after its timeout",
                pytrace=False,
            )
        waited = time.monotonic() - started
    assert got == before, f"wait_for gave up and returned {got}, not the total {before}"
    assert waited >= 0.2, f"wait_for(..., timeout=0.2) returned after {waited:.2f} s"


@pytest.mark.clause(6, 7, 9)
def test_each_connection_gets_a_tab_of_its_own(served: Served) -> None:
    first, second, third = connected(served, served.tab, 3)
    with first, second, third:
        assert first.order(5) == 5, "a first order of 5 on a new connection must return 5"
        got = second.order(7)
        assert got == 7, (
            f"a second client's first order of 7 returned a sum of {got}: it landed on the "
            "first client's Tab. Tab must be 'session', registered as a class (an instance "
            "registered with the daemon serves everybody), with the orders kept in self"
        )
        got = first.order(1)
        assert got == 6, (
            f"the first client's orders of 5 then 1 returned a sum of {got}, not 6: its Tab "
            "forgot the first order ('percall' makes a new Tab for every call; 'session' "
            "keeps one per connection)"
        )
        assert first.orders() == [5, 1] and second.orders() == [7], (
            f"the two clients' Tabs hold {first.orders()} and {second.orders()}, not [5, 1] and [7]"
        )
        assert third.orders() == [], f"a new client's Tab holds {third.orders()}, not []"
        first._pyroRelease()  # a new connection is a new session: a new Tab
        assert first.orders() == [], (
            f"after reconnecting, the first client's Tab holds {first.orders()}: a session is "
            "one connection, and a new connection gets a new, empty Tab"
        )


@pytest.mark.clause(8, 9)
def test_every_call_gets_a_new_receipt(served: Served) -> None:
    first, second = connected(served, served.receipt, 2)
    with first, second:
        issued = [first.issue([1, 2]), first.issue([]), second.issue([40]), first.issue([3])]
    assert [r["total"] for r in issued] == [3, 0, 40, 3], (
        f"the receipts' totals are {[r['total'] for r in issued]}, not [3, 0, 40, 3]"
    )
    numbers = [r["number"] for r in issued]
    assert len(set(numbers)) == len(numbers), (
        f"four calls got the receipt numbers {numbers}: a number came twice, so one Receipt "
        "served several calls. Receipt must be 'percall', registered as a class, so that the "
        "daemon makes a new one for every call"
    )


@pytest.mark.clause(10)
def test_the_daemon_listens_on_loopback_and_refuses_clients_without_the_key(
    served: Served,
) -> None:
    with served.ns.locate() as ns:
        uris = [ns.lookup(name) for name in (served.counter, served.tab, served.receipt)]
    for uri in uris:
        assert uri.host == "127.0.0.1", (
            f"the daemon is at {uri.location}: give it host='127.0.0.1', so that it listens "
            "on this machine's loopback only"
        )
    with Pyro4.Proxy(uris[0]) as stranger:
        stranger._pyroTimeout = CALL_TIMEOUT
        try:
            stranger.total()
        except Pyro4.errors.CommunicationError as error:
            if "hmac" not in str(error):
                pytest.fail(f"a client without the key failed otherwise: {error}", pytrace=False)
        else:
            pytest.fail(
                "a client without the key called total(): give the daemon the key, "
                "daemon._pyroHmacKey = key(), so that it refuses everybody else",
                pytrace=False,
            )


@pytest.mark.clause(11)
def test_the_server_runs_each_connection_in_a_thread_of_its_own(served: Served) -> None:
    with served.ns.locate() as ns:
        uri = ns.lookup(served.counter)
    with Pyro4.Proxy(f"PYRO:{Pyro4.constants.DAEMON_NAME}@{uri.location}") as daemon:
        daemon._pyroHmacKey = served.ns.key
        daemon._pyroTimeout = CALL_TIMEOUT
        info = daemon.info()
    assert "Threadpool" in info, (
        f"the daemon says: {info!r}. Use Pyro's thread server (Pyro4.config.SERVERTYPE = "
        "'thread'): the multiplex server runs one call at a time, so a client blocked in "
        "wait_for would stop every other client"
    )
