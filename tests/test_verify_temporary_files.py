"""A self-check run leaves nothing in the temporary folder, even when it is killed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plugins import isolation, verify_runs
from tests.kata_repo import REPO_ROOT

# A run (or an MPI rank, or a Celery worker) that dies outright, as a timeout kills it, never
# removes what it made in the temporary folder: its OpenCL loader folder, a pool's folder.
KILLED_WITH_A_FOLDER_MADE = """
import os
import signal
import tempfile
from pathlib import Path

from plugins import isolation


def test_makes_a_temporary_folder_then_dies_outright():
    Path(os.environ["RECORD"]).write_text(
        tempfile.mkdtemp(prefix="left-behind-") + "\\n" + str(isolation.PORT_LOCK_DIR)
    )
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("way", ["warm", "cold"])
def test_what_a_killed_run_made_in_the_temporary_folder_is_removed_after_it(
    way: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    test_file = tmp_path / "test_killed.py"
    test_file.write_text(KILLED_WITH_A_FOLDER_MADE)
    record = tmp_path / "record.txt"
    monkeypatch.setenv("RECORD", str(record))
    notes: list[str] = []
    runner = (
        # Preloaded as the self-check's worker does: isolation asks tempfile for its folder at
        # import, which tempfile then keeps for good, unless the forked child has it ask again.
        verify_runs.WarmRunner(REPO_ROOT, ["plugins.isolation"], notes)
        if way == "warm"
        else verify_runs.cold_runner(REPO_ROOT)
    )
    try:
        ended = runner([str(test_file), "-p", "no:cacheprovider", "-q"], 60)
    finally:
        if isinstance(runner, verify_runs.WarmRunner):
            runner.close()
    assert record.is_file(), f"the run never reached its test ({ended}, {notes})"
    made, port_locks = record.read_text().splitlines()
    assert not ended.timed_out and ended.returncode != 0, ended
    assert not Path(made).exists(), (
        f"{made}, made by a run that was then killed, outlived the run: a run's temporary "
        "folder must be one the self-check removes after it"
    )
    assert port_locks == str(isolation.PORT_LOCK_DIR), (
        "a run with a temporary folder of its own must still lock ports in the folder every "
        f"run shares ({isolation.PORT_LOCK_DIR}), not in {port_locks}"
    )
    assert os.environ.get("TMPDIR") != str(Path(made).parent), (
        "the run's temporary folder must be its own, not the one of the process that ran it"
    )
