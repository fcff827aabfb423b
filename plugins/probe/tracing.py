"""Opcode-level switch points inside the learner's modules.

Line-level switching never splits ``self.v += 1`` (research §5: 0/300); switching before
instructions that touch shared state does. Two hooks deliver the same points:
``sys.monitoring`` INSTRUCTION events set locally on the learner's code objects (3.12+;
uninteresting instructions are DISABLEd after their first hit, and 3.12.1 crashes with
opcode-level ``settrace`` in threads), and per-worker ``sys.settrace`` with
``f_trace_opcodes`` (3.11, or ``PROBE_TRACER=settrace``). Other code is never traced.
"""

from __future__ import annotations

import bisect
import builtins
import contextlib
import dis
import functools
import linecache
import os
import re
import sys
import types
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any, ParamSpec, TypeVar

from .rebinding import drop_fixed_reads

TraceFn = Callable[[FrameType, str, Any], Any]
P = ParamSpec("P")
R = TypeVar("R")

_SKIP = frozenset({"PRECALL", "KW_NAMES", "CALL_INTRINSIC_1", "CALL_INTRINSIC_2"})
_MARKS = (
    "ATTR",  # LOAD_ATTR / STORE_ATTR / LOAD_METHOD ... : object fields
    "SUBSCR",  # container items
    "SLICE",
    "GLOBAL",
    "DEREF",  # closures shared between workers
    "LOAD_NAME",
    "STORE_NAME",
    "CALL",  # any call may reach shared state or a sync primitive
    "BINARY_OP",  # 3.11+: += on a shared mutable object
    "INPLACE",
    "METHOD",
    "SUPER",
)


def _interesting(name: str) -> bool:
    return name not in _SKIP and any(mark in name for mark in _MARKS)


INTERESTING_OPCODES = frozenset(op for name, op in dis.opmap.items() if _interesting(name))

# Analysis cache keyed by code object: immutable facts, not run state.
_POINTS: dict[CodeType, dict[int, str]] = {}
# Offset of a switch point -> how many switch points it stands for (``weights_of``); a code
# object that dropped no read of a fixed name has none.
_WEIGHTS: dict[CodeType, dict[int, int]] = {}
_NO_WEIGHTS: dict[int, int] = {}


def _named(argrepr: str) -> str:
    """The name an instruction is about: dis marks the NULL a call needs beside it, before
    (3.11, 3.12: "NULL + len", "NULL|self + append") or after (3.13: "len + NULL")."""
    words = [w for w in argrepr.split(" ") if w and w != "+" and not w.startswith("NULL")]
    return words[0] if words else argrepr


def describe(ins: dis.Instruction) -> str:
    """What the instruction is about to do, in words (shown where a worker was preempted)."""
    return _describe(ins.opname, ins.argrepr)


def _describe(name: str, arg: str) -> str:
    if "ATTR" in name or "METHOD" in name or "SUPER" in name:
        attr = _named(arg)
        return f"writes .{attr}" if name.startswith(("STORE", "DELETE")) else f"reads .{attr}"
    if "SUBSCR" in name or "SLICE" in name:
        return "writes an item" if name.startswith(("STORE", "DELETE")) else "reads an item"
    if "GLOBAL" in name or "DEREF" in name or "NAME" in name:
        var = _named(arg)
        return f"writes {var}" if name.startswith(("STORE", "DELETE")) else f"reads {var}"
    if "CALL" in name:
        return "makes a call"
    return f"computes {arg}".strip()


# A loop's back edge is watched, never a switch point: a loop with no switch point in it (a
# `while True: pass`, a spin on a local variable) can only end by itself, since no other worker
# runs meanwhile, so the scheduler checks there how long it has spun.
BACK_EDGE = "loops back"
# JUMP_BACKWARD, and on 3.11 also POP_JUMP_BACKWARD_IF_* (a `while` test at the loop's end).
BACK_EDGE_OPCODES = frozenset(
    op for name, op in dis.opmap.items() if "BACKWARD" in name and "NO_INTERRUPT" not in name
)


