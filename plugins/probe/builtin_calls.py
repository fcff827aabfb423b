"""What a learner's call of a builtin touched, for ``footprints``: ``len(self.items)``,
``super()``, ``sorted(pair, key=...)``, ``self.items.popleft()``.

A call that runs no learner code between two switch points used to make its step unknown
(dependent on every step), which multiplied the interleavings the exhaustive search runs
for nothing. Here the callee is recognised, when it is unambiguous, by what the bytecode
loads right before the call's arguments:

- a global name that resolves (module globals first, then builtins) to one of the builtins
  below: ``super``, ``isinstance`` and the like touch nothing shared; ``len``, ``max``,
  ``sorted`` and the like read containers' items ("r:[]"), as comparisons and truth tests do
  in ``bytecode_paths``; ``next`` advances an iterator ("r:[]", "w:[]");
- a method of a local variable, or of a local's attribute read from its instance
  ``__dict__`` (never through a property), whose type is exactly ``list``, ``dict``, ``set``,
  ``deque`` or ``defaultdict``: a read or a write of containers' items. All containers are
  one resource in ``footprints``, so a receiver that another worker replaced between the
  attribute load and the call (by another container) touches the same resource.

Anything else (a user function, a method of any other type, a callee loaded some other
way) stays unknown. Callbacks a builtin makes into learner code are traced as their own
steps (``footprints`` joins them); the footprint here is only the builtin's own part.
"""

from __future__ import annotations

import builtins
import collections
import dis
import sys
from types import CodeType, FrameType

from .bytecode_paths import CONTAINERS, EMPTY, READ_ITEMS, Footprint, analysed, callee_loader

_NOTHING_SHARED = (
    *("super", "isinstance", "issubclass", "id", "type", "callable", "object", "range"),
)
_READS_ITEMS = (
    *("len", "max", "min", "sorted", "sum", "any", "all", "list", "tuple", "set", "frozenset"),
    *("dict", "str", "repr", "bool", "int", "float", "abs", "round", "divmod", "hash"),
    *("format", "enumerate", "zip", "reversed", "iter", "map", "filter"),
)
_BUILTINS: dict[str, frozenset[str]] = {
    **dict.fromkeys(_NOTHING_SHARED, EMPTY),
    **dict.fromkeys(_READS_ITEMS, READ_ITEMS),
    "next": CONTAINERS,
}

_CONTAINER_TYPES = (list, dict, set, collections.deque, collections.defaultdict)
_READ_METHODS = frozenset(
    {"get", "count", "index", "copy", "keys", "values", "items", "__contains__", "__len__"}
)
_WRITE_METHODS = frozenset(
    {
        *("append", "appendleft", "extend", "extendleft", "insert", "pop", "popleft"),
        *("popitem", "remove", "clear", "add", "discard", "update", "setdefault"),
        *("rotate", "reverse", "difference_update", "intersection_update"),
        "symmetric_difference_update",
    }
)

# How a call's callee is loaded, read once per call site: ("global", name) or
# ("method", local, attribute or "", method name); None when not one of these shapes.
Shape = tuple[str, str] | tuple[str, str, str, str] | None
# By id(code) (a code object's hash reads its bytecode): ``analysed`` keeps every code object
# it has read, so none of these ids is ever another's.
_SHAPES: dict[tuple[int, int], Shape] = {}


def _shape(code: CodeType, call: int) -> Shape:
    key = (id(code), call)
    if key not in _SHAPES:
        analysed(code)  # keeps the code object (its id is the key's)
        _SHAPES[key] = _find_shape(code, call)
    return _SHAPES[key]


def _find_shape(code: CodeType, call: int) -> Shape:
    loader = callee_loader(code, call)
    if loader is None:
        return None
    info = analysed(code)
    load = info.ins[loader]
    if not isinstance(load.argval, str):
        return None
    if load.opname == "LOAD_GLOBAL":
        return ("global", load.argval)
    if not _loads_method(load) or load.is_jump_target:
        return None
    n = info.offsets.index(loader)
    before = [info.ins[o] for o in info.offsets[max(0, n - 2) : n]]
    if before and before[-1].opname in ("LOAD_FAST", "LOAD_FAST_CHECK"):
        return ("method", str(before[-1].argval), "", load.argval)
    if (
        len(before) == 2
        and before[1].opname == "LOAD_ATTR"
        and not _loads_method(before[1])
        and not before[1].is_jump_target
        and before[0].opname in ("LOAD_FAST", "LOAD_FAST_CHECK")
        and isinstance(before[1].argval, str)
    ):
        return ("method", str(before[0].argval), before[1].argval, load.argval)
    return None


def _loads_method(ins: dis.Instruction) -> bool:
    """LOAD_METHOD (3.11), or LOAD_ATTR with its low bit set (3.12+: a method load)."""
    if ins.opname == "LOAD_METHOD":
        return True
    return ins.opname == "LOAD_ATTR" and sys.version_info >= (3, 12) and bool((ins.arg or 0) & 1)


def _instance_attr(obj: object, name: str) -> object:
    """``obj.name`` from its instance dict only (no property or __getattr__ runs)."""
    try:
        found = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return None
    return found.get(name) if type(found) is dict else None


_IMMUTABLE = (int, float, complex, bool, str, bytes, tuple, frozenset)
_OPERAND_LOADS = ("LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_CONST")
_MISSING = object()


