"""Time budgets: a kata test that overruns fails with every thread's stack, and the run goes on.

pytest-timeout owns the settings (the `timeout` marker, `--timeout`, debugger detection); this
plugin sets each kata test's timeout from the curriculum and replaces pytest-timeout's signal
handler with one that fails the test with a "probable deadlock or livelock" report inside the
test's own failure, rather than dumping stacks to the terminal. Threads a test leaves running
are reported, and cannot keep the interpreter from exiting; processes are plugins/cleanup.py's,
which reports them in the same summary section.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

import pytest

from plugins import hang_report, impl, settings

BUDGET_MARKER = "budget"
# Seconds a test's leftover threads get to finish before they count as strays.
STRAY_GRACE_SECONDS = 1.0
HEADLINE = "the test ran past its budget of {seconds:g} s."
HEADLINE_MARK = "ran past its budget"  # how the self-check tells a budget kill
UNDIAGNOSED = "probable deadlock or livelock: look for threads waiting on each other below."
STACKS_TITLE = (
    "Each thread's own frames at that moment, innermost call last (pytest's and the kata "
    "plugins' frames left out):"
)
MIN_REARM_SECONDS = 0.05  # what is left of a budget spent while the report was being made
strays_key = pytest.StashKey[list[str]]()
exitstatus_key = pytest.StashKey[int]()
deadline_key = pytest.StashKey[float]()  # when the running test's budget runs out (monotonic)
swallowed_key = pytest.StashKey[list[str]]()  # expiries a finalizer swallowed, per test
FINALIZER_EXPIRY = (
    "the test ran past its budget of {seconds:g} s while Python was running a finalizer: "
    "{what}. A finalizer runs when an object is garbage-collected; one that hangs is usually "
    "an object left open, e.g. a multiprocessing Pool that was never closed and joined "
    "(use `with Pool(...) as pool:`), or a process, queue or connection never closed."
)


class BudgetExceeded(BaseException):
    """Raised in the main thread when a test's budget runs out.

    A BaseException, so that a learner's `except Exception:` cannot swallow it."""

    def __init__(self, seconds: float, stacks: str) -> None:
        super().__init__(f"budget of {seconds:g} s exceeded")
        self.seconds = seconds
        self.report = HEADLINE.format(seconds=seconds) + " " + stacks


def format_all_stacks() -> str:
    """Who waits for which lock, held by whom (where the source tells), then every live
    thread's own frames, innermost call last, named as `threading` names it."""
    threads = hang_report.states()
    diagnosis = hang_report.diagnosis(threads) or UNDIAGNOSED
    return f"{diagnosis}\n\n{STACKS_TITLE}\n{hang_report.stacks(threads)}"


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{BUDGET_MARKER}(seconds): this test's time budget, overriding the kata's; "
        f"e.g. @pytest.mark.{BUDGET_MARKER}(30)",
    )
    config.stash[strays_key] = []


# -- collection ------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    scale = settings.of(config).budget_scale
    if scale == 0:
        return
    for item, kata in impl.iter_kata_items(items):
        # Only the kata's own tests; the self-check's items run whole suites (with budgets).
        if not isinstance(item, pytest.Function) or item.get_closest_marker("timeout") is not None:
            continue
        override = item.get_closest_marker(BUDGET_MARKER)
        seconds = float(override.args[0]) if override else kata.budget_seconds
        item.add_marker(pytest.mark.timeout(seconds * scale, method="signal"))


# -- run time --------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """Arm a SIGALRM that fails the test with a readable report (main thread, POSIX only;
    elsewhere pytest-timeout's own thread method takes over)."""
    if (
        settings.method != "signal"
        or not hasattr(signal, "SIGALRM")
        or threading.current_thread() is not threading.main_thread()
    ):
        return None
    seconds = float(settings.timeout)

    def expire(signum: int, frame: FrameType | None) -> None:
        raise BudgetExceeded(seconds, format_all_stacks())

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    item.cancel_timeout = cancel  # type: ignore[attr-defined]  # pytest-timeout's convention
    item.stash[deadline_key] = time.monotonic() + seconds
    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return True


