"""Mutants: known-buggy variants of a reference, each one or more find/replace edits of its source.

A kata's mutants live in `reference/<kata>/mutants.toml`. One edit is written inline:

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

several as `[[mutant.edit]]` tables (each with `find` and `replace`), applied in order.

Each `find` must occur exactly once in the reference's *code* (after the earlier edits), so an
edit of the reference that silently disarms a mutant is caught rather than ignored. Comments do
not count: the reference is compared line by line with its comments, comment-only lines, blank
lines and trailing whitespace left out (the tokenizer decides what is a comment), so rewording or
adding a comment never breaks a mutant, while any change to the code does. Indentation counts,
and so do strings and docstrings (they are code: a test may read them). The replacement takes
the place of the matched lines, comments between them included. Details:
- `find` may start or end mid-line, as a plain substring would.
- Comment lines at the very start or end of a `find` that `replace` repeats are context: they
  are left out of both, so the reference keeps its own wording there. Those `replace` does not
  repeat claim as many comment lines next to the match in the reference.
- `find` need not tokenize on its own, so a line of it that starts with `#` counts as a comment
  unless the reference has that very line, inside a string, at that place.
"""

from __future__ import annotations

import io
import tokenize
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class MutantError(Exception):
    """A mutant that cannot be applied (bad file, missing or ambiguous `find`)."""


@dataclass(frozen=True)
class Edit:
    find: str
    replace: str


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str
    edits: tuple[Edit, ...]
    origin: Path  # the mutants.toml that declares it, named in errors

    def apply(self, source: str) -> str:
        """The reference `source` with every edit made, or MutantError naming the one that
        does not fit."""
        for number, edit in enumerate(self.edits, start=1):
            spans = find_spans(source, edit.find, edit.replace)
            if len(spans) != 1:
                which = f" (edit {number} of {len(self.edits)})" if len(self.edits) > 1 else ""
                raise MutantError(
                    f"{_shown(self.origin)}: mutant {self.name!r}{which}: its `find` text "
                    f"occurs {len(spans)} times in the code of the reference "
                    f"{self.origin.parent.name}/{self.origin.parent.name}.py (comments aside); "
                    f"it must occur exactly once"
                )
            (start, end), replace = spans[0], _without_context(edit.find, edit.replace)[1]
            source = source[:start] + replace + source[end:]
        return source


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# -- the reference, line by line ------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    start: int  # offset of the line in the source
    end: int  # offset just past its newline
    text: str  # without the newline
    code_end: int  # column where its trailing comment starts (len(text) if it has none)
    commentable: bool  # it ends outside any string, so a `#` appended there starts a comment

    @property
    def code(self) -> str:
        return self.text[: self.code_end].rstrip()


def _lines(source: str) -> list[_Line]:
    """The source's lines, each knowing where its code ends (the tokenizer finds comments)."""
    comments: dict[int, int] = {}  # row -> column of its comment
    in_string: set[int] = set()  # rows whose end lies inside a string
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                comments[token.start[0]] = token.start[1]
            elif token.start[0] < token.end[0]:
                in_string.update(range(token.start[0], token.end[0]))
    except (tokenize.TokenError, SyntaxError):
        pass  # a half-edited source: rows past the error keep their comments as code
    lines, offset = [], 0
    for row, text in enumerate(source.split("\n"), start=1):
        end = min(offset + len(text) + 1, len(source))
        lines.append(_Line(offset, end, text, comments.get(row, len(text)), row not in in_string))
        offset = end
    return lines


# -- the find text, line by line ------------------------------------------------------------


def _is_comment(line: str) -> bool:
    """Blank or comment-only (a line of a `find`, which need not tokenize on its own)."""
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _without_context(find: str, replace: str) -> tuple[str, str]:
    """Drop the comment lines that open or close both texts alike: context, not change."""
    found, replaced = find.splitlines(keepends=True), replace.splitlines(keepends=True)
    while len(found) > 1 and replaced and found[0] == replaced[0] and _is_comment(found[0]):
        found, replaced = found[1:], replaced[1:]
    while len(found) > 1 and replaced and found[-1] == replaced[-1] and _is_comment(found[-1]):
        found, replaced = found[:-1], replaced[:-1]
    return "".join(found), "".join(replaced)


@dataclass(frozen=True)
class _Pattern:
    code: list[str]  # its lines from the first code line to the last, without newlines
    ends_line: bool  # the last code line ends with its newline (else it may end mid-line)
    claims_above: int  # comment lines before the first code line
    claims_below: int  # comment lines after the last code line
    last_claim_ends_line: bool


def _pattern(find: str) -> _Pattern:
    lines = find.splitlines(keepends=True)
    code_rows = [n for n, line in enumerate(lines) if not _is_comment(line)]
    if not code_rows:
        raise MutantError("its `find` text holds no code")
    first, last = code_rows[0], code_rows[-1]
    return _Pattern(
        code=[line.rstrip("\n") for line in lines[first : last + 1]],
        ends_line=lines[last].endswith("\n"),
        claims_above=first,
        claims_below=len(lines) - 1 - last,
        last_claim_ends_line=lines[-1].endswith("\n"),
    )


def _code_variants(text: str, line: _Line) -> Iterator[str]:
    """The code a line of `find` may stand for: all of it, or what precedes one of its `#`."""
    yield text.rstrip()
    if line.commentable:
        for column, char in enumerate(text):
            if char == "#" and text[:column].strip():
                yield text[:column].rstrip()


