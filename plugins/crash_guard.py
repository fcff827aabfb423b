"""Crash guard: a test whose code may crash the interpreter runs its body in a forked child, so
a crash fails that one test, with an explanation, and the run goes on.

Some learner mistakes do not raise, they kill the process: a NumPy array or memoryview over a
`SharedMemory` block that was closed reads unmapped memory (SIGSEGV). Without a guard the whole
pytest process dies and no other test of the run reports anything. A test marked
`@pytest.mark.crash_guard("what usually causes a crash here")` calls the test function in a
child forked from the test process (its fixtures are already set up, and stay the parent's);
an exception comes back as the test's failure, a signal as a failure that names it and the
marker's explanation. The parent waits under the test's time budget, and kills the child if
the budget runs out. POSIX only (elsewhere the test runs unguarded).
"""

from __future__ import annotations

import faulthandler
import inspect
import os
import signal
import sys
from typing import Any

import pytest

MARKER = "crash_guard"
CRASHED = (
    "the test's code crashed the Python process with {signal} instead of raising an exception"
    "{because}. The test ran in a process of its own, so the other tests still run."
)


class CrashedOrFailed(AssertionError):
    """The guarded test body failed (its report is `text`) or its process died."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(explanation): run the test body in a forked child, so that a crash (a "
        f"segfault) fails this test, with the explanation, instead of ending the run; "
        f'e.g. @pytest.mark.{MARKER}("a view of a closed SharedMemory block was used")',
    )


# -- run-time hooks --------------------------------------------------------------------------


def _child(function: Any, arguments: dict[str, Any], write_end: int) -> None:
    """In the forked child: run the test function; report a failure through the pipe."""
    __tracebackhide__ = True  # the report starts at the test, as an unguarded one does
    # A crash's stack goes to the parent too (it quotes the lines that matter), not to the
    # terminal, where it would land outside the test's report.
    crash_log = open(write_end, "w", closefd=False)  # noqa: SIM115  # lives until os._exit
    faulthandler.enable(file=crash_log)
    code = 0
    try:
        function(**arguments)
    except BaseException as error:  # everything goes back to the parent as this test's result
        text = str(pytest.ExceptionInfo.from_exception(error).getrepr(style="short"))
        os.write(write_end, text.encode("utf-8", "replace"))
        code = 1
    finally:
        os.close(write_end)
        os._exit(code)


def _read_all(read_end: int) -> str:
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    marker = pyfuncitem.get_closest_marker(MARKER)
    if marker is None or not hasattr(os, "fork"):
        return None
    wanted = inspect.signature(pyfuncitem.obj).parameters
    arguments = {name: value for name, value in pyfuncitem.funcargs.items() if name in wanted}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(pyfuncitem.obj, arguments, write_end)
    os.close(write_end)
    try:
        text = _read_all(read_end)  # until the child exits (or the budget's alarm raises)
        _, status = os.waitpid(pid, 0)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(read_end)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        because = f": {marker.args[0]}" if marker.args else ""
        where = _learner_lines(text)
        raise CrashedOrFailed(
            CRASHED.format(
                signal=f"{signal.Signals(number).name} (signal {number})", because=because
            )
            + (f"\nWhere it crashed (innermost first):\n{where}" if where else "")
        )
    if os.WEXITSTATUS(status) != 0:
        raise CrashedOrFailed(text or f"the test's process exited with {os.WEXITSTATUS(status)}")
    return True


def _learner_lines(dump: str) -> str:
    """The frames of faulthandler's dump that are not pytest's or the plugins'."""
    harness = ("/_pytest/", "/pluggy/", "/plugins/", "/site-packages/", sys.prefix, sys.base_prefix)
    return "\n".join(
        line.rstrip()
        for line in dump.splitlines()
        if line.strip().startswith("File ") and not any(part in line for part in harness)
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.excinfo is not None and isinstance(call.excinfo.value, CrashedOrFailed):
        report.longrepr = call.excinfo.value.text  # the child's own report, not this plugin's
    return report
