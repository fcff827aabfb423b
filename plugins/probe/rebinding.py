"""Which names no code rebinds while a run goes on: reading one needs no switch point.

A switch point before ``self.lock``, ``q.put``, ``threading`` or ``STOP`` gives the same states
as one a step later when nothing can bind that name to another object while the workers run:
the read then commutes with every other worker's step. Such reads were a third to a half of
the steps of the queue, barrier and primitive katas (``lock.acquire`` is two reads and a call;
only the call can meet another worker). Here, for one learner file:

- an attribute is never rebound if no function of the file stores or deletes it, except an
  ``__init__`` storing it onto ``self`` (a new object no one else can see yet), and neither the
  harness's primitives nor ``threading``/``queue`` store it after their own ``__init__``, and
  it is no property of theirs (a property's getter reads state that changes);
- a global, if no function of the file declares it ``global`` and stores or deletes it (module
  code runs at import, before any run);
- a closure's variable, if no function of the file stores or deletes it (it is an argument,
  bound once when the function is called).

What a file's switch points are depends on that file and the harness alone, never on what
else a process imported: a replay numbers the decisions as the run that it replays did.
Where reads were dropped, the switch point after them stands for them in a random walk
(``tracing.weights_of``).

A file that rebinds by other means (``setattr``, ``__dict__``, ``vars``, ``globals``,
``exec``, a call of ``__init__`` outside an ``__init__``) keeps every such switch point, as
does a file whose source cannot be read.

The rare cost: a test's own code that, while the workers run, rebinds an attribute the
learner's code reads (a test's code is not scanned), or an object shared before its
``__init__`` returns, is not preempted between two of its reads that nothing else separates.
"""

from __future__ import annotations

import dis
import functools
import importlib
import inspect
import linecache
import pkgutil
import queue
import re
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass
from types import CodeType, ModuleType

_OP = dis.opmap
_ATTR_STORES = frozenset(_OP[n] for n in ("STORE_ATTR", "DELETE_ATTR"))
_GLOBAL_STORES = frozenset(_OP[n] for n in ("STORE_GLOBAL", "DELETE_GLOBAL"))
_CELL_STORES = frozenset(_OP[n] for n in ("STORE_DEREF", "DELETE_DEREF"))
# Names whose use rebinds attributes or globals in ways no store instruction shows.
_DYNAMIC = frozenset(
    {"setattr", "delattr", "vars", "globals", "exec", "eval", "__dict__", "__setattr__"}
    | {"__delattr__"}
)


@dataclass(frozen=True)
class Rebound:
    """What a file's code may rebind while a run goes on (every other such name is fixed)."""

    attributes: frozenset[str]
    globals: frozenset[str]
    cells: frozenset[str]