def switch_points(code: CodeType) -> dict[int, str]:
    """Byte offset (as in ``frame.f_lasti``) -> description, for instructions worth a switch,
    and BACK_EDGE for a loop's jump back to its start."""
    found = _POINTS.get(code)
    if found is None:
        found = _scanned(code)
        if found is None:
            found = described(code)
        _POINTS[code] = found
    return found


def described(code: CodeType) -> dict[int, str]:
    """``switch_points`` the slow way, each instruction as ``dis`` describes it."""
    return _without_invisible(
        code,
        {
            ins.offset: describe(ins) if ins.opcode in INTERESTING_OPCODES else BACK_EDGE
            for ins in dis.get_instructions(code)
            if ins.opcode in INTERESTING_OPCODES or ins.opcode in BACK_EDGE_OPCODES
        },
    )


def _without_invisible(code: CodeType, points: dict[int, str]) -> dict[int, str]:
    """Drop the switch points before instructions no other worker can tell apart from the
    step before them: a switch there gives the same states as one a step later, and cost a
    hand-off and a decision each (a third of barriers' steps).

    - Reading a builtin's name (``len``, ``range``, ``Exception``): nothing in a run rebinds
      it, unless this very function declares it ``global`` and stores it.
    - Arithmetic of a local and a number constant (``i - 1``, ``(party + 1)``, ``n // 2``):
      it makes a new number from values no worker shares. Not ``*``, ``%`` or ``@`` (they
      repeat a list or format a string: reads of its items), and not in-place operators.

    The rare cost: a builtin rebound as a global from another function of the module, or
    NumPy-like arrays in a local (``a + 1`` reads the array), get no switch point there."""
    raw = code.co_code
    names = code.co_names
    stores = _offsets(raw, _STORE_TABLE)
    # Without EXTENDED_ARG: more than 255 names is another module's problem, kept whole.
    if any(o and raw[o - 2] == _EXTENDED_ARG for o in stores):
        stored = set(names)
    else:
        stored = {names[raw[o + 1]] for o in stores}
    for offset in _offsets(raw, _MAYBE_INVISIBLE_TABLE):
        if offset not in points:
            continue
        op = raw[offset]
        if op == _LOAD_GLOBAL:
            arg = raw[offset + 1] | (
                raw[offset - 1] << 8 if offset and raw[offset - 2] == _EXTENDED_ARG else 0
            )
            name = names[arg >> 1]
            if name in _BUILTIN_NAMES and name not in stored:
                del points[offset]
        elif (
            op == _BINARY_OP
            and offset >= 4
            and raw[offset + 1] in _NUMBER_OPS
            and raw[offset - 2] == _LOAD_CONST
            and raw[offset - 4] in _LOAD_LOCAL
            and type(code.co_consts[raw[offset - 1]]) in (int, float)
        ):
            del points[offset]
    dropped = drop_fixed_reads(code, points, _BUILTIN_NAMES, BACK_EDGE)
    if dropped:
        _WEIGHTS[code] = _weights(points, dropped)
    return points


def weights_of(code: CodeType) -> dict[int, int]:
    """Offset -> the number of switch points that the switch point there stands for, where
    that is more than one (``.get(offset, 1)``): itself and the reads of fixed names
    (``rebinding``) dropped since the switch point before it, in the code's layout.

    A random walk preempts at a switch point standing for k with the chance it had to
    preempt somewhere in those k before they were dropped. A preemption just before such a
    read gives the same states as one at the next switch point, so the drop loses no
    interleaving; but with every read a chance of its own, a stretch of reads was where a
    random walk most often preempted. Without the weights, a livelock that needs seven
    preemptions, each between two lock takes that only reads separate, was found at 8 of 12
    seeds instead of 12 (tests/probe/samples/lockstep.py)."""
    switch_points(code)
    return _WEIGHTS.get(code, _NO_WEIGHTS)


