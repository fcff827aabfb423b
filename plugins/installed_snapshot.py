"""The installed packages' metadata, read once by a warm process and reused by its forked runs.

pytest looks up plugin entry points once per plugin it imports by name (`pytest_plugins`, `-p`):
20-odd times a session here, each time reading and parsing every installed package's
`entry_points.txt` from disk: about 40 ms of a 230 ms mutant run, measured. Nothing is installed
while a self-check or an MPI job runs, so a warm process (plugins/verify_worker.py,
plugins/mpi_warm.py) takes a snapshot before it forks, and `importlib.metadata.distributions()`
then answers from memory in every child. Standard library only: the warm processes import it
before anything else.
"""

from __future__ import annotations

import functools
import importlib.metadata as metadata
from collections.abc import Iterable
from os import PathLike
from typing import Any

PLUGIN_GROUP = "pytest11"  # the entry points pytest loads plugins from
# Read by pytest for each plugin's package, to tell an editable install (PEP 660).
EDITABLE_MARK = "direct_url.json"


class Remembered(metadata.Distribution):
    """One installed distribution whose files are read from disk once, then from memory."""

    def __init__(self, distribution: metadata.Distribution) -> None:
        self._distribution = distribution
        self._texts: dict[str, str | None] = {}

    def read_text(self, filename: str) -> str | None:
        if filename not in self._texts:
            self._texts[filename] = self._distribution.read_text(filename)
        return self._texts[filename]

    def locate_file(self, path: str | PathLike[str]) -> Any:
        return self._distribution.locate_file(path)

    # Parsed once too: pytest asks for each of them in every run.
    @functools.cached_property
    def entry_points(self) -> metadata.EntryPoints:
        return super().entry_points

    @functools.cached_property
    def metadata(self) -> Any:
        return super().metadata

    @functools.cached_property
    def files(self) -> Any:
        return super().files

    def __getattr__(self, name: str) -> Any:
        # What a concrete distribution has beyond the base class (e.g. `_normalized_name`).
        return getattr(self._distribution, name)


def take() -> None:
    """From now on, `importlib.metadata.distributions()` without arguments answers from a
    snapshot of what is installed now; with arguments (a name, a path) it reads the disk as
    before."""
    original = metadata.distributions
    if getattr(original, "snapshot", False):
        return
    snapshot = [Remembered(distribution) for distribution in original()]
    # Read now, in the warm process: what a forked run reads lands in its own copy of the
    # memory and is gone with it, so a snapshot filled lazily was read again by every run.
    for distribution in snapshot:
        if any(point.group == PLUGIN_GROUP for point in distribution.entry_points):
            _ = distribution.files, distribution.metadata, distribution.read_text(EDITABLE_MARK)

    def distributions(**kwargs: Any) -> Iterable[metadata.Distribution]:
        return iter(snapshot) if not kwargs else original(**kwargs)

    distributions.snapshot = True  # type: ignore[attr-defined]
    metadata.distributions = distributions
