"""Which katas changed since a git ref: `pytest --kata-verify --kata-verify-changed=REF`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from plugins import curriculum, settings

# Whatever changes here can change any kata's verdict.
SHARED_PATHS = ("plugins/", f"{curriculum.KATAS_DIR}/{curriculum.MANIFEST_NAME}", "conftest.py")


def changed_katas(root: Path, ref: str) -> set[str] | None:
    """The katas whose files changed since `ref` (committed or not), None for all of them."""
    commands = (
        ["git", "diff", "--name-only", ref, "--", "."],
        ["git", "ls-files", "--others", "--exclude-standard"],
    )
    paths: list[str] = []
    for command in commands:
        try:
            done = subprocess.run(
                command, cwd=root, capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise pytest.UsageError(f"{settings.VERIFY_CHANGED_OPTION}={ref}: {error}") from None
        if done.returncode != 0:
            raise pytest.UsageError(
                f"{settings.VERIFY_CHANGED_OPTION}={ref}: {done.stderr.strip() or 'git failed'}"
            )
        paths += done.stdout.split()
    changed: set[str] = set()
    for path in paths:
        if path.startswith(SHARED_PATHS):
            return None
        top, _, rest = path.partition("/")
        if top in (curriculum.KATAS_DIR, curriculum.REFERENCE_DIR) and "/" in rest:
            changed.add(rest.partition("/")[0])
    return changed
