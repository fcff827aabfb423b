"""Opcode-level switch points inside the learner's modules.

Line-level switching never splits ``self.v += 1`` (research §5: 0/300); switching before
instructions that touch shared state does. Two hooks deliver the same points:
``sys.monitoring`` INSTRUCTION events set locally on the learner's code objects (3.12+;
uninteresting instructions are DISABLEd after their first hit, and 3.12.1 crashes with
opcode-level ``settrace`` in threads), and per-worker ``sys.settrace`` with
``f_trace_opcodes`` (3.11, or ``PROBE_TRACER=settrace``). Other code is never traced.
"""

from __future__ import annotations

import dis
import linecache
import os
import sys
import types
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

TraceFn = Callable[[FrameType, str, Any], Any]

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


def _named(argrepr: str) -> str:
    """The name an instruction is about: dis marks the NULL a call needs beside it, before
    (3.11, 3.12: "NULL + len", "NULL|self + append") or after (3.13: "len + NULL")."""
    words = [w for w in argrepr.split(" ") if w and w != "+" and not w.startswith("NULL")]
    return words[0] if words else argrepr


def describe(ins: dis.Instruction) -> str:
    """What the instruction is about to do, in words (shown where a worker was preempted)."""
    name, arg = ins.opname, ins.argrepr
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
        found = {}
        for ins in dis.get_instructions(code):
            if ins.opcode in INTERESTING_OPCODES:
                found[ins.offset] = describe(ins)
            elif ins.opcode in BACK_EDGE_OPCODES:
                found[ins.offset] = BACK_EDGE
                _LOOP_HEADS[(code, ins.offset)] = int(ins.argval)  # where the loop starts over
        _POINTS[code] = found
    return found


_LOOP_HEADS: dict[tuple[CodeType, int], int] = {}


def loop_line(code: CodeType, back_edge: int) -> int:
    """The line a loop starts at (its `while`/`for`), from the offset of its back edge."""
    switch_points(code)
    line = line_of(code, _LOOP_HEADS.get((code, back_edge), back_edge))
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
    lines = _LINES.get(code)
    if lines is None:
        lines = {}
        current = code.co_firstlineno
        for ins in dis.get_instructions(code):
            lineno = ins.positions.lineno if ins.positions is not None else None
            if lineno is not None:
                current = lineno
            lines[ins.offset] = current
        _LINES[code] = lines
    return lines.get(offset, code.co_firstlineno)


_LINES: dict[CodeType, dict[int, int]] = {}


def learner_codes(modules: list[types.ModuleType]) -> list[CodeType]:
    """Every code object reachable from the modules' functions and classes."""
    found: dict[int, CodeType] = {}
    todo: list[object] = []
    for mod in modules:
        todo.extend(vars(mod).values())
    seen: set[int] = set()
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, CodeType):
            found[id(obj)] = obj
            todo.extend(c for c in obj.co_consts if isinstance(c, CodeType))
        elif isinstance(obj, (types.FunctionType, types.MethodType)):
            todo.append(getattr(obj, "__code__", None) or getattr(obj, "__func__", None))
        elif isinstance(obj, (staticmethod, classmethod)):
            todo.append(obj.__func__)
        elif isinstance(obj, property):
            todo.extend((obj.fget, obj.fset, obj.fdel))
        elif isinstance(obj, type) and any(
            getattr(m, "__file__", None) and obj.__module__ == m.__name__ for m in modules
        ):
            todo.extend(vars(obj).values())
    return [
        c
        for c in found.values()
        if any(c.co_filename == getattr(m, "__file__", "") for m in modules)
    ]


class Monitor:
    """sys.monitoring INSTRUCTION hook on the learner's code objects, for one run."""

    TOOL = 4  # 0-2 and 5 are reserved for debuggers, coverage, profilers, optimizers

    def __init__(
        self, modules: list[types.ModuleType], on_point: Callable[[CodeType, int, str], None]
    ) -> None:
        self._codes = learner_codes(modules)
        self._on_point = on_point
        self._points = {code: switch_points(code) for code in self._codes}

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
            pts = points.get(code)
            what = pts.get(offset) if pts is not None else None
            if what is None:
                return disable  # never interesting: switch this location off for good
            on_point(code, offset, what)
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


def make_tracer(
    learner_files: frozenset[str], on_point: Callable[[FrameType, str], None]
) -> TraceFn:
    """Global trace function for one worker thread."""

    def local_for(points: dict[int, str]) -> TraceFn:
        def local(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "opcode":
                what = points.get(frame.f_lasti)
                if what is not None:
                    on_point(frame, what)
            return local

        return local

    def global_trace(frame: FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        if code.co_filename not in learner_files:
            return None
        local = local_for(switch_points(code))
        # 3.12+ only enables opcode events when f_trace is already set (frame_settrace_opcodes).
        frame.f_trace = local
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return local

    return global_trace
