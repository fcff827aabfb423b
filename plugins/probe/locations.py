"""Where a worker is parked between two steps, for ``footprints``: a ``Loc`` at an opcode
switch point of a learner frame (with the frames below it), or inside a synchronisation
primitive (with what the primitive's code touched before and after the switch point), and
the resources a primitive's operations read and write ("w:sync:<n>", by creation number).
"""

from __future__ import annotations

import inspect
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType, FrameType

from .builtin_calls import call_effect, is_operator, operator_effect
from .bytecode_paths import EMPTY, Footprint, access, instruction_at

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
_IS_SCHEDULER: dict[str, bool] = {}  # abspath costs more than the rest of a frame walk


def _scheduler_file(filename: str) -> bool:
    found = _IS_SCHEDULER.get(filename)
    if found is None:
        found = _IS_SCHEDULER[filename] = os.path.abspath(filename) == _SCHEDULER
    return found


def _sync_file(filename: str) -> bool:
    found = _IS_SYNC.get(filename)
    if found is None:
        path = os.path.abspath(filename)
        found = _IS_SYNC[filename] = os.path.dirname(path) == _HERE or path in _SYNC_FILES
    return found


# Not frozen: a frozen dataclass sets each of its 11 fields through object.__setattr__, and a
# Loc is made at every switch point of an exhaustive search (2.7 -> 0.6 us). Never changed.
@dataclass(slots=True)
class Loc:
    """Where a worker is parked: at an opcode switch point, inside a primitive (sync), at its
    start or at its end. ``frame`` is the learner frame (None when none could be trusted);
    ``callers`` the frames below it down to the harness's, innermost first, each with the
    call it is in: learner frames, and untraced ones (``plain``: a test's own worker function,
    read from its bytecode as a whole since it has no switch points)."""

    kind: str  # "op" | "sync" | "start" | "done"
    frame: FrameType | None = None
    offset: int = -1
    callers: tuple[tuple[FrameType, int], ...] = ()
    outermost: bool = False  # only harness frames below the last of `callers`
    plain: frozenset[CodeType] = frozenset()  # the codes among `callers` that are untraced
    # What the primitive's code touched before this switch point, and touches after it.
    arrive: frozenset[str] = SYNC
    leave: frozenset[str] = SYNC
    # The acquire() this switch point is in (sync only), and whether the worker blocks here.
    acquiring: FrameType | None = None
    blocks: bool = False
    # At a call or an operator (op only): what it touches, when builtin_calls knows better
    # than the bytecode alone tells.
    effect: Footprint = None


AT_START = Loc("start")
AT_END = Loc("done")


# A generator's or a coroutine's frame is resumed by whoever calls next() or send(): the
# frames below it change between two of its steps.
_RESUMABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def _loc(
    kind: str,
    frame: FrameType,
    offset: int,
    files: frozenset[str],
    sync: tuple[frozenset[str], frozenset[str]] = (SYNC, SYNC),
    acquiring: FrameType | None = None,
    blocks: bool = False,
    effect: Footprint = None,
    previous: Loc | None = None,
) -> Loc:
    """``frame``'s Loc with the frames below it; where the walk down meets a frame of
    ``previous`` (the worker's last Loc: in the same call, in a caller it returned to, or
    one that called ``frame`` since), the rest of the stack is ``previous``'s: the walk down
    the stack was most of a tracked step's cost."""
    if previous is not None and previous.frame is frame and not frame.f_code.co_flags & _RESUMABLE:
        # Still in the same call: the frames below wait in the same calls as at the last step.
        return Loc(
            kind,
            frame,
            offset,
            previous.callers,
            previous.outermost,
            previous.plain,
            *sync,
            acquiring,
            blocks,
            effect,
        )
    known = _positions(previous)
    callers: list[tuple[FrameType, int]] = []
    plain: set[CodeType] = set()
    walk = frame.f_back
    while walk is not None and not _sync_file(walk.f_code.co_filename):
        code = walk.f_code
        callers.append((walk, instruction_at(code, walk.f_lasti)))
        if code.co_filename not in files:
            plain.add(code)
        at = known.get(id(walk)) if known else None
        if at is not None and previous is not None and not code.co_flags & _RESUMABLE:
            # Active then and now, so active all along: the frames below it never changed.
            return Loc(
                kind,
                frame,
                offset,
                (*callers, *previous.callers[at + 1 :]),
                previous.outermost,
                previous.plain | plain if plain else previous.plain,
                *sync,
                acquiring,
                blocks,
                effect,
            )
        walk = walk.f_back
    outermost = True
    while walk is not None:
        if not _sync_file(walk.f_code.co_filename):
            outermost = False
            break
        walk = walk.f_back
    return Loc(
        kind,
        frame,
        offset,
        tuple(callers),
        outermost,
        frozenset(plain) if plain else _NO_CODES,
        *sync,
        acquiring,
        blocks,
        effect,
    )


