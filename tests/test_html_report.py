"""--kata-html: a page with each kata's status and every race or deadlock drawn as swim lanes,
checked as text and, where Chromium is installed, as laid out by a real browser."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kata_repo import REPO_ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _report(tmp_path: Path, mutant: str, test: str) -> str:
    """The page of a run of one locks test against one mutant (one failure, one drawing)."""
    page = tmp_path / "report.html"
    subprocess.run(
        [sys.executable, "-m", "pytest", f"katas/locks/test_locks.py::{test}",
         f"--kata-impl=mutant:locks/{mutant}",
         f"--kata-html={page}", "-q", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert page.is_file(), "no report was written"
    return page.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def deadlock_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("html")
    _report(
        folder, "source-lock-first", "test_opposite_transfers_between_two_accounts_never_deadlock"
    )
    return folder / "report.html"


def test_a_lost_update_is_drawn_with_one_lane_per_thread_and_the_conflict_marked(
    tmp_path: Path,
) -> None:
    page = _report(
        tmp_path,
        "unlocked-increment",
        "test_no_increment_is_lost_when_two_threads_increment_at_once",
    )
    assert "test_no_increment_is_lost_when_two_threads_increment_at_once: failed" in page
    assert page.count("class='lane-head'") == 2, "one column per thread"
    conflicts = re.findall(r"class='step conflict' data-lane='(\d)'", page)
    assert set(conflicts) == {"0", "1"}, f"both threads' conflicting steps are marked: {conflicts}"
    assert "preempted just before it" in page and "switch preemption" in page
    # One test of twelve ran: the page, like the terminal, must not call the kata in progress.
    assert "<td>locks</td><td class='skipped'>partial run</td>" in page, page[:2000]


def test_a_deadlock_is_drawn_as_lanes_and_as_its_wait_for_circle(deadlock_page: Path) -> None:
    # Opposite lock orders: reported as a deadlock, or (found sooner, by the exhaustive
    # search's first interleaving) as the lock-order cycle that leads to one; either way the
    # page draws who would wait for whom.
    page = deadlock_page.read_text(encoding="utf-8")
    assert "deadlock" in page
    assert "<svg class='cycle'" in page
    assert page.count("marker-end='url(#arrow)'") == 2, "each thread points at the other"
    assert html.escape("held by second-to-first") in page


def test_a_report_folder_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "katas/threads",
         f"--kata-html={tmp_path / 'missing' / 'r.html'}", "-p", "no:cacheprovider"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 4, ran.stdout + ran.stderr
    assert "does not exist" in ran.stderr, ran.stderr


@pytest.mark.skipif(
    CHROMIUM is None, reason="needs Chromium to render the page: apt-get install chromium"
)
def test_a_real_browser_lays_the_lanes_out_side_by_side(deadlock_page: Path) -> None:
    dumped = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,1600",
         "--dump-dom", deadlock_page.as_uri()],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    found = re.search(r'data-lanes="([^"]*)"', dumped.stdout)
    assert found, f"the page's layout script did not run: {dumped.stderr[-500:]}"
    (drawing,) = json.loads(html.unescape(found.group(1)))
    heads = drawing["heads"]
    assert len(heads) == 2 and heads[0][0] + heads[0][1] <= heads[1][0], (
        f"the two lanes are not side by side: {heads}"
    )
    tops = [top for _lane, _left, top in drawing["steps"]]
    assert tops == sorted(tops) and len(set(tops)) == len(tops), "steps go down in order"
    for lane, left, _top in drawing["steps"]:
        assert left == heads[lane][0], f"a step of lane {lane} is drawn at x={left}: {heads}"
