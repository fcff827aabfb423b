"""The learner-facing failure text: headline, interleaved source listing, replay line."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .sites import Site, short, source

MAX_ROWS = 36
# Notes from opcode switch points ("writes .v") are only shown where a worker was preempted;
# notes from sync operations ("waits for Lock ...") are always shown.
OPCODE_NOTES = ("reads ", "writes ", "makes ", "computes ")


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def clean(text: str) -> str:
    """Drop memory addresses (pytest's assertion reprs) so reports are identical per seed."""
    return _ADDRESS.sub("", text)


def _segments(events: Sequence[tuple[str, int, Any, str]], names: Sequence[str]) -> list[list[Any]]:
    """[switch text or None, worker, site, note] per line segment or switch, in order."""
    rows: list[list[Any]] = []
    prev: tuple[int, Site] | None = None
    for kind, who, what, note in events:
        if kind == "x":
            to = names[what]
            if who < 0:
                text = f"--- {to} runs first ---"
            elif note == "preempted":
                text = f"--- switch: {names[who]} preempted, {to} runs ---"
                if rows and rows[-1][0] is None and rows[-1][3].startswith(OPCODE_NOTES):
                    rows[-1][3] = "preempted just before it " + rows[-1][3]
            elif note == "blocked":
                text = f"--- {names[who]} blocks, {to} runs ---"
            else:
                text = f"--- {names[who]} {note}, {to} runs ---"
            rows.append([text, who, None, ""])
            prev = None
            continue
        site: Site = what
        if prev == (who, site):
            rows[-1][3] = note or rows[-1][3]
            continue
        prev = (who, site)
        rows.append([None, who, site, note])
    return rows


def _shown_note(note: str) -> bool:
    return bool(note) and (not note.startswith(OPCODE_NOTES) or note.startswith("preempted"))


def _rows(events: Sequence[tuple[str, int, Any, str]], names: Sequence[str]) -> list[str]:
    width = max((len(n) for n in names), default=8)
    out: list[str] = []
    for text, who, site, note in _segments(events, names):
        if text is not None:
            out.append(text)
            continue
        line = f"[{names[who]:<{width}}] {short(site):<18} {source(site)}"
        if _shown_note(note):
            line += f"   <- {note}"
        out.append(line)
    return out


def picture(
    events: Sequence[tuple[str, int, Any, str]], names: Sequence[str]
) -> list[dict[str, Any]]:
    """The interleaving as data for a drawing (plugins/html_report.py): one entry per line
    segment (worker, where, source, note, preempted, conflict) or switch (text). A segment
    conflicts when a worker was preempted just before it, or when another worker ran the
    same line meanwhile, before the preempted one came back."""
    steps: list[dict[str, Any]] = []
    for text, who, site, note in _segments(events, names):
        if text is not None:
            steps.append({"switch": text, "worker": who})
            continue
        steps.append(
            {
                "worker": who,
                "where": short(site),
                "site": site,
                "source": clean(source(site)),
                "note": note if _shown_note(note) else "",
                "preempted": note.startswith("preempted"),
                "conflict": False,
            }
        )
    open_: dict[Site, int] = {}  # a preempted segment's site -> its worker, until it resumes
    for step in steps:
        if "switch" in step:
            continue
        site, who = step["site"], step["worker"]
        for pending_site, pending_who in list(open_.items()):
            if pending_who == who:
                del open_[pending_site]  # that worker is back: its window has closed
        if site in open_ and open_[site] != who:
            step["conflict"] = True
        if step["preempted"]:
            step["conflict"] = True
            open_[site] = who
    for step in steps:
        step.pop("site", None)
    return steps


def elide(rows: list[str], limit: int = MAX_ROWS) -> list[str]:
    if len(rows) <= limit:
        return rows
    head = limit // 3
    tail = limit - head - 1
    return [*rows[:head], f"…  ({len(rows) - head - tail} rows elided)  …", *rows[-tail:]]


def render(
    headline: str,
    details: Sequence[str],
    events: Sequence[tuple[str, int, Any, str]],
    names: Sequence[str],
    schedule: Sequence[int],
    replay_call: str,
    origin: str,
    switches: int | None = None,
) -> str:
    """Assemble the ProbeFailure message; pure function of its inputs (deterministic)."""
    if switches is None:
        switches = sum(1 for e in events if e[0] == "x" and e[3] == "preempted")
    lines = [headline, *details, ""]
    lines.append(
        f"interleaving that fails ({switches} preemption{'s' if switches != 1 else ''}; "
        "one row per line segment, --- marks a switch):"
    )
    lines.extend("  " + r for r in elide(_rows(events, names)))
    lines.append("")
    lines.append(f"replay: {replay_call}")
    if origin:
        lines.append(origin)
    return "\n".join(lines)
