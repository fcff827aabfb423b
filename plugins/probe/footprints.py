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
  in-place operator "r:[]"/"w:[]" (all containers are one resource), except an operator whose
  operands are locals, constants or ``x.attr`` holding ints, strings or other immutable
  builtins, which touches nothing (``builtin_calls``, read at the switch point);
- the instructions up to the next switch point (local variables, constants, jumps, truth
  tests and comparisons, which read containers: "r:[]"); anything else (a return, a raise,
  an unknown opcode) is ``None``;
- a call straight into a learner function whose name is the callable the call loads, and the
  return from it into the frame that called it; a call of a builtin or of a list's, dict's,
  set's or deque's method that ``builtin_calls`` recognises;
- a test's own worker function (untraced, so it has no switch points): read from its bytecode
  as a whole between the calls it makes into learner code;
- a synchronisation operation (lock, condition, semaphore, event, queue, thread start/join,
  sleep): "w:sync:<n>" for the primitive it touched, "w:sync" (all of them) when unknown or
  timed, when only the harness's primitives and ``threading``/``queue`` ran between the
  learner's line and the switch point (``locations``). A Lock's or RLock's blocking take and
  its release, and a Condition's untimed wait, are also marked "a:" / "u:", for the search.

Code of a library between two switch points makes the step ``None``.
"""

from __future__ import annotations

import functools
import itertools
from types import CodeType, FrameType

from .builtin_calls import builtin_call_effect, call_effect
from .builtin_calls import read_ahead as read_call_ahead
from .bytecode_paths import (
    CALL_AT,
    CONTAINERS,
    EMPTY,
    ENTRY,
    EXIT,
    Footprint,
    access,
    analysed,
    calls,
    direct_call,
    ends,
    path,
)
from .locations import AT_END as AT_END
from .locations import AT_START as AT_START
from .locations import ENDS, GLOBAL_SYNC, Loc
from .locations import RELEASES as RELEASES
from .locations import TAKES as TAKES
from .locations import frame_of as frame_of
from .locations import op_loc as op_loc
from .locations import sync_loc as sync_loc

__all__ = [
    "AT_END", "AT_START", "GLOBAL_SYNC", "RELEASES", "TAKES", "Loc", "dependent", "footprint",
    "frame_of", "in_frame", "op_loc", "read_ahead", "sync_loc",
]  # fmt: skip


def read_ahead(code: CodeType, traced: bool = True) -> None:
    """Read what a tracked step may ask of ``code`` now, into the caches the steps read:
    the paths between its switch points and calls (between its calls only if it is not
    ``traced``: a test's worker function), what each switch point touches, and the shapes
    of its calls and operators. The exhaustive search's first run read them otherwise, at a
    third of its cost. Once per code and ``traced`` in a process: a Hypothesis-drawn probe
    test explores once per example, and every exploration asked again (30-60 ms of a kata's
    run, in locks, barriers and primitives)."""
    info = analysed(code)
    if traced in info.read_ahead:
        return
    points = sorted(info.points) if traced else []
    for offset in points:
        access(code, offset)
        read_call_ahead(code, offset)
    for start in (ENTRY, *sorted({*points, *calls(code)})):
        for end in ends(code, start, traced):
            path(code, start, end, traced)
    info.read_ahead.add(traced)


@functools.lru_cache(maxsize=1 << 16)
def dependent(a: Footprint, b: Footprint) -> bool:
    """Whether two steps may not commute: either is unknown, or one writes what the other
    reads or writes. (Cached: a run's steps repeat a few footprints, and the search asks
    about the same pairs run after run.)"""
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


def _union(*parts: Footprint) -> Footprint:
    out: frozenset[str] = EMPTY
    for part in parts:
        if part is None:
            return None
        if part:  # most parts are empty: the union is then one of them, not a new set
            out = part if not out else out | part
    return out


def _head(start: Loc, code: CodeType) -> Footprint:
    if start.kind == "sync":
        return start.leave
    return access(code, start.offset) if start.effect is None else start.effect


def _via(caller: FrameType, call: int, callee: CodeType) -> Footprint:
    """What the call at ``call`` in ``caller`` touched on its way into ``callee``'s frame
    (or back out of it): nothing when it calls the function by its name; a builtin's own
    part when it is one that builtin_calls knows (sorted(key=...)); else any container."""
    if direct_call(caller, call, callee.co_name):
        return EMPTY
    found = call_effect(caller, call)
    return CONTAINERS if found is None else found


def _path(frame: FrameType, start: int, end: int, *locs: Loc) -> Footprint:
    """``path`` in ``frame``'s code, read whole if it is untraced, with the builtins it calls
    by their global names resolved (any other call there is unknown)."""
    code = frame.f_code
    traced = True
    for loc in locs:
        if loc.plain and code in loc.plain:
            traced = False
            break
    found = path(code, start, end, traced)
    if found is None:
        return None
    split = _SPLIT.get(found)
    if split is None:
        split = _SPLIT[found] = _split(found)
    rest, calls = split
    if not calls:
        return rest
    parts: list[Footprint] = [rest]
    for call in calls:
        parts.append(builtin_call_effect(frame, call))
    return _union(*parts)


def _split(found: frozenset[str]) -> tuple[frozenset[str], tuple[int, ...]]:
    """A path's footprint without its calls, and the offsets of those calls."""
    calls = tuple(sorted(int(x[len(CALL_AT) :]) for x in found if x.startswith(CALL_AT)))
    return (frozenset(x for x in found if not x.startswith(CALL_AT)) if calls else found), calls


# A path's footprint -> ``_split`` of it: a tracked step split the same few sets again and
# again (two scans of each, a tenth of a tracked transfer's footprint work). Keyed by the
# set itself, whose hash the set keeps.
_SPLIT: dict[frozenset[str], tuple[frozenset[str], tuple[int, ...]]] = {}


def _returns(start: Loc, code: CodeType) -> Footprint:
    """Everything from ``start`` through the return of its frame and of every caller below
    it, into harness code: a worker's last step."""
    parts = [_head(start, code), path(code, start.offset, EXIT)]
    inner = code
    for frame, call in start.callers:
        parts.extend((_via(frame, call, inner), _path(frame, call, EXIT, start)))
        inner = frame.f_code
    return _union(*parts) if start.outermost else None


def _entered(end: Loc, e: FrameType) -> Footprint:
    """A worker's first step: from the harness's call of its function, through every call
    down to ``end``'s frame, to its first switch point."""
    if not end.outermost:
        return None
    frames = [(e, end.offset), *end.callers]
    parts = [_path(frame, ENTRY, offset, end) for frame, offset in frames]
    for (inner, _), (caller, call) in itertools.pairwise(frames):
        parts.append(_via(caller, call, inner.f_code))
    return _union(*parts)


# A step within one frame (``footprint``) -> its footprint, keyed by the code's id: ``path``
# keeps every code object it reads, so no id is ever another's.
_IN_FRAME: dict[tuple[int, int, int, str, Footprint, Footprint], Footprint] = {}
_UNREAD = frozenset({"(not read yet)"})


def footprint(start: Loc | None, end: Loc | None) -> Footprint:
    """What a worker touched going from ``start`` to ``end`` (None: unknown, i.e. anything)."""
    if start is None or end is None:
        return None
    tail = end.arrive if end.kind == "sync" else ENDS if end.kind == "done" else EMPTY
    s, e = start.frame, end.frame
    if start.kind == "start":
        if e is not None and end.kind != "done":
            return _union(_entered(end, e), tail)
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
        # On in the same frame; also a call that ran untraced code and came back (unknown
        # unless a known builtin). Read once per code, offsets and what the ends add: most
        # of a tracked run's steps are of this kind, and each made five calls.
        head = start.leave if start.kind == "sync" else start.effect
        key = (id(code), start.offset, end.offset, start.kind, head, tail)
        found = _IN_FRAME.get(key, _UNREAD)
        if found is _UNREAD:
            found = _IN_FRAME[key] = in_frame(start, code, end, tail)
        return found
    if start.kind == "op" and end.callers and end.callers[0] == (s, start.offset):
        # A call into a learner function: straight, or through a builtin that calls it back
        # (sorted(key=...), min, a dict's __eq__), which may read or write containers.
        via = _via(s, start.offset, e.f_code)
        return _union(via, path(e.f_code, ENTRY, end.offset), tail)
    if (
        start.callers
        and end.callers
        and start.callers[0] == end.callers[0]
        and start.callers[0][0].f_code not in start.plain
    ):
        # A callback returned into the builtin that called it, which called the next one
        # (a traced caller reaches a switch point before it calls again).
        found = call_effect(*start.callers[0])
        return _union(
            CONTAINERS if found is None else found,
            _head(start, code),
            path(code, start.offset, EXIT),
            path(e.f_code, ENTRY, end.offset),
            tail,
        )
    return _between(start, code, end, e, tail)


def in_frame(start: Loc, code: CodeType, end: Loc, tail: Footprint) -> Footprint:
    """A step from ``start`` to ``end`` in the same frame, running ``code``: what the start's
    instruction touches, the instructions between, and ``tail`` (what the end adds)."""
    return _union(_head(start, code), path(code, start.offset, end.offset), tail)


def _between(start: Loc, code: CodeType, end: Loc, e: FrameType, tail: Footprint) -> Footprint:
    """From ``start`` up through returns to the frame both stacks share, on in it, and down
    through calls to ``end``: e.g. the end of one learner method, the test's worker function
    (read from its bytecode) and the start of the next method it calls. Each call crossed is
    a direct call by name or a builtin's known one (``_via``)."""
    if start.frame is None:
        return None
    up = [(start.frame, start.offset), *start.callers]
    down = [(e, end.offset), *end.callers]
    where = {id(frame): n for n, (frame, _) in enumerate(down)}
    top = next((n for n, (frame, _) in enumerate(up) if id(frame) in where), None)
    if top is None or top == 0:
        return None  # no shared frame, or the start's frame calls down: handled above
    parts = [_head(start, code), tail]
    for n in range(top):
        inner, offset = up[n]
        caller, call = up[n + 1]
        parts += [_path(inner, offset, EXIT, start), _via(caller, call, inner.f_code)]
    shared, left = up[top]
    bottom = where[id(shared)]
    parts.append(_path(shared, left, down[bottom][1], start, end))
    for n in range(bottom):
        inner, offset = down[n]
        caller, call = down[n + 1]
        parts += [_via(caller, call, inner.f_code), _path(inner, ENTRY, offset, end)]
    return _union(*parts)