def _plain_attr(obj: object, name: str) -> object:
    """``obj.name`` as LOAD_ATTR found it, if that read only the instance dict: the class
    and its bases neither define ``name`` nor override attribute access (so no Python code
    ran and no switch point came between); _MISSING when that is not certain."""
    kind = type(obj)
    for base in kind.__mro__:
        names = base.__dict__
        if name in names or "__getattr__" in names:
            return _MISSING
        if "__getattribute__" in names and base is not object:
            return _MISSING
    try:
        found = object.__getattribute__(obj, "__dict__")
    except AttributeError:
        return _MISSING
    return found.get(name, _MISSING) if type(found) is dict else _MISSING


# Per BINARY_OP site: how to read its two operands, each ("local", name), ("const", value)
# or ("attr", local, name); None when they are not that simple.
Operand = tuple[str, object] | tuple[str, str, str]
_OPERANDS: dict[tuple[int, int], tuple[Operand, Operand] | None] = {}


def _operands(code: CodeType, offset: int) -> tuple[Operand, Operand] | None:
    key = (id(code), offset)
    if key not in _OPERANDS:
        analysed(code)  # keeps the code object (its id is the key's)
        _OPERANDS[key] = _find_operands(code, offset)
    return _OPERANDS[key]


def _find_operands(code: CodeType, offset: int) -> tuple[Operand, Operand] | None:
    """``a OP b``, ``a OP= b``, ``x.a OP b`` and ``x.a OP= b`` with ``a``, ``b`` and ``x``
    local variables or constants, as one straight run of instructions."""
    info = analysed(code)
    n = info.offsets.index(offset)
    run = [info.ins[o] for o in info.offsets[max(0, n - 4) : n + 1]]
    if len(run) < 3 or any(i.is_jump_target for i in run[-3:]):
        return None
    left, right = run[-3], run[-2]
    if right.opname not in _OPERAND_LOADS:
        return None
    right_op: Operand
    right_op = ("const", right.argval) if right.opname == "LOAD_CONST" else _local(right)
    if left.opname in _OPERAND_LOADS:
        return (("const", left.argval) if left.opname == "LOAD_CONST" else _local(left)), right_op
    if left.opname != "LOAD_ATTR" or _loads_method(left) or not isinstance(left.argval, str):
        return None
    owner = run[-4] if len(run) >= 4 else None
    if owner is not None and owner.opname == "COPY" and owner.arg == 1:  # x.a OP= b
        if owner.is_jump_target or len(run) < 5:
            return None
        owner = run[-5]
    if owner is None or owner.opname not in ("LOAD_FAST", "LOAD_FAST_CHECK"):
        return None
    return ("attr", str(owner.argval), left.argval), right_op


def _local(ins: dis.Instruction) -> Operand:
    return ("local", str(ins.argval))


def _value(frame: FrameType, operand: Operand) -> object:
    if operand[0] == "const":
        return operand[1]
    value = frame.f_locals.get(str(operand[1]), _MISSING)
    if operand[0] == "attr" and value is not _MISSING:
        value = _plain_attr(value, str(operand[2]))  # type: ignore[misc]
    return value


def is_operator(code: CodeType, offset: int) -> bool:
    ins = analysed(code).ins.get(offset)
    return ins is not None and ins.opname == "BINARY_OP"


def read_ahead(code: CodeType, offset: int) -> None:
    """Read the shape of the call or operator at ``offset`` now (cached for the steps)."""
    if is_operator(code, offset):
        _operands(code, offset)
    else:
        _shape(code, offset)


def operator_effect(frame: FrameType, offset: int) -> Footprint:
    """What the BINARY_OP at ``offset`` touches, read at its switch point (right after the
    step that loaded its operands, with no other worker in between): nothing when both
    operands are of immutable builtin types (``self.value += 1`` on an int neither mutates
    nor reads a container); None when unknown (``bytecode_paths.access`` then tells)."""
    found = _operands(frame.f_code, offset)
    if found is None:
        return None
    for operand in found:
        if type(_value(frame, operand)) not in _IMMUTABLE:
            return None
    return EMPTY


def _global_effect(frame: FrameType, name: str) -> Footprint:
    found = _BUILTINS.get(name)
    scope = frame.f_globals if name in frame.f_globals else frame.f_builtins
    return found if found is not None and scope.get(name) is getattr(builtins, name) else None


def builtin_call_effect(frame: FrameType, call: int) -> Footprint:
    """``call_effect`` for a call made earlier in the step, whose arguments' locals are gone:
    a builtin called by its global name only."""
    shape = _shape(frame.f_code, call)
    return _global_effect(frame, shape[1]) if shape is not None and len(shape) == 2 else None


def call_effect(frame: FrameType, call: int) -> Footprint:
    """What the call at offset ``call`` of ``frame`` touches in builtin code, with ``frame``
    stopped at that call or inside it (its locals are what the call's arguments were made
    of); None when unknown."""
    shape = _shape(frame.f_code, call)
    if shape is None:
        return None
    if len(shape) == 2:  # a global name
        return _global_effect(frame, shape[1])
    _, local, attr, method = shape
    receiver = frame.f_locals.get(local)
    if attr:
        receiver = _instance_attr(receiver, attr)
    if type(receiver) not in _CONTAINER_TYPES:
        return None
    if method in _READ_METHODS:
        return READ_ITEMS
    return CONTAINERS if method in _WRITE_METHODS else None
