"""Where fresh Python processes started by the plugins cache their compiled bytecode.

Each verify run and each MPI rank is a new process that imports pytest's rewritten test modules.
Where PYTHONDONTWRITEBYTECODE is set (this project's machines set it), Python caches nothing and
every process recompiles them: about 30 ms per test module per verify run, and 0.8 s per MPI
rank (all of pytest's and Hypothesis's plugin modules, which pytest rewrites too). The plugins
therefore have those processes write their bytecode here, outside the source tree.

Standard library only: the self-check's worker imports it before anything else.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

VARIABLES = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")


def folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "parallel-katas" / "pycache"


def enable_here() -> None:
    """This process (and what it forks) writes and reads bytecode under folder()."""
    sys.dont_write_bytecode = False
    sys.pycache_prefix = str(folder())


def environment(env: dict[str, str]) -> dict[str, str]:
    """`env` for a new Python process that caches its bytecode under folder()."""
    changed = {k: v for k, v in env.items() if k not in VARIABLES}
    changed["PYTHONPYCACHEPREFIX"] = str(folder())
    return changed
