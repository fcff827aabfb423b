"""Code shapes whose bytecode the 3.11 rewriting (plugins/probe/instrument) must keep working:
loops with break and continue, handlers, with, generators, comprehensions, closures, keyword
calls, a conditional in a call, and a loop long enough that its jump back needs an
EXTENDED_ARG once calls are written into it."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any


class Box:
    def __init__(self) -> None:
        self.v = 0
        self.items: list[int] = [1, 2, 3, 4]
        self.lock = threading.Lock()
        self.log: list[object] = []


def loops(b: Box) -> int:
    total = 0
    for item in b.items:
        if item == 2:
            continue
        if item == 4:
            break
        total += item
    n = 0
    while n < len(b.items):
        b.v += 1
        n += 1
    return total + b.v


def handlers(b: Box) -> str:
    try:
        b.log.append("try")
        raise KeyError(b.v)
    except KeyError as error:
        b.log.append(("caught", error.args))
    finally:
        b.log.append("finally")
    with b.lock:
        b.v += 10
    try:
        return str(b.items[10])
    except IndexError:
        return "missing " + str(b.v)


def produce(b: Box) -> Iterator[int]:
    for item in b.items:
        b.v += item
        yield item * 2


def generators(b: Box) -> list[int]:
    return [x for x in produce(b) if x > b.items[0]] + list({y: y for y in b.items})


def closures(b: Box) -> int:
    def bump(by: int = 1) -> int:
        b.v += by
        return b.v

    adders = [lambda k=k: bump(by=k) for k in range(3)]
    return sum(add() for add in adders) + bump(by=5 if b.v > 2 else 7)


def keywords(b: Box) -> str:
    return sep_join(b.items, sep="-", upper=b.v > 0) + str(dict(a=b.v, b=len(b.items)))


def sep_join(items: list[int], *, sep: str, upper: bool) -> str:
    text = sep.join(str(i) for i in items)
    return text.upper() if upper else text


def long_loop(b: Box) -> int:
    """A loop body of many switch points: the calls written into it grow its jump back past
    255 units."""
    for _ in range(3):
        b.v += 1
        b.v += 2
        b.v += 3
        b.v += 4
        b.v += 5
        b.v += 6
        b.v += 7
        b.v += 8
        b.v += 9
        b.v += 10
        b.log.append(b.v)
    return b.v


def raises_at_a_known_line(b: Box) -> None:
    b.v += 1
    b.log.append("before")
    b.items[99] = b.v  # IndexError here


ALL: list[Any] = [loops, handlers, generators, closures, keywords, long_loop]


def bumper() -> Callable[[Box], None]:
    """A factory: the test makes its closure before exploring, and hands it over as a worker."""

    def bump(b: Box) -> None:
        seen = b.v
        b.v = seen + 1  # unlocked: a lost update

    return bump


def logged(fn: Callable[[Box], None]) -> Callable[[Box], None]:
    @functools.wraps(fn)
    def wrapper(b: Box) -> None:
        fn(b)

    return wrapper


@logged
def decorated_bump(b: Box) -> None:
    seen = b.v
    b.v = seen + 1  # unlocked: a lost update


@functools.lru_cache(maxsize=0)  # a wrapper that is no function, and caches nothing
def cached_bump(b: Box) -> None:
    seen = b.v
    b.v = seen + 1  # unlocked: a lost update


class Stuck:
    """Two workers that wait for a notify nobody sends (a deadlock), each with a handler that
    would run code when it is unwound."""

    def __init__(self) -> None:
        self.ready = threading.Condition()
        self.cleaned: list[str] = []

    def waits(self) -> None:
        with self.ready:
            try:
                self.ready.wait()
            except BaseException:
                self.cleaned.append("unwound")
                raise
