"""Oclgrind's error reports, read and explained for a learner.

Oclgrind (an OpenCL device simulator) writes one block per problem it finds while a kernel runs:
a data race between two work-items, a read or write outside a buffer, a barrier that only some
work-items of a group reached. A block names the kernel, the work-items involved (global, local
and group ids), and for each the source line of the access. This module turns those blocks into
a few sentences that say what went wrong and what usually fixes it.

A plain library: no pytest, no pyopencl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Oclgrind's addresses carry the buffer's number in the top bits and the byte offset below.
_BUFFER_SHIFT = 48
_ENTITY = re.compile(
    r"Global\((\d+),(\d+),(\d+)\) Local\((\d+),(\d+),(\d+)\) Group\((\d+),(\d+),(\d+)\)"
)
_LINE = re.compile(r"At line (\d+) \(column \d+\) of (\S+):")
_ADDRESS = re.compile(r"at (global|local|private|constant) memory address (0x[0-9a-f]+)")
SHOWN = 3  # distinct problems quoted in full; the rest are counted


@dataclass
class Access:
    """One work-item's part in a problem."""

    global_id: tuple[int, int, int]
    local_id: tuple[int, int, int]
    group_id: tuple[int, int, int]
    line: int = 0
    source: str = ""

    def who(self) -> str:
        return (
            f"work-item {_ids(self.global_id)} (local {_ids(self.local_id)} of group "
            f"{_ids(self.group_id)})"
        )

    def where(self) -> str:
        return f"line {self.line}: `{self.source}`" if self.line else "an unknown line"


@dataclass
class Problem:
    """One block of Oclgrind's log."""

    headline: str
    kernel: str = ""
    memory: str = ""  # global, local, ...
    offset: int = -1  # byte offset in its buffer
    accesses: list[Access] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # "Only 4 out of 8 work-items ..."
    line: int = 0  # where a problem with no work-item of its own happened (a barrier)
    source: str = ""
    work_group: str = ""  # the group a barrier divergence happened in, e.g. "(1,0,0)"

    @property
    def kind(self) -> str:
        text = self.headline.lower()
        if "data race" in text:
            return "race"
        if text.startswith("invalid"):
            return "bounds"
        if "barrier" in text or "divergence" in text:
            return "barrier"
        if "uninitialized" in text:
            return "uninitialized"
        return "other"

    def key(self) -> tuple[str, str, tuple[int, ...]]:
        """Problems that differ only in which work-items or which address are one problem."""
        lines = tuple(a.line for a in self.accesses) or (self.line,)
        return (self.headline.split(" at ")[0], self.kernel, lines)


def _ids(ids: tuple[int, int, int]) -> str:
    used = list(ids)
    while len(used) > 1 and used[-1] == 0:
        used.pop()
    return str(used[0]) if len(used) == 1 else "(" + ", ".join(map(str, used)) + ")"


def parse(log: str) -> list[Problem]:
    problems: list[Problem] = []
    current: Problem | None = None
    pending_line = 0
    for raw in log.splitlines():
        if raw and not raw[0].isspace():
            current = Problem(raw.strip())
            problems.append(current)
            if match := _ADDRESS.search(raw):
                current.memory, address = match.group(1), int(match.group(2), 16)
                current.offset = address & ((1 << _BUFFER_SHIFT) - 1)
            continue
        if current is None:
            continue
        text = raw.strip()
        if text.startswith("Kernel:"):
            current.kernel = text.split(":", 1)[1].strip()
        elif text.startswith("Work-group:"):
            current.work_group = text.split(":", 1)[1].strip()
        elif match := _ENTITY.search(text):
            numbers = [int(n) for n in match.groups()]
            current.accesses.append(
                Access(
                    (numbers[0], numbers[1], numbers[2]),
                    (numbers[3], numbers[4], numbers[5]),
                    (numbers[6], numbers[7], numbers[8]),
                )
            )
        elif match := _LINE.search(text):
            pending_line = int(match.group(1))
        elif text.startswith("Only "):
            current.details.append(text)
        elif pending_line and current.accesses:
            current.accesses[-1].line, current.accesses[-1].source = pending_line, text
            pending_line = 0
        elif pending_line:
            current.line, current.source = pending_line, text
            pending_line = 0
    return problems


def _advice(problem: Problem) -> str:
    if problem.kind == "race" and problem.memory == "local":
        return (
            "Two work-items of one group used the same local memory with no barrier between "
            "the two steps: put barrier(CLK_LOCAL_MEM_FENCE) after the step that writes and "
            "before the step that reads (in every loop round, reached by every work-item)."
        )
    if problem.kind == "race":
        return (
            "Two work-items wrote (or one wrote and one read) the same global element: each "
            "work-item must own the elements it writes. Check the index: a stride that is not "
            "the row length maps two work-items to one element."
        )
    if problem.kind == "bounds":
        return (
            "A work-item went past the end of a buffer. When the global size is rounded up to a "
            "multiple of the work-group size, the extra work-items must do nothing: guard the "
            "body with `if (i < n)`, and size buffers in bytes (count * itemsize)."
        )
    if problem.kind == "barrier":
        return (
            "Only some work-items of a group reached a barrier: a barrier inside an `if` that "
            "not all work-items take deadlocks real devices. Move it where every work-item "
            "reaches it."
        )
    return "See Oclgrind's report below."


def explain(problems: list[Problem], log: str) -> str:
    """What a learner reads when Oclgrind reported problems in a test's kernels."""
    groups: dict[tuple[str, str, tuple[int, ...]], list[Problem]] = {}
    for problem in problems:
        groups.setdefault(problem.key(), []).append(problem)
    lines = [
        f"Oclgrind, the OpenCL simulator, found {len(problems)} memory problem"
        f"{'s' if len(problems) != 1 else ''} in this test's kernels "
        f"({len(groups)} distinct):"
    ]
    for alike in list(groups.values())[:SHOWN]:
        first = alike[0]
        where = f" in kernel `{first.kernel}`" if first.kernel else ""
        spot = ""
        if first.offset >= 0 and first.memory:
            spot = f" ({first.memory} memory, byte {first.offset} of its buffer)"
        lines.append(f"\n- {first.headline.split(' at ')[0]}{where}{spot}, {len(alike)}x:")
        for access in first.accesses:
            lines.append(f"    {access.who()} at {access.where()}")
        if first.line:
            lines.append(f"    at line {first.line}: `{first.source}`")
        groups_seen = sorted({p.work_group for p in alike if p.work_group})
        in_groups = (
            f" (in work-group{'s' if len(groups_seen) > 1 else ''} {', '.join(groups_seen[:4])}"
            f"{', ...' if len(groups_seen) > 4 else ''})"
            if groups_seen
            else ""
        )
        lines += [f"    {detail}{in_groups}" for detail in first.details[:1]]
        lines.append("  " + _advice(first))
    if len(groups) > SHOWN:
        lines.append(f"\n... and {len(groups) - SHOWN} more kinds; Oclgrind's whole log follows.")
    lines.append("\nOclgrind's own report (first part):\n" + log[:3000])
    return "\n".join(lines)
