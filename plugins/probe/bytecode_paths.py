"""What a learner frame's bytecode touches between two switch points, for ``footprints``.

Read from ``dis``: the control-flow graph of each code object, the instructions on the paths
between two offsets that are not switch points (local, a read of containers, or unknown),
what a switch-point instruction itself touches, and what a call calls when it loads the
callable by name right before its arguments.
"""

from __future__ import annotations

import bisect
import dis
import sys
from dataclasses import dataclass, field
from types import CodeType, FrameType

from .tracing import BACK_EDGE, switch_points

Footprint = frozenset[str] | None
EMPTY: frozenset[str] = frozenset()

_LOCAL = frozenset(
    {
        "NOP", "RESUME", "CACHE", "EXTENDED_ARG", "LOAD_FAST", "LOAD_FAST_CHECK",
        "LOAD_FAST_AND_CLEAR", "LOAD_FAST_LOAD_FAST", "STORE_FAST", "STORE_FAST_LOAD_FAST",
        "STORE_FAST_STORE_FAST", "DELETE_FAST", "LOAD_CONST", "POP_TOP", "PUSH_NULL", "COPY",
        "SWAP", "JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP",
        "JUMP_NO_INTERRUPT", "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE",
        "POP_JUMP_FORWARD_IF_NONE", "POP_JUMP_FORWARD_IF_NOT_NONE",
        "POP_JUMP_BACKWARD_IF_NONE", "POP_JUMP_BACKWARD_IF_NOT_NONE", "IS_OP", "BUILD_TUPLE",
        "BUILD_LIST", "BUILD_SET", "BUILD_MAP", "BUILD_CONST_KEY_MAP", "BUILD_SLICE",
        "LOAD_ASSERTION_ERROR", "MAKE_FUNCTION", "SET_FUNCTION_ATTRIBUTE", "MAKE_CELL",
        "COPY_FREE_VARS", "LOAD_CLOSURE", "KW_NAMES", "PRECALL", "END_FOR", "NOT_TAKEN",
        "POP_ITER", "LIST_APPEND", "SET_ADD", "MAP_ADD",
    }
)  # fmt: skip
# Truth tests, comparisons, iteration and formatting read a container's items.
_READS = frozenset(
    {
        "POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE", "POP_JUMP_FORWARD_IF_TRUE",
        "POP_JUMP_FORWARD_IF_FALSE", "POP_JUMP_BACKWARD_IF_TRUE", "POP_JUMP_BACKWARD_IF_FALSE",
        "JUMP_IF_TRUE_OR_POP", "JUMP_IF_FALSE_OR_POP", "TO_BOOL", "UNARY_NOT",
        "UNARY_NEGATIVE", "UNARY_INVERT", "COMPARE_OP", "CONTAINS_OP", "GET_ITER", "FOR_ITER",
        "UNPACK_SEQUENCE", "UNPACK_EX", "LIST_EXTEND", "SET_UPDATE", "DICT_UPDATE",
        "DICT_MERGE", "FORMAT_VALUE", "FORMAT_SIMPLE", "FORMAT_WITH_SPEC", "CONVERT_VALUE",
        "LIST_TO_TUPLE", "BUILD_STRING", "CALL_INTRINSIC_1",
    }
)  # fmt: skip
_RETURNS = frozenset({"RETURN_VALUE", "RETURN_CONST"})
# Met off a switch point only where ``tracing`` dropped it as invisible: a builtin's name, a
# local's arithmetic with a number constant, a name nothing rebinds while a run goes on
# (``rebinding``). In a test's own code, which has no switch points, an attribute is read
# like the rest: the learner's code may rebind it.
_UNWATCHED = frozenset({"LOAD_GLOBAL", "BINARY_OP", "LOAD_DEREF"})
_FIXED_ATTRIBUTES = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_UNCONDITIONAL = frozenset(
    {"JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP", "JUMP_NO_INTERRUPT"}
)
READ_ITEMS = frozenset({"r:[]"})
_CALLS = frozenset({"CALL", "CALL_KW"})  # CALL_KW: 3.13's call with keyword arguments
# In untraced code's path, a call at an offset: the caller resolves it (footprints._path).
CALL_AT = "c:"
CONTAINERS = frozenset({"r:[]", "w:[]"})


