"""The self-check catches a stub that passes, a mutant that survives and a reference that fails."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from plugins import verify_changed, verify_history
from tests.kata_repo import ADDER_MUTANTS, ADDER_REFERENCE, GREETER_REFERENCE, INI, KataRepo


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


CRASH_ONCE = """
[[mutant]]
name = "crashes-once"
bug = "segfaults the first time it is imported (as a native library may under load), then subtracts"
[[mutant.edit]]
find = "return a + b"
replace = "return a - b"
[[mutant.edit]]
find = "def add("
replace = "import os, pathlib, signal\\n_MARK = pathlib.Path(os.environ['CRASH_MARK'])\\nif not _MARK.exists():\\n    _MARK.touch()\\n    os.kill(os.getpid(), signal.SIGSEGV)\\n\\n\\ndef add("
"""


def test_a_mutant_run_that_crashes_once_is_made_again_and_judged(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRASH_MARK", str(kata_repo.root / "crashed-once"))
    kata_repo.write("reference/adder/mutants.toml", ADDER_MUTANTS + CRASH_ONCE)
    result, runs = _runs_logged(kata_repo, monkeypatch, "crash.jsonl")
    assert (kata_repo.root / "crashed-once").exists(), "the mutant never reached its crash"
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["adder*4/4 killed*", "note: adder mutant:crashes-once: *crashed*"])
    crashing = [r for r in runs if r["label"] == "mutant:crashes-once"]
    assert [r["failed"] for r in crashing] == [1], f"judged on its second run: {crashing}"


def test_mutants_killed_only_by_a_budget_running_out_are_listed(kata_repo: KataRepo) -> None:
    hang = '\n[[mutant]]\nname = "hangs"\nbug = "never returns"\nfind = "return a + b"\nreplace = "__import__(\'time\').sleep(60)"\n'
    kata_repo.write("reference/adder/mutants.toml", ADDER_MUTANTS + hang)
    manifest = kata_repo.root / "katas/curriculum.toml"
    manifest.write_text(manifest.read_text().replace("budget_seconds = 5", "budget_seconds = 1"))
    result = kata_repo.run("--kata-verify", "katas/adder")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "kata*clauses*stub*reference*mutants*seconds",
            "adder*1*fails 2/2*passes 2/2*4/4 killed*",
            "killed only when a test's time budget ran out (1 mutants;*",
            "  adder: hangs (test_adds_small_numbers)",
        ]
    )


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
        [
            "*NotImplementedError at each TODO(kata) edit site in its Python code (found 1 marks "
            "in comments and 0 raises)*"
        ]
    )


def test_a_todo_inside_kernel_source_is_an_edit_site_that_needs_no_raise(
    kata_repo: KataRepo,
) -> None:
    stub = kata_repo.root / "katas/adder/adder.py"
    stub.write_text(stub.read_text() + '\nKERNEL = """/* TODO(kata): the kernel body */"""\n')
    result = kata_repo.run("--kata-verify")
    assert "edit site" not in result.stdout.str(), result.stdout.str()


# -- the fast path: warm workers, one pool, killers first, progress --------------------------

SURVIVOR = '\n[[mutant]]\nname = "commutes"\nbug = "swaps the operands"\nfind = "return a + b"\nreplace = "return b + a"\n'
INI_WITH_CACHE = INI.replace(" -p no:cacheprovider", "")


def _runs_logged(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch, log: str, *args: str
) -> tuple[pytest.RunResult, list[dict[str, Any]]]:
    path = kata_repo.root / log
    monkeypatch.setenv("KATA_VERIFY_LOG", str(path))
    result = kata_repo.run("--kata-verify", *args)
    runs = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    return result, runs


def _table(result: pytest.RunResult) -> list[str]:
    """The verification table without its seconds column (timings differ between runs)."""
    lines = result.stdout.lines
    start = next(n for n, line in enumerate(lines) if "kata verification" in line)
    return [
        line.rsplit(None, 1)[0]
        for line in lines[start + 1 :]
        if line.startswith(("adder", "greeter"))
    ]


def test_warm_workers_and_cold_processes_give_the_same_verdicts(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    kata_repo.write(
        "katas/adder/adder.py",
        ADDER_REFERENCE + "\n# TODO(kata): kept\n# raise NotImplementedError\n",
    )
    kata_repo.write("reference/adder/mutants.toml", ADDER_MUTANTS + SURVIVOR)
    kata_repo.write(
        "reference/greeter/greeter.py",
        GREETER_REFERENCE.replace(
            'return f"hello {name}"', 'return f"hello {name}" if len(name) > 5 else "?"'
        ),
    )
    warm, warm_runs = _runs_logged(kata_repo, monkeypatch, "warm.jsonl")
    monkeypatch.setenv("KATA_VERIFY_COLD", "1")
    cold, cold_runs = _runs_logged(kata_repo, monkeypatch, "cold.jsonl")
    assert (
        "warm workers" in warm.stdout.str() and "a fresh python -m pytest" in cold.stdout.str()
    ), "the two runs must have taken the two different ways"
    assert warm.ret == cold.ret == 1, "a passing stub, a survivor and a failing reference fail both"
    assert _table(warm) == _table(cold), "both ways must fill the table identically"
    assert any("WRONG: 2 of 2 pass" in line for line in _table(warm)), _table(warm)
    assert any("WRONG: 3/4 killed" in line for line in _table(warm)), _table(warm)

    def counts(runs: list[dict[str, Any]]) -> dict[str, tuple[int, int, int, int]]:
        return {
            f"{r['kata']}/{r['label']}": (r["returncode"], r["passed"], r["failed"], r["skipped"])
            for r in runs
        }

    assert len(warm_runs) == 11, f"stub + reference + each mutant, for both katas: {warm_runs}"
    assert counts(warm_runs) == counts(cold_runs), "each run must end the same either way"


def test_the_test_that_killed_a_mutant_runs_first_next_time(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    kata_repo.write("pytest.ini", INI_WITH_CACHE)
    first, first_runs = _runs_logged(kata_repo, monkeypatch, "first.jsonl")
    second, second_runs = _runs_logged(kata_repo, monkeypatch, "second.jsonl")
    assert first.ret == second.ret == 0, second.stdout.str()
    killers = json.loads((kata_repo.root / ".pytest_cache/v/kata/verify/killers").read_text())
    assert killers["adder/mutant:absolute"] == "test_adds_negative_numbers", (
        f"abs(a) + abs(b) survives the first test and dies on the second: {killers}"
    )
    absolute = [
        (r["passed"], r["failed"])
        for runs in (first_runs, second_runs)
        for r in runs
        if r["kata"] == "adder" and r["label"] == "mutant:absolute"
    ]
    assert absolute == [(1, 1), (0, 1)], (
        "the first verify runs the passing test first; the second starts with the killer, "
        f"and stops there: {absolute}"
    )


def test_a_fresh_clone_starts_each_mutant_with_the_committed_killer(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    kata_repo.write("pytest.ini", INI_WITH_CACHE)
    first, _ = _runs_logged(kata_repo, monkeypatch, "first.jsonl")
    assert first.ret == 0, first.stdout.str()
    assert verify_history.main(["--root", str(kata_repo.root)]) == 0
    seed = json.loads((kata_repo.root / verify_history.SEED_PATH).read_text())
    assert seed["kata/verify/killers"]["adder/mutant:absolute"] == "test_adds_negative_numbers"
    shutil.rmtree(kata_repo.root / ".pytest_cache")  # what a fresh clone lacks
    second, second_runs = _runs_logged(kata_repo, monkeypatch, "second.jsonl")
    assert second.ret == 0, second.stdout.str()
    absolute = [
        (r["passed"], r["failed"])
        for r in second_runs
        if r["kata"] == "adder" and r["label"] == "mutant:absolute"
    ]
    assert absolute == [(0, 1)], (
        f"with no cache, the committed history must put the killer first: {absolute}"
    )


def test_a_broken_committed_history_changes_no_verdict(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    kata_repo.write(str(verify_history.SEED_PATH), "{not json")
    broken, _ = _runs_logged(kata_repo, monkeypatch, "broken.jsonl")
    kata_repo.write(
        str(verify_history.SEED_PATH),
        json.dumps(
            {"kata/verify/killers": {"adder/mutant:absolute": "test_that_no_longer_exists"}}
        ),
    )
    stale, stale_runs = _runs_logged(kata_repo, monkeypatch, "stale.jsonl")
    assert broken.ret == stale.ret == 0, broken.stdout.str() + stale.stdout.str()
    assert _table(broken) == _table(stale), "a history is a hint: it never changes a verdict"
    assert [r["failed"] for r in stale_runs if r["label"] == "mutant:absolute"] == [1]


def test_a_timing_kata_never_runs_beside_another_run(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = kata_repo.root / "katas/curriculum.toml"
    manifest.write_text(
        manifest.read_text().replace(
            'title = "Add two numbers"', 'title = "Add two numbers"\nmarkers = ["timing"]'
        )
    )
    tests = kata_repo.root / "katas/greeter/test_greeter.py"
    tests.write_text(
        tests.read_text().replace(
            "def test_greets_by_name():",
            "def test_greets_by_name():\n    __import__('time').sleep(0.3)",
        )
    )
    monkeypatch.setenv("KATA_VERIFY_JOBS", "2")
    result, runs = _runs_logged(kata_repo, monkeypatch, "runs.jsonl")
    assert result.ret == 0, result.stdout.str()
    timing = [r for r in runs if r["kata"] == "adder"]
    assert len(timing) == 5 and len(runs) == 10, runs
    overlaps = [
        (t["label"], other["kata"], other["label"])
        for t in timing
        for other in runs
        if other is not t and other["start"] < t["end"] and t["start"] < other["end"]
    ]
    assert not overlaps, f"a timing kata's run shared the CPU with another run: {overlaps}"
    greeter = [r for r in runs if r["kata"] == "greeter"]
    assert any(
        a is not b and a["start"] < b["end"] and b["start"] < a["end"]
        for a in greeter
        for b in greeter
    ), "the other katas' runs still share the two slots"


def test_only_the_timing_tests_of_a_kata_run_alone(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = kata_repo.root / "katas/adder/test_adder.py"
    tests.write_text(
        tests.read_text()
        + "\n\n@pytest.mark.clause(1)\n@pytest.mark.timing\ndef test_adds_fast():\n"
        + "    __import__('time').sleep(0.3)\n    assert add(1, 1) == 2\n"
    )
    survivor = '\n[[mutant]]\nname = "commutes"\nbug = "swaps the operands"\nfind = "return a + b"\nreplace = "return b + a"\n'
    kata_repo.write("reference/adder/mutants.toml", ADDER_MUTANTS + survivor)
    monkeypatch.setenv("KATA_VERIFY_JOBS", "2")
    result, runs = _runs_logged(kata_repo, monkeypatch, "runs.jsonl")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*mutant 'commutes' survived*"])
    adder = {(r["label"], r.get("phase", "")): r for r in runs if r["kata"] == "adder"}
    alone = [key for key in adder if key[0] == "reference" or key[1] == "timing"]
    assert sorted(alone) == [("mutant:commutes", "timing"), ("reference", "")], adder.keys()
    for key in alone:
        run = adder[key]
        beside = [
            (o["kata"], o["label"])
            for o in runs
            if o is not run and o["start"] < run["end"] and run["start"] < o["end"]
        ]
        assert not beside, f"{key} ran beside {beside}"
    assert ("mutant:subtracts", "timing") not in adder, "a mutant its other tests kill stops there"


def test_progress_lines_and_the_total_appear_in_a_log(kata_repo: KataRepo) -> None:
    result = kata_repo.run("--kata-verify")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["verify: */2 katas, */10 runs, */6 mutants killed; waiting for adder*elapsed, ~* left"]
    )
    result.stdout.fnmatch_lines(
        [
            "total: 10 runs, * s of runs on * job slots, up to * runs at once (warm workers*), * s wall"
        ]
    )


def test_a_worker_that_dies_is_replaced_and_its_run_made_again(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    conftest = kata_repo.root / "conftest.py"
    conftest.write_text(conftest.read_text() + KILL_THE_WORKER_ONCE)
    monkeypatch.setenv("KATA_TEST_KILL_WORKER_ONCE", str(kata_repo.root / "killed-once"))
    result = kata_repo.run("--kata-verify", timeout=120)
    assert (kata_repo.root / "killed-once").exists(), "a child run must have killed its worker"
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["note: verify worker * it exited*; replaced it and ran * again"])
    result.stdout.fnmatch_lines(["adder*fails 2/2*passes 2/2*3/3 killed*"])


KILL_THE_WORKER_ONCE = """

