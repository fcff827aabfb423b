"""`kata watch [NAME]`: re-run a kata's tests each time one of its files is saved.

watchfiles waits for saves (inotify; `--poll` checks every 0.25 s instead, for WSL's /mnt
drives and VM shared folders, where no file event arrives). Each run is pytest in a child
process (a fresh interpreter: a module imported by an earlier run would shadow the saved one),
recorded by plugins/kata_cli_record.py, and shown as a summary that fits the screen, the kata's
status first. Keys on a terminal: n (next kata), h (hint), l (list), r (re-run), q (quit); when
stdin is a pipe, the same letters one per line; Ctrl-C quits anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from plugins.curriculum import Kata
from plugins.kata_cli import EXIT_OK, RECORD_VARIABLE, Workspace
from plugins.kata_cli_learn import cmd_list, first_not_done, next_hint

POLL_DELAY_MS = 250  # --poll: how often the files are looked at
STEP_MS = 50  # a save is reported once the files have been quiet this long
DEBOUNCE_MS = 400  # ...or after this long, however busy they stay
TICK_MS = 100  # how often the loop looks at the keys while nothing changes
RUNNING = "running: pytest katas/{name}"
KEYS = "[n] next kata  [h] hint  [l] list  [r] re-run  [q] quit"
FIRST_MESSAGE_LINES = 8


class Keys:
    """Single keys from a terminal (cbreak mode, restored by close()), or one letter per line
    from a pipe; nothing at all when stdin is neither."""

    def __init__(self) -> None:
        self.pressed: queue.Queue[str] = queue.Queue()
        self.stop = threading.Event()
        self.terminal: tuple[int, list[Any]] | None = None
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            self.available = False
            return
        self.available = True
        if os.isatty(fd):
            import termios
            import tty

            self.terminal = (fd, termios.tcgetattr(fd))
            tty.setcbreak(fd)  # keys arrive one by one, unechoed; Ctrl-C still interrupts
            threading.Thread(target=self._keys, args=(fd,), daemon=True).start()
        else:
            threading.Thread(target=self._lines, daemon=True).start()

    def _keys(self, fd: int) -> None:
        while not self.stop.is_set():
            if select.select([fd], [], [], TICK_MS / 1000)[0]:
                data = os.read(fd, 1)
                if not data:
                    return
                self.pressed.put(data.decode(errors="ignore").lower())

    def _lines(self) -> None:
        for line in sys.stdin:
            if line.strip():
                self.pressed.put(line.strip()[0].lower())

    def get(self) -> str | None:
        try:
            return self.pressed.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        self.stop.set()
        if self.terminal is not None:
            import termios

            fd, saved = self.terminal
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run_recorded(ws: Workspace, kata: Kata) -> tuple[dict[str, Any] | None, str]:
    """The kata's suite in a child pytest: what it recorded (None if nothing), its output."""
    with tempfile.TemporaryDirectory(prefix="kata-watch-") as scratch:
        record = Path(scratch) / "record.json"
        argv = [sys.executable, "-m", "pytest", f"katas/{kata.name}", "-q"]
        argv += ["-p", "plugins.kata_cli_record"]
        done = subprocess.run(
            argv,
            cwd=ws.root,
            env=os.environ | {RECORD_VARIABLE: str(record)},
            capture_output=True,
            text=True,
            check=False,
        )
        output = done.stdout + done.stderr
        if not record.is_file():
            return None, output
        return json.loads(record.read_text(encoding="utf-8")), output


def _status(ws: Workspace, kata: Kata, found: dict[str, Any], tests: list[dict[str, Any]]) -> str:
    status, passed, total = found["status"], found["passed"], found["total"]
    head = f"{kata.name}: {status}"
    if status == "done":
        after = ws.curriculum.next_after(kata)
        onward = f" [n] goes on to {after.name}." if after else " That was the last kata."
        return f"{head}, all {total} tests pass. Compare: kata solution {kata.name}.{onward}"
    if status == "not started":
        return (
            f"{head}, 0 of {total} tests pass. Read "
            f"{ws.shown(ws.curriculum.kata_dir(kata) / 'README.md')}, then fill in each "
            f"TODO(kata) in {ws.shown(ws.curriculum.stub_path(kata))}."
        )
    if status == "skipped":
        reason = next((t["message"] for t in tests if t["outcome"] == "skipped"), "")
        return f"{head}: this machine lacks what it needs: {reason}"
    if status == "broken":
        return f"{head}: its module cannot be imported (below)."
    return f"{head}, {passed} of {total} tests pass."


