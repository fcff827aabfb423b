"""3.11: switch points written into a copy of the learner's bytecode, for sampled runs.

With ``sys.settrace`` every instruction of the learner's code costs a call of a Python hook
(about four per switch point), and every frame entered, the harness's own included, one more;
the primitives turn the hook off and on around their code for the same reason. A sampled
run (random walk, PCT, a replay) instead swaps each learner function's code for a copy with a
call of ``hook(args)`` just before each switch-point instruction: the same switch points, the
same steps, and no trace hook anywhere (barriers' schedule 1.4-1.6 -> 1.0-1.2 ms).

- The call goes where settrace's opcode event fires: before the instruction, and for a
  call before its PRECALL and KW_NAMES (which hand the call hidden state). A jump to the
  instruction lands on the call, as the event fires there too. An instruction with an
  EXTENDED_ARG prefix gets none: settrace's event fires at the prefix, where no switch point
  is, and never at the instruction.
- The exception table and the line table are written again for the new offsets: a traceback,
  ``f_lineno`` and every handler are as in the original.
- ``args`` is ``(code, offset, what, site, weight)`` of the original instruction: reports,
  sites and busy loops read the original code; ``weight`` is ``tracing.weights_of``'s.
- A jump whose argument grows past its EXTENDED_ARG prefixes gets one more.
- The search that tracks footprints (exhaustive) keeps settrace: it reads each frame at the
  original offsets.

The cost is a scan per code object, once per process (cached), made before the run starts.
"""

from __future__ import annotations

import dis
import itertools
import opcode
import operator
import sys
import types
from collections.abc import Callable, Iterator
from types import CodeType

from .tracing import module_files, reachable_functions, sites_of, switch_points, weights_of

Hook = Callable[[tuple[CodeType, int, str, tuple[str, int], int]], None]

AVAILABLE = sys.version_info[:2] == (3, 11)

_OP = dis.opmap
_EXTENDED_ARG = _OP["EXTENDED_ARG"]
_CACHES: list[int] = list(getattr(opcode, "_inline_cache_entries", []))
_FORWARD = frozenset(
    op for op in dis.hasjrel if "BACKWARD" not in dis.opname[op]
)  # FOR_ITER, SEND, JUMP_FORWARD, POP_JUMP_FORWARD_IF_*, JUMP_IF_*_OR_POP
_BACKWARD = frozenset(op for op in dis.hasjrel if "BACKWARD" in dis.opname[op])
_CALL_PREFIX = frozenset(_OP[n] for n in ("PRECALL", "KW_NAMES") if n in _OP)
_CALL = _OP["CALL"]


def _call_units(hook_index: int, args_index: int) -> bytes:
    """PUSH_NULL; LOAD_CONST hook; LOAD_CONST args; PRECALL 1; CALL 1; POP_TOP, with their
    inline caches and the EXTENDED_ARG a constant's index may need."""
    out = bytearray([_OP["PUSH_NULL"], 0])
    for index in (hook_index, args_index):
        out += _with_prefixes(_OP["LOAD_CONST"], index, _prefixes(index))
    for name in ("PRECALL", "CALL"):
        op = _OP[name]
        out += bytes([op, 1]) + bytes(2 * _CACHES[op])
    out += bytes([_OP["POP_TOP"], 0])
    return bytes(out)


def _prefixes(arg: int) -> int:
    count = 0
    while arg > 0xFF:
        arg >>= 8
        count += 1
    return count


def _with_prefixes(op: int, arg: int, prefixes: int) -> bytes:
    out = bytearray()
    for shift in range(prefixes, 0, -1):
        out += bytes([_EXTENDED_ARG, (arg >> (8 * shift)) & 0xFF])
    out += bytes([op, arg & 0xFF])
    return bytes(out)


class _Ins:
    __slots__ = ("arg", "at", "end", "op", "start")

    def __init__(self, start: int, at: int, op: int, arg: int, end: int) -> None:
        self.start = start  # where its EXTENDED_ARG prefixes begin
        self.at = at  # the opcode's own offset (f_lasti, switch_points' keys)
        self.op = op
        self.arg = arg
        self.end = end  # past its inline caches


