"""Static checks of the curriculum: files present, hints given, stub and reference agree.

Used by the self-check (plugins/verify.py); each check returns plain-English problems.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import io
import re
import sys
import tokenize
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from plugins import contract, mutants, parsing
from plugins.curriculum import Curriculum, Kata

MIN_HINTS = 2
MIN_MUTANTS = 3
TODO_MARK = "TODO(kata)"


def curriculum_problems(curriculum: Curriculum) -> list[str]:
    """Problems that concern the whole curriculum rather than one kata."""
    problems = []
    names = Counter(k.name for k in curriculum.katas)
    problems += [
        f"kata name {n!r} appears {c} times in the manifest" for n, c in names.items() if c > 1
    ]
    listed = set(names)
    katas_root = curriculum.root / "katas"
    for folder in sorted(
        p for p in katas_root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    ):
        if folder.name not in listed:
            problems.append(f"katas/{folder.name}/ is not listed in katas/curriculum.toml")
    for kata in curriculum.katas:
        if kata.module in sys.stdlib_module_names:
            problems.append(
                f"{kata.name}: shadows the standard library module of that name; rename the kata"
            )
        if not curriculum.kata_dir(kata).is_dir():
            problems.append(
                f"{kata.name}: listed in the manifest but katas/{kata.name}/ is missing"
            )
        if curriculum.tracks and kata.track not in curriculum.tracks:
            problems.append(f"{kata.name}: track {kata.track!r} is not defined under [tracks]")
    return problems


def kata_problems(curriculum: Curriculum, kata: Kata) -> list[str]:
    """Problems with one kata's files, hints, mutants and contract."""
    problems = []
    readme = curriculum.kata_dir(kata) / "README.md"
    if not readme.is_file() or not readme.read_text(encoding="utf-8").strip():
        problems.append("README.md is missing or empty")
    if len([h for h in kata.hints if h.strip()]) < MIN_HINTS:
        problems.append(f"needs at least {MIN_HINTS} non-empty hints in the manifest")
    stub, reference = curriculum.stub_path(kata), curriculum.reference_path(kata)
    tests = test_files(curriculum, kata)
    for path, role in ((stub, "stub"), (reference, "reference")):
        if not path.is_file():
            problems.append(f"the {role} {path.relative_to(curriculum.root)} is missing")
    if not tests:
        problems.append(f"no test_*.py file in katas/{kata.name}/")
    if problems:
        return problems
    stub_source = stub.read_text(encoding="utf-8")
    # Marks inside strings are edit sites in kernel source (OpenCL C), which cannot raise.
    todos, raises = _comment_marks(stub_source), stub_source.count("raise NotImplementedError")
    if todos == 0 or todos != raises:
        problems.append(
            f"the stub must raise NotImplementedError at each {TODO_MARK} edit site in its "
            f"Python code (found {todos} marks in comments and {raises} raises)"
        )
    if TODO_MARK in reference.read_text(encoding="utf-8"):
        problems.append(f"the reference still contains {TODO_MARK}")
    try:
        found = mutants.load(curriculum.mutants_path(kata))
    except mutants.MutantError as error:
        problems.append(str(error))
        found = []
    if len(found) < MIN_MUTANTS:
        problems.append(f"has {len(found)} mutants; at least {MIN_MUTANTS} are needed")
    problems += contract_problems(kata, stub, reference, tests)
    problems += contract.problems(stub, reference, tests)
    return problems


def _comment_marks(source: str) -> int:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    try:
        return sum(t.string.count(TODO_MARK) for t in tokens if t.type == tokenize.COMMENT)
    except (tokenize.TokenError, SyntaxError):  # a stub that does not parse: count them all
        return source.count(TODO_MARK)


def test_files(curriculum: Curriculum, kata: Kata) -> list[Path]:
    return sorted(curriculum.kata_dir(kata).glob("test_*.py"))


def imported_names(test_file: Path, module: str) -> set[str]:
    """Names the test file takes from the kata module (`from m import X` or `m.X`)."""
    tree = parsing.parse(test_file.read_text(encoding="utf-8"), str(test_file))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == module:
            names |= {alias.name for alias in node.names}
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == module
        ):
            names.add(node.attr)
    return names


def _load_isolated(path: Path, label: str) -> ModuleType:
    """Import a module file under a private name, leaving sys.modules as it was."""
    name = f"_kata_consistency_{label}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing look the module up while it executes
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def _shape(obj: object) -> dict[str, str]:
    """A comparable description of a contract name: its signature, and its public methods'."""
    shape: dict[str, str] = {}
    # type(obj), not inspect.isclass: a lazy proxy (a Celery task before its app is configured)
    # would evaluate itself, running the stub's NotImplementedError.
    if issubclass(type(obj), type):
        shape["kind"] = "class"
        for attr, value in vars(obj).items():
            if attr.startswith("_") and attr != "__init__":
                continue
            if callable(value) or issubclass(type(value), (property, staticmethod, classmethod)):
                shape[attr] = _signature(value)
    elif callable(obj):
        shape["kind"] = "function"
        shape["signature"] = _signature(obj)
    else:
        shape["kind"] = type(obj).__name__
    return shape


def _signature(obj: object) -> str:
    kind = type(obj)  # (not isinstance: see _shape)
    if issubclass(kind, property):
        return "property"
    target = cast(Any, obj).__func__ if issubclass(kind, (staticmethod, classmethod)) else obj
    target = _unevaluated(target)
    try:
        signature = str(inspect.signature(target))  # type: ignore[arg-type]
    except Exception:  # no signature, or a lazy proxy whose evaluation fails in the stub
        return "?"
    # A default that is a function prints with its address, which differs between modules.
    return re.sub(r" at 0x[0-9a-fA-F]+", "", signature)


def _unevaluated(obj: object) -> object:
    """The function behind a Celery task that its app has not made yet (a lazy proxy holding
    the function it will wrap), else `obj`."""
    try:
        arguments = object.__getattribute__(obj, "_Proxy__args")
    except AttributeError:
        return obj
    return next((a for a in arguments if inspect.isfunction(a)), obj)


def contract_problems(kata: Kata, stub: Path, reference: Path, tests: list[Path]) -> list[str]:
    """Every name the tests import exists in stub and reference, with the same signatures."""
    try:
        modules = {
            "stub": _load_isolated(stub, f"stub_{kata.name}"),
            "reference": _load_isolated(reference, f"ref_{kata.name}"),
        }
    except Exception as error:  # a module that does not import is itself the problem
        return [f"stub or reference does not import: {type(error).__name__}: {error}"]
    wanted = set().union(*(imported_names(t, kata.module) for t in tests))
    if not wanted:
        return [
            f"the tests import nothing from {kata.module!r}: test files must import the kata module by name"
        ]
    problems = []
    for name in sorted(wanted):
        shapes = {}
        for role, module in modules.items():
            if not hasattr(module, name):
                problems.append(f"the {role} does not define {name!r}, which the tests import")
            else:
                shapes[role] = _shape(getattr(module, name))
        if len(shapes) == 2 and shapes["stub"] != shapes["reference"]:
            differ = sorted(
                k
                for k in shapes["stub"].keys() | shapes["reference"].keys()
                if shapes["stub"].get(k) != shapes["reference"].get(k)
            )
            problems.append(f"{name!r} differs between stub and reference in: {', '.join(differ)}")
    return problems
