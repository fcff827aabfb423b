"""Saved progress: after a plain run of the katas, remember where each kata stands.

Where: one JSON file, `.kata-progress.json` in the repository's root (the folder that holds
`katas/`), or the file that `KATA_PROGRESS_FILE` names (a relative path is taken from the
folder the run started in). `pytest katas/<name>` and the `kata` command both read and write it.

What: per kata, its status (*not started*, *in progress* with k of n tests passing, *done*),
the tests passed and in all, when it last ran, and the highest hint level shown. Only a plain
run saves: the learner's own stubs, not `--kata-verify` nor another `--kata-impl`, and only the
main process (under xdist, the controller); `KATA_PROGRESS_SAVE=0` turns saving off, and
`--kata-verify` sets it for the runs it starts. A partial run (some of a kata's tests did not run,
see plugins/progress.py) never makes a kata *done*; a test it sees fail takes *done* back.

How: written whole to a temporary file in the same folder, then renamed over the old one
(`os.replace`), so a crash mid-write leaves the old file or the new one, never half of each.
Two runs that end at the same moment: the last one wins. A file that cannot be read as
progress is renamed aside (`.kata-progress.json.corrupt-<time>`) with a warning; the run goes on.
The file itself (reading, recovery, writing) is plugins/kata_cli_store.py, shared with `kata`.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from plugins import curriculum, impl, progress, settings
from plugins.kata_cli_store import (
    DONE,
    IN_PROGRESS,
    NOT_STARTED,
    SAVE_VARIABLE,
    KataRecord,
    ProgressFile,
    now,
    progress_path,
)

UNSAVED = "kata progress: could not save to {path}: {why}"

progress_file_key = pytest.StashKey[ProgressFile]()
warnings_key = pytest.StashKey[list[str]]()


# -- configure -------------------------------------------------------------------------------


def _saves(config: pytest.Config) -> bool:
    """A plain run of the learner's stubs, in the main process."""
    run = settings.of(config)
    return (
        not run.verify
        and os.environ.get(SAVE_VARIABLE, "").strip() != "0"
        and run.impl == settings.STUB
        and not hasattr(config, "workerinput")
        and curriculum.for_config(config) is not None
    )


def _quiet_children(config: pytest.Config) -> None:
    """The self-check runs each stub in a child pytest of its own: those runs are not the
    learner's, so they inherit KATA_PROGRESS_SAVE=0."""
    inherited = os.environ.get(SAVE_VARIABLE)
    os.environ[SAVE_VARIABLE] = "0"

    def restore() -> None:
        if inherited is None:
            os.environ.pop(SAVE_VARIABLE, None)
        else:
            os.environ[SAVE_VARIABLE] = inherited

    config.add_cleanup(restore)


def pytest_configure(config: pytest.Config) -> None:
    if settings.of(config).verify:
        _quiet_children(config)
    root = curriculum.find_root(config.rootpath)
    if root is not None and _saves(config):
        config.stash[progress_file_key] = ProgressFile(
            progress_path(root, config.invocation_params.dir)
        )


# -- session finish --------------------------------------------------------------------------


def updated(record: KataRecord, tally: progress.KataTally, hints: int, when: str) -> KataRecord:
    """`record` after the run that `tally` counted (partial runs never promote to done)."""
    record.last_run = when
    record.hints_seen = max(record.hints_seen, min(hints, len(tally.kata.hints)))
    status, passed, failed = tally.status, tally.count("passed"), tally.count("failed")
    if status == "skipped":  # this machine lacks its backend: nothing was judged
        return record
    record.last_run_partial = tally.partial
    if status == "broken":  # the module does not import: started, nothing passes
        record.status, record.passed = IN_PROGRESS, 0
        return record
    record.total = tally.total
    if status != progress.PARTIAL:
        record.status, record.passed = status, passed
    elif failed and record.status == DONE:
        record.status, record.passed = IN_PROGRESS, max(0, record.total - failed)
    elif passed and record.status == NOT_STARTED:
        record.status, record.passed = IN_PROGRESS, passed
    return record


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    file = config.stash.get(progress_file_key, None)
    found = progress.tallies(config) if file is not None else {}
    if file is None or not found:
        return
    records = file.load()
    when, hints = now(), settings.of(config).hints
    for name, tally in found.items():
        records[name] = updated(records.get(name, KataRecord()), tally, hints, when)
    try:
        file.save(records)
    except OSError as error:
        file.warnings.append(UNSAVED.format(path=impl.shown_path(file.path), why=error))
    config.stash[warnings_key] = file.warnings


# -- terminal summary ------------------------------------------------------------------------


@pytest.hookimpl(trylast=True)  # after the kata status it concerns
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for line in config.stash.get(warnings_key, []):
        terminalreporter.write_line(line, yellow=True)
