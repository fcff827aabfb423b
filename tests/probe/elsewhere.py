"""Run a test's exploration on a thread of its own: an exploration there hands each of its
schedules to the run's thread and waits for it (``Run.wait``), where one on the main thread
runs them in place (plugins/probe/watchdog.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def on_another_thread(job: Callable[[], object]) -> None:
    """``job`` on a thread of its own; what it raised is raised here."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            job()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the exploration on another thread did not end in 30 s"
    if errors:
        raise errors[0]
