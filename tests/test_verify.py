"""The self-check catches a stub that passes, a mutant that survives and a reference that fails."""

from __future__ import annotations

from tests.kata_repo import ADDER_MUTANTS, ADDER_REFERENCE, KataRepo


def test_a_sound_repository_verifies_and_prints_the_table(kata_repo: KataRepo) -> None:
    result = kata_repo.run("--kata-verify")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*kata verification*",
            "kata*stub*reference*mutants*seconds",
            "adder*fails 2/2*passes 2/2*3/3 killed*",
            "greeter*fails 1/1*passes 1/1*3/3 killed*",
        ]
    )


def test_a_stub_that_passes_fails_the_check(kata_repo: KataRepo) -> None:
    kata_repo.write(
        "katas/adder/adder.py",
        ADDER_REFERENCE
        + "\n# TODO(kata): kept only so the static checks pass\n# raise NotImplementedError\n",
    )
    result = kata_repo.run("--kata-verify")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*every test must fail on the stub, but 2 passed*"])
    result.stdout.fnmatch_lines(["adder*WRONG: 2 of 2 pass*"])


def test_a_surviving_mutant_fails_the_check(kata_repo: KataRepo) -> None:
    survivor = '\n[[mutant]]\nname = "commutes"\nbug = "swaps the operands"\nfind = "return a + b"\nreplace = "return b + a"\n'
    kata_repo.write("reference/adder/mutants.toml", ADDER_MUTANTS + survivor)
    result = kata_repo.run("--kata-verify")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*mutant 'commutes' survived (swaps the operands)*"])
    result.stdout.fnmatch_lines(["adder*WRONG: 3/4 killed*"])


def test_a_failing_reference_fails_the_check(kata_repo: KataRepo) -> None:
    kata_repo.write(
        "reference/adder/adder.py", ADDER_REFERENCE.replace("a + b", "a + b if a > 0 else 0")
    )
    result = kata_repo.run("--kata-verify")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*the reference must pass every test*"])


def test_a_neutralised_test_fails_the_check(kata_repo: KataRepo) -> None:
    tests = kata_repo.root / "katas/greeter/test_greeter.py"
    tests.write_text(
        tests.read_text().replace('assert greet("ada") == "hello ada"', "greet; assert True")
    )
    result = kata_repo.run("--kata-verify")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["greeter*WRONG*"])


def test_a_mutant_whose_find_text_is_gone_fails_the_check(kata_repo: KataRepo) -> None:
    kata_repo.write(
        "reference/adder/adder.py", ADDER_REFERENCE.replace("return a + b", "return sum((a, b))")
    )
    result = kata_repo.run("--kata-verify")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*mutant 'subtracts': its `find` text occurs 0 times*"])


def test_inconsistent_signatures_fail_the_check(kata_repo: KataRepo) -> None:
    stub = kata_repo.root / "katas/adder/adder.py"
    stub.write_text(
        stub.read_text().replace("def add(a: int, b: int)", "def add(a: int, b: int, c: int = 0)")
    )
    result = kata_repo.run("--kata-verify")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*'add' differs between stub and reference in: signature*"])


def test_too_few_hints_and_an_unlisted_kata_fail_the_check(kata_repo: KataRepo) -> None:
    manifest = kata_repo.root / "katas/curriculum.toml"
    manifest.write_text(
        manifest.read_text().replace(
            'hints = ["Use an f-string.", "return f\'hello {name}\'"]', 'hints = [""]'
        )
    )
    kata_repo.write("katas/stray/README.md", "# stray\n")
    result = kata_repo.run("--kata-verify")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*needs at least 2 non-empty hints*"])
    result.stdout.fnmatch_lines(["*katas/stray/ is not listed in katas/curriculum.toml*"])


def test_a_stub_with_a_todo_but_no_raise_fails_the_check(kata_repo: KataRepo) -> None:
    stub = kata_repo.root / "katas/adder/adder.py"
    stub.write_text(stub.read_text().replace("raise NotImplementedError", "return 0"))
    result = kata_repo.run("--kata-verify")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["*NotImplementedError at each TODO(kata) edit site (found 1 marks and 0 raises)*"]
    )