@dataclass
class _Code:
    ins: dict[int, dis.Instruction]
    succ: dict[int, list[int]]
    pred: dict[int, list[int]]
    points: frozenset[int]  # switch points
    first: int
    offsets: list[int]
    code: CodeType  # kept, so that no other code object ever has its id
    # What ``path``, ``access`` and ``callee_loader`` found in it, by offsets.
    paths: dict[tuple[int, int, bool], Footprint]
    accesses: dict[int, Footprint]
    loaders: dict[int, int | None]
    # Whether ``footprints.read_ahead`` has read it, traced and untraced: every cache it
    # fills is kept here or by (id(code), offset), so once per process is enough.
    read_ahead: set[bool] = field(default_factory=set)


# By id(code): hashing a code object hashes its bytecode, names and constants (0.2 us, and a
# tracked step asks a few times).
_CODES: dict[int, _Code] = {}
EXIT = -2
ENTRY = -1


def _analysed(code: CodeType) -> _Code:
    found = _CODES.get(id(code))
    if found is None:
        listing = list(dis.get_instructions(code))
        ins = {i.offset: i for i in listing}
        succ: dict[int, list[int]] = {}
        for n, i in enumerate(listing):
            out: list[int] = []
            if i.opname not in _UNCONDITIONAL and i.opname not in _RETURNS and n + 1 < len(listing):
                out.append(listing[n + 1].offset)
            if (i.opcode in dis.hasjrel or i.opcode in dis.hasjabs) and isinstance(i.argval, int):
                out.append(i.argval)
            succ[i.offset] = out
        pred: dict[int, list[int]] = {o: [] for o in ins}
        for o, outs in succ.items():
            for t in outs:
                pred.setdefault(t, []).append(o)
        points = frozenset(o for o, what in switch_points(code).items() if what != BACK_EDGE)
        first = listing[0].offset if listing else 0
        found = _Code(ins, succ, pred, points, first, [i.offset for i in listing], code, {}, {}, {})
        _CODES[id(code)] = found
    return found


analysed = _analysed  # for builtin_calls, which reads the same listing


def instruction_at(code: CodeType, lasti: int) -> int:
    """The instruction a frame's ``f_lasti`` is in (3.11 points into a call's inline cache)."""
    offsets = _analysed(code).offsets
    n = bisect.bisect_right(offsets, lasti)
    return offsets[n - 1] if n else lasti


def _category(ins: dis.Instruction) -> Footprint:
    if ins.opname in _LOCAL or ins.opname in _UNWATCHED:
        return EMPTY
    if ins.opname in _READS:
        return READ_ITEMS
    return None


