"""The curriculum manifest: which katas exist, in which order, with which needs and hints.

Every plugin reads kata facts from here, never from folder names alone, so the teaching order
and the hardware needs live in one file (`katas/curriculum.toml`).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MANIFEST_NAME = "curriculum.toml"
KATAS_DIR = "katas"
REFERENCE_DIR = "reference"
DEFAULT_BUDGET_SECONDS = 10.0


class CurriculumError(Exception):
    """The manifest is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Kata:
    """One kata: a folder under katas/, a stub module of the same name, and its reference."""

    name: str
    track: str
    title: str
    order: int
    markers: tuple[str, ...] = ()
    budget_seconds: float = DEFAULT_BUDGET_SECONDS
    hints: tuple[str, ...] = ()
    book: str = ""

    @property
    def module(self) -> str:
        """The module name the kata's tests import (`from locks import Counter`)."""
        return self.name


@dataclass(frozen=True)
class Track:
    name: str
    title: str
    needs: str


@dataclass(frozen=True)
class Curriculum:
    """The parsed manifest, rooted at the repository folder that holds `katas/`."""

    root: Path
    katas: tuple[Kata, ...]
    tracks: dict[str, Track] = field(default_factory=dict)

    def by_name(self) -> dict[str, Kata]:
        return {kata.name: kata for kata in self.katas}

    def get(self, name: str) -> Kata | None:
        return self.by_name().get(name)

    def next_after(self, kata: Kata) -> Kata | None:
        later = [k for k in self.katas if k.order > kata.order]
        return later[0] if later else None

    def kata_dir(self, kata: Kata) -> Path:
        return self.root / KATAS_DIR / kata.name

    def stub_path(self, kata: Kata) -> Path:
        return self.kata_dir(kata) / f"{kata.module}.py"

    def reference_dir(self, kata: Kata) -> Path:
        return self.root / REFERENCE_DIR / kata.name

    def reference_path(self, kata: Kata) -> Path:
        return self.reference_dir(kata) / f"{kata.module}.py"

    def mutants_path(self, kata: Kata) -> Path:
        return self.reference_dir(kata) / "mutants.toml"

    def kata_for_path(self, path: Path) -> Kata | None:
        """The kata whose folder holds `path`, if any (used to attribute tests to katas)."""
        folder = _first_folder_under(self.root / KATAS_DIR, path)
        return self.get(folder) if folder else None


@functools.lru_cache(maxsize=4096)
def _first_folder_under(top: Path, path: Path) -> str:
    """The name of the folder right under `top` that holds `path` ('' if none). Cached: several
    plugins ask it for every test, and resolving a path reads the file system (about a tenth of
    a short run's time, profiled)."""
    try:
        relative = path.resolve().relative_to(top.resolve())
    except ValueError:
        return ""
    return relative.parts[0] if relative.parts else ""


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` that holds `katas/curriculum.toml`."""
    for folder in (start.resolve(), *start.resolve().parents):
        if (folder / KATAS_DIR / MANIFEST_NAME).is_file():
            return folder
    return None


def load(root: Path) -> Curriculum:
    """Parse `root/katas/curriculum.toml`, raising CurriculumError with the reason."""
    path = root / KATAS_DIR / MANIFEST_NAME
    try:
        stat = path.stat()
        data = _parsed(path, stat.st_mtime_ns, stat.st_size)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CurriculumError(f"cannot read {path}: {error}") from error
    default_budget = float(data.get("defaults", {}).get("budget_seconds", DEFAULT_BUDGET_SECONDS))
    tracks = {
        name: Track(name=name, title=str(spec.get("title", name)), needs=str(spec.get("needs", "")))
        for name, spec in data.get("tracks", {}).items()
    }
    katas = []
    for order, spec in enumerate(data.get("kata", [])):
        try:
            katas.append(
                Kata(
                    name=str(spec["name"]),
                    track=str(spec["track"]),
                    title=str(spec["title"]),
                    order=order,
                    markers=tuple(spec.get("markers", ())),
                    budget_seconds=float(spec.get("budget_seconds", default_budget)),
                    hints=tuple(spec.get("hints", ())),
                    book=str(spec.get("book", "")),
                )
            )
        except KeyError as missing:
            raise CurriculumError(f"{path}: kata #{order + 1} lacks the key {missing}") from None
    return Curriculum(root=root, katas=tuple(katas), tracks=tracks)


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    """The manifest's data, parsed once per version of the file: the self-check's warm workers
    parse it before they fork, so that each of its runs skips the parse. Only read, never
    changed."""
    return tomllib.loads(path.read_text(encoding="utf-8"))


curriculum_key = pytest.StashKey["Curriculum | None"]()


def for_config(config: pytest.Config) -> Curriculum | None:
    """The session's curriculum (loaded once, cached in the config's stash), or None outside a
    kata repository. A malformed manifest is a usage error: nothing sensible can run."""
    if curriculum_key not in config.stash:
        root = find_root(config.rootpath)
        try:
            config.stash[curriculum_key] = load(root) if root is not None else None
        except CurriculumError as error:
            raise pytest.UsageError(str(error)) from error
    return config.stash[curriculum_key]
