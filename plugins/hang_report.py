"""What every thread was doing when a test's time ran out: its own frames, the lock it waits
for, and which thread took that lock where.

A learner's deadlock ends with the budget's alarm. A raw dump of every stack is mostly pytest,
pluggy and plugin frames around the one line that matters, and cannot say who holds a plain
`threading.Lock` (it records no owner). This module reads the source instead: a thread blocked
in `with <lock>:` or `<lock>.acquire()` waits for the object that expression names in its frame,
and every `with <lock>:` block that encloses a thread's current line (in any of its frames)
holds that lock. From that it names a self-deadlock (a thread waiting for a lock it took
itself), a circle of threads each waiting for the next, or who holds what a thread waits for.
Only `with` blocks count as holding; a bare `acquire()` is shown where the thread waits in it.
"""

from __future__ import annotations

import ast
import dis
import functools
import inspect
import linecache
import sys
import sysconfig
import threading
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType

import _pytest
import pluggy

from plugins import parsing

# Frames from these folders are the harness, never the learner's: they are left out.
HARNESS = tuple(
    str(Path(m.__file__ or "").parent) for m in (_pytest, pluggy, sys.modules[__name__])
)
# Python's own files, the virtual environment's included: a stack starts after them.
INSTALLED = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths()["stdlib"]})
MOST_FRAMES = 12


@dataclass(frozen=True)
class Site:
    """A line of code: where a thread waits, or where it took a lock."""

    path: str
    line: int

    def __str__(self) -> str:
        code = linecache.getline(self.path, self.line).strip()
        return f"{Path(self.path).name}:{self.line} `{code}`"


@dataclass
class Lock:
    """A lock expression as the code names it (`self._lock`), and the object it is."""

    text: str
    obj: object
    site: Site


@dataclass
class ThreadState:
    name: str
    frames: list[FrameType]  # the thread's own frames, outermost first
    waits: Lock | None
    holds: list[Lock]


def _is_harness(frame: FrameType) -> bool:
    return frame.f_code.co_filename.startswith(HARNESS)


def own_frames(top: FrameType) -> list[FrameType]:
    """The frames worth showing, outermost first: no harness frames, and none of Python's own
    before the first frame of the test or the learner (the pytest script, threading's bootstrap)."""
    frames = []
    frame: FrameType | None = top
    while frame is not None:
        if not _is_harness(frame):
            frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    first = next(
        (i for i, f in enumerate(frames) if not f.f_code.co_filename.startswith(INSTALLED)), 0
    )
    return frames[first:]


@functools.lru_cache(maxsize=256)
def _tree(path: str) -> ast.Module | None:
    try:
        return parsing.parse(Path(path).read_text(encoding="utf-8"), path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None


def _value(expr: ast.expr, frame: FrameType) -> object | None:
    """The object a plain name or attribute chain names in `frame` (nothing else is run)."""
    if isinstance(expr, ast.Name):
        for scope in (frame.f_locals, frame.f_globals, frame.f_builtins):
            if expr.id in scope:
                named: object = scope[expr.id]
                return named
        return None
    if isinstance(expr, ast.Attribute):
        owner = _value(expr.value, frame)
        # Static lookup: a property of the learner's must not run inside the alarm.
        if owner is None:
            return None
        found: object = inspect.getattr_static(owner, expr.attr, None)
        return found
    return None


def _with_nodes(frame: FrameType) -> list[ast.With]:
    tree = _tree(frame.f_code.co_filename)
    if tree is None:
        return []
    line = frame.f_lineno
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.With) and node.lineno <= line <= (node.end_lineno or node.lineno)
    ]


def _item_entering(frame: FrameType, node: ast.With) -> int | None:
    """Which item of `with a, b:` the frame is entering, from the BEFORE_WITH it stopped at."""
    offsets = _enter_offsets(frame.f_code, node.lineno, node.end_lineno or node.lineno)
    offsets = offsets[: len(node.items)]
    return offsets.index(frame.f_lasti) if frame.f_lasti in offsets else None


@functools.lru_cache(maxsize=512)
def _enter_offsets(code: CodeType, first: int, last: int) -> list[int]:
    return [
        ins.offset
        for ins in dis.get_instructions(code)
        if ins.opname == "BEFORE_WITH"
        and ins.positions is not None
        and ins.positions.lineno is not None
        and first <= ins.positions.lineno <= last
    ]