def _instructions(raw: bytes) -> list[_Ins]:
    found = []
    i = 0
    while i < len(raw):
        start = i
        arg = 0
        while raw[i] == _EXTENDED_ARG:
            arg = (arg | raw[i + 1]) << 8
            i += 2
        op = raw[i]
        arg |= raw[i + 1]
        end = i + 2 + 2 * _CACHES[op]
        found.append(_Ins(start, i, op, arg, end))
        i = end
    return found


def _target(ins: _Ins) -> int | None:
    if ins.op in _FORWARD:
        return ins.end + 2 * ins.arg
    if ins.op in _BACKWARD:
        return ins.end - 2 * ins.arg
    return None


# Both caches are keyed by id(): hashing a code object hashes its bytecode, and every run
# asks about each of the learner's functions (a tenth of a short schedule). Each holds the
# code objects it names, so that no id is reused while it is there.
_DONE: dict[int, tuple[CodeType, CodeType | None]] = {}  # id(code) -> (code, its rewriting)
_REWRITTEN: dict[int, CodeType] = {}  # id -> every code object made here (or kept as it was)


def is_rewritten(code: CodeType) -> bool:
    """Whether ``code`` came out of ``rewritten`` (it calls the hook already)."""
    return id(code) in _REWRITTEN


def rewritten(code: CodeType, hook: Hook) -> CodeType | None:
    """``code`` with a call of ``hook`` before each switch point, nested code too; None if
    it cannot be rewritten. Cached: ``hook`` must be the same at every call."""
    done = _DONE.get(id(code))
    if done is not None:
        return done[1]
    try:
        new = _rewrite(code, hook)
    except KeyError:  # a jump into the middle of an instruction: settrace runs this code
        new = None
    _DONE[id(code)] = (code, new)
    if new is not None:
        _REWRITTEN[id(new)] = new
    return new


