"""Source locations: which frame is the learner's, and how to print file:line + source."""

from __future__ import annotations

import linecache
import os
import queue
import re
import sys
import threading
from types import FrameType, TracebackType

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
    while f is not None and f is not stop:  # at every switch point: usually the learner's
        if f.f_code.co_filename in learner_files:
            return (f.f_code.co_filename, f.f_lineno)
        f = f.f_back
    f = frame
    while f is not None:
        if not is_plumbing(f.f_code.co_filename):
            return (f.f_code.co_filename, f.f_lineno)
        f = f.f_back
    return NO_SITE


def caller_site(learner_files: frozenset[str]) -> Site:
    return find_site(sys._getframe(2), learner_files)


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


_TARGET = re.compile(r"^\s*([A-Za-z_][\w.]*(?:\[[^\]]*\])?)\s*(?::[^=]*)?=[^=]")


def assigned_name(site: Site) -> str | None:
    """``self.lock`` for a creation line like ``self.lock = threading.Lock()``."""
    m = _TARGET.match(source(site) + " ")
    return m.group(1) if m else None
