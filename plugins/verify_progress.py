"""The self-check's live progress: what runs, how many mutants died, how long is left.

While a kata's verify item waits for its runs, it shows which kata and stage the pool is at,
the mutants killed so far, the time elapsed and an estimate of the time left. On a terminal
that is one line rewritten in place; in a CI log (no terminal, or CI set) plain lines, one per
kata that finishes and one every PLAIN_EVERY_SECONDS at most.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from plugins.verify_schedule import Scheduler

TTY_EVERY_SECONDS = 0.5
PLAIN_EVERY_SECONDS = 10.0
PREFIX = "verify: "


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class ProgressDisplay:
    """Shows the pool's progress on pytest's terminal while the verify items wait."""

    def __init__(self, config: pytest.Config, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.reporter: Any = config.pluginmanager.get_plugin("terminalreporter")
        # The item's output capture would swallow the lines; pytest's live logging steps past
        # it the same way.
        capture = config.pluginmanager.get_plugin("capturemanager")
        self.uncaptured: Callable[[], AbstractContextManager[None]] = getattr(
            capture, "global_and_fixture_disabled", contextlib.nullcontext
        )
        self.inline = bool(getattr(self.reporter, "isatty", False)) and not os.environ.get("CI")
        self.announced: set[str] = set()  # katas whose end has been shown
        self.shown_at = 0.0
        self.showed_any = False

    def line(self, waiting_for: str) -> str:
        with self.scheduler.changed:
            katas = dict(self.scheduler.katas)
            running = [key.partition("/") for key in self.scheduler.running]
            runs = sum(k.runs for k in katas.values())
            finished = sum(k.finished for k in katas.values())
            killed = sum(k.killed for k in katas.values())
            mutants = sum(k.mutants for k in katas.values())
        done = sum(1 for k in katas.values() if k.finished == k.runs)
        stages = ", ".join(f"{kata} {label}" for kata, _, label in running) or "-"
        own = katas.get(waiting_for)
        mine = f" ({own.finished}/{own.runs} runs)" if own else ""
        elapsed = time.monotonic() - self.scheduler.started
        left = self.scheduler.remaining_seconds()
        return (
            f"{PREFIX}{done}/{len(katas)} katas, {finished}/{runs} runs, "
            f"{killed}/{mutants} mutants killed; waiting for {waiting_for}{mine}; "
            f"running {stages}; {_clock(elapsed)} elapsed, ~{_clock(left)} left"
        )

    def _finished_katas(self) -> list[str]:
        with self.scheduler.changed:
            ended = [
                (name, k)
                for name, k in self.scheduler.katas.items()
                if k.finished == k.runs and name not in self.announced
            ]
        self.announced.update(name for name, _ in ended)
        return [
            f"{PREFIX}{name} done: {k.runs} runs, {k.killed}/{k.mutants} mutants killed, "
            f"{k.seconds:.1f} s"
            for name, k in ended
        ]

    def tick(self, waiting_for: str) -> None:
        """Called while an item waits; shows a line when one is due."""
        if self.reporter is None:
            return
        now = time.monotonic()
        if self.inline:
            self._finished_katas()
            if now - self.shown_at >= TTY_EVERY_SECONDS:
                width = shutil.get_terminal_size().columns - 1
                with self.uncaptured():
                    self.reporter.rewrite(self.line(waiting_for)[:width], erase=True)
                self.shown_at, self.showed_any = now, True
            return
        lines = self._finished_katas()
        if now - self.shown_at >= PLAIN_EVERY_SECONDS:
            lines.append(self.line(waiting_for))
        if lines:
            self.shown_at = now
            with self.uncaptured():
                for text in lines:
                    self.reporter.write_line(text)
            self.showed_any = True

    def done_waiting(self, item: pytest.Item) -> None:
        """Give the line back to pytest as it left it: the item's file, where its result goes."""
        if self.reporter is None or not self.showed_any:
            return
        self.showed_any = False
        # What pytest wrote before calling the item: its location line (-v), its file, or nothing.
        shown = getattr(self.reporter, "currentfspath", None)
        if isinstance(shown, str):
            prefix = shown
        elif getattr(self.reporter, "showfspath", False):
            prefix = item.nodeid.split("::")[0] + " "
        else:
            prefix = ""
        with self.uncaptured():
            if self.inline:
                self.reporter.rewrite(prefix, erase=True)
            else:
                self.reporter.write(prefix)
