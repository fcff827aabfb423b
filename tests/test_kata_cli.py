"""The `kata` command, each subcommand on a two-kata repository (adder, greeter)."""

from __future__ import annotations

import io
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from plugins.kata_cli import main
from plugins.kata_cli_store import KataRecord, ProgressFile
from tests.kata_repo import ADDER_REFERENCE, ADDER_STUB, KataRepo

SOLVED = "def add(a, b):\n    return a + b\n"
GREETER_SOLVED = "def greet(name):\n    return f'hello {name}'\n"


@pytest.fixture
def repo(kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch) -> KataRepo:
    for variable in ("KATA_PROGRESS_FILE", "KATA_PROGRESS_SAVE", "FORCE_COLOR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    return kata_repo


def kata(repo: KataRepo, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`kata --root REPO ARGS...` in this process: exit code, stdout, stderr."""
    code = main(["--root", str(repo.root), *args])
    out, err = capsys.readouterr()
    assert "\x1b[" not in out + err, "no escape codes when the output is not a terminal"
    return code, out, err


def kata_process(repo: KataRepo, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The command in a process of its own (for those that run pytest)."""
    return subprocess.run(
        [sys.executable, "-m", "plugins.kata_cli", "--root", str(repo.root), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def progress(repo: KataRepo) -> dict[str, KataRecord]:
    return ProgressFile(repo.root / ".kata-progress.json").load()


def record(repo: KataRepo, **records: KataRecord) -> None:
    ProgressFile(repo.root / ".kata-progress.json").save(records)


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line.strip()]


# -- list, next, run, hint -------------------------------------------------------------------


def test_list_shows_every_kata_in_order_with_track_status_and_hardware(
    repo: KataRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    record(repo, adder=KataRecord(status="in progress", passed=1, total=2))
    code, out, _ = kata(repo, capsys, "list")
    assert code == 0
    table = rows(out)
    assert table[0] == ["#", "kata", "track", "status", "hardware"]
    assert table[2] == ["1", "adder", "basics", "in", "progress", "1", "of", "2", "-"]
    assert table[3] == ["2", "greeter", "basics", "not", "started", "-"]
    assert "0 of 2 done. Progress: .kata-progress.json" in out


def test_list_of_an_unknown_track_is_a_usage_error_naming_the_tracks(
    repo: KataRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = kata(repo, capsys, "list", "--track", "basic")
    assert code == 2
    assert "no track named 'basic'. Did you mean basics? Tracks: basics." in err


def test_an_unknown_kata_name_is_a_usage_error_suggesting_close_names(
    repo: KataRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = kata(repo, capsys, "hint", "addr")
    assert code == 2
    assert "no kata named 'addr'. Did you mean adder?" in err


def test_outside_a_kata_checkout_the_command_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--root", str(tmp_path), "list"]) == 2
    assert "is not inside a parallel-katas checkout" in capsys.readouterr().err


def test_run_runs_the_katas_tests_with_pytest_and_saves_progress(repo: KataRepo) -> None:
    done = kata_process(repo, "run", "adder")
    assert done.returncode == 1, "pytest's exit code: tests failed"
    assert "adder (Add two numbers): not started: 0 of 2 tests pass" in done.stdout
    assert progress(repo)["adder"].total == 2


def test_run_passes_extra_arguments_to_pytest(repo: KataRepo) -> None:
    repo.write("katas/adder/adder.py", SOLVED)
    done = kata_process(repo, "run", "adder", "-k", "small")
    assert "partial run: 1 of 2 tests ran" in done.stdout
    assert progress(repo)["adder"].status == "in progress", "a partial run is never done"


def test_next_runs_the_first_kata_not_done_and_says_what_to_read(repo: KataRepo) -> None:
    record(repo, adder=KataRecord(status="done", passed=2, total=2))
    done = kata_process(repo, "next")
    assert "Next: greeter (Greet someone), kata 2 of 2, track basics: not started." in done.stdout
    assert "Read katas/greeter/README.md, then fill in each TODO(kata)" in done.stdout
    assert "greeter (Greet someone): not started" in done.stdout, "it ran greeter's tests"


def test_next_when_everything_is_done_says_so(
    repo: KataRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    record(repo, adder=KataRecord(status="done"), greeter=KataRecord(status="done"))
    code, out, _ = kata(repo, capsys, "next")
    assert code == 0 and "Every kata you can run here is done." in out


def test_hint_shows_the_next_level_each_time_and_remembers_it(
    repo: KataRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    _, first, _ = kata(repo, capsys, "hint", "adder")
    assert first.splitlines() == ["hint 1 of 2 for adder: Use the plus operator."]
    _, second, _ = kata(repo, capsys, "hint", "adder")
    assert second.splitlines()[1:] == [
        "hint 2 of 2 for adder: return a + b",
        "That was the last hint. Once the kata is done: kata solution adder",
    ]
    kata(repo, capsys, "hint", "adder")
    assert progress(repo)["adder"].hints_seen == 2, "the level stops at the last hint"


# -- solution, reset -------------------------------------------------------------------------


def test_solution_is_refused_until_the_kata_is_done(
    repo: KataRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = kata(repo, capsys, "solution", "adder")
    assert code == 1
    assert "adder is not done yet (not started)" in out and "return a + b" not in out
    code, out, _ = kata(repo, capsys, "solution", "adder", "--force")
    assert code == 0 and "return a + b" in out


def test_solution_of_a_done_kata_shows_the_reference_or_a_diff(
    repo: KataRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    record(repo, adder=KataRecord(status="done", passed=2, total=2))
    code, out, _ = kata(repo, capsys, "solution", "adder")
    assert code == 0 and out.startswith("# reference/adder/adder.py") and "return a + b" in out
    _, diff, _ = kata(repo, capsys, "solution", "adder", "--diff")
    assert "--- katas/adder/adder.py (yours)" in diff
    assert "-    raise NotImplementedError" in diff and "+    return a + b" in diff


def committed(repo: KataRepo) -> KataRepo:
    if shutil.which("git") is None:
        pytest.skip("needs git: reset restores the stubs from the checkout's history")
    git = ["git", "-c", "user.name=kata", "-c", "user.email=kata@example.org"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "katas"]):
        subprocess.run([*git, *command], cwd=repo.root, check=True, capture_output=True)
    return repo


def test_reset_restores_the_stub_backs_up_the_learners_file_and_resets_progress(
    repo: KataRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    committed(repo)
    repo.write("katas/adder/adder.py", SOLVED)
    record(repo, adder=KataRecord(status="done", passed=2, total=2, hints_seen=1))
    code, out, _ = kata(repo, capsys, "reset", "adder", "--yes")
    assert code == 0 and "adder: restored 1 files" in out
    stub = (repo.root / "katas/adder/adder.py").read_text(encoding="utf-8")
    assert "raise NotImplementedError" in stub
    backups = list((repo.root / ".kata-backups").glob("*/katas/adder/adder.py"))
    assert [b.read_text(encoding="utf-8") for b in backups] == [SOLVED]
    assert progress(repo)["adder"] == KataRecord(hints_seen=1), "not started; hints seen stay"


def test_reset_asks_first_and_a_no_changes_nothing(
    repo: KataRepo, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    committed(repo)
    repo.write("katas/greeter/greeter.py", GREETER_SOLVED)
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, out, _ = kata(repo, capsys, "reset", "--all")
    assert code == 1 and "Nothing was changed." in out
    assert (repo.root / "katas/greeter/greeter.py").read_text(encoding="utf-8") == GREETER_SOLVED
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    code, out, _ = kata(repo, capsys, "reset", "--all")
    assert code == 0 and "adder: already pristine" in out and "greeter: restored 1 files" in out


def test_reset_without_git_history_says_why_it_cannot(
    repo: KataRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("git") is None:
        pytest.skip("needs git")
    code, _, err = kata(repo, capsys, "reset", "adder", "--yes")
    assert code == 3 and "git ls-tree" in err
    assert (repo.root / "katas/adder/adder.py").read_text(encoding="utf-8") == ADDER_STUB.lstrip()


# -- doctor, a damaged progress file -----------------------------------------------------------


def test_doctor_reports_python_each_backend_and_where_progress_is_saved(
    repo: KataRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = kata(repo, capsys, "doctor")
    assert code == 0
    assert re.search(r"^Python 3\.\d+\.\d+ .*: ok$", out, re.MULTILINE)
    for marker in ("mpi", "opencl", "cuda", "broker", "pyro", "numba"):
        assert re.search(rf"^  {marker}: (present|absent .*To get it: )", out, re.MULTILINE)
    assert f"Progress: {repo.root / '.kata-progress.json'}" in out


def test_a_corrupt_progress_file_is_recovered_with_a_warning(
    repo: KataRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo.root / ".kata-progress.json").write_text('{"version": 1, "katas": [', encoding="utf-8")
    code, out, err = kata(repo, capsys, "list")
    assert code == 0 and "not started" in out
    assert "could not be read as progress" in err and "moved aside" in err
    assert len(list(repo.root.glob(".kata-progress.json.corrupt-*"))) == 1


# -- grade -----------------------------------------------------------------------------------


def test_grade_writes_exercism_results_and_junit_and_reports_a_missing_kata(
    repo: KataRepo, tmp_path: Path
) -> None:
    repo.write("student/adder/adder.py", ADDER_REFERENCE.replace("a + b", "a - b"))
    results, junit = tmp_path / "out.json", tmp_path / "out.xml"
    done = kata_process(repo, "grade", "student", "--json", str(results), "--junit", str(junit))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "student: fail, 0 of 2 katas done, 1 missing, 0 of 3 tests pass" in done.stdout
    data = json.loads(results.read_text(encoding="utf-8"))
    assert (data["version"], data["status"], data["message"]) == (3, "fail", None)
    by_name = {test["name"]: test for test in data["tests"]}
    small = by_name["adder > test_adds_small_numbers"]
    assert small["status"] == "fail" and "2 + 3 must be 5" in small["message"]
    assert small["test_code"].startswith("def test_adds_small_numbers")
    assert by_name["greeter > kata module present"]["status"] == "error"
    assert data["katas"]["greeter"]["status"] == "missing"
    assert data["katas"]["adder"] | {"seconds": 0} == {
        "status": "in progress", "passed": 0, "total": 2, "seconds": 0, "hints_used": None,
    }  # fmt: skip
    cases = ElementTree.parse(junit).getroot().iter("testcase")
    assert len(list(cases)) == 2, "JUnit comes from pytest's own --junitxml"


def test_grade_caps_a_tests_output_at_500_characters(repo: KataRepo, tmp_path: Path) -> None:
    noisy = ADDER_REFERENCE.replace("return a + b", "print('x' * 2000)\n    return a - b")
    repo.write("student/adder/adder.py", noisy)
    repo.write("student/greeter/greeter.py", GREETER_SOLVED)
    results = tmp_path / "out.json"
    kata_process(repo, "grade", "student", "--kata", "adder", "--json", str(results))
    tests: list[dict[str, Any]] = json.loads(results.read_text(encoding="utf-8"))["tests"]
    assert [t["name"] for t in tests] == ["adder > test_adds_small_numbers",
                                          "adder > test_adds_negative_numbers"]  # fmt: skip
    assert all(len(t["output"]) == 500 and t["output"].endswith("truncated to 500 characters]")
               for t in tests)  # fmt: skip


def test_grade_of_a_class_summarises_each_student(repo: KataRepo, tmp_path: Path) -> None:
    repo.write("class/ada/adder/adder.py", SOLVED)
    repo.write("class/ada/greeter/greeter.py", GREETER_SOLVED)
    repo.write("class/bob/adder/adder.py", SOLVED)
    results = tmp_path / "class.json"
    done = kata_process(repo, "grade", "class", "--json", str(results))
    assert "ada: pass, 2 of 2 katas done, 0 missing, 3 of 3 tests pass" in done.stdout
    assert "bob: fail, 1 of 2 katas done, 1 missing" in done.stdout
    data = json.loads(results.read_text(encoding="utf-8"))
    assert data["students"]["ada"]["version"] == 3 and data["summary"]["bob"]["missing"] == 1
    assert done.returncode == 1


def test_grade_of_a_folder_without_katas_is_a_usage_error(
    repo: KataRepo, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo.root / "empty").mkdir()
    code, _, err = kata(repo, capsys, "grade", str(repo.root / "empty"))
    assert code == 2 and "holds neither kata folders" in err
    code, _, err = kata(repo, capsys, "grade", str(repo.root / "nowhere"))
    assert code == 2 and "is not a folder" in err


# -- watch -----------------------------------------------------------------------------------


class Lines:
    """A child's stdout, line by line, waited for with a deadline."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert process.stdout is not None
        stdout = process.stdout

        def read() -> None:
            for line in stdout:
                self.lines.put(line)

        threading.Thread(target=read, daemon=True).start()

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return
        raise AssertionError(f"no line with {text!r} in {timeout} s; saw:\n{''.join(self.seen)}")


@pytest.mark.parametrize("mode", [[], ["--poll"]], ids=["file-events", "polling"])
def test_watch_reruns_on_save_shows_the_status_first_and_quits_on_q(
    repo: KataRepo, mode: list[str]
) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-m", "plugins.kata_cli", "--root", str(repo.root), "watch", "adder",
         *mode],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=os.environ | {"COLUMNS": "120", "LINES": "30"},
    )  # fmt: skip
    try:
        lines = Lines(watcher)
        lines.wait_for("running: pytest katas/adder")
        lines.wait_for("adder: not started, 0 of 2 tests pass.")
        lines.wait_for("[n] next kata  [h] hint  [l] list  [r] re-run  [q] quit")
        time.sleep(0.3)
        repo.write("katas/adder/adder.py", SOLVED)
        lines.wait_for("running: pytest katas/adder")
        lines.wait_for("adder: done, all 2 tests pass.")
        assert watcher.stdin is not None
        watcher.stdin.write("h\nq\n")
        watcher.stdin.flush()
        lines.wait_for("hint 1 of 2 for adder")
        lines.wait_for("Stopped watching.")
        assert watcher.wait(timeout=10) == 0
    finally:
        watcher.kill()
        watcher.wait()


def test_watch_shows_the_first_failures_message_within_the_screen(repo: KataRepo) -> None:
    from plugins.kata_cli import workspace
    from plugins.kata_cli_watch import summary

    ws = workspace(str(repo.root))
    failing = [
        {"nodeid": f"katas/adder/test_adder.py::test_{n}", "kata": "adder", "outcome": "failed",
         "message": "AssertionError: 2 + 3 must be 5\nassert -1 == 5"}
        for n in range(10)
    ]  # fmt: skip
    record_ = {"tests": failing, "katas": {"adder": {"status": "in progress", "passed": 1,
               "total": 11}}}  # fmt: skip
    lines = [line for line, _ in summary(ws, ws.kata("adder"), record_, "", height=6)]
    assert lines == [
        "adder: in progress, 1 of 11 tests pass.",
        "FAIL test_0",
        "    AssertionError: 2 + 3 must be 5",
        "    assert -1 == 5",
        "FAIL test_1",
        "... and 8 more failing: kata run adder",
    ]


def test_grade_reports_a_kata_whose_pytest_run_reported_nothing_as_an_error(
    repo: KataRepo, tmp_path: Path
) -> None:
    repo.write("student/greeter/greeter.py", GREETER_SOLVED)
    repo.write("katas/greeter/test_greeter.py", "def test_broken(:\n")
    results = tmp_path / "out.json"
    done = kata_process(repo, "grade", "student", "--kata", "greeter", "--json", str(results))
    assert done.returncode == 3, "no kata's run reported: exercism's error status"
    data = json.loads(results.read_text(encoding="utf-8"))
    assert data["status"] == "error" and "pytest did not report" in data["message"]
    assert [t["name"] for t in data["tests"]] == ["greeter > pytest run"]
    assert data["katas"]["greeter"]["status"] == "error"
