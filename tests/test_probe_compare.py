"""The comparison script (`python -m plugins.probe_compare`): our side finds each broken
version and passes each fixed one; frontrun's side runs under its CLI when it is installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugins import probe_compare
from plugins.probe_compare_cases import PAIRS, Pair


@pytest.mark.parametrize("pair", PAIRS, ids=[p.name for p in PAIRS])
def test_our_scheduler_finds_each_broken_version(pair: Pair) -> None:
    attempt = probe_compare.run_ours(pair, "broken")
    assert attempt.outcome == "failed", (
        f"{pair.title}: {attempt.schedules} schedules passed, but the broken version has a "
        f"failing interleaving with {pair.min_preemptions} preemptions"
    )
    assert f"{pair.name}.py:" in attempt.report, "the report should cite the pair's source lines"
    shown = probe_compare._preemptions(attempt.report)
    assert shown is not None and shown <= pair.min_preemptions, attempt.report


@pytest.mark.parametrize("pair", PAIRS, ids=[p.name for p in PAIRS])
def test_our_scheduler_passes_each_fixed_version(pair: Pair) -> None:
    attempt = probe_compare.run_ours(pair, "fixed")
    assert attempt.outcome == "passed", (
        f"{pair.title}: false alarm on the fixed version\n{attempt.report}"
    )
    if attempt.kind.startswith("proved"):
        assert attempt.kind.endswith("distinct interleavings checked"), attempt.kind
    else:
        # Too big for the exhaustive search (the Condition buffer, 2 items each): sampled instead.
        assert attempt.schedules == probe_compare.BUDGET, attempt


@pytest.mark.parametrize(
    "name", ["lost_update", "check_then_act", "lock_order", "condition_buffer", "three_preemptions"]
)
def test_small_fixed_pairs_are_proved_exhaustively(name: str) -> None:
    from plugins.probe_compare_cases import PAIRS_BY_NAME

    attempt = probe_compare.run_ours(PAIRS_BY_NAME[name], "fixed")
    assert attempt.kind.startswith("proved: all "), attempt


def test_script_prints_both_tables_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "compare.json"
    argv = ["--repeat", "2", "--tools", "ours", "--pair", "lost_update", "--json", str(out)]
    assert probe_compare.main(argv) == 0
    printed = capsys.readouterr().out
    verdicts = [
        row.split("|")[3].strip() for row in printed.splitlines() if "| lost update " in row
    ]
    assert verdicts == ["found", "proved"], printed
    assert "(fewest 1)" in printed, "the broken table should show the fewest preemptions"
    cells = json.loads(out.read_text(encoding="utf-8"))["cells"]
    assert [(c["variant"], len(c["attempts"])) for c in cells] == [("broken", 2), ("fixed", 2)]


def test_script_says_in_one_line_that_frontrun_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(probe_compare, "frontrun_installed", lambda: False)
    assert probe_compare.main(["--repeat", "1", "--pair", "check_then_act"]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == probe_compare.NO_FRONTRUN
    assert "frontrun" not in printed.split("\n", 1)[1], "only our side should have run"


@pytest.mark.skipif(
    not probe_compare.frontrun_installed(),
    reason="frontrun is not installed: pip install frontrun==0.7.0 to compare against it",
)
def test_frontrun_side_runs_under_its_cli(tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    argv = [
        "--repeat",
        "1",
        "--tools",
        "dpor-unbounded",
        "--pair",
        "lost_update",
        "--json",
        str(out),
    ]
    assert probe_compare.main(argv) == 0
    cells = json.loads(out.read_text(encoding="utf-8"))["cells"]
    outcomes = {c["variant"]: c["attempts"][0]["outcome"] for c in cells}
    assert outcomes == {"broken": "failed", "fixed": "passed"}, cells