def _swallowed_expiry(item: pytest.Item) -> Any:
    """An unraisable hook for the test's run: a budget expiry raised inside a finalizer (which
    Python can only print and ignore) is kept to fail the test, not left to pytest, which would
    stop the whole run with an INTERNALERROR when it is the last test's."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, BudgetExceeded):
            what = f"{unraisable.err_msg or 'Exception ignored in'}: {unraisable.object!r}"
            item.stash.setdefault(swallowed_key, []).append(
                FINALIZER_EXPIRY.format(seconds=unraisable.exc_value.seconds, what=what)
            )
            return
        previous(unraisable)

    return previous, hook


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> object:
    before = set(threading.enumerate())
    previous, hook = _swallowed_expiry(item)
    sys.unraisablehook = hook
    try:
        return (yield)
    finally:
        sys.unraisablehook = previous
        _collect_strays(item, before)


def really_alive(thread: threading.Thread) -> bool:
    """Whether the interpreter still runs `thread`. Not `is_alive()`: when a signal interrupts
    `join()` on a live thread, CPython marks that thread stopped although it still runs
    (the bpo-45274 fix in `Thread._wait_for_tstate_lock`), exactly what a budget expiry does."""
    return thread.ident in sys._current_frames()


def _collect_strays(item: pytest.Item, before: set[threading.Thread]) -> None:
    # A dummy thread is a thread threading did not start, which asked current_thread(): it
    # cannot be joined (join() asserts), and the test did not start it.
    leftover = [
        t
        for t in threading.enumerate()
        if t not in before and really_alive(t) and not isinstance(t, threading._DummyThread)
    ]
    for thread in leftover:
        thread.join(STRAY_GRACE_SECONDS / max(1, len(leftover)))
    strays = item.config.stash.setdefault(strays_key, [])
    for thread in leftover:
        if really_alive(thread):
            kind = "daemon" if thread.daemon else "non-daemon"
            strays.append(f"{item.nodeid}: {kind} thread {thread.name!r} was still running")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """The budget's alarm waits while a report is made (an alarm inside pytest's own source
    parsing breaks it: INTERNALERROR), and resumes for the next phase with what is left."""
    deadline = item.stash.get(deadline_key, None)
    paused = deadline is not None and signal.getitimer(signal.ITIMER_REAL)[0] > 0
    if paused:
        signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        report = yield
    finally:
        if paused and deadline is not None and call.when != "teardown":
            left = max(MIN_REARM_SECONDS, deadline - time.monotonic())
            signal.setitimer(signal.ITIMER_REAL, left)
    if call.excinfo is not None and isinstance(call.excinfo.value, BudgetExceeded):
        report.longrepr = call.excinfo.value.report
    swallowed = item.stash.get(swallowed_key, [])
    if swallowed and report.when in ("call", "teardown"):
        if not report.failed:
            report.outcome = "failed"
            report.longrepr = "\n".join(swallowed)
        item.stash[swallowed_key] = []
    return report


# -- summary ---------------------------------------------------------------------------------


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[exitstatus_key] = int(exitstatus)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    strays = config.stash.get(strays_key, [])
    if strays:
        terminalreporter.section("threads and processes left running")
        for line in strays:
            terminalreporter.write_line(line)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # A non-daemon thread stuck in a learner's deadlock would make the interpreter wait for it
    # forever at exit; Python cannot kill a thread, so end the process with pytest's status.
    # (Not inside pytester's in-process runs, where exiting would end the outer test run.)
    stuck = [
        t
        for t in threading.enumerate()
        if really_alive(t) and not t.daemon and t is not threading.main_thread()
    ]
    if stuck and not config.pluginmanager.hasplugin("pytester"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash.get(exitstatus_key, 1))