def summary(
    ws: Workspace, kata: Kata, record: dict[str, Any] | None, output: str, height: int
) -> list[tuple[str, str | None]]:
    """(line, style) pairs, at most `height` of them, the kata's status first."""
    tests = [t for t in (record or {}).get("tests", []) if t["kata"] == kata.name]
    found = (record or {}).get("katas", {}).get(kata.name)
    lines: list[tuple[str, str | None]]
    if found is None:
        tail = [line for line in output.splitlines() if line.strip()][-(height - 1) :]
        lines = [(f"{kata.name}: pytest reported no result; it said:", "bold red")]
        return lines + [(line, None) for line in tail]
    style = {"done": "bold green", "in progress": "bold yellow"}.get(found["status"], "bold red")
    lines = [(_status(ws, kata, found, tests), style)]
    failed = [t for t in tests if t["outcome"] == "failed"]
    room = height - 1
    for number, test in enumerate(failed):
        if room <= 1 and number < len(failed):
            lines.append(
                (f"... and {len(failed) - number} more failing: kata run {kata.name}", None)
            )
            break
        lines.append((f"FAIL {test['nodeid'].split('::', 1)[-1]}", "red"))
        room -= 1
        if number == 0:
            message = [line for line in test["message"].splitlines() if line.strip()]
            shown = message[: min(FIRST_MESSAGE_LINES, max(room - 2, 1))]
            lines += [(f"    {line}", None) for line in shown]
            room -= len(shown)
    return lines


def show_run(ws: Workspace, kata: Kata, poll: bool, keys: Keys) -> None:
    console = ws.console
    if console.is_terminal:
        console.clear()
    ws.say(RUNNING.format(name=kata.name), style="dim")
    console.file.flush()
    record, output = run_recorded(ws, kata)
    columns, rows = shutil.get_terminal_size((100, 24))
    for line, style in summary(ws, kata, record, output, max(rows - 3, 4)):
        ws.say(line if len(line) <= columns or not console.is_terminal else line[:columns], style)
    mode = "polling" if poll else "file events"
    prompt = f"{KEYS}  " if keys.available else ""
    ws.say(f"{prompt}(watching {ws.shown(ws.curriculum.kata_dir(kata))}/, {mode})", style="dim")
    console.file.flush()


def _watch(ws: Workspace, kata: Kata, poll: bool, keys: Keys) -> int:
    from watchfiles import PythonFilter, watch

    while True:
        switched, pending = False, True  # the first run waits for the watcher to be set up
        for changes in watch(
            ws.curriculum.kata_dir(kata),
            watch_filter=PythonFilter(),
            force_polling=poll,
            poll_delay_ms=POLL_DELAY_MS,
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            rust_timeout=TICK_MS,
            yield_on_timeout=True,
        ):
            if changes or pending:
                show_run(ws, kata, poll, keys)
                pending = False
            while (key := keys.get()) is not None:
                if key == "q":
                    return EXIT_OK
                if key == "r":
                    show_run(ws, kata, poll, keys)
                elif key == "h":
                    next_hint(ws, kata)
                elif key == "l":
                    cmd_list(ws, argparse.Namespace(track=kata.track))
                elif key == "n":
                    following, _ = first_not_done(ws, after=kata)
                    if following is None:
                        ws.say("No kata after this one is left to do (kata list).")
                    else:
                        kata, switched = following, True
                        break
            if switched:
                break


def cmd_watch(ws: Workspace, args: argparse.Namespace) -> int:
    kata = ws.kata(args.name) if args.name else first_not_done(ws)[0]
    if kata is None:
        ws.say("Every kata you can run here is done.", style="green")
        return EXIT_OK
    keys = Keys()
    try:
        return _watch(ws, kata, args.poll, keys)
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        keys.close()
        ws.say("Stopped watching.")