def _weights(points: dict[int, str], dropped: list[int]) -> dict[int, int]:
    steps = sorted(o for o, what in points.items() if what is not BACK_EDGE)
    weights: dict[int, int] = {}
    for offset in dropped:
        at = bisect.bisect_right(steps, offset)
        if at < len(steps):  # past the last switch point: the function returns first
            weights[steps[at]] = weights.get(steps[at], 1) + 1
    return weights


# ``dis`` builds a full Instruction (argument, positions, jump labels) for every instruction:
# about 0.1 ms a function, paid by the first schedule that enters it, which is most of a
# one-schedule probe's cost. ``_scanned`` reads the raw bytecode and names only the switch
# points, from these tables; an instruction they do not know sends the function back to dis.
# Both agreed on all 36-40k functions of the standard library on 3.11, 3.12 and 3.13;
# tests/probe/test_probe_speed.py checks the references, the samples and threading/queue.
_OP = dis.opmap
_EXTENDED_ARG = _OP["EXTENDED_ARG"]
_BINARY_OP = _OP.get("BINARY_OP", -1)
_NB_OPS: list[tuple[str, str]] = getattr(dis, "_nb_ops", [])
_CELL_OPS = (
    "LOAD_DEREF",
    "STORE_DEREF",
    "DELETE_DEREF",
    "LOAD_CLASSDEREF",
    "LOAD_FROM_DICT_OR_DEREF",
)
_CELLS = frozenset(_OP[n] for n in _CELL_OPS if n in _OP)


def _name_shift(name: str) -> int:
    """co_names index = oparg >> shift: the low bits flag a NULL, a method or a super call."""
    if name == "LOAD_GLOBAL" or (name == "LOAD_ATTR" and sys.version_info >= (3, 12)):
        return 1
    return 2 if name == "LOAD_SUPER_ATTR" else 0


_NAMED_OPS = (
    *("LOAD_ATTR", "STORE_ATTR", "DELETE_ATTR", "LOAD_METHOD", "LOAD_SUPER_ATTR"),
    *("LOAD_GLOBAL", "STORE_GLOBAL", "DELETE_GLOBAL", "LOAD_NAME", "STORE_NAME"),
)
# opcode -> (what describe() puts before the name, shift); then the cells, then the rest.
_NAMED = {_OP[n]: (_describe(n, ""), _name_shift(n)) for n in _NAMED_OPS if n in _OP}
_CELL_PREFIX = {op: _describe(dis.opname[op], "") for op in _CELLS}
_FIXED = {  # descriptions that never depend on the argument: calls, items
    op: text
    for name, op in _OP.items()
    if op in INTERESTING_OPCODES and op not in _NAMED and op not in _CELLS and op != _BINARY_OP
    for text in [_describe(name, "")]
    if text in ("makes a call", "reads an item", "writes an item")
}


_LOAD_GLOBAL = _OP["LOAD_GLOBAL"]
_LOAD_CONST = _OP["LOAD_CONST"]
_LOAD_LOCAL = frozenset(
    _OP[n] for n in ("LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_LOAD_FAST") if n in _OP
)  # 3.13 loads two locals at once: the second is the left operand
_STORE_GLOBALS = frozenset({_OP["STORE_GLOBAL"], _OP["DELETE_GLOBAL"]})
_BUILTIN_NAMES = frozenset(vars(builtins))
# BINARY_OP's arguments that make a new number from two numbers and never read a container's
# items (``*`` repeats a list, ``%`` formats a string, ``@`` is for arrays).
_NUMBER_OPS = frozenset(
    i
    for i, (_, symbol) in enumerate(_NB_OPS)
    if symbol in {"+", "-", "//", "/", "<<", ">>", "&", "|", "^", "**"}
)