def _rewrite(code: CodeType, hook: Hook, cached: bool = True) -> CodeType | None:
    """``rewritten`` without the cache for ``code`` (its nested code too, unless ``cached``)."""
    consts = list(code.co_consts)
    for n, const in enumerate(consts):
        if isinstance(const, CodeType):
            nested = rewritten(const, hook) if cached else _rewrite(const, hook, cached)
            if nested is None:
                return None
            consts[n] = nested
    raw = code.co_code
    listing = _instructions(raw)
    points = switch_points(code)
    if not any(ins.at in points and ins.start == ins.at for ins in listing):
        return code.replace(co_consts=tuple(consts)) if consts != list(code.co_consts) else code
    sites = sites_of(code)
    weights = weights_of(code)
    # Where each call goes (an instruction's start, or its call's PRECALL/KW_NAMES) -> its code.
    calls: dict[int, bytes] = {}
    hook_index = len(consts)
    consts.append(hook)
    for n, ins in enumerate(listing):
        what = points.get(ins.at)
        if what is None or ins.start != ins.at:
            # settrace stops at an EXTENDED_ARG, never at the instruction it prefixes: so
            # neither does this, or a sampled run and a tracked one would differ.
            continue
        first = n
        if ins.op == _CALL:
            while first and listing[first - 1].op in _CALL_PREFIX:
                first -= 1
        consts.append((code, ins.at, what, sites[ins.at], weights.get(ins.at, 1)))
        calls[listing[first].start] = _call_units(hook_index, len(consts) - 1)
    # Lay the code out again until every jump's argument fits its EXTENDED_ARG prefixes: a
    # longer jump may need one more, which moves what follows it (a loop's jump back grows
    # by the calls written inside the loop).
    prefixes = [(ins.at - ins.start) // 2 for ins in listing]
    while True:
        landing, starts = _layout(listing, calls, prefixes)
        args: dict[int, int] = {}
        grown = False
        for n, ins in enumerate(listing):
            target = _target(ins)
            if target is None:
                continue
            new_end = starts[n] + 2 * prefixes[n] + ins.end - ins.at
            new_target = landing[target]
            arg = (new_target - new_end) // 2 if ins.op in _FORWARD else (new_end - new_target) // 2
            if _prefixes(arg) > prefixes[n]:
                prefixes[n] = _prefixes(arg)
                grown = True
            args[n] = arg
        if not grown:
            break
    out = bytearray()
    units: list[int] = []  # the old code unit each new one takes its position from
    for n, ins in enumerate(listing):
        call = calls.get(ins.start)
        if call is not None:
            out += call
            units.extend([ins.start // 2] * (len(call) // 2))
        if n in args:
            out += _with_prefixes(ins.op, args[n], prefixes[n])
            out += raw[ins.at + 2 : ins.end]
            units.extend([ins.at // 2] * prefixes[n])
            units.extend(range(ins.at // 2, ins.end // 2))
        else:
            out += raw[ins.start : ins.end]
            units.extend(range(ins.start // 2, ins.end // 2))
    old = list(code.co_positions())
    return code.replace(
        co_code=bytes(out),
        co_consts=tuple(consts),
        co_stacksize=code.co_stacksize + 3,  # NULL, hook, args
        co_exceptiontable=_exception_table(code, landing),
        co_linetable=_line_table(code.co_firstlineno, [old[u] for u in units]),
    )


def _layout(
    listing: list[_Ins], calls: dict[int, bytes], prefixes: list[int]
) -> tuple[dict[int, int], list[int]]:
    """Where each old instruction start lands (on the call written before it, if any: a jump
    and a handler's range land there), the end of the code included; and where each
    instruction itself (its prefixes) now starts."""
    landing: dict[int, int] = {}
    starts: list[int] = []
    at = 0
    for n, ins in enumerate(listing):
        landing[ins.start] = at
        call = calls.get(ins.start)
        if call is not None:
            at += len(call)
        starts.append(at)
        at += 2 * prefixes[n] + ins.end - ins.at
    if listing:
        landing[listing[-1].end] = at
    return landing, starts


Position = tuple[int | None, int | None, int | None, int | None]


def _exception_table(code: CodeType, landing: dict[int, int]) -> bytes:
    """The table again, each range and handler at its new offsets (a call written before a
    range's first instruction is in the range, as that instruction is)."""
    out = bytearray()
    parse = dis._parse_exception_table  # type: ignore[attr-defined]
    for entry in parse(code):
        start, end, target = landing[entry.start], landing[entry.end], landing[entry.target]
        depth_lasti = entry.depth << 1 | int(entry.lasti)
        for n, value in enumerate((start // 2, (end - start) // 2, target // 2, depth_lasti)):
            out += _exception_varint(value, first=n == 0)
    return bytes(out)


def _exception_varint(value: int, first: bool) -> bytes:
    """6-bit groups, most significant first; 0x40 on all but the last; 0x80 on an entry's
    first byte (Objects/exception_handling_notes.txt)."""
    groups = [value & 63]
    value >>= 6
    while value:
        groups.append(value & 63)
        value >>= 6
    groups.reverse()
    out = bytearray(g | 0x40 for g in groups[:-1])
    out.append(groups[-1])
    if first:
        out[0] |= 0x80
    return bytes(out)


def _line_table(first_line: int, positions: list[Position]) -> bytes:
    """3.11's location table (Objects/locations.md) for one position per code unit: runs of
    equal positions, up to 8 units an entry, in the long form (14), the line-only form (13)
    or the no-location form (15)."""
    out = bytearray()
    line = first_line
    for position, length in _runs(positions):
        start, end_line, col, end_col = position
        if start is None:
            out.append(0x80 | 15 << 3 | (length - 1))
            continue
        if col is None or end_col is None or end_line is None:
            out.append(0x80 | 13 << 3 | (length - 1))
            out += _svarint(start - line)
        else:
            out.append(0x80 | 14 << 3 | (length - 1))
            out += _svarint(start - line)
            out += _varint(end_line - start)
            out += _varint(col + 1)
            out += _varint(end_col + 1)
        line = start
    return bytes(out)


def _runs(positions: list[Position]) -> Iterator[tuple[Position, int]]:
    """Runs of equal positions, at most 8 units each (an entry's longest)."""
    for position, group in itertools.groupby(positions):
        length = sum(1 for _ in group)
        while length > 8:
            yield position, 8
            length -= 8
        yield position, length


def _varint(value: int) -> bytes:
    if value < len(_VARINTS):
        return _VARINTS[value]
    return _slow_varint(value)


def _slow_varint(value: int) -> bytes:
    """6-bit groups, least significant first; 0x40 on all but the last."""
    out = bytearray()
    while value >= 64:
        out.append(0x40 | (value & 63))
        value >>= 6
    out.append(value)
    return bytes(out)


_VARINTS = [_slow_varint(value) for value in range(4096)]


def _svarint(value: int) -> bytes:
    return _varint((-value) << 1 | 1 if value < 0 else value << 1)


def prepare(functions: list[types.FunctionType], hook: Hook) -> None:
    """Rewrite the functions' code now (cached), ahead of the runs that swap it in."""
    for function in functions:
        if id(function.__code__) not in _REWRITTEN:
            rewritten(function.__code__, hook)


# One function's swap: the function, the code it has, the rewritten code it gets.
_Change = tuple[types.FunctionType, CodeType, CodeType]
# The last plan (``_plan``), with the lists it was made from: every run of an exploration
# swaps the same functions (the modules' list is learner_functions' cached one).
_PLAN: list[tuple[tuple[list[types.FunctionType], ...], list[_Change] | None]] = []


def _plan(groups: tuple[list[types.FunctionType], ...], hook: Hook) -> list[_Change] | None:
    """Each function's change, once each, or None if one cannot be rewritten; the last
    answer while ``groups`` are the same lists and their functions still hold the code it
    saw."""
    if _PLAN:
        last_groups, last = _PLAN[0]
        same = len(last_groups) == len(groups) and all(map(operator.is_, last_groups, groups))
        if same and (last is None or all(f.__code__ is code for f, code, _new in last)):
            return last
    found: list[_Change] = []
    changes: list[_Change] | None = found
    seen: set[int] = set()
    for function in itertools.chain(*groups):
        code = function.__code__
        if id(function) in seen or id(code) in _REWRITTEN:
            continue  # made by rewritten code in an earlier run: it calls the hook already
        seen.add(id(function))
        new = rewritten(code, hook)
        if new is None:
            changes = None
            break
        found.append((function, code, new))
    _PLAN[:] = [(groups, changes)]
    return changes


def plan(groups: tuple[list[types.FunctionType], ...], hook: Hook) -> None:
    """Work out now, before an exploration's first run, what its runs will swap."""
    _plan(groups, hook)


class Swap:
    """For one run: every learner function's code swapped for its rewritten copy, and put
    back after. ``ready`` is False (and nothing is swapped) if one cannot be rewritten."""

    def __init__(self, groups: tuple[list[types.FunctionType], ...], hook: Hook) -> None:
        self._saved: list[_Change] = []
        changes = _plan(groups, hook)
        self.ready = changes is not None
        if changes is not None:
            for change in changes:
                change[0].__code__ = change[2]
            self._saved = changes

    def restore(self) -> None:
        saved, self._saved = self._saved, []
        for function, code, _new in reversed(saved):
            function.__code__ = code


# The last answer, with the modules and what they held then (as tracing.learner_codes_again):
# every schedule of an exploration asks again for the same modules.
_LAST: list[tuple[list[types.ModuleType], list[object], list[types.FunctionType]]] = []


def learner_functions(modules: list[types.ModuleType]) -> list[types.FunctionType]:
    """``_functions``, from the last answer while the modules and the values they hold are
    the same objects (a name rebound walks them again)."""
    held = [v for mod in modules for v in vars(mod).values()]
    if _LAST:
        last_modules, last_held, functions = _LAST[0]
        if (
            len(last_modules) == len(modules)
            and all(map(operator.is_, last_modules, modules))
            and len(last_held) == len(held)
            and all(map(operator.is_, last_held, held))
        ):
            return functions
    functions = _functions(modules)
    _LAST[:] = [(list(modules), held, functions)]
    return functions


def _functions(modules: list[types.ModuleType]) -> list[types.FunctionType]:
    """The function objects of the learner's modules (``reachable`` from what they hold)."""
    files = module_files(modules)
    return reachable_functions([v for m in modules for v in vars(m).values()], files, modules)