def _lock(expr: ast.expr, frame: FrameType, line: int) -> Lock | None:
    obj = _value(expr, frame)
    if obj is None or not hasattr(obj, "acquire"):
        return None
    return Lock(ast.unparse(expr), obj, Site(frame.f_code.co_filename, line))


def _waits_and_holds(frames: list[FrameType]) -> tuple[Lock | None, list[Lock]]:
    """The lock the innermost frame waits for (if it waits in `with` or `.acquire()`), and every
    lock an enclosing `with` block holds, across all the thread's frames."""
    waits, holds = None, []
    for depth, frame in enumerate(frames):
        innermost = depth == len(frames) - 1
        for node in _with_nodes(frame):
            entering = _item_entering(frame, node) if innermost else None
            in_body = bool(node.body) and frame.f_lineno >= node.body[0].lineno
            for index, item in enumerate(node.items):
                lock = _lock(item.context_expr, frame, node.lineno)
                if lock is None:
                    continue
                if entering is not None and index == entering:
                    waits = Lock(lock.text, lock.obj, Site(lock.site.path, frame.f_lineno))
                elif in_body or (entering is not None and index < entering):
                    holds.append(lock)
    if waits is None and frames:
        waits = _acquiring(frames[-1])
    return waits, holds


def _acquiring(frame: FrameType) -> Lock | None:
    """`x.acquire(...)` on the frame's current line: the thread waits for x."""
    tree = _tree(frame.f_code.co_filename)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and getattr(node, "lineno", None) == frame.f_lineno
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "acquire"
        ):
            return _lock(node.func.value, frame, frame.f_lineno)
    return None


def states() -> list[ThreadState]:
    names = {t.ident: t.name for t in threading.enumerate()}
    found = []
    for ident, top in sys._current_frames().items():
        frames = own_frames(top)
        waits, holds = _waits_and_holds(frames)
        found.append(ThreadState(str(names.get(ident, ident)), frames, waits, holds))
    return found


def _holder(threads: list[ThreadState], lock: Lock) -> tuple[ThreadState, Lock] | None:
    for thread in threads:
        for held in thread.holds:
            if held.obj is lock.obj:
                return thread, held
    return None


def diagnosis(threads: list[ThreadState]) -> str:
    """One paragraph naming the waits: a self-deadlock, a circle, or who holds what; '' if the
    source says nothing about it."""
    lines = []
    for thread in threads:
        if thread.waits is None:
            continue
        found = _holder(threads, thread.waits)
        if found is None:
            continue
        holder, held = found
        if holder is thread:
            return (
                f"self-deadlock: thread {thread.name} waits for `{thread.waits.text}` at "
                f"{thread.waits.site}, a lock it took itself at {held.site} and still holds. "
                f"A threading.Lock does not know who holds it, so even its holder must wait for "
                f"it for ever: take it once (or use an RLock, which its holder may take again)."
            )
        lines.append(
            f"thread {thread.name} waits for `{thread.waits.text}` at {thread.waits.site}, "
            f"held by thread {holder.name} since {held.site}"
        )
    if not lines:
        return ""
    circle = _circle(threads)
    head = "deadlock: threads wait for each other in a circle" if circle else "who waits for what"
    return head + ":\n" + "\n".join(f"  - {line}" for line in lines)


def _circle(threads: list[ThreadState]) -> bool:
    """Whether following 'waits for a lock held by' from some thread comes back to it."""
    for start in threads:
        seen, thread = set(), start
        while thread.waits is not None and thread.name not in seen:
            seen.add(thread.name)
            found = _holder(threads, thread.waits)
            if found is None:
                break
            thread = found[0]
            if thread is start:
                return True
    return False


def stacks(threads: list[ThreadState]) -> str:
    sections = []
    for thread in threads:
        shown = thread.frames[-MOST_FRAMES:]
        lines = "".join(
            f'  File "{f.f_code.co_filename}", line {f.f_lineno}, in {f.f_code.co_name}\n'
            f"    {linecache.getline(f.f_code.co_filename, f.f_lineno).strip()}\n"
            for f in shown
        )
        lines = lines or "  (only harness frames)\n"
        sections.append(f"--- thread {thread.name} ---\n{lines}")
    return "\n".join(sections)