# One byte per opcode, for ``bytes.translate``: nonzero for the instructions a scan looks at,
# so that a regular expression skips the others at C speed (a Python loop over every
# instruction was most of a first schedule's analysis: 0.2 ms for barriers' five functions).
_POINT_TABLE = bytes(
    1 if op in INTERESTING_OPCODES or op in BACK_EDGE_OPCODES else 0 for op in range(256)
)
_STORE_TABLE = bytes(1 if op in _STORE_GLOBALS else 0 for op in range(256))
_MAYBE_INVISIBLE_TABLE = bytes(1 if op in (_LOAD_GLOBAL, _BINARY_OP) else 0 for op in range(256))
_NONZERO = re.compile(b"[^\x00]")


def _offsets(raw: bytes, table: bytes) -> list[int]:
    """Offsets of the instructions whose opcode ``table`` marks."""
    return [2 * hit.start() for hit in _NONZERO.finditer(raw[::2].translate(table))]


def _argument(raw: bytes, offset: int) -> int:
    """The full argument of the instruction at ``offset``, EXTENDED_ARG prefixes included."""
    arg = raw[offset + 1]
    shift = 8
    offset -= 2
    while offset >= 0 and raw[offset] == _EXTENDED_ARG:
        arg |= raw[offset + 1] << shift
        shift += 8
        offset -= 2
    return arg


def _scanned(code: CodeType) -> dict[int, str] | None:
    """``switch_points`` from the raw bytecode; None where an instruction needs ``dis``."""
    raw = code.co_code
    names = code.co_names
    found: dict[int, str] = {}
    for offset in _offsets(raw, _POINT_TABLE):
        op = raw[offset]
        if op in INTERESTING_OPCODES:
            arg = _argument(raw, offset)
            text = _FIXED.get(op)
            if text is None:
                named = _NAMED.get(op)
                if named is not None:
                    text = named[0] + names[arg >> named[1]]
                elif op in _CELLS:
                    text = _CELL_PREFIX[op] + code._varname_from_oparg(arg)  # type: ignore[attr-defined]
                elif op == _BINARY_OP and arg < len(_NB_OPS):
                    text = f"computes {_NB_OPS[arg][1]}"
                else:
                    return None
            found[offset] = text
        else:
            found[offset] = BACK_EDGE
    return _without_invisible(code, found)


def loop_line(code: CodeType, back_edge: int) -> int:
    """The line a loop starts at (its `while`/`for`), from the offset of its back edge."""
    head = next(
        (int(i.argval) for i in dis.get_instructions(code) if i.offset == back_edge), back_edge
    )  # where the loop starts over: only a busy loop's report asks
    line = line_of(code, head)
    # `while True:` compiles to no instruction of its own: the jump goes to the body's first
    # line. Show the `while`/`for` above it, as the learner wrote it.
    body = linecache.getline(code.co_filename, line)
    indent = len(body) - len(body.lstrip())
    for above in range(line - 1, max(code.co_firstlineno, line - 4) - 1, -1):
        text = linecache.getline(code.co_filename, above)
        stripped = text.lstrip()
        if stripped and len(text) - len(stripped) < indent:
            return above if stripped.startswith(("while ", "for ", "async for ")) else line
    return line


def use_monitoring() -> bool:
    return sys.version_info >= (3, 12) and os.environ.get("PROBE_TRACER") != "settrace"


def line_of(code: CodeType, offset: int) -> int:
    return _lines(code).get(offset, code.co_firstlineno)


def _lines(code: CodeType) -> dict[int, int]:
    """Offset -> line of every instruction; one with no line of its own (None) has the line
    of the instruction before it, as in a traceback."""
    lines = _LINES.get(code)
    if lines is None:
        lines = {}
        current = code.co_firstlineno
        for start, end, lineno in code.co_lines():
            if lineno is not None:
                current = lineno
            for offset in range(start, end, 2):
                lines[offset] = current
        _LINES[code] = lines
    return lines


