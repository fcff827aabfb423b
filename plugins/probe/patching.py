"""Swap the cooperative world in for one run, and restore everything exactly afterwards.

Sets attributes on the real ``threading`` and ``time`` modules, rebinds names in the
learner's modules (and ``queue``) whose value *is* a real primitive (``from threading
import Lock``), and re-bases learner classes that subclass the real ``threading.Thread``.

The workers of a run share one OS thread, so ``threading.local`` becomes the pure-Python
``_threading_local.local`` keyed by the cooperative ``current_thread``: each worker sees its
own attributes. A local made before the run (at a module's import) stays the real one.

A real ``Lock`` or ``RLock`` that a learner module made at import (``LOCK =
threading.Lock()``), or that a learner class holds as an attribute, is swapped for a fresh
cooperative one while the run lasts, if it is free: on one OS thread a worker waiting for a
real lock another worker holds would block them all for good, and a real RLock would let
both in. One that is held when the run starts stays real (the watchdog reports a worker
blocked on it), as does one inside an object made before the run.
"""

from __future__ import annotations

import _threading_local
import operator
import queue
import threading
import time
import types
from typing import Any

from . import atomic_queue, tracing, virtual_time
from .conditions import Condition
from .locks import Lock, RLock
from .semaphores import BoundedSemaphore, Semaphore
from .signals import Barrier, Event
from .threads import REAL_THREAD, Thread, Timer, current_thread, get_ident

_THREADING = {
    "Lock": Lock,
    "RLock": RLock,
    "Condition": Condition,
    "Semaphore": Semaphore,
    "BoundedSemaphore": BoundedSemaphore,
    "Event": Event,
    "Barrier": Barrier,
    "Thread": Thread,
    "Timer": Timer,
    "current_thread": current_thread,
    "currentThread": current_thread,
    "get_ident": get_ident,
    "get_native_id": get_ident,
    "local": _threading_local.local,
}
_TIME = {
    "sleep": virtual_time.sleep,
    "monotonic": virtual_time.monotonic,
    "monotonic_ns": virtual_time.monotonic_ns,
    "perf_counter": virtual_time.perf_counter,
    "perf_counter_ns": virtual_time.perf_counter_ns,
    "time": virtual_time.time,
    "time_ns": virtual_time.time_ns,
}


def _imports_queue(mod: types.ModuleType) -> bool:
    """``import queue`` or ``from queue import Queue``: the module may make plain queues."""
    names = vars(mod)
    return names.get("queue") is queue or names.get("Queue") is queue.Queue


def _real_table() -> dict[int, tuple[Any, Any]]:
    """id(real object) -> (real, replacement), captured before anything is patched."""
    table: dict[int, tuple[Any, Any]] = {}
    for mod, repl in ((threading, _THREADING), (time, _TIME)):
        for name, new in repl.items():
            if hasattr(mod, name):
                real = mod.__dict__[name]
                table[id(real)] = (real, new)
    return table


_REAL = _real_table()


REAL_RLOCK_TYPE: type[Any] = type(threading.RLock())  # Any: its `_is_owned` is untyped
# The type of a real lock made before the run -> the cooperative class that stands in for it.
_REAL_LOCKS: dict[type, type[Lock]] = {type(threading.Lock()): Lock, REAL_RLOCK_TYPE: RLock}


def _free(lock: Any) -> bool:
    """Nobody holds ``lock`` (a real one) now."""
    if type(lock) is REAL_RLOCK_TYPE and lock._is_owned():
        return False
    if not lock.acquire(False):
        return False
    lock.release()
    return True


class _Scan:
    """What ``Patch`` changes in the learner's modules (and ``queue``), read from what they
    and their classes hold: names bound to a real primitive, classes to re-base, and the
    slots of real locks (swapped only if free, each run). Kept while every dict it read still
    holds the same objects (``still``): each run of an exploration asks again."""

    def __init__(self, modules: list[types.ModuleType]) -> None:
        self.owners: list[Any] = [*modules, queue]
        self.hits: list[tuple[Any, str, Any]] = []  # (module, name, replacement)
        self.rebase: list[type] = []
        self.locks: list[tuple[Any, str, str]] = []  # (owner, name, label)
        self.queues = any(_imports_queue(mod) for mod in modules)
        for mod in self.owners:
            for name, value in list(vars(mod).items()):
                hit = _REAL.get(id(value))
                if hit is not None and hit[0] is value:
                    self.hits.append((mod, name, hit[1]))
                elif isinstance(value, type) and REAL_THREAD in value.__bases__:
                    self.rebase.append(value)
        for mod in modules:
            self._lock_slots(mod, mod.__name__.rsplit(".", 1)[-1])
            for value in list(vars(mod).values()):
                if isinstance(value, type) and value.__module__ == mod.__name__:
                    self.owners.append(value)
                    self._lock_slots(value, value.__name__)
        self.held = [list(vars(owner).values()) for owner in self.owners]

    def _lock_slots(self, owner: Any, label: str) -> None:
        for name, value in list(vars(owner).items()):
            if type(value) in _REAL_LOCKS:
                self.locks.append((owner, name, label))

    def still(self, modules: list[types.ModuleType]) -> bool:
        """Whether the same modules, and everything they and their classes hold, are the same
        objects as when this was read."""
        if len(modules) + 1 > len(self.owners) or not all(map(operator.is_, modules, self.owners)):
            return False
        if self.owners[len(modules)] is not queue:
            return False
        for owner, held in zip(self.owners, self.held, strict=True):
            now = list(vars(owner).values())
            if len(now) != len(held) or not all(map(operator.is_, now, held)):
                return False
        return True


