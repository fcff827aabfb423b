"""Hardware markers: which backends this machine has, and visible skips for those it lacks.

Detection is cached per run and never raises: a broken driver (e.g. `import pycuda.driver`
failing on a missing libcuda.so.1) reads as "absent, because ...". `--kata-require` turns an
absent backend into failures for CI lanes that must exercise it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins import impl, settings
from plugins.backends import BACKENDS as BACKENDS  # `as`: re-exported, verify.py reads it here

absence_key = pytest.StashKey[dict[str, "str | None"]]()


def absence(config: pytest.Config, marker: str) -> str | None:
    """Why `marker`'s backend is unusable here (None if usable); detected once per run."""
    cache = config.stash.setdefault(absence_key, {})
    if marker not in cache:
        cache[marker] = BACKENDS[marker].detect()
    return cache[marker]


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    for backend in BACKENDS.values():
        config.addinivalue_line(
            "markers",
            f"{backend.marker}: needs {backend.description}; skipped when absent. "
            f"e.g. @pytest.mark.{backend.marker}",
        )


def pytest_report_header(config: pytest.Config) -> str:
    # Only cheap facts here (is the package installed?); opening drivers waits for a test
    # that needs them, so a learner on a laptop never pays for GPU probing.
    parts = [f"{b.marker} {'installed' if b.installed else 'absent'}" for b in BACKENDS.values()]
    required = settings.of(config).require
    suffix = f" (required: {', '.join(sorted(required))})" if required else ""
    return "kata backends: " + ", ".join(parts) + suffix


def skip_or_fail_reason(config: pytest.Config, marker: str) -> tuple[bool, str] | None:
    """(required, message) when `marker`'s backend is absent, else None."""
    why = absence(config, marker)
    if why is None:
        return None
    backend = BACKENDS[marker]
    required = marker in settings.of(config).require
    verdict = "required by --kata-require but absent" if required else "skipped"
    return (
        required,
        f"{verdict}: needs {backend.description}; {why}. To get it: {backend.how_to_get}",
    )


# -- collection ------------------------------------------------------------------------------


def _apply_manifest_markers(items: list[pytest.Item]) -> None:
    """The manifest is where a kata declares what it needs: every test of a kata marked
    `mpi` there carries the `mpi` marker, as if each test were decorated with it."""
    for item, kata in impl.iter_kata_items(items):
        for name in kata.markers:
            if item.get_closest_marker(name) is None:
                # getattr on pytest.mark, so --strict-markers rejects a misspelt manifest marker.
                item.add_marker(getattr(pytest.mark, name))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _apply_manifest_markers(items)
    # A skip marker (not a skip raised here) makes pytest report the test's own location.
    # Backends are probed only when a collected test needs them.
    for item in items:
        for marker in BACKENDS:
            if item.get_closest_marker(marker) is None:
                continue
            verdict = skip_or_fail_reason(config, marker)
            if verdict is not None and not verdict[0]:
                item.add_marker(pytest.mark.skip(reason=verdict[1]))


class BackendAbsent(pytest.Item):
    """Stands in for a test file that cannot even be imported here: it imports the package of
    a backend its kata needs (pyopencl, celery, Pyro4, ...), which is not installed. Skipped
    with the reason and how to get it, or failed under --kata-require; without it, one kata's
    missing package would stop the collection of the whole run."""

    def __init__(self, *, required: bool, message: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.required, self.message = required, message

    def runtest(self) -> None:
        if self.required:
            pytest.fail(self.message, pytrace=False)
        pytest.skip(self.message)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, self.name  # (a skip's report needs a line: the file's top)


def absent_backend_item(module: pytest.Module, cause: BaseException | None) -> pytest.Item | None:
    """The item that stands in for `module` when importing it failed because a backend its
    kata declares is absent here; None when that is not why."""
    implementation_ = impl.implementation(module.config)
    kata = implementation_.curriculum.kata_for_path(module.path) if implementation_ else None
    if kata is None or not isinstance(cause, ImportError):
        return None
    for marker in kata.markers:
        verdict = skip_or_fail_reason(module.config, marker) if marker in BACKENDS else None
        if verdict is not None:
            required, message = verdict
            return BackendAbsent.from_parent(
                module, name=f"needs the {marker} backend", required=required, message=message
            )
    return None


# -- run time --------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in BACKENDS:
        if item.get_closest_marker(marker) is None:
            continue
        verdict = skip_or_fail_reason(item.config, marker)
        if verdict is not None and verdict[0]:
            pytest.fail(verdict[1], pytrace=False)