def sites_of(code: CodeType) -> dict[int, tuple[str, int]]:
    """Offset -> (file, line) of each switch point of ``code``: made once, so that a switch
    point costs the scheduler no line lookup and no new tuple."""
    sites = _SITES.get(code)
    if sites is None:
        sites = _SITES[code] = _sites(code, sorted(switch_points(code)))
    return sites


def _sites(code: CodeType, offsets: list[int]) -> dict[int, tuple[str, int]]:
    """``line_of`` for the sorted ``offsets`` alone, in one walk of the line table (the
    table of every instruction's line costs a first schedule more than the switch points)."""
    file, first = code.co_filename, code.co_firstlineno
    sites: dict[int, tuple[str, int]] = {}
    pending = iter(offsets)
    offset = next(pending, None)
    current = first
    for start, end, lineno in code.co_lines():
        if lineno is not None:
            current = lineno
        while offset is not None and offset < end:
            sites[offset] = (file, current if offset >= start else first)
            offset = next(pending, None)
        if offset is None:
            break
    while offset is not None:
        sites[offset] = (file, first)
        offset = next(pending, None)
    return sites


_SITES: dict[CodeType, dict[int, tuple[str, int]]] = {}
_LINES: dict[CodeType, dict[int, int]] = {}


def module_files(modules: list[types.ModuleType]) -> frozenset[str]:
    """The modules' source files, as given and made absolute and real."""
    paths = [str(m.__file__) for m in modules if getattr(m, "__file__", None)]
    return frozenset(f for p in paths for f in (p, os.path.abspath(p), os.path.realpath(p)))


def learner_codes(modules: list[types.ModuleType]) -> list[CodeType]:
    """Every code object of the modules' files reachable from what they hold: the functions'
    (``reachable_functions``) and the code nested in theirs (lambdas, comprehensions, inner
    functions)."""
    files = module_files(modules)
    roots = [v for m in modules for v in vars(m).values()]
    found: dict[int, CodeType] = {}
    todo: list[CodeType] = [v for v in roots if isinstance(v, CodeType)]
    todo.extend(f.__code__ for f in reachable_functions(roots, files, modules))
    while todo:
        code = todo.pop()
        if id(code) not in found:
            found[id(code)] = code
            todo.extend(c for c in code.co_consts if isinstance(c, CodeType))
    return [c for c in found.values() if c.co_filename in files]


