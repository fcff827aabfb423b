"""What one step of a worker touched, for the exhaustive search's partial-order reduction.

A step is what a worker runs between two switch points. Two steps of different workers that
touch disjoint things commute, so only one of their two orders needs running. A footprint is
a set of "r:X" / "w:X" entries, or ``None``: "may touch anything", dependent on every step.
``None`` is the answer whenever this module cannot tell precisely; that is what keeps the
search sound (a missed dependency could hide a failing interleaving; an extra one only costs
time).

What is known precisely, from the bytecode between the two switch points of one learner frame:

- the instruction at the first switch point: ``self.v`` read is "r:.v" (any object's ``.v``:
  objects are not told apart), a global or closure variable likewise, a subscript or an
  in-place operator "r:[]"/"w:[]" (all containers are one resource);
- the instructions up to the next switch point (local variables, constants, jumps, truth
  tests and comparisons, which read containers: "r:[]"); anything else (a return, a raise,
  an unknown opcode) is ``None``;
- a call straight into a learner function whose name is the callable the call loads, and the
  return from it into the frame that called it;
- a synchronisation operation (lock, condition, semaphore, event, queue, thread start/join,
  sleep): "w:sync", one resource for all of them, when only the harness's primitives and
  ``threading``/``queue`` ran between the learner's line and the switch point.

Code of any other file (a test's worker function, a library) between two switch points makes
the step ``None``.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, FrameType

from .bytecode_paths import (
    CONTAINERS,
    EMPTY,
    ENTRY,
    EXIT,
    Footprint,
    access,
    direct_call,
    instruction_at,
    path,
)

# A synchronisation operation on one primitive (its lock, for a Condition or a Queue) writes
# "w:sync:<id>"; one that may wake or time out anyone (thread start/join, sleep, a timed
# wait, a worker's end, a primitive this module does not know) writes GLOBAL_SYNC, which
# depends on every synchronisation operation.
GLOBAL_SYNC = "w:sync"
SYNC: frozenset[str] = frozenset({GLOBAL_SYNC})
# A worker's end wakes only those that join it, a GLOBAL_SYNC operation; two ends commute.
ENDS: frozenset[str] = frozenset({"r:sync:end"})

# Files whose code between two switch points only touches primitives' own state.
_HERE = os.path.dirname(os.path.abspath(__file__))
_SYNC_FILES = frozenset(
    os.path.abspath(f) for f in (threading.__file__, queue.__file__) if f is not None
)


_SCHEDULER = os.path.join(_HERE, "scheduler.py")
_IS_SYNC: dict[str, bool] = {}


def _sync_file(filename: str) -> bool:
    found = _IS_SYNC.get(filename)
    if found is None:
        path = os.path.abspath(filename)
        found = _IS_SYNC[filename] = os.path.dirname(path) == _HERE or path in _SYNC_FILES
    return found


def dependent(a: Footprint, b: Footprint) -> bool:
    """Whether two steps may not commute: either is unknown, or one writes what the other
    reads or writes."""
    if a is None or b is None:
        return True
    if (GLOBAL_SYNC in a and any(x[2:].startswith("sync") for x in b)) or (
        GLOBAL_SYNC in b and any(x[2:].startswith("sync") for x in a)
    ):
        return True
    for entry in a:
        name = entry[2:]
        if entry[0] == "w" and ("r:" + name in b or "w:" + name in b):
            return True
        if entry[0] == "r" and "w:" + name in b:
            return True
    return False


@dataclass(frozen=True)
class Loc:
    """Where a worker is parked: at an opcode switch point, inside a primitive (sync), at its
    start or at its end. ``frame`` is the learner frame (None when none could be trusted);
    ``callers`` the learner frames below it, innermost first, each with the call it is in."""

    kind: str  # "op" | "sync" | "start" | "done"
    frame: FrameType | None = None
    offset: int = -1
    callers: tuple[tuple[FrameType, int], ...] = ()
    outermost: bool = False  # only harness frames below the last of `callers`
    # What the primitive's code touched before this switch point, and touches after it.
    arrive: frozenset[str] = SYNC
    leave: frozenset[str] = SYNC
    # The acquire() this switch point is in (sync only), and whether the worker blocks here.
    acquiring: FrameType | None = None
    blocks: bool = False


AT_START = Loc("start")
AT_END = Loc("done")


def _loc(
    kind: str,
    frame: FrameType,
    offset: int,
    files: frozenset[str],
    sync: tuple[frozenset[str], frozenset[str]] = (SYNC, SYNC),
    acquiring: FrameType | None = None,
    blocks: bool = False,
) -> Loc:
    callers: list[tuple[FrameType, int]] = []
    walk = frame.f_back
    while walk is not None and walk.f_code.co_filename in files:
        callers.append((walk, instruction_at(walk.f_code, walk.f_lasti)))
        walk = walk.f_back
    outermost = True
    while walk is not None:
        if not _sync_file(walk.f_code.co_filename):
            outermost = False
            break
        walk = walk.f_back
    return Loc(kind, frame, offset, tuple(callers), outermost, *sync, acquiring, blocks)


def op_loc(frame: FrameType, offset: int, files: frozenset[str]) -> Loc:
    return _loc("op", frame, offset, files)


def frame_of(code: CodeType, start: FrameType | None) -> FrameType | None:
    """The innermost frame running ``code`` (the sys.monitoring hook has no frame)."""
    frame = start
    while frame is not None and frame.f_code is not code:
        frame = frame.f_back
    return frame


_SIMPLE = frozenset({"Lock", "RLock", "Semaphore", "BoundedSemaphore", "Event", "Barrier"})
# Primitives whose every method that the learner calls reaches its first switch point in
# acquire() before changing anything, and whose release()/notify() switch last.
_COUNTERS = frozenset({"Lock", "RLock", "Semaphore", "BoundedSemaphore"})


Number = Callable[[object], "int | None"]


def _resource(obj: object, number: Number) -> str | None:
    """The primitive a learner's call reached ("sync:<n>", n its creation number in the run:
    the same in every replay; its lock for a Condition or a Queue, whose operations all run
    under it); None for anything else."""
    kind = type(obj)
    target: object = None
    if kind.__module__.startswith("plugins.probe."):
        if kind.__name__ in _SIMPLE:
            target = obj
        elif kind.__name__ == "Condition":
            target = getattr(obj, "_coop", None)
    elif isinstance(obj, queue.Queue) and type(getattr(obj, "mutex", None)).__name__ == "Lock":
        target = obj.mutex
    seq = number(target) if target is not None else None
    return None if seq is None else f"sync:{seq}"


def _trusted(obj: object) -> bool:
    kind = type(obj)
    if kind.__module__.startswith("plugins.probe."):
        return kind.__name__ in _COUNTERS or kind.__name__ == "Condition"
    return isinstance(obj, queue.Queue)


def _sync_parts(
    entry: FrameType, innermost: FrameType, timed: bool, number: Number
) -> tuple[frozenset[str], frozenset[str]]:
    """What the primitive's code did before the switch point and does after it: a write of
    its resource, except the first switch point of acquire() (nothing of it came before: its
    only test, "do I hold it already", no other worker can change) and the last of
    release()/notify() (nothing follows)."""
    if timed:
        return SYNC, SYNC
    obj = entry.f_locals.get("self")
    name = _resource(obj, number)
    if name is None:
        return SYNC, SYNC
    write = frozenset({"w:" + name})
    if _trusted(obj):
        owner = innermost.f_locals.get("self")
        method = innermost.f_code.co_name
        if type(owner).__name__ in _COUNTERS and method == "acquire":
            return EMPTY, write
        if type(owner).__name__ in _COUNTERS and method == "release":
            return write, EMPTY
        if type(owner).__name__ == "Condition" and method in ("notify", "notify_all"):
            return write, EMPTY
    return write, write


def sync_loc(
    start: FrameType | None,
    files: frozenset[str],
    number: Number,
    timed: bool = False,
    blocks: bool = False,
) -> Loc | None:
    """A primitive's switch point: the learner frame that called into it, if only harness,
    threading or queue code lies between (else None: the step is unknown). A timed wait
    touches GLOBAL_SYNC: whether it times out depends on every other worker."""
    frame = start
    entry: FrameType | None = None
    innermost: FrameType | None = None
    while frame is not None:
        name = frame.f_code.co_filename
        if name in files:
            parts = (SYNC, SYNC)
            if entry is not None and innermost is not None:
                parts = _sync_parts(entry, innermost, timed, number)
            offset = instruction_at(frame.f_code, frame.f_lasti)
            acquiring = None
            if innermost is not None and innermost.f_code.co_name == "acquire" and not timed:
                owner = innermost.f_locals.get("self")
                if type(owner).__name__ in _COUNTERS and _trusted(owner):
                    acquiring = innermost
            return _loc("sync", frame, offset, files, parts, acquiring, blocks)
        if not _sync_file(name):
            return None
        # Wrappers (tracing.untraced) have no `self`: the methods around them tell.
        if "self" in frame.f_code.co_varnames and os.path.abspath(name) != _SCHEDULER:
            if innermost is None:
                innermost = frame
            entry = frame
        frame = frame.f_back
    return None


def _union(*parts: Footprint) -> Footprint:
    out: set[str] = set()
    for part in parts:
        if part is None:
            return None
        out |= part
    return frozenset(out)


def _head(start: Loc, code: CodeType) -> Footprint:
    return start.leave if start.kind == "sync" else access(code, start.offset)


def _returns(start: Loc, code: CodeType) -> Footprint:
    """Everything from ``start`` through the return of its frame and of every learner caller
    below it (each a direct call), into harness code: a worker's last step."""
    parts = [_head(start, code), path(code, start.offset, EXIT)]
    inner = code
    for frame, call in start.callers:
        if not direct_call(frame, call, inner.co_name):
            return None
        parts.append(path(frame.f_code, call, EXIT))
        inner = frame.f_code
    return _union(*parts) if start.outermost else None


