"""Fixtures for the plugins' own tests."""

from __future__ import annotations

import os

import pytest

from tests.kata_repo import REPO_ROOT, KataRepo

pytest_plugins = ["pytester"]


@pytest.fixture
def kata_repo(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> KataRepo:
    # The subprocess must import this checkout's plugins, and never inherit a CI profile choice.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    )
    return KataRepo(pytester)