def reachable_functions(
    roots: list[object], files: frozenset[str], modules: list[types.ModuleType]
) -> list[types.FunctionType]:
    """The functions of ``files`` reachable from ``roots``: through functions' closures and
    ``__wrapped__`` (a decorated function), bound methods, partials, static and class methods,
    properties, the classes the ``modules`` define, and lists, tuples, sets and dicts.

    A function made while a rewritten one runs comes from rewritten code already. Not
    reached: one made before the run and kept only in an object's attribute; it runs with no
    switch point in a sampled run (settrace, ``PROBE_TRACER=settrace``, has none missing)."""
    found: dict[int, types.FunctionType] = {}
    todo = list(roots)
    seen: set[int] = set()
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.FunctionType):
            if obj.__code__.co_filename in files:
                found[id(obj)] = obj
            todo.append(getattr(obj, "__wrapped__", None))
            for cell in obj.__closure__ or ():
                with contextlib.suppress(ValueError):  # an empty cell
                    todo.append(cell.cell_contents)
        elif isinstance(obj, types.MethodType):
            todo.append(obj.__func__)
        elif isinstance(obj, functools.partial):
            todo.extend((obj.func, *obj.args, *obj.keywords.values()))
        elif isinstance(obj, (staticmethod, classmethod)):
            todo.append(obj.__func__)
        elif isinstance(obj, property):
            todo.extend((obj.fget, obj.fset, obj.fdel))
        elif isinstance(obj, type):
            if any(obj.__module__ == m.__name__ for m in modules):
                todo.extend(vars(obj).values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            todo.extend(obj)
        elif isinstance(obj, dict):
            todo.extend(obj.values())
        elif callable(obj) and type(obj).__module__ == "functools":
            todo.append(getattr(obj, "__wrapped__", None))  # an lru_cache'd function
    return list(found.values())


# The last modules' code objects, and what their modules held when they were found: every
# schedule of an exploration asks again for the same modules, and the walk cost 23-48 us of
# a schedule's 70-110 on 3.13. Only the last answer is kept: one exploration's modules at most
# stay alive past their test, until the next exploration asks.
_LAST_CODES: list[tuple[list[types.ModuleType], list[object], list[CodeType]]] = []


_CODE_HOLDERS = (
    list,
    tuple,
    dict,
    set,
    frozenset,
    functools.partial,
    types.FunctionType,
    types.MethodType,
    staticmethod,
    classmethod,
    property,
    type,
    CodeType,
)


def learner_codes_again(modules: list[types.ModuleType]) -> list[CodeType]:
    """``learner_codes``, from the last answer while the modules and the functions and classes
    they hold are the same objects (a name rebound to another function walks them again; a
    method replaced inside a class is not seen)."""
    held: list[object] = [
        v for mod in modules for v in vars(mod).values() if isinstance(v, _CODE_HOLDERS)
    ]
    if _LAST_CODES:
        last_modules, last_held, codes = _LAST_CODES[0]
        if (
            len(last_modules) == len(modules)
            and all(a is b for a, b in zip(last_modules, modules, strict=True))
            and len(last_held) == len(held)
            and all(a is b for a, b in zip(last_held, held, strict=True))
        ):
            return codes
    codes = learner_codes(modules)
    _LAST_CODES[:] = [(list(modules), held, codes)]
    return codes


class Monitor:
    """sys.monitoring INSTRUCTION hook on the learner's code objects, for one run."""

    TOOL = 4  # 0-2 and 5 are reserved for debuggers, coverage, profilers, optimizers

    def __init__(
        self,
        modules: list[types.ModuleType],
        on_point: Callable[[CodeType, int, str, tuple[str, int], int], None],
    ) -> None:
        self._codes = learner_codes_again(modules)
        self._on_point = on_point
        # By id: hashing a code object hashes its bytecode and constants, at every event
        # (``_codes`` keeps them alive meanwhile).
        self._points = {
            id(code): (switch_points(code), sites_of(code), weights_of(code))
            for code in self._codes
        }

    def __enter__(self) -> Monitor:
        mon: Any = sys.monitoring  # type: ignore[attr-defined,unused-ignore]  # 3.12+
        owner = mon.get_tool(self.TOOL)
        if owner is None:
            mon.use_tool_id(self.TOOL, "plugins.probe")
        elif owner != "plugins.probe":
            raise RuntimeError(f"sys.monitoring tool id {self.TOOL} is taken by {owner}")
        points = self._points
        on_point = self._on_point
        disable = mon.DISABLE

        def callback(code: CodeType, offset: int) -> object:
            known = points.get(id(code))
            what = known[0].get(offset) if known is not None else None
            if what is None:
                return disable  # never interesting: switch this location off for good
            on_point(code, offset, what, known[1][offset], known[2].get(offset, 1))  # type: ignore[index]
            return None

        mon.register_callback(self.TOOL, mon.events.INSTRUCTION, callback)
        for code in self._codes:
            mon.set_local_events(self.TOOL, code, mon.events.INSTRUCTION)
        return self

    def __exit__(self, *exc: object) -> None:
        mon: Any = sys.monitoring  # type: ignore[attr-defined,unused-ignore]  # 3.12+
        for code in self._codes:
            mon.set_local_events(self.TOOL, code, 0)
        mon.register_callback(self.TOOL, mon.events.INSTRUCTION, None)
        mon.free_tool_id(self.TOOL)


def untraced(method: Callable[P, R]) -> Callable[P, R]:
    """Run ``method`` with this thread's settrace hook off (3.11); unchanged on 3.12+.

    The hook is called for every frame a worker enters, the harness's own included, only to
    learn that it is not the learner's: in a primitive that is most of a switch point's cost
    (the scheduler's frames, the frame walk to the learner's line). Only for methods that never
    call the learner's code (no callback, predicate or learner object): a frame of the
    learner's run with the hook off would lose its switch points."""
    return _hook_off(method, None)


def untraced_if(harmless: Callable[[Any], bool]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """``untraced`` for a method whose object says whether it may reach the learner's code:
    ``harmless(self)`` true (a Condition over the harness's own lock, a plain ``queue.Queue``)
    runs it with the hook off; otherwise it runs traced, as the learner's code must."""
    return lambda method: _hook_off(method, harmless)


def _hook_off(method: Callable[P, R], harmless: Callable[[Any], bool] | None) -> Callable[P, R]:
    if sys.version_info >= (3, 12):
        return method  # sys.monitoring never sees the harness; settrace there is slow to toggle
    gettrace, settrace = sys.gettrace, sys.settrace

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        hook = gettrace()
        if hook is None:
            return method(*args, **kwargs)
        settrace(None)  # first: the check is a frame of its own
        if harmless is not None and not harmless(args[0]):
            settrace(hook)
            return method(*args, **kwargs)
        try:
            return method(*args, **kwargs)
        finally:
            settrace(hook)

    _WRAPPER[0] = call.__code__  # one code object for every wrapper made here
    return functools.wraps(method)(call)


# The wrappers' code object (None on 3.12+): told apart by identity, since hashing a code
# object hashes its bytecode and constants (a tenth of a pipeline's schedule went there).
_WRAPPER: list[CodeType | None] = [None]


def wrapper_code() -> CodeType | None:
    """The code object of every ``untraced`` wrapper (None on 3.12+, which makes none)."""
    return _WRAPPER[0]


def past_wrappers(frame: FrameType) -> FrameType:
    """``frame``, or the first frame above it that is not an ``untraced`` wrapper's: the caller
    of a wrapped method, whichever Python version (3.12+ has no wrapper)."""
    wrapper = _WRAPPER[0]
    while frame.f_code is wrapper and frame.f_back is not None:
        frame = frame.f_back
    return frame


def make_tracer(
    learner_files: frozenset[str],
    on_point: Callable[[FrameType, str, tuple[str, int], int], None],
) -> TraceFn:
    """Global trace function for one worker thread; ``on_point(frame, what, (file, line),
    weight)`` (``weights_of``)."""

    def local_for(code: CodeType) -> TraceFn:
        points = switch_points(code)
        sites = sites_of(code)
        weights = weights_of(code)

        def local(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "opcode":
                offset = frame.f_lasti
                what = points.get(offset)
                if what is not None:
                    on_point(frame, what, sites[offset], weights.get(offset, 1))
            # Itself, read from the frame: a closure that named itself would be a reference
            # cycle holding the run (``on_point``) until the garbage collector came by.
            return frame.f_trace

        return local

    # One local hook per code object, not per call; by id (a code object's hash reads its
    # bytecode), with the code kept so that its id is never another's.
    by_code: dict[int, TraceFn] = {}
    kept: list[CodeType] = []

    def global_trace(frame: FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        if code.co_filename not in learner_files:
            return None
        local = by_code.get(id(code))
        if local is None:
            kept.append(code)
            local = by_code[id(code)] = local_for(code)
        # 3.12+ only enables opcode events when f_trace is already set (frame_settrace_opcodes).
        frame.f_trace = local
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return local

    return global_trace
