"""Source locations: which frame is the learner's, and how to print file:line + source."""

from __future__ import annotations

import linecache
import os
import queue
import re
import threading
from collections.abc import Iterable
from types import CodeType, FrameType, TracebackType

_HARNESS_DIR = os.path.dirname(os.path.abspath(__file__))
# Frames in these files are plumbing, never the place a learner should look at.
_PLUMBING = frozenset({os.path.abspath(threading.__file__), os.path.abspath(queue.__file__)})

Site = tuple[str, int]
NO_SITE: Site = ("?", 0)


def is_plumbing(filename: str) -> bool:
    known = _IS_PLUMBING.get(filename)
    if known is None:
        known = filename.startswith(_HARNESS_DIR) or os.path.abspath(filename) in _PLUMBING
        _IS_PLUMBING[filename] = known
    return known


# A frame walk asks about the same few files at every switch point: a fact about a file name
# (abspath alone costs more than the walk), kept for the life of the process.
_IS_PLUMBING: dict[str, bool] = {}


def find_site(
    frame: FrameType | None, learner_files: frozenset[str], stop: FrameType | None = None
) -> Site:
    """Innermost learner frame at or above ``frame`` and below ``stop``; else the innermost
    non-plumbing one. (A worker's stack ends at its greenlet; the test's own thread passes the
    frame that calls its setup as ``stop``: above it are pytest's 40 frames, none the learner's.)"""
    f = frame
    fallback = None  # the innermost frame that is not plumbing, met on the way
    known = _IS_PLUMBING
    while f is not None and f is not stop:  # at every switch point: usually the learner's
        filename = f.f_code.co_filename
        if filename in learner_files:
            return (filename, line_of(f))
        if fallback is None:
            # is_plumbing, its cache read here: a call less for each harness frame passed
            plumbing = known.get(filename)
            if plumbing is None:
                plumbing = is_plumbing(filename)
            if not plumbing:
                fallback = f
        f = f.f_back
    while fallback is None and f is not None:  # past ``stop``: no learner frame counts there
        if not is_plumbing(f.f_code.co_filename):
            fallback = f
        f = f.f_back
    return NO_SITE if fallback is None else (fallback.f_code.co_filename, line_of(fallback))


def line_of(frame: FrameType) -> int:
    """``frame.f_lineno``, from the lines already read for its code: reading a line decodes
    the code's line table from its start (0.9 us near the end of a 60-line function), at
    every switch point a primitive reaches."""
    code = frame.f_code
    known = _LINES.get(id(code))
    if known is None or known[0] is not code:
        known = _LINES[id(code)] = (code, {})
    lines = known[1]
    lasti = frame.f_lasti
    line = lines.get(lasti)
    if line is None:
        line = lines[lasti] = frame.f_lineno
    return line


# id(code) -> (the code, which keeps the id its own; f_lasti -> line).
_LINES: dict[int, tuple[CodeType, dict[int, int]]] = {}


def traceback_site(tb: TracebackType | None, learner_files: frozenset[str]) -> Site:
    """Deepest learner line of a traceback (where the learner's code raised)."""
    best: Site | None = None
    fallback: Site | None = None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name in learner_files:
            best = (name, tb.tb_lineno)
        elif not is_plumbing(name):
            fallback = (name, tb.tb_lineno)
        tb = tb.tb_next
    return best or fallback or NO_SITE


def short(site: Site) -> str:
    return f"{os.path.basename(site[0])}:{site[1]}"


def source(site: Site) -> str:
    return linecache.getline(site[0], site[1]).strip()


def read_sources(owners: Iterable[object]) -> None:
    """Read the source of each module's, function's or code object's file into linecache."""
    for owner in owners:
        code = getattr(owner, "__code__", owner)
        filename = getattr(code, "co_filename", None) or getattr(owner, "__file__", None)
        if isinstance(filename, str):
            linecache.getlines(filename)


_TARGET = re.compile(r"^\s*([A-Za-z_][\w.]*(?:\[[^\]]*\])?)\s*(?::[^=]*)?=[^=]")


def assigned_name(site: Site) -> str | None:
    """``self.lock`` for a creation line like ``self.lock = threading.Lock()``."""
    text = source(site)
    if text not in _ASSIGNED:  # a run's primitives are new, their creation lines are not
        m = _TARGET.match(text + " ")
        _ASSIGNED[text] = m.group(1) if m else None
    return _ASSIGNED[text]


_ASSIGNED: dict[str, str | None] = {}  # a line of source -> the name it assigns
