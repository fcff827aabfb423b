"""A kata's contract, clause by clause: numbered in the stub, claimed by tests, shown on failure.

A stub's module docstring is the kata's contract. Each clause in it starts with `§N`
("§3 It raises `ValueError` when `n` is negative."), running to the next `§`, the next bullet
or the end of the paragraph. Every kata test says which clauses it checks with
`@pytest.mark.clause(3)`; when it fails, the report quotes those clauses, so the learner reads
the promise they broke next to the evidence. The self-check (plugins/consistency.py) refuses a
clause that no test claims, a claim of a clause that does not exist, and a test that claims none.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Generator
from pathlib import Path

import pytest

from plugins import impl, parsing

MARKER = "clause"
TAG = re.compile(r"§(\d+)\b")
CLAUSE_END = re.compile(r"\n\s*\n|\n\s*- |§\d")  # a blank line, the next bullet, the next clause


# -- the clauses, read from a docstring (no pytest needed: the self-check uses it too) --------


def clauses(docstring: str) -> dict[int, str]:
    """{number: text} for every `§N` clause of a contract, whitespace folded."""
    found: dict[int, str] = {}
    for tag in TAG.finditer(docstring):
        rest = docstring[tag.end() :]
        end = CLAUSE_END.search(rest)
        text = " ".join((rest[: end.start()] if end else rest).split())
        found.setdefault(int(tag.group(1)), text)
    return found


def clause_tags(docstring: str) -> list[int]:
    """Every `§N` in order, repeats included (the self-check refuses repeats)."""
    return [int(tag.group(1)) for tag in TAG.finditer(docstring)]


def module_docstring(path: Path) -> str:
    return ast.get_docstring(parsing.parse(path.read_text(encoding="utf-8"), str(path))) or ""


def claims(test_file: Path) -> dict[str, set[int]]:
    """{test name: clause numbers} from `@pytest.mark.clause(...)` on each test function, plus
    a module-level `pytestmark = pytest.mark.clause(...)` for every test of the file."""
    tree = parsing.parse(test_file.read_text(encoding="utf-8"), str(test_file))
    everywhere: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            marks = node.value.elts if isinstance(node.value, ast.List) else [node.value]
            for mark in marks:
                everywhere |= _numbers(mark)
    found: dict[str, set[int]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            numbers = set(everywhere)
            for decorator in node.decorator_list:
                numbers |= _numbers(decorator)
            found[node.name] = numbers
    return found


def _numbers(node: ast.expr) -> set[int]:
    """The numbers of a `pytest.mark.clause(1, 2)` expression; none for any other."""
    if not (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == MARKER
    ):
        return set()
    return {
        arg.value for arg in node.args if isinstance(arg, ast.Constant) and type(arg.value) is int
    }


def problems(stub: Path, reference: Path, tests: list[Path]) -> list[str]:
    """What is wrong with a kata's clauses: missing, repeated, differing, unclaimed, unknown."""
    contract = module_docstring(stub)
    tags = clause_tags(contract)
    if not tags:
        return ["the stub's docstring numbers no contract clause (write §1, §2, ... before each)"]
    found: list[str] = []
    repeated = sorted({n for n in tags if tags.count(n) > 1})
    if repeated:
        found.append(f"the contract numbers {_listed(repeated)} more than once")
    if sorted(set(tags)) != list(range(1, max(tags) + 1)):
        missing = sorted(set(range(1, max(tags) + 1)) - set(tags))
        found.append(f"the contract's clauses skip {_listed(missing)}")
    if clauses(module_docstring(reference)) != clauses(contract):
        found.append("the reference's docstring does not state the stub's clauses word for word")
    claimed: set[int] = set()
    for test_file in tests:
        for test, numbers in claims(test_file).items():
            if not numbers:
                found.append(f"{test_file.name}::{test} claims no clause (@pytest.mark.clause(N))")
            unknown = sorted(numbers - set(tags))
            if unknown:
                found.append(
                    f"{test_file.name}::{test} claims {_listed(unknown)}, not in the contract"
                )
            claimed |= numbers
    unclaimed = sorted(set(tags) - claimed)
    if unclaimed:
        found.append(
            f"no test claims {_listed(unclaimed)}: each clause needs a test that checks it"
        )
    return found


def _listed(numbers: list[int]) -> str:
    return ", ".join(f"§{n}" for n in numbers)


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*numbers): the contract clauses (§N in the stub's docstring) this test "
        f"checks, quoted when it fails; e.g. @pytest.mark.{MARKER}(2, 3)",
    )


# -- run-time hooks --------------------------------------------------------------------------


def _quoted(item: pytest.Item) -> str:
    """The clauses a kata test checks, as the report section shows them ('' for none)."""
    kata = impl.kata_of(item)
    marks = list(item.iter_markers(MARKER))
    if kata is None or not marks:
        return ""
    implementation = impl.implementation(item.config)
    assert implementation is not None  # kata_of found the kata through it
    stub = implementation.curriculum.stub_path(kata)
    try:
        text = clauses(module_docstring(stub))
    except (OSError, SyntaxError):
        return ""
    numbers = sorted({n for mark in marks for n in mark.args if isinstance(n, int)})
    return "\n".join(f"§{n} {text[n]}" for n in numbers if n in text)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and call.when == "call":
        quoted = _quoted(item)
        if quoted:
            kata = impl.kata_of(item)
            where = f" (docstring of katas/{kata.name}/{kata.module}.py)" if kata else ""
            report.sections.append((f"the contract this test checks{where}", quoted))
    return report
