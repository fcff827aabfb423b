"""A process forked right after a probe test finds none of the harness's threads alive."""

from __future__ import annotations

import os
import sys
import warnings

import pytest

from plugins.probe import explore
from plugins.probe.threadpool import POOL, _os_threads
from tests.probe.scenarios import CORRECT


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="needs os.fork")
def test_a_fork_after_an_exploration_retires_the_idle_harness_threads() -> None:
    scenario = CORRECT[0]
    explore(scenario.setup, scenario.workers, scenario.check, modules=[scenario.module], budget=5)
    assert POOL._idle, "the exploration left idle harness threads to reuse"
    idle = len(POOL._idle)
    before = _os_threads()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pid = os.fork()
        if pid == 0:
            os._exit(0)
    os.waitpid(pid, 0)
    assert not POOL._idle, "a fork must find no idle harness thread"
    if before:
        assert _os_threads() <= before - idle, "the retired threads are gone from the OS"
    if os.environ.get("PYTEST_XDIST_WORKER") and sys.version_info >= (3, 12):
        pytest.skip(
            "pytest-xdist's worker runs threads of its own, so Python 3.12+ warns at any fork "
            "whatever the harness does: run this test without -n to check the warning"
        )
    forking = [w for w in caught if "multi-threaded" in str(w.message)]
    assert not forking, f"Python {sys.version_info[:2]} warned: {forking[0].message}"
