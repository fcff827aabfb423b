"""The `kata` command: list, next, run, hint, watch, reset, solution, doctor and grade.

pytest stays the engine: `run` and `next` call pytest in this process, `watch` and `grade` start
it in child processes (plugins/kata_cli_record.py writes what those report), and the other
commands read what pytest runs saved (plugins/kata_cli_store.py). The user's guide, with the
exit codes, is docs/kata-command.md. rich is imported on the first line a command prints, and
`kata run` prints none of its own: it costs no more than the pytest run it starts.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from plugins import curriculum, kata_cli_store
from plugins.backends import BACKENDS
from plugins.curriculum import Curriculum, Kata
from plugins.kata_cli_store import KataRecord, ProgressFile

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK, EXIT_NOT_YET, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3
RECORD_VARIABLE = "KATA_RECORD_FILE"  # where plugins/kata_cli_record.py writes a child's run
MIN_PYTHON = (3, 11)


class CliError(Exception):
    """A message for the user, and the exit code it ends the command with."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def make_console(stderr: bool = False) -> Console:
    """rich's console: no colour under NO_COLOR, no escape codes at all when not a terminal;
    long lines are left whole in a log (soft wrap) rather than broken at 80 columns."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


@dataclass
class Workspace:
    """The checkout the command works on: its curriculum and its progress file."""

    root: Path
    curriculum: Curriculum
    progress: ProgressFile
    _console: Console | None = field(default=None, repr=False)
    _absent: dict[str, str | None] = field(default_factory=dict, repr=False)

    @property
    def console(self) -> Console:
        if self._console is None:
            self._console = make_console()
        return self._console

    def say(self, text: str = "", style: str | None = None) -> None:
        """One line of plain text (never read as rich markup: test ids hold brackets)."""
        self.console.print(text, style=style, markup=False)

    def records(self) -> dict[str, KataRecord]:
        found = self.progress.load()
        self.warn()
        return found

    def save(self, records: dict[str, KataRecord]) -> None:
        try:
            self.progress.save(records)
        except OSError as error:
            raise CliError(
                f"could not save progress to {self.progress.path}: {error}", EXIT_ERROR
            ) from None

    def warn(self) -> None:
        for line in self.progress.warnings:
            print(line, file=sys.stderr)
        self.progress.warnings.clear()

    def kata(self, name: str) -> Kata:
        """The kata `name` names ('locks', or a path such as 'katas/locks/'); a usage error
        suggesting close names when there is none."""
        wanted = Path(name).name if "/" in name else name
        found = self.curriculum.get(wanted)
        if found is not None:
            return found
        names = [k.name for k in self.curriculum.katas]
        close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.6)
        suggestion = f" Did you mean {' or '.join(close)}?" if close else ""
        raise CliError(f"no kata named {name!r}.{suggestion} `kata list` shows them all.")

    def absent(self, marker: str) -> str | None:
        """Why `marker`'s backend is unusable here (None: usable), detected once: the same
        detection as the hardware plugin's (plugins/backends.py)."""
        if marker not in BACKENDS:
            return None
        if marker not in self._absent:
            self._absent[marker] = BACKENDS[marker].detect()
        return self._absent[marker]

    def missing_backends(self, kata: Kata) -> list[str]:
        return [m for m in kata.markers if self.absent(m) is not None]

    def shown(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)


def workspace(root: str | None) -> Workspace:
    start = Path(root) if root else Path.cwd()
    found = curriculum.find_root(start)
    if found is None:
        raise CliError(
            f"{start.resolve()} is not inside a parallel-katas checkout (no katas/curriculum.toml "
            "there or above): cd into one, or pass --root DIR."
        )
    try:
        loaded = curriculum.load(found)
    except curriculum.CurriculumError as error:
        raise CliError(str(error), EXIT_ERROR) from error
    return Workspace(found, loaded, ProgressFile(kata_cli_store.progress_path(found)))


def run_pytest(ws: Workspace, kata: Kata, extra: Sequence[str] = ()) -> int:
    """`pytest katas/<kata> EXTRA...`, in this process, from the working folder (so paths in
    EXTRA and in pytest's report read as they would for pytest itself); its exit code."""
    import pytest

    folder = ws.curriculum.kata_dir(kata)
    try:
        target = str(folder.relative_to(Path.cwd().resolve()))
    except ValueError:  # run from outside the checkout (--root)
        target = str(folder)
    sys.stdout.flush()
    return int(pytest.main([target, *extra]))


# -- main ------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="kata",
        description="Learn parallel programming kata by kata (pytest runs every check).",
        epilog="Guide and exit codes: docs/kata-command.md",
    )
    top.add_argument("--root", metavar="DIR", help="the checkout (default: found from here up)")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    listing = commands.add_parser("list", help="every kata in order, its status and hardware")
    listing.add_argument("--track", help="only this track's katas")
    commands.add_parser("next", help="run the first kata that is not done")
    run = commands.add_parser("run", help="run one kata's tests (extra arguments go to pytest)")
    run.add_argument("name")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="e.g. -k counter, -x")
    hint = commands.add_parser("hint", help="show the next hint of a kata")
    hint.add_argument("name")
    watch = commands.add_parser("watch", help="re-run a kata whenever you save")
    watch.add_argument("name", nargs="?", help="default: the first kata not done")
    watch.add_argument("--poll", action="store_true", help="poll for changes (WSL, VMs)")
    reset = commands.add_parser("reset", help="restore pristine stubs (backing yours up)")
    reset.add_argument("names", nargs="*", metavar="NAME")
    reset.add_argument("--all", action="store_true", help="every kata")
    reset.add_argument("--yes", action="store_true", help="do not ask")
    reset.add_argument("--ref", default="HEAD", help="the git commit to restore from")
    solution = commands.add_parser("solution", help="the reference solution, once done")
    solution.add_argument("name")
    solution.add_argument("--diff", action="store_true", help="a diff against your file")
    solution.add_argument("--force", action="store_true", help="show it even if not done")
    commands.add_parser("doctor", help="Python, backends and the progress file")
    grade = commands.add_parser("grade", help="grade a folder laid out like reference/")
    grade.add_argument("folder", metavar="DIR", help="one student's folder, or a class's")
    grade.add_argument("--json", metavar="FILE", help="exercism v3 results.json")
    grade.add_argument("--junit", metavar="FILE", help="JUnit XML (pytest's --junitxml)")
    grade.add_argument("--kata", action="append", metavar="NAME", help="only this kata")
    grade.add_argument("--track", help="only this track's katas")
    grade.add_argument(
        "--jobs", type=int, default=1, metavar="N",
        help="katas graded side by side (default 1: timing katas want the cores to themselves)",
    )  # fmt: skip
    return top


def _commands() -> dict[str, Callable[[Workspace, argparse.Namespace], int]]:
    from plugins import kata_cli_files, kata_cli_grade, kata_cli_learn, kata_cli_watch

    return {
        "list": kata_cli_learn.cmd_list,
        "next": kata_cli_learn.cmd_next,
        "run": kata_cli_learn.cmd_run,
        "hint": kata_cli_learn.cmd_hint,
        "watch": kata_cli_watch.cmd_watch,
        "reset": kata_cli_files.cmd_reset,
        "solution": kata_cli_files.cmd_solution,
        "doctor": kata_cli_learn.cmd_doctor,
        "grade": kata_cli_grade.cmd_grade,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return EXIT_OK
    try:
        ws = workspace(args.root)
        return _commands()[args.command](ws, args)
    except CliError as error:
        print(f"kata: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