def _codes(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _codes(const)


def _stores(codes: list[CodeType]) -> tuple[set[str], set[str], set[str], bool]:
    """Attributes stored outside ``__init__``, globals and cells stored anywhere, and whether
    the code rebinds by other means (names ``setattr``, ``__dict__``, ..., or a function
    other than ``__init__`` names ``__init__``). Read from the raw bytecode: ``dis`` took
    0.4 s for the modules a test session imports."""
    attributes: set[str] = set()
    globals_: set[str] = set()
    cells: set[str] = set()
    dynamic = False
    for code in codes:
        names = code.co_names
        function = bool(code.co_flags & inspect.CO_OPTIMIZED)  # not a module or class body
        in_init = code.co_name == "__init__"
        if not _DYNAMIC.isdisjoint(names) or (function and not in_init and "__init__" in names):
            dynamic = True
        raw = code.co_code
        for hit in _STORE.finditer(raw[::2].translate(_STORE_TABLE)):
            offset = 2 * hit.start()
            op, arg = raw[offset], _argument(raw, offset)
            if op in _ATTR_STORES:
                if not (in_init and _onto_self(raw, offset)):
                    attributes.add(names[arg])
            elif op in _GLOBAL_STORES:
                globals_.add(names[arg])
            else:
                cells.add(code._varname_from_oparg(arg))  # type: ignore[attr-defined]
    return attributes, globals_, cells, dynamic


def _onto_self(raw: bytes, offset: int) -> bool:
    """Whether the attribute store at ``offset`` goes onto the first argument (``self.x = …``):
    an ``__init__`` that stores onto another object (``registry.current = self``) changes an
    object others may already read."""
    if offset < 2:
        return False
    op, arg = raw[offset - 2], raw[offset - 1]
    if offset >= 4 and raw[offset - 4] == _EXTENDED_ARG:
        return False
    if op == _LOAD_FAST:
        return arg == 0
    return op == _LOAD_FAST_LOAD_FAST and arg & 0xF == 0  # 3.13: the second one is on top


_LOAD_FAST = _OP["LOAD_FAST"]
_LOAD_FAST_LOAD_FAST = _OP.get("LOAD_FAST_LOAD_FAST", -1)
_STORE_TABLE = bytes(
    1 if op in _ATTR_STORES | _GLOBAL_STORES | _CELL_STORES else 0 for op in range(256)
)
_STORE = re.compile(b"[^\x00]")


def _module_codes(module: ModuleType) -> list[CodeType]:
    """Every function's code in a module already imported (its classes' methods included)."""
    found: list[CodeType] = []
    for value in vars(module).values():
        members = vars(value).values() if isinstance(value, type) else [value]
        for member in members:
            function = member.fget if isinstance(member, property) else member
            function = getattr(function, "__func__", function)  # static and class methods
            if isinstance(function, types.FunctionType) and function.__module__ == module.__name__:
                found.extend(_codes(function.__code__))
    return found


def _properties(module: ModuleType) -> set[str]:
    return {
        name
        for value in vars(module).values()
        if isinstance(value, type)
        for klass in value.__mro__
        for name, member in vars(klass).items()
        if isinstance(member, property)
    }


_HARNESS = __name__.rsplit(".", 1)[0]


@functools.cache
def _beyond_the_learner() -> frozenset[str]:
    """Attributes stored after an ``__init__`` by the harness's primitives or by ``threading``
    and ``queue``, or read through a property of theirs: a learner's read of one keeps its
    switch point. Always the same modules, so that a file's switch points are the same in
    whichever process, test session or replay reads them (not the modules imported so far:
    ``pytest katas`` and ``pytest katas/locks`` would number a run's decisions differently)."""
    package = importlib.import_module(_HARNESS)
    names: set[str] = set()
    modules = [threading, queue]
    for found in pkgutil.iter_modules(package.__path__):
        modules.append(importlib.import_module(f"{_HARNESS}.{found.name}"))
    for module in modules:
        names |= _stores(_module_codes(module))[0] | _properties(module)
    return frozenset(names)


_CACHE: dict[str, Rebound | None] = {}


def rebound_in(filename: str) -> Rebound | None:
    """What the code of ``filename`` may rebind during a run; None: anything (its source
    cannot be read, or it rebinds by other means). Read once per file and process."""
    if filename in _CACHE:
        return _CACHE[filename]
    found: Rebound | None = None
    source = "".join(linecache.getlines(filename))
    try:
        module_code = compile(source, filename, "exec", dont_inherit=True) if source else None
    except (SyntaxError, ValueError):
        module_code = None
    if module_code is not None:
        attributes, globals_, cells, dynamic = _stores(list(_codes(module_code)))
        if not dynamic:
            found = Rebound(
                frozenset(attributes | _beyond_the_learner()), frozenset(globals_), frozenset(cells)
            )
    _CACHE[filename] = found
    return found


_LOAD_ATTR = _OP["LOAD_ATTR"]
_LOAD_METHOD = _OP.get("LOAD_METHOD", -1)  # 3.11; 3.12 folded it into LOAD_ATTR
_LOAD_GLOBAL = _OP["LOAD_GLOBAL"]
_LOAD_DEREF = _OP["LOAD_DEREF"]
_EXTENDED_ARG = _OP["EXTENDED_ARG"]
_ATTR_SHIFT = 1 if sys.version_info >= (3, 12) else 0  # the low bit flags a method load


def _argument(raw: bytes, offset: int) -> int:
    arg, shift = raw[offset + 1], 8
    while offset >= 2 and raw[offset - 2] == _EXTENDED_ARG:
        offset -= 2
        arg |= raw[offset + 1] << shift
        shift += 8
    return arg


def drop_fixed_reads(
    code: CodeType, points: dict[int, str], builtins: frozenset[str], back_edge: str
) -> list[int]:
    """Remove from ``points`` (offset -> description; ``back_edge`` marks a loop's jump back)
    the reads of attributes, globals and closure variables that nothing rebinds while a run
    goes on (``rebound_in``) and whose value is only handed on before the next switch point
    (``_handed_on``); returns their offsets."""
    rebound = rebound_in(code.co_filename)
    if rebound is None:
        return []
    raw = code.co_code
    names = code.co_names
    dropped = []
    # From the last: whether a read's value is read into before the next switch point looks
    # past the later reads already dropped.
    for offset in sorted((o for o in points if raw[o] in _FIXED_READS), reverse=True):
        op = raw[offset]
        arg = _argument(raw, offset)
        if op in (_LOAD_ATTR, _LOAD_METHOD):
            fixed = names[arg >> _ATTR_SHIFT if op == _LOAD_ATTR else arg] not in rebound.attributes
        elif op == _LOAD_GLOBAL:
            name = names[arg >> 1]
            # A builtin's name is the other rule's (a global of that name shadows it).
            fixed = name not in rebound.globals and name not in builtins
        else:
            fixed = code._varname_from_oparg(arg) not in rebound.cells  # type: ignore[attr-defined]
        if fixed and _handed_on(code, offset + 2, points, back_edge, set()):
            del points[offset]
            dropped.append(offset)
    return dropped


def _handed_on(
    code: CodeType, start: int, points: dict[int, str], back_edge: str, seen: set[int]
) -> bool:
    """Whether, from ``start`` (just past a read) to the next switch point on every path, the
    code only moves values, reads further names and makes calls: nothing that looks into an
    object (a truth test, a comparison, iterating or unpacking it, returning it to a caller
    that may). The switch point before the read was also the one before such a look: with
    the read's point dropped, the look would join the step before it, and the interleavings
    where another worker changes the object in between would be lost. An identity test
    (``item is STOP``) looks into nothing, and the bool it makes is no one's: a jump on it
    is followed both ways, as is a jump on whether the value is None."""
    raw = code.co_code
    identity = False  # the value on top is an ``is`` test's bool
    for at in range(start, len(raw), 2):  # an inline cache reads as CACHE: moves nothing
        what = points.get(at)
        if what is not None:
            return what is not back_edge  # a loop's jump back: the next turn may look
        op = raw[at]
        if op in _ENDS_THE_STEP:
            return True
        if (identity and op in _BOOL_JUMPS) or op in _NONE_JUMPS:
            target = _forward_target(code, at)
            if target is None or target in seen:
                return False
            seen.add(target)
            return _handed_on(code, target, points, back_edge, seen) and _handed_on(
                code, at + 2, points, back_edge, seen
            )
        if op not in _MOVES and not (
            op == _BUILD_MAP and raw[at + 1] == 0 and at and raw[at - 2] != _EXTENDED_ARG
        ):
            return False  # a dict with keys hashes them: a key's __hash__ may look into it
        identity = op == _IS_OP
    return False


def _forward_target(code: CodeType, offset: int) -> int | None:
    """Where the conditional jump at ``offset`` goes, if forward (``dis``: the jumps' encoding
    differs between versions; read only where an ``is`` test is jumped on)."""
    targets = _TARGETS.get(code)
    if targets is None:
        targets = _TARGETS[code] = {
            ins.offset: ins.argval
            for ins in dis.get_instructions(code)
            if ins.opcode in _BOOL_JUMPS | _NONE_JUMPS and isinstance(ins.argval, int)
        }
    target = targets.get(offset)
    return target if target is not None and target > offset else None


_TARGETS: dict[CodeType, dict[int, int]] = {}
_NONE_JUMPS = frozenset(op for name, op in _OP.items() if "JUMP" in name and "NONE" in name)
_IS_OP = _OP["IS_OP"]
_BUILD_MAP = _OP["BUILD_MAP"]
_BOOL_JUMPS = frozenset(
    op for name, op in _OP.items() if "JUMP" in name and ("IF_TRUE" in name or "IF_FALSE" in name)
) - {_OP.get("JUMP_IF_TRUE_OR_POP", -1), _OP.get("JUMP_IF_FALSE_OR_POP", -1)}


# Instructions that hand a value on without looking into it, or read a name.
_MOVES = frozenset(
    _OP[name]
    for name in (
        "LOAD_FAST",
        "LOAD_FAST_CHECK",
        "LOAD_FAST_LOAD_FAST",
        "LOAD_CONST",
        "LOAD_SMALL_INT",
        "STORE_FAST",
        "STORE_FAST_LOAD_FAST",
        "STORE_FAST_STORE_FAST",
        "LOAD_ATTR",
        "LOAD_METHOD",
        "LOAD_GLOBAL",
        "LOAD_DEREF",
        "LOAD_CLOSURE",
        "PUSH_NULL",
        "PRECALL",
        "KW_NAMES",
        "NOP",
        "CACHE",
        "EXTENDED_ARG",
        "POP_TOP",
        "COPY",
        "SWAP",
        "IS_OP",
        "BUILD_TUPLE",
        "BUILD_LIST",
        "BUILD_CONST_KEY_MAP",
        "BUILD_SLICE",
        "MAKE_FUNCTION",
        "MAKE_CELL",
        "COPY_FREE_VARS",
    )
    if name in _OP
)
# A ``with``: the object's ``__enter__`` runs next, a primitive's or the learner's own code
# with switch points of their own.
_ENDS_THE_STEP = frozenset(_OP[name] for name in ("BEFORE_WITH",) if name in _OP)


_FIXED_READS = frozenset({_LOAD_ATTR, _LOAD_METHOD, _LOAD_GLOBAL, _LOAD_DEREF}) - {-1}
