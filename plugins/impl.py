"""Implementation swap: decides which file a kata's `from locks import Counter` loads.

The tests import each kata module by its plain name; `--kata-impl` picks the learner's stub
(the default), the reference solution, or any folder laid out like `reference/` (grading).
A kata module that fails to load becomes one failing test with a one-paragraph explanation,
so the other katas of the run still run.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import pytest

from plugins import curriculum
from plugins.curriculum import Curriculum, Kata

IMPL_OPTION = "--kata-impl"
IMPL_INI = "kata_impl"
STUB, REFERENCE = "stub", "reference"
BROKEN_ITEM_NAME = "kata module loads"

impl_key = pytest.StashKey["Implementation"]()


class KataModuleError(ImportError):
    """A kata module could not be loaded; the message is written for the learner."""


class Implementation:
    """Where each kata module comes from in this run."""

    def __init__(self, choice: str, curriculum_: Curriculum) -> None:
        self.choice = choice
        self.curriculum = curriculum_

    @property
    def label(self) -> str:
        if self.choice in (STUB, REFERENCE):
            return self.choice
        return f"folder {self.choice}"

    def module_path(self, kata: Kata) -> Path:
        if self.choice == STUB:
            return self.curriculum.stub_path(kata)
        if self.choice == REFERENCE:
            return self.curriculum.reference_path(kata)
        return Path(self.choice) / kata.name / f"{kata.module}.py"


class KataLoader(importlib.machinery.SourceFileLoader):
    """Loads a kata module, turning any failure into a KataModuleError the learner can read."""

    def exec_module(self, module: ModuleType) -> None:
        shown = shown_path(Path(self.path))
        if not Path(self.path).is_file():
            raise KataModuleError(
                f"{shown} does not exist: the graded folder must mirror reference/ "
                f"(<folder>/<kata>/<kata>.py)",
                name=module.__name__,
            )
        try:
            super().exec_module(module)
        except SyntaxError as error:
            where = f"line {error.lineno}" if error.lineno else "unknown line"
            snippet = (error.text or "").rstrip()
            raise KataModuleError(
                f"{shown} has a syntax error at {where}: {error.msg}\n    {snippet}",
                name=module.__name__,
            ) from error
        except Exception as error:
            frames = [
                f for f in traceback.extract_tb(error.__traceback__) if f.filename == self.path
            ]
            line = f" (line {frames[-1].lineno})" if frames else ""
            raise KataModuleError(
                f"{shown} raised {type(error).__name__} while being imported{line}: {error}",
                name=module.__name__,
            ) from error


class KataFinder(importlib.abc.MetaPathFinder):
    """Resolves kata module names to the implementation chosen for this run."""

    def __init__(self, implementation: Implementation) -> None:
        self.paths = {
            k.module: implementation.module_path(k) for k in implementation.curriculum.katas
        }

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.paths:
            return None
        file = str(self.paths[fullname])
        return importlib.util.spec_from_file_location(
            fullname, file, loader=KataLoader(fullname, file)
        )


def shown_path(path: Path) -> str:
    """A path relative to the working directory when possible: what the learner opens."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def implementation(config: pytest.Config) -> Implementation | None:
    return config.stash.get(impl_key, None)


# -- configure -------------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    curriculum_ = curriculum.for_config(config)
    if curriculum_ is None:
        return
    choice = config.getoption("kata_impl") or str(config.getini(IMPL_INI))
    if choice not in (STUB, REFERENCE):
        folder = Path(choice).expanduser()
        if not folder.is_dir():
            raise pytest.UsageError(
                f"{IMPL_OPTION}={choice}: expected 'stub', 'reference' or an existing folder laid "
                f"out like reference/ (<folder>/<kata>/<kata>.py)"
            )
        choice = str(folder.resolve())
    implementation_ = Implementation(choice, curriculum_)
    config.stash[impl_key] = implementation_
    finder = KataFinder(implementation_)
    sys.meta_path.insert(0, finder)
    config.add_cleanup(lambda: sys.meta_path.remove(finder))
    _expose_to_child_processes(finder, config)
    # A module imported earlier in this process (another pytest run in-process) would shadow it.
    for module_name in finder.paths:
        sys.modules.pop(module_name, None)


def _expose_to_child_processes(finder: KataFinder, config: pytest.Config) -> None:
    """Let other Python processes import the same kata modules by name.

    A process started with `spawn` or `forkserver` gets the parent's sys.path but not its
    meta-path finder, and a Python started by a launcher (mpiexec, ppserver) gets neither;
    both find the chosen files through these folders (sys.path, and PYTHONPATH for children).
    In this process the finder still decides: it sits before every sys.path entry.
    """
    folders = [str(path.parent) for path in finder.paths.values() if path.parent.is_dir()]
    saved_path, inherited = list(sys.path), os.environ.get("PYTHONPATH")
    sys.path[:0] = folders
    os.environ["PYTHONPATH"] = os.pathsep.join([*folders, *([inherited] if inherited else [])])

    def restore() -> None:
        sys.path[:] = saved_path
        if inherited is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = inherited

    config.add_cleanup(restore)


# -- collection ------------------------------------------------------------------------------


class KataTestModule(pytest.Module):
    """A kata's test file; if the learner's module cannot be imported, one explanatory failure."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        try:
            return list(super().collect())
        except self.CollectError as error:
            message = _explain_import_failure(error.__cause__, self)
            if message is None:
                raise
            return [KataModuleBroken.from_parent(self, name=BROKEN_ITEM_NAME, message=message)]


def _explain_import_failure(cause: BaseException | None, module: pytest.Module) -> str | None:
    if isinstance(cause, KataModuleError):
        return str(cause)
    implementation_ = implementation(module.config)
    if not isinstance(cause, ImportError) or implementation_ is None:
        return None
    katas = {k.module: k for k in implementation_.curriculum.katas}
    if cause.name not in katas or "cannot import name" not in str(cause):
        return None
    missing = str(cause).split("'")[1]
    shown = shown_path(implementation_.module_path(katas[cause.name]))
    return (
        f"{shown} does not define `{missing}`, which {module.path.name} imports.\n"
        f"Keep the names and signatures of the kata's contract (see its README.md)."
    )


class KataModuleBroken(pytest.Item):
    """Stands in for a test file whose kata module could not be imported."""

    def __init__(self, *, message: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.message = message

    def runtest(self) -> None:
        raise KataModuleError(self.message)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: object = None
    ) -> str:
        return self.message

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.name}: {self.message.splitlines()[0]}"


def pytest_pycollect_makemodule(
    module_path: Path, parent: pytest.Collector
) -> pytest.Module | None:
    implementation_ = implementation(parent.config)
    if implementation_ is None or implementation_.curriculum.kata_for_path(module_path) is None:
        return None
    module: pytest.Module = KataTestModule.from_parent(parent, path=module_path)
    return module


def kata_of(item: pytest.Item) -> Kata | None:
    """The kata a collected test belongs to, or None for tests outside katas/."""
    implementation_ = implementation(item.config)
    if implementation_ is None:
        return None
    return implementation_.curriculum.kata_for_path(item.path)


def iter_kata_items(items: Sequence[pytest.Item]) -> Iterator[tuple[pytest.Item, Kata]]:
    for item in items:
        kata = kata_of(item)
        if kata is not None:
            yield item, kata


# -- report header ---------------------------------------------------------------------------


def pytest_report_header(config: pytest.Config) -> str | None:
    implementation_ = implementation(config)
    if implementation_ is None:
        return None
    return f"kata implementation: {implementation_.label}"