def pytest_configure(config):
    import os, signal

    flag = os.environ.get("KATA_TEST_KILL_WORKER_ONCE")
    if not flag or config.getoption("kata_verify"):
        return
    try:
        os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os.kill(os.getppid(), signal.SIGKILL)  # a warm child's parent is its worker
"""


def test_changed_katas_are_those_whose_files_differ_from_the_ref(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, timeout=30)

    for relative in ("katas/adder/adder.py", "reference/greeter/greeter.py", "plugins/impl.py"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("# v1\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1")
    assert verify_changed.changed_katas(tmp_path, "HEAD") == set(), "nothing changed yet"
    (tmp_path / "reference/greeter/greeter.py").write_text("# v2\n")
    (tmp_path / "katas/adder/notes.md").write_text("new, untracked\n")
    assert verify_changed.changed_katas(tmp_path, "HEAD") == {"adder", "greeter"}, (
        "an edited reference and an untracked kata file both mark their kata changed"
    )
    (tmp_path / "plugins/impl.py").write_text("# v2\n")
    assert verify_changed.changed_katas(tmp_path, "HEAD") is None, (
        "a changed plugin can change every verdict: verify them all"
    )


def test_a_kata_whose_backend_is_absent_is_a_visible_skip_not_an_internal_error(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = (kata_repo.root / "katas/curriculum.toml").read_text(encoding="utf-8")
    kata_repo.write(
        "katas/curriculum.toml",
        manifest.replace('name = "greeter"', 'name = "greeter"\nmarkers = ["mpi"]'),
    )
    monkeypatch.setenv("KATA_MPIEXEC", "/nonexistent")
    result = kata_repo.run("--kata-verify", "katas/greeter")
    assert "INTERNALERROR" not in result.stdout.str(), result.stdout.str()
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*greeter*needs an MPI launcher*"])
