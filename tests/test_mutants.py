"""Mutants: several edits each, matching that ignores comments, and `--kata-impl=mutant:NAME`."""

from __future__ import annotations

import ast
import io
import textwrap
import tokenize
from pathlib import Path

import pytest

from plugins import mutants
from tests.kata_repo import ADDER_REFERENCE, GREETER_MUTANTS, REPO_ROOT, KataRepo

REFERENCE = textwrap.dedent(
    '''
    class Counter:
        """A counter that threads share."""

        def increment(self) -> None:
            """Add one."""
            # Read and write under one lock, or two threads could both write count + 1.
            with self._lock:
                self._value += 1  # the only write

        def reset(self) -> None:
            label = "count # of resets"
            with self._lock:
                self._value = 0
    '''
)

UNLOCKED = """
[[mutant]]
name = "unlocked-increment"
bug = "increments without the lock"
find = '''
        # Read and write under one lock, or two threads could both write count + 1.
        with self._lock:
            self._value += 1  # the only write
'''
replace = '''
        self._value += 1
'''
"""


def _load(tmp_path: Path, toml: str) -> list[mutants.Mutant]:
    path = tmp_path / "counter" / "mutants.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(toml, encoding="utf-8")
    return mutants.load(path)


def _apply(tmp_path: Path, toml: str, source: str = REFERENCE) -> str:
    [mutant] = _load(tmp_path, toml)
    return mutant.apply(source)


def test_a_mutant_with_several_edits_makes_them_in_order(tmp_path: Path) -> None:
    toml = """
    [[mutant]]
    name = "unlocked-and-reset-to-one"
    bug = "increments without the lock and resets to one"
    [[mutant.edit]]
    find = "            self._value += 1  # the only write\\n"
    replace = "            self._value += 1\\n            self._spare = 0\\n"
    [[mutant.edit]]
    find = "self._spare = 0"
    replace = "self._value = 1"
    """
    mutated = _apply(tmp_path, textwrap.dedent(toml))
    expected = REFERENCE.replace("+= 1  # the only write", "+= 1\n            self._value = 1")
    assert mutated == expected, (
        "each edit must be made in order, the second finding the text the first one wrote"
    )


def test_rewording_or_adding_comments_inside_a_find_keeps_the_mutant_applying(
    tmp_path: Path,
) -> None:
    reworded = (
        REFERENCE.replace(
            "        # Read and write under one lock, or two threads could both write count + 1.\n",
            "        # One lock around read and write: otherwise two threads both write count + 1.\n",
        )
        .replace("# the only write", "# nobody else writes")
        .replace(
            "            self._value += 1",
            "            # (a comment line added here)\n            self._value += 1",
        )
    )
    mutated = _apply(tmp_path, UNLOCKED, reworded)
    assert "        self._value += 1\n\n    def reset" in mutated, (
        "a mutant must survive comment edits in the reference: its find and the reference are "
        f"compared without comments, and the matched lines are replaced; got:\n{mutated}"
    )
    assert "with self._lock:\n            self._value = 0" in mutated, "only one span is replaced"


def test_a_code_change_inside_a_find_is_an_error_naming_the_mutant_and_its_file(
    tmp_path: Path,
) -> None:
    changed = REFERENCE.replace("self._value += 1", "self._value = self._value + 1")
    with pytest.raises(mutants.MutantError) as error:
        _apply(tmp_path, UNLOCKED, changed)
    message = str(error.value)
    assert "mutant 'unlocked-increment'" in message and "occurs 0 times" in message, message
    assert "counter/mutants.toml" in message, f"the error must name the mutants file: {message}"


def test_a_later_edit_that_no_longer_fits_is_named_by_number(tmp_path: Path) -> None:
    toml = """
    [[mutant]]
    name = "two-edits"
    bug = "two changes"
    [[mutant.edit]]
    find = "self._value = 0"
    replace = "self._value = 1"
    [[mutant.edit]]
    find = "self._value = 0"
    replace = "self._value = 2"
    """
    with pytest.raises(mutants.MutantError, match=r"'two-edits' \(edit 2 of 2\).*occurs 0 times"):
        _apply(tmp_path, textwrap.dedent(toml))


def test_find_text_inside_a_comment_is_not_an_occurrence(tmp_path: Path) -> None:
    toml = '[[mutant]]\nname = "reset-to-one"\nbug = "b"\nfind = "self._value = 0"\nreplace = "self._value = 1"\n'
    commented = REFERENCE.replace(
        "    def reset", "    # reset: self._value = 0 again\n    def reset"
    )
    mutated = _apply(tmp_path, toml, commented)
    assert mutated.count("self._value = 1") == 1 and "# reset: self._value = 0" in mutated, (
        "only code counts: the same text in a comment must neither make the find ambiguous "
        "nor be replaced"
    )