_LAST_SCAN: list[_Scan] = []


def scan_ahead(modules: list[types.ModuleType]) -> None:
    """Read now, before an exploration's first run, what its runs will swap in ``modules``."""
    _scan(modules)


def _scan(modules: list[types.ModuleType]) -> _Scan:
    if _LAST_SCAN and _LAST_SCAN[0].still(modules):
        return _LAST_SCAN[0]
    found = _Scan(modules)
    _LAST_SCAN[:] = [found]
    return found


# threading's and time's names that Patch replaces (those each module has), read once.
_FIXED: list[tuple[types.ModuleType, str, Any]] = [
    (mod, name, new)
    for mod, repl in ((threading, _THREADING), (time, _TIME))
    for name, new in repl.items()
    if name in mod.__dict__
]


def _unwrapped(value: Any) -> Any:
    """The function an ``untraced`` wrapper calls (tracing), or ``value`` if it is none."""
    wrapper = tracing.wrapper_code()
    inner = getattr(value, "__wrapped__", None)
    if wrapper is not None and inner is not None and getattr(value, "__code__", None) is wrapper:
        return inner
    return value


# For a run with no trace hook (3.11's rewritten code): the same, without the ``untraced``
# wrappers, each a frame of its own at every call that only finds no hook to turn off.
_FIXED_UNHOOKED = [(mod, name, _unwrapped(new)) for mod, name, new in _FIXED]
# The primitives' methods that are such wrappers: (class, name, wrapper, what it calls).
_WRAPPED_METHODS = [
    (cls, name, value, _unwrapped(value))
    for cls in {
        base
        for kind in (Lock, RLock, Condition, Semaphore, BoundedSemaphore, Event, Barrier, Thread)
        for base in kind.__mro__
        if base.__module__.startswith(__package__ + ".")
    }
    for name, value in list(vars(cls).items())
    if _unwrapped(value) is not value
]
_WRAPPERS_ON = [True]  # whether the primitives' classes hold the wrappers now (as defined)


def _hook_wrappers(hooked: bool) -> None:
    """Put the wrappers on the primitives' classes for a run with a hook, the methods they
    wrap for one with none. Kept from run to run (an exploration's runs are mostly of one
    kind: setting a class attribute costs its type's method cache); between runs, both do the
    same."""
    if _WRAPPERS_ON[0] is hooked:
        return
    for cls, name, wrapper, inner in _WRAPPED_METHODS:
        setattr(cls, name, wrapper if hooked else inner)
    _WRAPPERS_ON[0] = hooked


class Patch:
    """Context manager; ``restore`` undoes every change in reverse order, even on failure.
    ``names`` labels each lock swapped in: id -> ``module.NAME`` or ``Class.name``."""

    def __init__(self, modules: list[types.ModuleType], hooked: bool = True) -> None:
        self._modules = modules
        # Whether the run sets a trace hook (settrace, 3.11): a plain queue's methods then turn
        # it off around themselves (atomic_queue.SWAPS); a run with none needs no such wrapper.
        self._hooked = hooked
        self._swaps = atomic_queue.SWAPS if hooked else atomic_queue.SWAPS_UNHOOKED
        self._saved: list[tuple[Any, str, Any]] = []
        self._bases: list[tuple[type, tuple[type, ...]]] = []
        self.names: dict[int, str] = {}

    def __enter__(self) -> Patch:
        try:
            scan = _scan(self._modules)  # before anything is patched
            _hook_wrappers(self._hooked)
            self._set(_threading_local, "current_thread", current_thread)
            saved = self._saved
            for mod, name, new in _FIXED if self._hooked else _FIXED_UNHOOKED:
                names = mod.__dict__
                saved.append((mod, name, names[name]))
                names[name] = new
            if scan.queues:
                # Only where a learner module imports queue: every schedule pays for the swap.
                for name, one_step in self._swaps.items():
                    self._set(queue.Queue, name, one_step)
            for owner, name, replacement in scan.hits:
                self._set(owner, name, replacement)
            for cls in scan.rebase:
                self._rebase(cls)
            for owner, name, label in scan.locks:
                real = vars(owner)[name]
                if _free(real):
                    lock = _REAL_LOCKS[type(real)]()
                    self._set(owner, name, lock)
                    self.names[id(lock)] = f"{label}.{name}"
        except BaseException:
            self.restore()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def _set(self, obj: Any, name: str, value: Any) -> None:
        self._saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    def _rebase(self, cls: type) -> None:
        old = cls.__bases__
        try:
            cls.__bases__ = tuple(Thread if b is REAL_THREAD else b for b in old)
        except TypeError:
            return  # incompatible layout: the class keeps real threads (watchdog reports)
        self._bases.append((cls, old))

    def restore(self) -> None:
        while self._bases:
            cls, old = self._bases.pop()
            cls.__bases__ = old
        while self._saved:
            obj, name, value = self._saved.pop()
            setattr(obj, name, value)
