"""Saved progress: what plain pytest runs remember, and how the file survives damage."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from plugins.kata_cli_store import FORMAT_VERSION, KataRecord, ProgressFile
from tests.kata_repo import KataRepo

SOLVED = "def add(a, b):\n    return a + b\n"
HALF_SOLVED = "def add(a, b):\n    return a + b if a > 0 else 0\n"


@pytest.fixture
def repo(kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch) -> KataRepo:
    for variable in ("KATA_PROGRESS_FILE", "KATA_PROGRESS_SAVE"):
        monkeypatch.delenv(variable, raising=False)
    return kata_repo


def saved(repo: KataRepo, name: str = ".kata-progress.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((repo.root / name).read_text(encoding="utf-8"))
    assert data["version"] == FORMAT_VERSION
    katas: dict[str, Any] = data["katas"]
    return katas


def test_a_plain_run_saves_each_katas_status_counts_time_and_hints(repo: KataRepo) -> None:
    repo.run("katas", "--kata-hints=1")
    katas = saved(repo)
    assert katas["adder"]["status"] == "not started" and katas["adder"]["total"] == 2
    assert katas["adder"]["hints_seen"] == 1, "the hint level shown is remembered"
    assert katas["adder"]["last_run"], "the time of the run is saved"
    assert katas["greeter"]["status"] == "not started"
    assert not list(repo.root.glob(".kata-progress.json.*")), "no temporary file is left"


def test_a_solved_kata_is_saved_done_and_a_half_solved_one_in_progress(repo: KataRepo) -> None:
    repo.write("katas/adder/adder.py", SOLVED)
    repo.run("katas/adder")
    assert saved(repo)["adder"] == saved(repo)["adder"] | {"status": "done", "passed": 2}
    repo.write("katas/adder/adder.py", HALF_SOLVED)
    repo.run("katas/adder")
    assert saved(repo)["adder"]["status"] == "in progress"
    assert saved(repo)["adder"]["passed"] == 1


def test_a_partial_run_never_promotes_a_kata_to_done(repo: KataRepo) -> None:
    repo.run("katas/adder")
    repo.write("katas/adder/adder.py", SOLVED)
    repo.run("katas/adder", "-k", "small")
    adder = saved(repo)["adder"]
    assert adder["status"] == "in progress", "1 of 2 tests passing is progress, not done"
    assert adder["last_run_partial"] is True and adder["total"] == 2


def test_a_failure_in_a_partial_run_takes_done_back(repo: KataRepo) -> None:
    repo.write("katas/adder/adder.py", SOLVED)
    repo.run("katas/adder")
    repo.write("katas/adder/adder.py", HALF_SOLVED)
    repo.run("katas/adder", "-k", "negative")
    assert saved(repo)["adder"]["status"] == "in progress"


def test_runs_of_other_implementations_or_with_saving_off_save_nothing(
    repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.run("katas", "--kata-impl=reference")
    assert not (repo.root / ".kata-progress.json").exists(), "grading the reference is no progress"
    monkeypatch.setenv("KATA_PROGRESS_SAVE", "0")
    repo.run("katas")
    assert not (repo.root / ".kata-progress.json").exists()


def test_the_self_checks_runs_of_the_stubs_save_nothing(repo: KataRepo) -> None:
    result = repo.run("--kata-verify", "katas/adder")
    assert "adder" in result.stdout.str()
    assert not (repo.root / ".kata-progress.json").exists(), "the self-check is not the learner"


def test_the_progress_file_can_be_moved_with_kata_progress_file(
    repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KATA_PROGRESS_FILE", "elsewhere/mine.json")
    repo.run("katas/greeter")
    assert saved(repo, "elsewhere/mine.json")["greeter"]["total"] == 1
    assert not (repo.root / ".kata-progress.json").exists()


def test_a_corrupt_progress_file_is_moved_aside_with_a_warning(repo: KataRepo) -> None:
    (repo.root / ".kata-progress.json").write_text("{not json", encoding="utf-8")
    result = repo.run("katas/adder")
    result.stdout.fnmatch_lines(["kata progress: .kata-progress.json could not be read*moved*"])
    assert saved(repo)["adder"]["status"] == "not started", "a fresh file is written"
    aside = list(repo.root.glob(".kata-progress.json.corrupt-*"))
    assert [p.read_text(encoding="utf-8") for p in aside] == ["{not json"], "the damage is kept"


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"version": 1}',
        '{"version": 99, "katas": {}}',
        '{"version": 1, "katas": {"adder": {"status": "finished"}}}',
        '{"version": 1, "katas": {"adder": 3}}',
    ],
)
def test_a_file_that_is_json_but_not_progress_is_recovered_from(tmp_path: Path, text: str) -> None:
    file = ProgressFile(tmp_path / "progress.json")
    file.path.write_text(text, encoding="utf-8")
    assert file.load() == {}
    assert len(file.warnings) == 1 and "moved aside" in file.warnings[0]
    assert not file.path.exists()


def test_a_save_that_fails_midway_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = ProgressFile(tmp_path / "progress.json")
    file.save({"adder": KataRecord(status="done", passed=2, total=2)})
    before = file.path.read_text(encoding="utf-8")

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", crash)
    with pytest.raises(OSError, match="disk full"):
        file.save({"adder": KataRecord()})
    assert file.path.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"], "no temporary file left"


def test_the_saved_file_gets_the_umasks_mode_not_a_private_one(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    file = ProgressFile(tmp_path / "progress.json")
    file.save({"adder": KataRecord()})
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o666 & ~umask