def _positions(previous: Loc | None) -> dict[int, int] | None:
    """id(frame) -> its place in ``previous``'s stack: -1 its own frame, k its k-th caller."""
    if previous is None or previous.frame is None:
        return None
    known = {id(previous.frame): -1}
    for k, (caller, _) in enumerate(previous.callers):
        known[id(caller)] = k
    return known


_NO_CODES: frozenset[CodeType] = frozenset()


def op_loc(
    frame: FrameType, offset: int, files: frozenset[str], previous: Loc | None = None
) -> Loc:
    """A switch point at ``offset`` of the learner ``frame``; ``previous``: where the same
    worker was parked before (``_loc`` reuses the frames below that it still shares)."""
    code = frame.f_code
    key = (id(code), offset)
    kind = _OP_KINDS.get(key)
    if kind is None:
        kind = _OP_KINDS[key] = (
            _CALL
            if access(code, offset) is None
            else _OPERATOR
            if is_operator(code, offset)
            else _PLAIN
        )
    # Read now: the locals are those the instruction's operands were made of, and the
    # attribute an operand was read from holds what was read (no other worker ran since).
    effect = (
        call_effect(frame, offset)
        if kind == _CALL
        else operator_effect(frame, offset)
        if kind == _OPERATOR
        else None
    )
    return _loc("op", frame, offset, files, effect=effect, previous=previous)


# Whether the switch-point instruction at an offset is a call, an operator or neither, by
# (id(code), offset): ``access`` keeps every code object it has read, so no id is another's.
_PLAIN, _CALL, _OPERATOR = 0, 1, 2
_OP_KINDS: dict[tuple[int, int], int] = {}


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


# A Lock's or an RLock's blocking acquire and its release also mark the step "a:sync:<n>" /
# "u:sync:<n>" (no read or write of their own: ``dependent`` ignores them). The search uses
# them to see that a release and the next acquire by another worker cannot be reordered:
# that worker is disabled until the release (see exhaustive._redirect).
_MUTEXES = frozenset({"Lock", "RLock"})
TAKES = "a:"
RELEASES = "u:"


def _waits_forever(acquire: FrameType) -> bool:
    found = acquire.f_locals
    return found.get("blocking") is True and found.get("timeout") == -1


Number = Callable[[object], "int | None"]


# How a primitive's type leads to the primitive whose creation number names its resource:
# itself, its lock (a Condition's ``_coop``), or a Queue's mutex when that is a cooperative
# Lock; None for anything else. Read once per type.
_SELF, _COOP, _MUTEX = "self", "coop", "mutex"
_TARGETS: dict[type, str | None] = {}


def _target_kind(kind: type) -> str | None:
    if kind.__module__.startswith("plugins.probe."):
        if kind.__name__ in _SIMPLE:
            return _SELF
        return _COOP if kind.__name__ == "Condition" else None
    return _MUTEX if issubclass(kind, queue.Queue) else None


def _sequence(obj: object, number: Number) -> int | None:
    """The creation number in the run of the primitive a learner's call reached: the same in
    every replay (its lock, for a Condition or a Queue, whose operations all run under it)."""
    kind = type(obj)
    how = _TARGETS.get(kind, "")
    if how == "":
        how = _TARGETS[kind] = _target_kind(kind)
    if how is None:
        return None
    if how is _SELF:
        return number(obj)
    if how is _COOP:
        target = getattr(obj, "_coop", None)
    else:
        target = getattr(obj, "mutex", None)
        if type(target).__name__ != "Lock":
            return None
    return None if target is None else number(target)


def _trusted(obj: object) -> bool:
    kind = type(obj)
    if kind.__module__.startswith("plugins.probe."):
        return kind.__name__ in _COUNTERS or kind.__name__ == "Condition"
    return isinstance(obj, queue.Queue)


Parts = tuple[frozenset[str], frozenset[str]]
# (primitive's type, its creation number, the innermost method's owner type and name, whether
# that acquire waits forever) -> what the primitive's code touches before and after: the same
# sets at every visit, so they are made once.
_PARTS: dict[tuple[type, int, type, str, bool], Parts] = {}


def _sync_parts(obj: object, owner: object, innermost: FrameType, number: Number) -> Parts:
    """What the primitive's code did before the switch point and does after it: a write of
    its resource, except the first switch point of acquire() (nothing of it came before: its
    only test, "do I hold it already", no other worker can change) and the last of
    release()/notify() (nothing follows)."""
    seq = _sequence(obj, number)
    if seq is None:
        return SYNC, SYNC
    method = innermost.f_code.co_name
    waits = method == "acquire" and _waits_forever(innermost)
    key = (type(obj), seq, type(owner), method, waits)
    parts = _PARTS.get(key)
    if parts is None:
        parts = _PARTS[key] = _parts_of(obj, owner, method, waits, f"sync:{seq}")
    return parts


