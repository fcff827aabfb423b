"""Where a self-check's or a bench's run of a kata's suite starts pytest: in the kata's folder.

To collect `katas/locks/test_locks.py`, pytest lists every folder from its conftest boundary
(`--confcutdir`, by default the rootdir) down to the file, and asks its hooks about each entry
of each listing: whether to ignore it (a few `fnmatch` calls each), which collector it makes.
The repository's root and `katas/` (one folder per kata) cost about 80 of the 410 million
instructions a run spends before its first test, measured. With `--confcutdir=katas/locks`
pytest lists that folder only.

pytest then no longer loads the root `conftest.py`, which is there to list the plugins. This
module, given to the run with `-p`, imports the plugins that list names at the moment pytest
would have loaded the conftest (its `pytest_load_initial_conftests`, which runs before the
conftests are loaded and after the capture plugin has started), in the same order and the same
way, so that the run has the same plugins and calls their hooks in the same order. A root
conftest that does anything else (a hook, a fixture, a computed list) must be loaded: its runs
start as usual.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from plugins import parsing

CONFTEST = "conftest.py"


def in_the_kata(argv: list[str], root: Path) -> list[str]:
    """``argv`` (a kata's test file first) for a run that starts in the test file's folder,
    where the root conftest allows it; else ``argv`` unchanged."""
    if listed_plugins(root / CONFTEST) is None:
        return argv
    folder = (root / argv[0]).parent  # argv[0] may be relative to the root, the run's folder
    return [*argv, "-p", __name__, f"--confcutdir={folder}"]


@functools.lru_cache(maxsize=8)
def listed_plugins(conftest: Path) -> tuple[str, ...] | None:
    """The modules ``conftest``'s ``pytest_plugins`` lists, if a list of names is all that it
    holds besides its docstring and ``from __future__`` imports; else None."""
    try:
        tree = parsing.parse(conftest.read_text(encoding="utf-8"), str(conftest))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    found: tuple[str, ...] | None = None
    for node in tree.body:
        if _is_docstring(node) or (
            isinstance(node, ast.ImportFrom) and node.module == "__future__"
        ):
            continue
        names = _plugin_list(node)
        if names is None or found is not None:
            return None  # anything else, or a second list: load it as pytest would
        found = names
    return found


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _plugin_list(node: ast.stmt) -> tuple[str, ...] | None:
    """``pytest_plugins = ["a", "b"]`` (a list or tuple of string literals) -> ("a", "b")."""
    if not (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id == "pytest_plugins"
        and isinstance(node.value, ast.List | ast.Tuple)
    ):
        return None
    names = []
    for item in node.value.elts:
        if not (isinstance(item, ast.Constant) and isinstance(item.value, str)):
            return None
        names.append(item.value)
    return tuple(names)


# -- configure (before the conftests are loaded) ----------------------------------------------


def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # As pytest imports a conftest's `pytest_plugins` (PytestPluginManager.consider_module).
    for name in listed_plugins(early_config.rootpath / CONFTEST) or ():
        early_config.pluginmanager.import_plugin(name, consider_entry_points=True)
