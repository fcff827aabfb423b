"""Python source parsed into an AST by one thread at a time.

CPython 3.11 keeps the counter with which its AST converter checks its own recursion in the
interpreter's state, which all threads share. Two threads converting at once (the collector
can run Python code, and so let another thread in, in the middle of one) make one of them fail
with "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905,
pytest-dev/pytest#10763). The self-check's main thread parses each kata's test file while its
runs' threads read the root conftest, and the probe bench parses in its runs' threads: a CI run
met it once (session 24). Every parse in plugins/ goes through ``parse``.
"""

from __future__ import annotations

import ast
import threading

_ONE_AT_A_TIME = threading.Lock()


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse(source, filename)``, while no other thread of this process parses."""
    with _ONE_AT_A_TIME:
        return ast.parse(source, filename)
