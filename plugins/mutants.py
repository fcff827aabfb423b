"""Mutants: known-buggy variants of a reference, each a find/replace on its source.

A kata's mutants live in `reference/<kata>/mutants.toml`:

    [[mutant]]
    name = "unlocked-increment"
    bug = "increment reads and writes the count without holding the lock"
    find = '''
            with self._lock:
                self._value += 1
    '''
    replace = '''
            self._value += 1
    '''

`find` must occur exactly once in the reference, so an edit of the reference that silently
disarms a mutant is caught rather than ignored.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path


class MutantError(Exception):
    """A mutant that cannot be applied (bad file, missing or ambiguous `find`)."""


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str
    find: str
    replace: str

    def apply(self, source: str) -> str:
        occurrences = source.count(self.find)
        if occurrences != 1:
            raise MutantError(
                f"mutant {self.name!r}: its `find` text occurs {occurrences} times in the "
                f"reference (it must occur exactly once)"
            )
        return source.replace(self.find, self.replace)


def load(path: Path) -> list[Mutant]:
    """The mutants in `path`; an absent file means none."""
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise MutantError(f"{path}: {error}") from error
    mutants = []
    for number, spec in enumerate(data.get("mutant", []), start=1):
        missing = [key for key in ("name", "bug", "find", "replace") if key not in spec]
        if missing:
            raise MutantError(f"{path}: mutant #{number} lacks {', '.join(missing)}")
        if spec["find"] == spec["replace"]:
            raise MutantError(f"{path}: mutant {spec['name']!r} changes nothing")
        mutants.append(Mutant(*(str(spec[key]) for key in ("name", "bug", "find", "replace"))))
    names = [m.name for m in mutants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MutantError(f"{path}: duplicate mutant names {', '.join(duplicates)}")
    return mutants
