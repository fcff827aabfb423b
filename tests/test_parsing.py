"""plugins/parsing: Python source parsed into an AST by one thread at a time.

CPython 3.11's AST converter checks its recursion with a counter that all threads share. The
self-check's main thread parses each kata's test file while its runs' threads read the root
conftest; a fresh-clone CI run failed with "AST constructor recursion depth mismatch" there.
"""

from __future__ import annotations

import ast
import gc
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from plugins import parsing

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
SOURCE = "\n".join(f"def f{i}(a, b):\n    return [a + b for _ in range({i})]\n" for i in range(40))


class _LetsAnotherThreadIn:
    """Garbage in a cycle, so only the collector frees it. Its finalizer, run by a collection
    that starts in the middle of a conversion, lets the other parsing thread run."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        if threading.current_thread().name.startswith("parser"):
            time.sleep(0)


@pytest.fixture
def frequent_collections() -> Iterator[None]:
    gc.collect()
    before = gc.get_threshold()
    gc.set_threshold(100)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.collect()


def _errors_of_two_threads_parsing(parse: Callable[[str], ast.Module]) -> list[str]:
    errors: list[str] = []
    go = threading.Event()

    def parser() -> None:
        go.wait(10)
        try:
            for _ in range(20):
                for _ in range(20):
                    _LetsAnotherThreadIn()
                parse(SOURCE)
        except SystemError as error:
            errors.append(str(error))

    threads = [threading.Thread(target=parser, name=f"parser-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a parsing thread never ended"
    return errors


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12 keeps the counter per thread")
def test_two_threads_parsing_at_once_break_cpython_3_11_s_ast_converter(
    frequent_collections: None,
) -> None:
    """The bug the lock is for, shown, so that the next test can fail."""
    errors = _errors_of_two_threads_parsing(ast.parse)
    assert errors and "recursion depth mismatch" in errors[0], (
        f"two threads calling ast.parse at once did not break it here: {errors}"
    )


def test_two_threads_parsing_through_the_lock_both_get_their_tree(
    frequent_collections: None,
) -> None:
    errors = _errors_of_two_threads_parsing(parsing.parse)
    assert not errors, f"parsing.parse let two threads convert at once: {errors}"


def test_no_plugin_parses_around_the_lock() -> None:
    direct = re.compile(r"\bast\.parse\(|PyCF_ONLY_AST")
    found = [
        f"{path.relative_to(PLUGINS.parent)}:{number}"
        for path in sorted(PLUGINS.rglob("*.py"))
        if path.name != "parsing.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if direct.search(line)
    ]
    assert not found, (
        f"{', '.join(found)} parse with ast.parse: call plugins.parsing.parse, which no two "
        "threads run at once"
    )