def path(code: CodeType, start: int, end: int, traced: bool = True) -> Footprint:
    """What a frame touches from after the instruction at ``start`` (ENTRY: from the first
    instruction) up to, not including, the one at ``end`` (EXIT: through a return), running
    only non-switch-point instructions; None if that includes anything unknown or ``end`` is
    not reachable so. Code that is not ``traced`` (a test's own worker function) has no
    switch points: its attribute and item accesses are read like the rest."""
    info = _analysed(code)
    key = (start, end, traced)
    paths = info.paths
    if key in paths:
        return paths[key]
    if not traced and code.co_exceptiontable:
        # A handler may have run instead (a worker function catching what the learner's
        # code raised): with no switch point in it, nothing would show which way it went.
        paths[key] = None
        return None
    todo = [info.first] if start == ENTRY else list(info.succ.get(start, []))
    seen: set[int] = set()
    hit_end = False
    while todo:
        o = todo.pop()
        if o in seen:
            continue
        if o == end:
            hit_end = True
            continue
        if (traced and o in info.points) or o not in info.ins:
            continue
        seen.add(o)
        if end == EXIT and info.ins[o].opname in _RETURNS:
            hit_end = True
            continue
        todo.extend(info.succ.get(o, []))
    result: Footprint = None
    if hit_end:
        # Only instructions from which `end` can be reached count.
        back = set()
        if end == EXIT:
            todo = [o for o in seen if info.ins[o].opname in _RETURNS]
        else:
            todo = [p for p in info.pred.get(end, []) if p in seen]
        while todo:
            o = todo.pop()
            if o in back or o not in seen:
                continue
            back.add(o)
            todo.extend(info.pred.get(o, []))
        entries: set[str] = set()
        result = EMPTY
        for o in back:
            ins = info.ins[o]
            if end == EXIT and ins.opname in _RETURNS:
                continue
            got = _category(ins)
            if o in info.points or (not traced and ins.opname in _FIXED_ATTRIBUTES):
                # Untraced code: what the switch point would have touched.
                got = frozenset({CALL_AT + str(o)}) if ins.opname in _CALLS else access(code, o)
            elif ins.opname in _FIXED_ATTRIBUTES:
                got = EMPTY  # no switch point: nothing rebinds it while a run goes on
            if got is None:
                result = None
                break
            entries |= got
        if result is not None:
            result = frozenset(entries)
    paths[key] = result
    return result


def ends(code: CodeType, start: int, traced: bool = True) -> list[int]:
    """The ``end``s that ``path(code, start, end, traced)`` can reach: the switch points first
    met from ``start``, the calls on the way (a primitive's switch point stops a frame at
    the call that entered it) and EXIT. For reading a learner's code ahead of its runs:
    these are the paths a tracked step asks for."""
    info = _analysed(code)
    todo = [info.first] if start == ENTRY else list(info.succ.get(start, []))
    seen: set[int] = set()
    found: set[int] = set()
    while todo:
        o = todo.pop()
        if o in seen or o not in info.ins:
            continue
        seen.add(o)
        if traced and o in info.points:
            found.add(o)
            continue
        if info.ins[o].opname in _ENTERS:
            found.add(o)
        if info.ins[o].opname in _RETURNS:
            found.add(EXIT)
            continue
        todo.extend(info.succ.get(o, []))
    return sorted(found)


def calls(code: CodeType) -> list[int]:
    """The offsets of ``code``'s instructions that may call into Python code: its calls and
    the start of its ``with`` blocks (``__enter__``)."""
    info = _analysed(code)
    return [o for o in info.offsets if info.ins[o].opname in _ENTERS]


_ENTERS = _CALLS | {"BEFORE_WITH"}


def access(code: CodeType, offset: int) -> Footprint:
    """What the switch-point instruction at ``offset`` itself touches; None for a call.
    (Cached: the exhaustive search asks at every step, twice.)"""
    accesses = _analysed(code).accesses
    if offset not in accesses:
        accesses[offset] = _access(code, offset)
    return accesses[offset]


def _access(code: CodeType, offset: int) -> Footprint:
    ins = _analysed(code).ins.get(offset)
    if ins is None:
        return None
    name, arg = ins.opname, ins.argval if isinstance(ins.argval, str) else "?"
    write = name.startswith(("STORE", "DELETE"))
    if "ATTR" in name or "METHOD" in name:
        return frozenset({("w:." if write else "r:.") + arg})
    if "GLOBAL" in name or "NAME" in name:
        return frozenset({("w:g." if write else "r:g.") + arg})
    if "DEREF" in name:
        return frozenset({("w:d." if write else "r:d.") + arg})
    if "SUBSCR" in name or "SLICE" in name:
        return frozenset({"w:[]" if write else "r:[]"})
    if name == "BINARY_OP":
        # An in-place operator mutates a list or set in place; a plain one reads items.
        return frozenset({"r:[]", "w:[]"}) if ins.argrepr.endswith("=") else READ_ITEMS
    return None


