"""`kata list`, `next`, `run`, `hint` and `doctor`: the learner's everyday commands."""

from __future__ import annotations

import argparse
import difflib
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from plugins import kata_cli_store
from plugins.backends import BACKENDS
from plugins.curriculum import Kata
from plugins.kata_cli import (
    EXIT_ERROR,
    EXIT_OK,
    MIN_PYTHON,
    CliError,
    Workspace,
    run_pytest,
)
from plugins.kata_cli_store import DONE, KataRecord

# -- list, next, run, hint -------------------------------------------------------------------


def katas_of_track(ws: Workspace, track: str | None) -> list[Kata]:
    if track is None:
        return list(ws.curriculum.katas)
    if track not in ws.curriculum.tracks:
        close = difflib.get_close_matches(track, list(ws.curriculum.tracks), n=2)
        suggestion = f" Did you mean {' or '.join(close)}?" if close else ""
        valid = ", ".join(ws.curriculum.tracks)
        raise CliError(f"no track named {track!r}.{suggestion} Tracks: {valid}.")
    return [k for k in ws.curriculum.katas if k.track == track]


def hardware(ws: Workspace, kata: Kata) -> str:
    missing = ws.missing_backends(kata)
    if missing:
        return f"{', '.join(missing)} absent (kata doctor)"
    present = [m for m in kata.markers if m in BACKENDS]
    return f"{', '.join(present)} ready" if present else "-"


def cmd_list(ws: Workspace, args: argparse.Namespace) -> int:
    from rich import box
    from rich.table import Table

    katas, records = katas_of_track(ws, args.track), ws.records()
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("#", "kata", "track", "status", "hardware"):
        table.add_column(column, no_wrap=column != "hardware")
    styles = {DONE: "green", kata_cli_store.IN_PROGRESS: "yellow"}
    for kata in katas:
        record = records.get(kata.name, KataRecord())
        status = record.describe() + (" (last run partial)" if record.last_run_partial else "")
        table.add_row(
            str(kata.order + 1), kata.name, kata.track, status, hardware(ws, kata),
            style=styles.get(record.status),
        )  # fmt: skip
    ws.console.print(table)
    done = sum(records.get(k.name, KataRecord()).status == DONE for k in katas)
    ws.say(f"{done} of {len(katas)} done. Progress: {ws.shown(ws.progress.path)}")
    return EXIT_OK


def first_not_done(ws: Workspace, after: Kata | None = None) -> tuple[Kata | None, list[Kata]]:
    """The first kata (after `after`) that is not done and whose hardware is here, and the
    not-done katas passed over for want of hardware."""
    records, passed_over = ws.records(), []
    for kata in ws.curriculum.katas:
        if after is not None and kata.order <= after.order:
            continue
        if records.get(kata.name, KataRecord()).status == DONE:
            continue
        if ws.missing_backends(kata):
            passed_over.append(kata)
            continue
        return kata, passed_over
    return None, passed_over


def introduce(ws: Workspace, kata: Kata) -> None:
    record = ws.records().get(kata.name, KataRecord())
    total = len(ws.curriculum.katas)
    ws.say(f"Next: {kata.name} ({kata.title}), kata {kata.order + 1} of {total}, track "
           f"{kata.track}: {record.describe()}.", style="bold")  # fmt: skip
    ws.say(
        f"Read {ws.shown(ws.curriculum.kata_dir(kata) / 'README.md')}, then fill in each "
        f"TODO(kata) in {ws.shown(ws.curriculum.stub_path(kata))}."
    )


def cmd_next(ws: Workspace, args: argparse.Namespace) -> int:
    kata, passed_over = first_not_done(ws)
    if passed_over:
        names = ", ".join(k.name for k in passed_over)
        ws.say(f"Passed over for want of hardware: {names} (kata doctor says how to get it).")
    if kata is None:
        ws.say("Every kata you can run here is done.", style="green")
        return EXIT_OK
    introduce(ws, kata)
    return run_pytest(ws, kata)


def cmd_run(ws: Workspace, args: argparse.Namespace) -> int:
    kata = ws.kata(args.name)
    return run_pytest(ws, kata, args.pytest_args)


def next_hint(ws: Workspace, kata: Kata) -> int:
    """Show the hints up to the next level, remember it; the level shown."""
    records = ws.records()
    record = records.setdefault(kata.name, KataRecord())
    if not kata.hints:
        ws.say(f"{kata.name} has no hints.")
        return 0
    level = min(record.hints_seen + 1, len(kata.hints))
    for number, text in enumerate(kata.hints[:level], start=1):
        style = None if number == level else "dim"
        ws.say(f"hint {number} of {len(kata.hints)} for {kata.name}: {text}", style=style)
    if level == len(kata.hints):
        ws.say(f"That was the last hint. Once the kata is done: kata solution {kata.name}")
    record.hints_seen = level
    ws.save(records)
    return level


def cmd_hint(ws: Workspace, args: argparse.Namespace) -> int:
    next_hint(ws, ws.kata(args.name))
    return EXIT_OK


# -- doctor ----------------------------------------------------------------------------------


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _on_wsl() -> bool:
    try:
        return "microsoft" in Path("/proc/version").read_text(encoding="utf-8").lower()
    except OSError:
        return False


def cmd_doctor(ws: Workspace, args: argparse.Namespace) -> int:
    ok = sys.version_info >= MIN_PYTHON
    python = f"{platform.python_version()} ({sys.executable})"
    ws.say(f"Python {python}: " + ("ok" if ok else "too old, 3.11 or newer is needed"))
    packages = ", ".join(f"{p} {_version(p)}" for p in ("pytest", "rich", "watchfiles"))
    ws.say(f"Packages: {packages}; CPU cores: {os.cpu_count()} (gil and speedup need 2+)")
    ws.say(f"Katas: {len(ws.curriculum.katas)} in {ws.root}")
    ws.say("Backends (the detection the test runs use):", style="bold")
    for marker, backend in BACKENDS.items():
        needing = [k.name for k in ws.curriculum.katas if marker in k.markers]
        why = ws.absent(marker)
        used = f"{len(needing)} katas" if needing else "no kata yet"
        if why is None:
            ws.say(f"  {marker}: present ({used})", style="green")
        else:
            ws.say(f"  {marker}: absent ({used}): {why}. To get it: {backend.how_to_get}",
                   style="yellow")  # fmt: skip
    records = ws.records()
    done = sum(r.status == DONE for r in records.values())
    variable = kata_cli_store.PROGRESS_FILE_VARIABLE
    ws.say(
        f"Progress: {ws.progress.path} ({len(records)} katas recorded, {done} done; "
        f"{variable} moves it)"
    )
    if _on_wsl():
        ws.say("WSL: if `kata watch` misses your saves, use `kata watch --poll`.")
    return EXIT_OK if ok else EXIT_ERROR