def footprint(start: Loc | None, end: Loc | None) -> Footprint:
    """What a worker touched going from ``start`` to ``end`` (None: unknown, i.e. anything)."""
    if start is None or end is None:
        return None
    tail = end.arrive if end.kind == "sync" else ENDS if end.kind == "done" else EMPTY
    s, e = start.frame, end.frame
    if start.kind == "start":
        if e is not None and end.kind != "done" and not end.callers and end.outermost:
            return _union(path(e.f_code, ENTRY, end.offset), tail)
        return None
    if s is None:
        return None
    code = s.f_code
    if end.kind == "done":
        return _union(_returns(start, code), ENDS)
    if e is None:
        return None
    if e is s:
        if end.kind == "sync" and end.offset == start.offset:
            if end.blocks and start.acquiring is not None and end.acquiring is start.acquiring:
                # acquire() found it taken and blocks: it only looked.
                return frozenset("r:" + x[2:] for x in start.leave)
            return _union(tail, _head(start, code) if start.kind == "sync" else EMPTY)
        if end.kind == "op" and start.kind == "op" and access(code, start.offset) is None:
            return None  # a call that ran untraced code and came back
        return _union(_head(start, code), path(code, start.offset, end.offset), tail)
    if start.kind == "op" and end.callers and end.callers[0] == (s, start.offset):
        # A call into a learner function: straight, or through a builtin that calls it back
        # (sorted(key=...), min, a dict's __eq__), which may read or write containers.
        via = EMPTY if direct_call(s, start.offset, e.f_code.co_name) else CONTAINERS
        return _union(via, path(e.f_code, ENTRY, end.offset), tail)
    if start.callers and end.callers and start.callers[0] == end.callers[0]:
        # A callback returned into the builtin that called it, which called the next one.
        return _union(
            CONTAINERS,
            _head(start, code),
            path(code, start.offset, EXIT),
            path(e.f_code, ENTRY, end.offset),
            tail,
        )
    if start.callers and start.callers[0][0] is e:
        call = start.callers[0][1]
        via = EMPTY if direct_call(e, call, code.co_name) else CONTAINERS
        return _union(
            via,
            _head(start, code),
            path(code, start.offset, EXIT),
            path(e.f_code, call, end.offset),
            tail,
        )
    return None
