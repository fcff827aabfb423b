"""Implementation swap: decides which file a kata's `from locks import Counter` loads.

The tests import each kata module by its plain name; `--kata-impl` picks the learner's stub
(the default), the reference solution, one mutant of the reference (`mutant:NAME`, to watch the
tests catch its bug), or any folder laid out like `reference/` (grading).
A kata module that fails to load becomes one failing test with a one-paragraph explanation,
so the other katas of the run still run.
"""

from __future__ import annotations

import difflib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from plugins import curriculum, mutants, settings
from plugins.curriculum import Curriculum, Kata

STUB, REFERENCE = "stub", "reference"
MUTANT_PREFIX = "mutant:"
BROKEN_ITEM_NAME = "kata module loads"

impl_key = pytest.StashKey["Implementation"]()


class KataModuleError(ImportError):
    """A kata module could not be loaded; the message is written for the learner."""


@dataclass(frozen=True)
class Implementation:
    """Where each kata module comes from in this run."""

    curriculum: Curriculum
    label: str  # what the header and the status table call it
    paths: dict[str, Path]  # kata name -> the file its tests import
    detail: str = ""  # one more line of explanation for the report header
    scratch: Path | None = None  # a folder written for this run (a mutant), removed by close()

    def module_path(self, kata: Kata) -> Path:
        return self.paths[kata.name]

    def close(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


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


def resolve(choice: str, curriculum_: Curriculum, selected: Iterable[Kata] = ()) -> Implementation:
    """The implementation `choice` names: 'stub', 'reference', 'mutant:[KATA/]NAME' or a folder
    laid out like reference/. A bare mutant NAME found in several katas is looked up among the
    `selected` katas (those the command line names). A mutant is written to a scratch folder
    (so child processes import it by name, as any other choice): call `close()` at the end."""
    if choice == STUB:
        return Implementation(curriculum_, STUB, _paths(curriculum_, curriculum_.stub_path))
    if choice == REFERENCE:
        return Implementation(
            curriculum_, REFERENCE, _paths(curriculum_, curriculum_.reference_path)
        )
    if choice.startswith(MUTANT_PREFIX):
        kata, mutant = _find_mutant(choice.removeprefix(MUTANT_PREFIX), curriculum_, selected)
        return _mutant_implementation(curriculum_, kata, mutant)
    folder = Path(choice).expanduser()
    if not folder.is_dir():
        raise pytest.UsageError(
            f"{settings.IMPL_OPTION}={choice}: expected 'stub', 'reference' or an existing folder laid "
            f"out like reference/ (<folder>/<kata>/<kata>.py), or {MUTANT_PREFIX}NAME (one "
            f"mutant of the reference)"
        )
    folder = folder.resolve()
    return Implementation(
        curriculum_,
        f"folder {folder}",
        _paths(curriculum_, lambda kata: folder / kata.name / f"{kata.module}.py"),
    )


def _paths(curriculum_: Curriculum, path: Callable[[Kata], Path]) -> dict[str, Path]:
    return {kata.name: path(kata) for kata in curriculum_.katas}


def _find_mutant(
    wanted: str, curriculum_: Curriculum, selected: Iterable[Kata]
) -> tuple[Kata, mutants.Mutant]:
    """The one mutant `wanted` (NAME or KATA/NAME) names, or a usage error listing the valid."""
    option = f"{settings.IMPL_OPTION}={MUTANT_PREFIX}{wanted}"
    kata_name, _, name = wanted.rpartition("/")
    if kata_name:
        kata = curriculum_.get(kata_name)
        if kata is None:
            raise pytest.UsageError(
                f"{option}: no kata {kata_name!r}; valid: "
                f"{', '.join(k.name for k in curriculum_.katas)}"
            )
        katas: Sequence[Kata] = [kata]
    else:
        katas = curriculum_.katas
    everything = {kata: _mutants_of(kata, curriculum_) for kata in katas}
    found = [(kata, m) for kata, found in everything.items() for m in found if m.name == name]
    chosen = set(selected)
    narrowed = [(kata, m) for kata, m in found if kata in chosen]
    if len(found) > 1 and len(narrowed) == 1:
        found = narrowed
    if len(found) == 1:
        return found[0]
    if found:
        raise pytest.UsageError(
            f"{option}: a mutant of that name exists in several katas; name one of: "
            + ", ".join(f"{MUTANT_PREFIX}{kata.name}/{name}" for kata, _ in found)
        )
    valid = [f"{kata.name}/{m.name}" for kata, found in everything.items() for m in found]
    close = difflib.get_close_matches(wanted, valid, n=3) or difflib.get_close_matches(
        name, [v.rpartition("/")[2] for v in valid], n=3
    )
    raise pytest.UsageError(
        f"{option}: no such mutant"
        + (f" (did you mean {', '.join(close)}?)" if close else "")
        + "; valid (KATA/NAME, or NAME alone where it is unique):\n"
        + "\n".join(
            f"  {kata.name}: {', '.join(m.name for m in found)}"
            for kata, found in everything.items()
            if found
        )
    )


def _mutants_of(kata: Kata, curriculum_: Curriculum) -> list[mutants.Mutant]:
    try:
        return mutants.load(curriculum_.mutants_path(kata))
    except mutants.MutantError as error:
        raise pytest.UsageError(str(error)) from error


def _mutant_implementation(
    curriculum_: Curriculum, kata: Kata, mutant: mutants.Mutant
) -> Implementation:
    """The reference, except for `kata`, whose module is the mutated reference."""
    reference = curriculum_.reference_path(kata)
    try:
        source = mutant.apply(reference.read_text(encoding="utf-8"))
    except (OSError, mutants.MutantError) as error:
        raise pytest.UsageError(f"{settings.IMPL_OPTION}: {error}") from error
    scratch = Path(tempfile.mkdtemp(prefix=f"kata-mutant-{mutant.name}-"))
    mutated = scratch / kata.name / f"{kata.module}.py"
    mutated.parent.mkdir()
    mutated.write_text(source, encoding="utf-8")
    paths = _paths(curriculum_, curriculum_.reference_path) | {kata.name: mutated}
    label = f"mutant {kata.name}/{mutant.name}"
    return Implementation(curriculum_, label, paths, detail=mutant.bug, scratch=scratch)


def _selected_katas(config: pytest.Config, curriculum_: Curriculum) -> list[Kata]:
    """The katas the command line's paths point into (`pytest katas/locks ...`)."""
    katas = []
    for arg in config.args:
        kata = curriculum_.kata_for_path(config.invocation_params.dir / arg.split("::")[0])
        if kata is not None:
            katas.append(kata)
    return katas


def pytest_configure(config: pytest.Config) -> None:
    curriculum_ = curriculum.for_config(config)
    if curriculum_ is None:
        return
    choice = settings.of(config).impl
    implementation_ = resolve(choice, curriculum_, _selected_katas(config, curriculum_))
    config.add_cleanup(implementation_.close)
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
            from plugins import hardware  # (hardware imports this module)

            # A package of an absent backend (mpi4py, pyopencl, celery ...) is not the
            # learner's mistake: skip, saying how to get it.
            absent = hardware.absent_backend_item(self, error.__cause__)
            if absent is not None:
                return [absent]
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
        # A line, even the file's top: a skip's report needs one (pytest asserts it).
        return self.path, 0, f"{self.name}: {self.message.splitlines()[0]}"


def pytest_pycollect_makemodule(
    module_path: Path, parent: pytest.Collector
) -> pytest.Module | None:
    implementation_ = implementation(parent.config)
    if implementation_ is None or implementation_.curriculum.kata_for_path(module_path) is None:
        return None
    module: pytest.Module = KataTestModule.from_parent(parent, path=module_path)
    return module


def kata_marked(config: pytest.Config, path: Path, marker: str) -> bool:
    """Whether `path` belongs to a kata whose manifest entry declares `marker`."""
    implementation_ = implementation(config)
    kata = implementation_.curriculum.kata_for_path(path) if implementation_ else None
    return kata is not None and marker in kata.markers


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
    detail = f": {implementation_.detail}" if implementation_.detail else ""
    return f"kata implementation: {implementation_.label}{detail}"
