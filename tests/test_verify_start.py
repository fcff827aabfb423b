"""A self-check's run starts pytest in the kata's folder (plugins/verify_start.py): the same
plugins, hooks called in the same order, the same tests, and no listing above the kata."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from plugins import verify_start

ROOT = Path(__file__).resolve().parent.parent

# A plugin that writes down, once the tests are collected, every registered plugin in order,
# every hook's implementations in calling order, the tests, and each path pytest asked
# whether to ignore.
_RECORDER = """
import json, os

ASKED = []


def pytest_ignore_collect(collection_path, config):
    ASKED.append(str(collection_path))


def pytest_collection_finish(session):
    manager = session.config.pluginmanager

    def name(plugin):
        found = manager.get_name(plugin) or ""
        return "conftest" if found.endswith("conftest.py") else found

    hooks = {
        hook: [name(impl.plugin) for impl in getattr(manager.hook, hook).get_hookimpls()]
        for hook in dir(manager.hook)
        if hook.startswith("pytest_")
    }
    with open(os.environ["RECORD_TO"], "w") as out:
        json.dump({
            "plugins": [name(p) for _, p in manager.list_name_plugin() if p is not None],
            "hooks": hooks,
            "tests": [item.nodeid for item in session.items],
            "asked": ASKED,
        }, out)
"""
_LEFT_OUT = {"conftest", verify_start.__name__}


def _record(tmp_path: Path, argv: list[str]) -> dict[str, object]:
    (tmp_path / "recorder.py").write_text(_RECORDER, encoding="utf-8")
    out = tmp_path / f"record-{len(list(tmp_path.iterdir()))}.json"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "RECORD_TO": str(out)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *argv, "--co", "-q", "-p", "recorder"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.is_file(), f"the run recorded nothing:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    return dict(json.loads(out.read_text(encoding="utf-8")))


def _named(names: object) -> list[str]:
    """Plugin names without the two that differ on purpose, nor unnamed (id-named) objects."""
    assert isinstance(names, list)
    return [name for name in names if name not in _LEFT_OUT and not name.isdigit()]


@pytest.mark.parametrize("kata", ["locks", "mpi_hello"])
def test_a_run_started_in_the_kata_s_folder_has_the_same_plugins_hooks_and_tests(
    tmp_path: Path, kata: str
) -> None:
    test_file = f"katas/{kata}/test_{kata}.py"
    argv = [test_file, "--kata-impl=reference", "-p", "no:randomly"]
    plain = _record(tmp_path, argv)
    lean = _record(tmp_path, verify_start.in_the_kata(argv, ROOT))
    assert _named(lean["plugins"]) == _named(plain["plugins"]), (
        "the run registered other plugins, or the same in another order, than pytest does "
        "when it loads the root conftest"
    )
    plain_hooks, lean_hooks = plain["hooks"], lean["hooks"]
    assert isinstance(plain_hooks, dict) and isinstance(lean_hooks, dict)
    differ = sorted(
        hook
        for hook in {*plain_hooks, *lean_hooks}
        if _named(plain_hooks.get(hook, [])) != _named(lean_hooks.get(hook, []))
    )
    assert not differ, f"these hooks call their plugins in another order: {differ}"
    assert lean["tests"] == plain["tests"], "the run collected other tests"


def test_a_run_started_in_the_kata_s_folder_lists_nothing_above_it(tmp_path: Path) -> None:
    argv = ["katas/locks/test_locks.py", "--kata-impl=reference"]
    folder = ROOT / "katas" / "locks"
    plain = _record(tmp_path, argv)
    lean = _record(tmp_path, verify_start.in_the_kata(argv, ROOT))
    assert isinstance(plain["asked"], list) and isinstance(lean["asked"], list)
    assert any(Path(p).parent == ROOT / "katas" for p in plain["asked"]), (
        "a plain start no longer lists katas/: this test no longer shows anything"
    )
    above = [p for p in lean["asked"] if not Path(p).is_relative_to(folder)]
    assert not above, f"the run still listed folders above the kata's: {above[:5]}"


def test_the_repository_s_conftest_only_lists_plugins() -> None:
    listed = verify_start.listed_plugins(ROOT / "conftest.py")
    assert listed is not None, "the root conftest does more than list plugins: runs start slow"
    assert "plugins.probing" in listed and listed[0] == "plugins.settings", listed


@pytest.mark.parametrize(
    "extra",
    [
        "def pytest_configure(config):\n    pass\n",
        "import os\n",
        "pytest_plugins += ['plugins.extra']\n",
        "pytest_plugins = ['plugins.other']\n",
    ],
    ids=["a hook", "an import", "a computed list", "a second list"],
)
def test_a_conftest_that_does_more_than_list_plugins_keeps_the_usual_start(
    tmp_path: Path, extra: str
) -> None:
    (tmp_path / "conftest.py").write_text(
        '"""Plugins."""\n\npytest_plugins = ["plugins.settings"]\n' + extra, encoding="utf-8"
    )
    argv = ["katas/locks/test_locks.py", "--kata-impl=reference"]
    assert verify_start.in_the_kata(argv, tmp_path) == argv, (
        "a conftest with more than its list of plugins must be loaded: the run has to start "
        "above it"
    )


def test_a_conftest_that_only_lists_plugins_starts_the_run_in_the_kata_s_folder(
    tmp_path: Path,
) -> None:
    (tmp_path / "conftest.py").write_text(
        '"""Plugins."""\n\nfrom __future__ import annotations\n\n'
        'pytest_plugins = ("plugins.settings", "plugins.impl")\n',
        encoding="utf-8",
    )
    assert verify_start.listed_plugins(tmp_path / "conftest.py") == (
        "plugins.settings",
        "plugins.impl",
    )
    started = verify_start.in_the_kata(["katas/locks/test_locks.py", "-q"], tmp_path)
    assert started[:2] == ["katas/locks/test_locks.py", "-q"], "the run's own arguments changed"
    assert f"--confcutdir={tmp_path / 'katas' / 'locks'}" in started, started
