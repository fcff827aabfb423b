"""`kata reset` and `kata solution`: the commands that restore or show a kata's files.

Pristine stubs come from git (`git show HEAD:katas/<name>/<file>`, or `--ref`): the package
installs only the plugins, so the checkout's history is where the stubs as shipped live. What a
reset replaces is first copied to `.kata-backups/<time>/` in the checkout's root.
"""

from __future__ import annotations

import argparse
import difflib
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from plugins.curriculum import Kata
from plugins.kata_cli import EXIT_ERROR, EXIT_NOT_YET, EXIT_OK, CliError, Workspace
from plugins.kata_cli_store import DONE, KataRecord

BACKUP_DIR = ".kata-backups"


def _git(ws: Workspace, *args: str) -> bytes:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ws.root, capture_output=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CliError(
            f"git could not run ({error}): no pristine stubs to restore", EXIT_ERROR
        ) from None
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()
        raise CliError(f"git {' '.join(args)} failed in {ws.root}: {said}", EXIT_ERROR)
    return done.stdout


def pristine_files(ws: Workspace, kata: Kata, ref: str) -> dict[Path, bytes]:
    """Every file git holds for the kata's folder at `ref`, by path, as it is there."""
    folder = f"katas/{kata.name}/"
    listed = _git(ws, "ls-tree", "-r", "--name-only", ref, "--", folder).decode()
    names = [line for line in listed.splitlines() if line]
    if not names:
        raise CliError(f"git holds no {folder} at {ref}: nothing to restore it from", EXIT_ERROR)
    return {ws.root / name: _git(ws, "show", f"{ref}:{name}") for name in names}


def _changed(files: dict[Path, bytes]) -> dict[Path, bytes]:
    return {path: data for path, data in files.items() if _read(path) != data}


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _confirm(question: str) -> bool:
    print(f"{question} [y/N] ", end="", flush=True)
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_reset(ws: Workspace, args: argparse.Namespace) -> int:
    if args.all == bool(args.names):
        raise CliError("name the katas to reset, or --all (not both)")
    katas = list(ws.curriculum.katas) if args.all else [ws.kata(n) for n in args.names]
    changes = {kata: _changed(pristine_files(ws, kata, args.ref)) for kata in katas}
    replaced = [path for files in changes.values() for path in files]
    if replaced:
        for path in replaced:
            ws.say(f"  {ws.shown(path)}: differs from {args.ref}")
        question = f"Replace {len(replaced)} files with the pristine ones (yours are backed up)?"
        if not args.yes and not _confirm(question):
            ws.say("Nothing was changed.")
            return EXIT_NOT_YET
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    backup = ws.root / BACKUP_DIR / stamp
    for path, data in ((p, d) for files in changes.values() for p, d in files.items()):
        if path.exists():
            kept = backup / path.relative_to(ws.root)
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, kept)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.kata-reset")
        temporary.write_bytes(data)
        temporary.replace(path)
    records = ws.records()
    for kata in katas:  # back to the start; the hints seen stay seen
        seen = records.get(kata.name, KataRecord()).hints_seen
        records[kata.name] = KataRecord(hints_seen=seen)
        what = f"restored {len(changes[kata])} files" if changes[kata] else "already pristine"
        ws.say(f"{kata.name}: {what}")
    ws.save(records)
    if replaced:
        ws.say(f"Your versions: {ws.shown(backup)}/")
    return EXIT_OK


def cmd_solution(ws: Workspace, args: argparse.Namespace) -> int:
    kata = ws.kata(args.name)
    record = ws.records().get(kata.name, KataRecord())
    if record.status != DONE and not args.force:
        ws.say(
            f"{kata.name} is not done yet ({record.describe()}): its reference stays hidden "
            f"until every test passes. Try `kata hint {kata.name}`, or "
            f"`kata solution {kata.name} --force` to see it anyway."
        )
        return EXIT_NOT_YET
    reference = ws.curriculum.reference_path(kata)
    try:
        theirs = reference.read_text(encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot read {reference}: {error}", EXIT_ERROR) from None
    if args.diff:
        stub = ws.curriculum.stub_path(kata)
        yours = stub.read_text(encoding="utf-8") if stub.is_file() else ""
        lines = difflib.unified_diff(
            yours.splitlines(keepends=True),
            theirs.splitlines(keepends=True),
            fromfile=f"{ws.shown(stub)} (yours)",
            tofile=f"{ws.shown(reference)} (reference)",
        )
        _show(ws, "".join(lines) or "Your file and the reference are the same.\n", "diff")
    else:
        ws.say(f"# {ws.shown(reference)}", style="bold")
        _show(ws, theirs, "python")
    return EXIT_OK


def _show(ws: Workspace, text: str, language: str) -> None:
    """Coloured on a terminal; the text as it is in a pipe, a log or under NO_COLOR."""
    if ws.console.is_terminal and not ws.console.no_color:
        from rich.syntax import Syntax

        ws.console.print(Syntax(text, language, background_color="default"))
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
