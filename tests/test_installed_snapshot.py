"""The warm processes' snapshot of installed package metadata (plugins/installed_snapshot.py)."""

from __future__ import annotations

import importlib.metadata as metadata

import pytest

from plugins import installed_snapshot


@pytest.fixture
def snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the snapshot for one test; monkeypatch puts the real lookup back afterwards."""
    monkeypatch.setattr(metadata, "distributions", metadata.distributions)
    installed_snapshot.take()


def _plugins() -> set[tuple[str, str]]:
    return {(ep.name, ep.value) for ep in metadata.entry_points(group="pytest11")}


def test_the_snapshot_lists_the_same_packages_and_pytest_plugins_as_the_disk() -> None:
    on_disk = sorted(d.metadata["Name"] for d in metadata.distributions())
    plugins_on_disk = _plugins()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metadata, "distributions", metadata.distributions)
        installed_snapshot.take()
        remembered = sorted(d.metadata["Name"] for d in metadata.distributions())
        assert remembered == on_disk, "the snapshot must list exactly what is installed"
        assert _plugins() == plugins_on_disk, "pytest must find the same plugins in a snapshot"
        assert "hypothesispytest" in {name for name, _ in _plugins()}, (
            "hypothesis's plugin is missing"
        )


@pytest.mark.usefixtures("snapshot")
def test_a_package_s_files_are_read_from_disk_only_once(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    first = next(iter(metadata.distributions()))
    assert isinstance(first, installed_snapshot.Remembered)
    wrapped = first._distribution
    real_read = wrapped.read_text

    def counting_read(filename: str) -> str | None:
        reads.append(filename)
        return real_read(filename)

    monkeypatch.setattr(wrapped, "read_text", counting_read)
    for _ in range(3):
        for distribution in metadata.distributions():
            distribution.entry_points  # noqa: B018  (the lookup pytest makes per plugin)
            distribution.read_text("METADATA")
    assert reads.count("METADATA") <= 1, f"read METADATA {reads.count('METADATA')} times"
    assert reads.count("entry_points.txt") <= 1, "entry points must be parsed once"


@pytest.mark.usefixtures("snapshot")
def test_a_lookup_by_name_still_reads_the_disk() -> None:
    assert metadata.distribution("pytest").metadata["Name"] == "pytest"
    assert metadata.version("pytest"), "a lookup by name must still work after the snapshot"


def test_what_pytest_reads_of_its_plugins_packages_is_read_before_any_run_forks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A forked run's reads land in its own copy of the snapshot: the warm process must have
    read it all already, or every run reads it again."""
    monkeypatch.setattr(metadata, "distributions", metadata.distributions)
    installed_snapshot.take()
    reads: list[str] = []
    for distribution in metadata.distributions():
        assert isinstance(distribution, installed_snapshot.Remembered)
        wrapped = distribution._distribution
        real_read = wrapped.read_text
        monkeypatch.setattr(
            wrapped, "read_text", lambda name, real=real_read: reads.append(name) or real(name)
        )
    for distribution in metadata.distributions():
        if any(point.group == "pytest11" for point in distribution.entry_points):
            distribution.files  # noqa: B018  (what pytest reads of each plugin's package)
            distribution.metadata  # noqa: B018
            distribution.read_text("direct_url.json")
    assert not reads, f"read after the snapshot was taken: {sorted(set(reads))}"
