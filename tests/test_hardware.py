"""Hardware markers: visible skips with a way out, and --kata-require for CI lanes."""

from __future__ import annotations

import pytest

from plugins.backends import BACKENDS, MPIEXEC_VARIABLE
from tests.kata_repo import KataRepo

NEEDS_MPI = """
import pytest
from adder import add


@pytest.mark.mpi
def test_adds_across_ranks():
    assert add(1, 1) == 2
"""


@pytest.fixture(autouse=True)
def absent_mpi(monkeypatch: pytest.MonkeyPatch) -> None:
    """MPI is absent for these runs even where mpi4py is installed: the launcher they are told
    to use does not exist."""
    monkeypatch.setenv(MPIEXEC_VARIABLE, "/nonexistent/mpiexec")


def test_a_test_needing_an_absent_backend_is_skipped_with_the_reason_and_the_remedy(
    kata_repo: KataRepo,
) -> None:
    kata_repo.write("katas/adder/test_adder.py", NEEDS_MPI)
    result = kata_repo.run("katas/adder", "--kata-impl=reference", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED ?1? katas/adder/test_adder.py:*: skipped: needs an MPI launcher and mpi4py; *. "
            "To get it: pip install -e *mpi* (or: nox -s mpi)"
        ]
    )


def test_kata_require_turns_an_absent_backend_into_a_failure(kata_repo: KataRepo) -> None:
    kata_repo.write("katas/adder/test_adder.py", NEEDS_MPI)
    result = kata_repo.run("katas/adder", "--kata-impl=reference", "--kata-require=mpi")
    result.assert_outcomes(errors=1)
    assert result.ret == 1, "a required backend that is absent must fail the run"
    result.stdout.fnmatch_lines(["*required by --kata-require but absent: needs an MPI launcher*"])


def test_an_unknown_backend_is_a_usage_error_listing_the_valid_ones(kata_repo: KataRepo) -> None:
    result = kata_repo.run("katas", "--kata-require=quantum")
    assert result.ret == 4, "an unknown backend must stop the run as a usage error"
    result.stderr.fnmatch_lines([f"*unknown backend quantum; valid: {', '.join(BACKENDS)}, all*"])


def test_the_report_header_lists_the_backends(kata_repo: KataRepo) -> None:
    result = kata_repo.run("katas", "--kata-impl=reference")
    result.stdout.fnmatch_lines(["kata backends: mpi *, opencl *, cuda *, broker *, pyro *"])


def test_an_unregistered_marker_is_an_error(kata_repo: KataRepo) -> None:
    kata_repo.write("katas/adder/test_adder.py", NEEDS_MPI.replace("mark.mpi", "mark.mpii"))
    result = kata_repo.run("katas/adder", "--kata-impl=reference")
    result.stdout.fnmatch_lines(["*'mpii' not found in `markers` configuration option*"])


def _mark_adder_in_the_manifest(kata_repo: KataRepo, markers: str) -> None:
    manifest = (kata_repo.root / "katas/curriculum.toml").read_text(encoding="utf-8")
    marked = manifest.replace(
        'title = "Add two numbers"', f'title = "Add two numbers"\nmarkers = {markers}'
    )
    assert marked != manifest
    kata_repo.write("katas/curriculum.toml", marked)


def test_a_backend_named_in_the_manifest_skips_every_test_of_the_kata(
    kata_repo: KataRepo,
) -> None:
    _mark_adder_in_the_manifest(kata_repo, '["mpi"]')
    result = kata_repo.run("katas", "--kata-impl=reference", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        ["SKIPPED *katas/adder/test_adder.py*: skipped: needs an MPI launcher and mpi4py*"]
    )
    assert result.stdout.str().count("skipped: needs an MPI launcher and mpi4py") == 2


def test_kata_require_fails_every_test_of_a_kata_whose_manifest_needs_the_backend(
    kata_repo: KataRepo,
) -> None:
    _mark_adder_in_the_manifest(kata_repo, '["mpi"]')
    result = kata_repo.run("katas", "--kata-impl=reference", "--kata-require=mpi")
    result.assert_outcomes(passed=1, errors=2)
    assert result.ret == 1


def test_a_misspelt_manifest_marker_is_an_error(kata_repo: KataRepo) -> None:
    _mark_adder_in_the_manifest(kata_repo, '["mpii"]')
    result = kata_repo.run("katas", "--kata-impl=reference")
    assert result.ret != 0, "a marker the plugins do not know must not pass silently"
    result.stdout.fnmatch_lines(["*'mpii' not found in `markers` configuration option*"])


def test_a_kata_whose_test_file_imports_an_absent_backends_package_is_skipped_not_a_stop(
    kata_repo: KataRepo,
) -> None:
    # A laptop without the cuda extra: the test file's own `import pycuda.driver` fails. That
    # must not stop the collection of the whole run (pytest stops at a collection error).
    _mark_adder_in_the_manifest(kata_repo, '["cuda"]')
    kata_repo.write(
        "katas/adder/test_adder.py",
        "import pycuda.driver\nimport pytest\nfrom adder import add\n\n\n"
        "@pytest.mark.clause(1)\ndef test_adds():\n    assert add(2, 3) == 5\n",
    )
    result = kata_repo.run("katas", "--kata-impl=reference", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED *katas/adder/test_adder.py: skipped: needs an NVIDIA GPU with PyCUDA*"]
    )
    required = kata_repo.run("katas", "--kata-impl=reference", "--kata-require=cuda")
    required.assert_outcomes(passed=1, errors=1)


def test_a_kata_module_that_imports_an_absent_backends_package_is_skipped_too(
    kata_repo: KataRepo,
) -> None:
    # The learner's module itself imports the backend (`from mpi4py import MPI` in a stub):
    # without the package that is a skip saying how to get it, not a broken kata (and not, as
    # it once was, an internal error of pytest's while it reported the skip).
    _mark_adder_in_the_manifest(kata_repo, '["cuda"]')
    for folder in ("katas", "reference"):
        path = kata_repo.root / folder / "adder" / "adder.py"
        path.write_text("import pycuda.driver\n" + path.read_text(encoding="utf-8"))
    for impl, greeter in (("stub", {"failed": 1}), ("reference", {"passed": 1})):
        result = kata_repo.run("katas", f"--kata-impl={impl}", "-rs")
        result.assert_outcomes(skipped=1, **greeter)
        result.stdout.fnmatch_lines(["SKIPPED *katas/adder/test_adder.py: skipped: needs an*"])
        assert "INTERNALERROR" not in result.stdout.str()
