"""A tiny kata repository (adder, greeter) built inside pytester's folder, to break on purpose."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

MANIFEST = """
[defaults]
budget_seconds = 5

[tracks.basics]
title = "Basics"
needs = "nothing"

[[kata]]
name = "adder"
track = "basics"
title = "Add two numbers"
hints = ["Use the plus operator.", "return a + b"]

[[kata]]
name = "greeter"
track = "basics"
title = "Greet someone"
hints = ["Use an f-string.", "return f'hello {name}'"]
"""

ADDER_STUB = '''
"""Kata `adder`: add two numbers.

§1 add(a, b) returns the sum of any two integers, negative ones too.
"""


def add(a: int, b: int) -> int:
    """The sum of a and b."""
    # TODO(kata): add them.
    raise NotImplementedError
'''

ADDER_REFERENCE = '''
"""Kata `adder`: add two numbers.

§1 add(a, b) returns the sum of any two integers, negative ones too.
"""


def add(a: int, b: int) -> int:
    """The sum of a and b."""
    return a + b
'''

ADDER_TESTS = """
import pytest
from adder import add


@pytest.mark.clause(1)
def test_adds_small_numbers():
    assert add(2, 3) == 5, "2 + 3 must be 5"


@pytest.mark.clause(1)
def test_adds_negative_numbers():
    assert add(-2, -3) == -5, "-2 + -3 must be -5"
"""

ADDER_MUTANTS = """
[[mutant]]
name = "subtracts"
bug = "subtracts instead of adding"
find = "return a + b"
replace = "return a - b"

[[mutant]]
name = "off-by-one"
bug = "adds one too many"
find = "return a + b"
replace = "return a + b + 1"

[[mutant]]
name = "absolute"
bug = "adds absolute values"
find = "return a + b"
replace = "return abs(a) + abs(b)"
"""

GREETER_STUB = '''
"""Kata `greeter`: greet someone.

§1 greet(name) says hello to `name`.
"""


def greet(name: str) -> str:
    """A greeting."""
    # TODO(kata): greet.
    raise NotImplementedError
'''

GREETER_REFERENCE = '''
"""Kata `greeter`: greet someone.

§1 greet(name) says hello to `name`.
"""


def greet(name: str) -> str:
    """A greeting."""
    return f"hello {name}"
'''

GREETER_TESTS = """
import pytest
from greeter import greet


@pytest.mark.clause(1)
def test_greets_by_name():
    assert greet("ada") == "hello ada", "the greeting must be 'hello <name>'"
"""

GREETER_MUTANTS = """
[[mutant]]
name = "shouts"
bug = "greets in capitals"
find = 'return f"hello {name}"'
replace = 'return f"HELLO {name}"'

[[mutant]]
name = "no-name"
bug = "forgets the name"
find = 'return f"hello {name}"'
replace = 'return "hello"'

[[mutant]]
name = "comma"
bug = "adds a comma"
find = 'return f"hello {name}"'
replace = 'return f"hello, {name}"'
"""

INI = """
[pytest]
addopts = -ra --strict-markers --import-mode=importlib -p no:cacheprovider
asyncio_default_fixture_loop_scope = function
testpaths = katas
"""


class KataRepo:
    """A two-kata repository (adder, greeter) that the tests can break on purpose."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.root = pytester.path
        files = {
            "katas/curriculum.toml": MANIFEST,
            "katas/adder/README.md": "# adder\n\nAdd two numbers.\n",
            "katas/adder/adder.py": ADDER_STUB,
            "katas/adder/test_adder.py": ADDER_TESTS,
            "reference/adder/adder.py": ADDER_REFERENCE,
            "reference/adder/mutants.toml": ADDER_MUTANTS,
            "katas/greeter/README.md": "# greeter\n\nGreet someone.\n",
            "katas/greeter/greeter.py": GREETER_STUB,
            "katas/greeter/test_greeter.py": GREETER_TESTS,
            "reference/greeter/greeter.py": GREETER_REFERENCE,
            "reference/greeter/mutants.toml": GREETER_MUTANTS,
            "conftest.py": (REPO_ROOT / "conftest.py").read_text(encoding="utf-8"),
            "pytest.ini": INI,
        }
        for relative, text in files.items():
            self.write(relative, text)

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def run(self, *args: str, timeout: float = 300) -> pytest.RunResult:
        """pytest in a fresh process (signals, meta-path finders and threads stay isolated)."""
        return self.pytester.runpytest_subprocess(*args, timeout=timeout)


def process_gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie waiting to be reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True