def _same_line(text: str, line: _Line) -> bool:
    return any(variant == line.code for variant in _code_variants(text, line))


# -- matching -------------------------------------------------------------------------------


def find_spans(source: str, find: str, replace: str = "") -> list[tuple[int, int]]:
    """Where `find` occurs in the code of `source`: (start, end) offsets of the text to replace.

    `replace` only tells which comment lines of `find` are context (see the module docstring).
    """
    pattern = _pattern(_without_context(find, replace)[0])
    lines = _lines(source)
    spans: set[tuple[int, int]] = set()
    for row, line in enumerate(lines):
        if len(pattern.code) == 1 and not pattern.ends_line:
            matches = list(_within(pattern.code[0], line))
        else:
            matches = [
                (column, end)
                for column in _suffix_columns(pattern.code[0], line)
                if (end := _match_rest(lines, row, pattern)) is not None
            ]
        for column, end in matches:
            if pattern.claims_above and column:
                continue  # comment lines precede the find's first line, so it is a whole line
            spans.add((_claim_above(lines, row, pattern.claims_above) + column, end))
    return sorted(spans)


def _within(text: str, line: _Line) -> Iterator[tuple[int, int]]:
    """Where `text` (a find of less than a line) occurs in the line's code: its column, and
    the end offset of the text to replace."""
    region = line.text[: line.code_end]
    column = region.find(text)
    while column != -1:
        yield column, line.start + column + len(text)
        column = region.find(text, column + len(text))
    for variant in list(_code_variants(text, line))[1:]:
        if line.code.endswith(variant):  # its comment runs to the end of the line
            yield len(line.code) - len(variant), line.start + len(line.text)


def _suffix_columns(text: str, line: _Line) -> set[int]:
    return {
        len(line.code) - len(variant)
        for variant in _code_variants(text, line)
        if variant and line.code.endswith(variant)
    }


def _match_rest(lines: list[_Line], row: int, pattern: _Pattern) -> int | None:
    """Where the span ends if the pattern's later lines match the code lines after `row`."""
    for number, text in enumerate(pattern.code[1:], start=2):
        last = number == len(pattern.code)
        if _is_comment(text):
            # Skipped, unless it is the next line of a string that happens to start with `#`.
            nxt = _next_code_row(lines, row)
            if nxt is not None and text.rstrip() == lines[nxt].code:
                row = nxt
            continue
        nxt = _next_code_row(lines, row)
        if nxt is None:
            return None
        row, line = nxt, lines[nxt]
        if last and not pattern.ends_line:
            return _prefix_end(text, line)
        if not _same_line(text, line):
            return None
    return _claim_below(lines, row, pattern)


def _next_code_row(lines: list[_Line], row: int) -> int | None:
    for nxt in range(row + 1, len(lines)):
        if lines[nxt].code:
            return nxt
    return None


def _prefix_end(text: str, line: _Line) -> int | None:
    """The end offset when the find's last line (ending mid-line) opens this line."""
    if line.text[: line.code_end].startswith(text):
        return line.start + len(text)
    if any(variant == line.code for variant in list(_code_variants(text, line))[1:]):
        return line.start + len(line.text)  # its comment runs to the end of the line
    return None


def _claim_above(lines: list[_Line], row: int, claims: int) -> int:
    while claims and row > 0 and not lines[row - 1].code:
        row, claims = row - 1, claims - 1
    return lines[row].start


def _claim_below(lines: list[_Line], row: int, pattern: _Pattern) -> int:
    claims = pattern.claims_below
    while claims and row + 1 < len(lines) and not lines[row + 1].code:
        row, claims = row + 1, claims - 1
    if pattern.claims_below and not claims and not pattern.last_claim_ends_line:
        return lines[row].start + len(lines[row].text)
    return lines[row].end


# -- the file -------------------------------------------------------------------------------


def _edits(path: Path, spec: dict[str, Any], number: int) -> tuple[Edit, ...]:
    name = spec.get("name", f"#{number}")
    inline = "find" in spec or "replace" in spec
    tables = spec.get("edit")
    if inline == (tables is not None):
        raise MutantError(
            f"{path}: mutant {name!r} needs either `find` and `replace` or [[mutant.edit]] "
            f"tables, not {'both' if inline else 'neither'}"
        )
    specs = [spec] if inline else tables
    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) for s in specs):
        raise MutantError(f"{path}: mutant {name!r}: [[mutant.edit]] must be a list of tables")
    edits = []
    for index, edit in enumerate(specs, start=1):
        where = f"mutant {name!r}" + ("" if inline else f" edit {index}")
        missing = [key for key in ("find", "replace") if not isinstance(edit.get(key), str)]
        if missing:
            raise MutantError(f"{path}: {where} lacks {', '.join(missing)}")
        find, replace = edit["find"], edit["replace"]
        if find == replace:
            raise MutantError(f"{path}: {where} changes nothing")
        try:
            _pattern(_without_context(find, replace)[0])
        except MutantError as error:
            raise MutantError(f"{path}: {where}: {error}") from None
        edits.append(Edit(find, replace))
    return tuple(edits)


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
        missing = [key for key in ("name", "bug") if key not in spec]
        if missing:
            raise MutantError(f"{path}: mutant #{number} lacks {', '.join(missing)}")
        edits = _edits(path, spec, number)
        mutants.append(Mutant(str(spec["name"]), str(spec["bug"]), edits, path))
    names = [m.name for m in mutants]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise MutantError(f"{path}: duplicate mutant names {', '.join(duplicates)}")
    return mutants
