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
    # Read now: the locals are those the instruction's operands were made of, and the
    # attribute an operand was read from holds what was read (no other worker ran since).
    effect = (
        call_effect(frame, offset)
        if access(code, offset) is None
        else operator_effect(frame, offset)
        if is_operator(code, offset)
        else None
    )
    return _loc("op", frame, offset, files, effect=effect, previous=previous)


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
        mutex = type(owner).__name__ in _MUTEXES
        if type(owner).__name__ in _COUNTERS and method == "acquire":
            if mutex and _waits_forever(innermost):
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


def _acquiring(innermost: FrameType) -> FrameType | None:
    """The call that takes a lock this switch point is in: an acquire() of a Lock, RLock or
    Semaphore, or a Condition's wait (which takes its lock back when woken, blocking in
    acquire_restore while another worker holds it)."""
    owner = innermost.f_locals.get("self")
    method = innermost.f_code.co_name
    if method == "acquire" and type(owner).__name__ in _COUNTERS and _trusted(owner):
        return innermost
    if method == "_wait" and type(owner).__name__ == "Condition" and _trusted(owner):
        return innermost
    caller = innermost.f_back
    if method == "acquire_restore" and type(owner).__name__ in _MUTEXES and caller is not None:
        waiter = caller.f_locals.get("self")
        if caller.f_code.co_name == "_wait" and type(waiter).__name__ == "Condition":
            return caller
    return None


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
        name = frame.f_code.co_filename
        if name in files:
            parts = (SYNC, SYNC)
            if entry is not None and innermost is not None:
                parts = _sync_parts(entry, innermost, timed, number)
            offset = instruction_at(frame.f_code, frame.f_lasti)
            acquiring = None if innermost is None or timed else _acquiring(innermost)
            return _loc("sync", frame, offset, files, parts, acquiring, blocks, previous=previous)
        if not _sync_file(name):
            return None
        # Wrappers (tracing.untraced) have no `self`: the methods around them tell.
        if "self" in frame.f_code.co_varnames and not _scheduler_file(name):
            if innermost is None:
                innermost = frame
            entry = frame
        frame = frame.f_back
    return None
