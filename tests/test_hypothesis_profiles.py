"""Hypothesis profiles: the self-check's children judge without shrinking; learners still shrink."""

from __future__ import annotations

import pytest

from tests.kata_repo import ADDER_TESTS, KataRepo

DRAWN = """
from hypothesis import given, strategies as st
from plugins.probe.scenarios import scenario_settings


def record(x):
    with open("drawn.txt", "a") as log:
        log.write(f"{x}\\n")


@given(st.integers(0, 10_000))
def test_plain(x):
    record(x)
    assert x < 500


@scenario_settings(max_examples=50)
@given(st.integers(0, 10_000))
def test_scenario(x):
    record(x)
    assert x < 500
"""


def _drawn(kata_repo: KataRepo, profile: str, test: str) -> tuple[int, list[int]]:
    log = kata_repo.root / "drawn.txt"
    log.unlink(missing_ok=True)
    kata_repo.write("katas/adder/test_drawn.py", DRAWN)
    result = kata_repo.run(f"katas/adder/test_drawn.py::{test}", "-p", "no:randomly")
    return result.ret, [int(line) for line in log.read_text().split()]


@pytest.mark.parametrize("test", ["test_plain", "test_scenario"])
def test_the_verdict_profile_fails_the_same_test_without_shrinking_its_example(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch, test: str
) -> None:
    monkeypatch.setenv("KATA_HYPOTHESIS_PROFILE", "ci")
    ci_ret, ci_drawn = _drawn(kata_repo, "ci", test)
    monkeypatch.setenv("KATA_HYPOTHESIS_PROFILE", "verdict")
    verdict_ret, verdict_drawn = _drawn(kata_repo, "verdict", test)
    assert ci_ret == verdict_ret == 1, "both profiles must fail a test that fails"
    assert ci_drawn[-1] == 500, f"ci shrinks to the smallest failing example: {ci_drawn[-5:]}"
    assert len(verdict_drawn) < len(ci_drawn), (
        f"verdict must stop at the first failure and its replay ({len(verdict_drawn)} examples) "
        f"where ci goes on shrinking ({len(ci_drawn)})"
    )
    assert verdict_drawn[-1] >= 500, "the verdict replays a failing example"


def test_the_self_check_runs_its_children_under_the_verdict_profile(
    kata_repo: KataRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KATA_HYPOTHESIS_PROFILE", raising=False)
    spy = (
        "\n\n@pytest.mark.clause(1)\ndef test_profile_is_recorded():\n"
        "    import os, pathlib\n"
        "    with pathlib.Path(os.environ['PROFILE_LOG']).open('a') as log:\n"
        "        from hypothesis import settings\n"
        "        log.write(settings._current_profile + '\\n')\n"
        "    assert add(2, 2) == 4\n"
    )
    kata_repo.write("katas/adder/test_adder.py", ADDER_TESTS + spy)
    monkeypatch.setenv("PROFILE_LOG", str(kata_repo.root / "profiles.txt"))
    result = kata_repo.run("--kata-verify", "katas/adder")
    assert result.ret == 0, result.stdout.str()
    seen = set((kata_repo.root / "profiles.txt").read_text().split())
    assert seen == {"verdict"}, f"every child run judges under the verdict profile: {seen}"