def test_a_find_that_occurs_twice_in_the_code_is_an_error(tmp_path: Path) -> None:
    toml = '[[mutant]]\nname = "no-lock"\nbug = "b"\nfind = "with self._lock:\\n"\nreplace = "if True:\\n"\n'
    with pytest.raises(mutants.MutantError, match=r"'no-lock'.*occurs 2 times"):
        _apply(tmp_path, toml)


def test_a_hash_inside_a_string_is_not_a_comment(tmp_path: Path) -> None:
    toml = """[[mutant]]\nname = "relabel"\nbug = "b"\nfind = 'label = "count # of calls"'\nreplace = 'label = ""'\n"""
    with pytest.raises(mutants.MutantError, match="occurs 0 times"):
        _apply(tmp_path, toml)


def test_docstrings_count_as_code(tmp_path: Path) -> None:
    toml = """
    [[mutant]]
    name = "no-op-increment"
    bug = "b"
    find = '''
        def increment(self) -> None:
            \"""Add one.\"""
    '''
    replace = '''
        def increment(self) -> None:
            \"""Add one.\"""
            return
    '''
    """
    changed = REFERENCE.replace('"""Add one."""', '"""Add one to the count."""')
    with pytest.raises(mutants.MutantError, match="occurs 0 times"):
        _apply(tmp_path, textwrap.dedent(toml), changed)


def test_a_comment_line_that_opens_find_and_replace_alike_keeps_the_references_wording(
    tmp_path: Path,
) -> None:
    toml = UNLOCKED.replace(
        "replace = '''\n",
        "replace = '''\n"
        "        # Read and write under one lock, or two threads could both write count + 1.\n",
    )
    reworded = REFERENCE.replace("# Read and write under one lock", "# Under one lock")
    mutated = _apply(tmp_path, toml, reworded)
    assert mutated.count("# Under one lock") == 1 and "# Read and write" not in mutated, (
        "a comment line that find and replace share is context: the reference keeps its own "
        f"wording, once; got:\n{mutated}"
    )


def test_a_mutant_needs_inline_find_or_edit_tables_not_both(tmp_path: Path) -> None:
    toml = UNLOCKED + "[[mutant.edit]]\nfind = 'a'\nreplace = 'b'\n"
    with pytest.raises(mutants.MutantError, match="not both"):
        _load(tmp_path, toml)
    with pytest.raises(mutants.MutantError, match="edit 1 lacks replace"):
        _load(tmp_path, '[[mutant]]\nname = "x"\nbug = "b"\n[[mutant.edit]]\nfind = "a"\n')


def _reword_comments(source: str) -> str:
    """Every comment reworded, and a comment line added after each comment line."""
    lines = source.split("\n")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, column = token.start
            indent = lines[row - 1][:column]
            lines[row - 1] = indent + "# (reworded)"
            if not indent.strip():
                lines[row - 1] += f"\n{indent}# (an added comment line)"
    return "\n".join(lines)


def test_every_mutant_of_the_repository_survives_reworded_comments() -> None:
    broken = []
    for path in sorted((REPO_ROOT / "reference").glob("*/mutants.toml")):
        reference = (path.parent / f"{path.parent.name}.py").read_text(encoding="utf-8")
        for mutant in mutants.load(path):
            try:
                reworded = mutant.apply(_reword_comments(reference))
            except mutants.MutantError as error:
                broken.append(str(error))
                continue
            if ast.dump(ast.parse(reworded)) != ast.dump(ast.parse(mutant.apply(reference))):
                broken.append(f"{path.parent.name}/{mutant.name} makes a different program")
    assert not broken, "rewording comments must not disarm or change a mutant:\n" + "\n".join(
        broken
    )


# -- running one mutant by hand (pytester) ---------------------------------------------------

CHILD_TEST = """
import subprocess
import sys


def test_a_child_python_imports_the_same_adder():
    child = subprocess.run(
        [sys.executable, "-c", "from adder import add; print(add(2, 3))"],
        capture_output=True, text=True, timeout=60,
    )
    assert child.stdout.strip() == "5", f"the child process computed {child.stdout!r}"
"""


