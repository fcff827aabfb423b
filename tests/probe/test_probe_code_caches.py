"""The exhaustive search reads each code object's bytecode once and keeps what it found by the
object's id (hashing a code object reads its bytecode): a code object made later, at the
address of one that is gone, must never be given the other's findings."""

from __future__ import annotations

from types import CodeType
from typing import Any

from plugins.probe.bytecode_paths import ENTRY, EXIT, access, path


def _made(source: str) -> CodeType:
    """A new code object of function ``f`` in ``source``, freed as soon as the caller drops
    it (nothing else refers to it: not the function, not the module's code)."""
    names: dict[str, Any] = {}
    exec(compile(source, "<made>", "exec"), names)
    code: CodeType = names.pop("f").__code__
    return code


def test_what_a_code_object_touches_is_never_read_from_another_made_at_its_address() -> None:
    reads = "def f(box):\n    return box.left\n"
    writes = "def f(box):\n    box.right = 1\n"
    for n in range(200):
        source = reads if n % 2 == 0 else writes
        code = _made(source)
        whole = path(code, ENTRY, EXIT, traced=False)
        expected = frozenset({"r:.left"}) if source is reads else frozenset({"w:.right"})
        assert whole == expected, (
            f"function #{n} ({source.splitlines()[1].strip()}) was read as touching {whole}: "
            f"the cache gave it what another code object at the same address touched"
        )
        del code


def test_a_switch_point_s_access_is_read_from_its_own_code_object() -> None:
    for n in range(200):
        attribute = f"a{n % 2}"
        code = _made(f"def f(box):\n    return box.{attribute}\n")
        found = {access(code, offset) for offset in range(0, len(code.co_code), 2)}
        assert frozenset({f"r:.{attribute}"}) in found, (
            f"reading .{attribute} was read as {found - {None}}: another code object's"
        )
        del code