def _parts_of(obj: object, owner: object, method: str, waits: bool, name: str) -> Parts:
    write = frozenset({"w:" + name})
    if _trusted(obj):
        mutex = type(owner).__name__ in _MUTEXES
        if type(owner).__name__ in _COUNTERS and method == "acquire":
            if mutex and waits:
                return EMPTY, write | {TAKES + name}
            return EMPTY, write
        if type(owner).__name__ in _COUNTERS and method == "release":
            return (write | {RELEASES + name}) if mutex else write, EMPTY
        if type(owner).__name__ == "Condition" and method in ("notify", "notify_all", "_notify"):
            return write, EMPTY
        if type(owner).__name__ == "Condition" and method == "_wait":
            # An untimed wait: registered and let the lock go; it takes the lock when woken.
            return write | {RELEASES + name}, write | {TAKES + name}
        if mutex and method == "acquire_restore":  # the lock a woken wait takes back
            return write, write | {TAKES + name}
    return write, write


# (owner's type, method) -> whether a switch point in it is inside a take of a lock: an
# acquire() of a Lock, RLock or Semaphore, or a Condition's wait. Read once per pair.
_TAKING: dict[tuple[type, str], bool] = {}


def _acquiring(owner: object, innermost: FrameType) -> FrameType | None:
    """The call that takes a lock this switch point is in: an acquire() of a Lock, RLock or
    Semaphore, or a Condition's wait (which takes its lock back when woken, blocking in
    acquire_restore while another worker holds it)."""
    method = innermost.f_code.co_name
    key = (type(owner), method)
    taking = _TAKING.get(key)
    if taking is None:
        named = type(owner).__name__
        taking = _TAKING[key] = _trusted(owner) and (
            (method == "acquire" and named in _COUNTERS)
            or (method == "_wait" and named == "Condition")
        )
    if taking:
        return innermost
    caller = innermost.f_back
    if method == "acquire_restore" and type(owner).__name__ in _MUTEXES and caller is not None:
        waiter = caller.f_locals.get("self")
        if caller.f_code.co_name == "_wait" and type(waiter).__name__ == "Condition":
            return caller
    return None


# What sync_loc's walk makes of a frame outside the learner's files, by its code object (kept
# with it, so that no other code object ever has its id): 0, outside the primitives' files
# (the step is unknown); 1, a primitive's frame that is not a method (a wrapper, the
# scheduler's); 2, a method of a primitive. Read once per code object.
_OUTSIDE, _PLUMBING, _METHOD = 0, 1, 2
_WALK: dict[int, tuple[CodeType, int]] = {}


def _walk_kind(code: CodeType) -> int:
    """Read the kind of a code object not in ``_WALK`` yet, and keep it there."""
    name = code.co_filename
    # Wrappers (tracing.untraced) have no `self`: the methods around them tell.
    kind = (
        _OUTSIDE
        if not _sync_file(name)
        else _METHOD
        if "self" in code.co_varnames and not _scheduler_file(name)
        else _PLUMBING
    )
    _WALK[id(code)] = (code, kind)
    return kind


def sync_loc(
    start: FrameType | None,
    files: frozenset[str],
    number: Number,
    timed: bool = False,
    blocks: bool = False,
    previous: Loc | None = None,
) -> Loc | None:
    """A primitive's switch point: the learner frame that called into it, if only harness,
    threading or queue code lies between (else None: the step is unknown). A timed wait
    touches GLOBAL_SYNC: whether it times out depends on every other worker."""
    frame = start
    entry: FrameType | None = None
    innermost: FrameType | None = None
    while frame is not None:
        code = frame.f_code
        if code.co_filename in files:
            parts = (SYNC, SYNC)
            acquiring = None
            if innermost is not None and entry is not None and not timed:
                owner = innermost.f_locals.get("self")
                obj = owner if entry is innermost else entry.f_locals.get("self")
                parts = _sync_parts(obj, owner, innermost, number)
                acquiring = _acquiring(owner, innermost)
            offset = instruction_at(code, frame.f_lasti)
            return _loc("sync", frame, offset, files, parts, acquiring, blocks, previous=previous)
        found = _WALK.get(id(code))
        kind = found[1] if found is not None else _walk_kind(code)
        if kind == _OUTSIDE:
            return None
        if kind == _METHOD:
            if innermost is None:
                innermost = frame
            entry = frame
        frame = frame.f_back
    return None