def test_a_mutant_by_name_replaces_its_katas_module_only(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    kata_repo.write("katas/adder/test_adder_child.py", CHILD_TEST)
    scratch = kata_repo.root / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    result = kata_repo.run("katas", "--kata-impl=mutant:subtracts")
    result.stdout.fnmatch_lines(
        ["kata implementation: mutant adder/subtracts: subtracts instead of adding"]
    )
    result.assert_outcomes(passed=1, failed=3)  # greeter passes: it gets the reference
    result.stdout.fnmatch_lines(["*the child process computed '-1*"])
    leftovers = [p.name for p in scratch.iterdir() if p.name.startswith("kata-mutant-")]
    assert not leftovers, f"the mutated reference must be removed at the end: {leftovers}"


def test_an_unknown_mutant_is_a_usage_error_listing_the_valid_names(kata_repo: KataRepo) -> None:
    result = kata_repo.run("katas", "--kata-impl=mutant:subtract")
    assert result.ret == 4, "an unknown mutant must stop the run as a usage error"
    result.stderr.fnmatch_lines(
        [
            "*--kata-impl=mutant:subtract: no such mutant (did you mean *subtracts*",
            "*adder: subtracts, off-by-one, absolute",
            "*greeter: shouts, no-name, comma",
        ]
    )
    result = kata_repo.run("katas", "--kata-impl=mutant:greeter/subtracts")
    assert result.ret == 4, "a name the kata does not have must be a usage error"
    result.stderr.fnmatch_lines(["*greeter: shouts, no-name, comma"])
    assert "adder:" not in result.stderr.str(), "only the named kata's mutants are listed"


def test_a_name_in_several_katas_needs_its_kata(kata_repo: KataRepo) -> None:
    kata_repo.write(
        "reference/greeter/mutants.toml",
        GREETER_MUTANTS
        + '\n[[mutant]]\nname = "subtracts"\nbug = "b"\nfind = \'f"hello\'\nreplace = \'f"bye\'\n',
    )
    result = kata_repo.run("katas", "--kata-impl=mutant:subtracts")
    assert result.ret == 4, "an ambiguous mutant name must stop the run as a usage error"
    result.stderr.fnmatch_lines(
        ["*several katas*mutant:adder/subtracts, mutant:greeter/subtracts*"]
    )
    result = kata_repo.run("katas/greeter", "--kata-impl=mutant:subtracts")
    result.stdout.fnmatch_lines(["kata implementation: mutant greeter/subtracts*"])
    result.assert_outcomes(failed=1)
    result = kata_repo.run("katas", "--kata-impl=mutant:greeter/subtracts")
    result.assert_outcomes(passed=2, failed=1)


# -- the self-check (pytester) ---------------------------------------------------------------

COMMENTED_ADDER = ADDER_REFERENCE.replace(
    "    return a + b\n",
    "    # Plain addition: the operands are ints.\n    total = a + b\n    return total\n",
)

COMMENTED_MUTANTS = """
[[mutant]]
name = "subtracts"
bug = "subtracts instead of adding"
find = '''
    # Plain addition: the operands are ints.
    total = a + b
    return total
'''
replace = '''
    return a - b
'''

[[mutant]]
name = "off-by-one"
bug = "adds one too many"
find = "total = a + b"
replace = "total = a + b + 1"

[[mutant]]
name = "absolute"
bug = "adds absolute values"
[[mutant.edit]]
find = "total = a + b\\n"
replace = "total = abs(a) + b\\n"
[[mutant.edit]]
find = "    return total\\n"
replace = "    return total + abs(b) - b\\n"
"""


def _commented_adder(kata_repo: KataRepo) -> None:
    kata_repo.write("reference/adder/adder.py", COMMENTED_ADDER)
    kata_repo.write("reference/adder/mutants.toml", COMMENTED_MUTANTS)


def test_the_self_check_runs_multi_edit_mutants_and_survives_reworded_comments(
    kata_repo: KataRepo,
) -> None:
    _commented_adder(kata_repo)
    reference = kata_repo.root / "reference/adder/adder.py"
    reference.write_text(
        reference.read_text().replace("# Plain addition: the operands are ints.", "# Ints add.")
    )
    result = kata_repo.run("--kata-verify", "katas/adder")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["adder*fails 2/2*passes 2/2*3/3 killed*"])


def test_a_code_change_under_a_mutant_fails_the_self_check_naming_it(kata_repo: KataRepo) -> None:
    _commented_adder(kata_repo)
    reference = kata_repo.root / "reference/adder/adder.py"
    reference.write_text(reference.read_text().replace("return total", "return int(total)"))
    result = kata_repo.run("--kata-verify", "katas/adder")
    assert result.ret == 1, "a mutant the reference no longer fits must fail the self-check"
    result.stdout.fnmatch_lines(
        [
            "*reference/adder/mutants.toml: mutant 'subtracts': its `find` text occurs 0 times*",
            "*mutant 'absolute' (edit 2 of 2): its `find` text occurs 0 times*",
        ]
    )