# Stack (pops, pushes) of the instructions a call's arguments are usually made of.
_LOADS_ONE = frozenset(
    {"LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_CONST", "LOAD_DEREF", "LOAD_CLOSURE", "LOAD_NAME"}
)


def callee_loader(code: CodeType, call: int) -> int | None:
    """The offset of the instruction that loads what the CALL at ``call`` calls, if it is
    loaded right before the call's arguments (``self.m(x, 1)``, ``f(a)``, ``super().m()``,
    ``sorted(t, key=lambda a: a.n)``); None when unsure."""
    loaders = _analysed(code).loaders
    if call not in loaders:
        loaders[call] = _find_loader(code, call)
    return loaders[call]


def _callee_name(code: CodeType, call: int) -> str | None:
    """The name of what the call at ``call`` calls, if ``callee_loader`` finds it loaded by
    name; None when unsure."""
    loader = callee_loader(code, call)
    if loader is None:
        return None
    i = _analysed(code).ins[loader]
    loads = i.opname.startswith("LOAD_") and i.opname != "LOAD_CONST"
    return i.argval if loads and isinstance(i.argval, str) else None


def _stack_effect(i: dis.Instruction) -> tuple[int, int] | None:
    """(pops, pushes) of the instructions a call's arguments are usually made of."""
    name = i.opname
    if name in _LOADS_ONE or (name == "LOAD_GLOBAL" and not (i.arg or 0) & 1):
        return 0, 1
    if name == "LOAD_GLOBAL":
        return 0, 2
    if name == "LOAD_METHOD":
        return 1, 2
    if name == "LOAD_ATTR":
        return (1, 2) if sys.version_info >= (3, 12) and (i.arg or 0) & 1 else (1, 1)
    if name == "PUSH_NULL":
        return 0, 1
    if name in ("BINARY_OP", "BINARY_SUBSCR", "COMPARE_OP", "IS_OP", "CONTAINS_OP"):
        return 2, 1
    if name in ("BUILD_TUPLE", "BUILD_LIST", "BUILD_SET") and isinstance(i.arg, int):
        return i.arg, 1
    if name in _CALLS and isinstance(i.arg, int):  # a call's result as an argument: len(x)
        return i.arg + 2 + (name == "CALL_KW"), 1
    if name == "LOAD_FAST_LOAD_FAST":  # 3.13
        return 0, 2
    if name == "MAKE_FUNCTION":
        # The code object, and (up to 3.12) one more item per flag: defaults, closure, …
        return 1 + (bin(i.arg & 0x0F).count("1") if isinstance(i.arg, int) else 0), 1
    if name == "SET_FUNCTION_ATTRIBUTE":  # 3.13: what MAKE_FUNCTION's flags did
        return 2, 1
    return None


def _find_loader(code: CodeType, call: int) -> int | None:
    info = _analysed(code)
    ins = info.ins.get(call)
    if ins is None or ins.opname not in _CALLS or not isinstance(ins.arg, int):
        return None
    offsets = sorted(o for o in info.ins if o < call)
    # Slots above the callable's own: the arguments, and CALL_KW's tuple of keyword names.
    depth = ins.arg + (ins.opname == "CALL_KW")
    for o in reversed(offsets):
        i = info.ins[o]
        if i.is_jump_target and o != offsets[-1] and depth > 0:
            return None
        if i.opname in ("PRECALL", "KW_NAMES", "CACHE", "EXTENDED_ARG", "NOP"):
            continue
        effect = _stack_effect(i)
        if effect is None:
            return None
        pops, pushes = effect
        if depth < pushes:
            return o
        depth += pops - pushes
    return None


def direct_call(caller: FrameType, call: int, name: str) -> bool:
    if name == "<lambda>" or (name.startswith("__") and name != "__init__"):
        return False
    return _callee_name(caller.f_code, call) == name
