"""The backend registry (plugins/backends.py) against everything that must follow it: pyproject's
extras, the nox sessions, README's backend table and the GitHub workflow.

Each check returns the problems it finds as sentences that say what to add where, so adding a
backend to the registry and running this file is a to-do list.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import pytest
import yaml

from plugins.backends import BACKENDS, README_TABLE_HEADER, Backend, readme_row, readme_table
from tests.kata_repo import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"
README = REPO_ROOT / "README.md"
WORKFLOW = REPO_ROOT / ".github/workflows/ci.yml"
NOXFILE = REPO_ROOT / "noxfile.py"
# Extras that install no backend.
NOT_BACKEND_EXTRAS = {"dev", "all"}
# The session that runs the CPU tracks (threads, asyncio, processes) against the reference.
CPU_TRACKS_SESSION = "reference"


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# -- pyproject.toml --------------------------------------------------------------------------


def extras_problems(backends: Iterable[Backend], pyproject: dict[str, Any]) -> list[str]:
    project = pyproject["project"]
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})
    backends = list(backends)
    problems = [
        f"pyproject.toml: add the extra `{b.extra}` to [project.optional-dependencies]; it "
        f"installs the {b.marker} backend ({b.package})"
        for b in backends
        if b.extra not in extras
    ]
    known = {b.extra for b in backends} | NOT_BACKEND_EXTRAS
    problems += [
        f"pyproject.toml: the extra `{name}` belongs to no backend: add it to "
        f"plugins/backends.py or remove it"
        for name in extras
        if name not in known
    ]
    # `all` is the project itself with extras: "parallel-katas[mpi,opencl,...]".
    self_reference = re.compile(rf"^{re.escape(_normalized(project['name']))}\[(.*)\]$")
    in_all = {
        extra.strip()
        for requirement in extras.get("all", [])
        if (match := self_reference.match(_normalized(requirement.replace(" ", ""))))
        for extra in match.group(1).split(",")
    }
    problems += [
        f'pyproject.toml: add `{b.extra}` to the `all` extra ("{project["name"]}[...]"): the '
        f"{b.marker} backend installs from PyPI"
        for b in backends
        if b.from_pypi and b.extra not in in_all
    ]
    problems += [
        f"pyproject.toml: remove `{b.extra}` from the `all` extra: the {b.marker} backend does "
        f"not install from PyPI alone ({b.manual})"
        for b in backends
        if not b.from_pypi and b.extra in in_all
    ]
    return problems


# -- noxfile.py ------------------------------------------------------------------------------


def nox_sessions() -> dict[str, bool]:
    """Every session `nox -l` lists, and whether it runs by default (`*`) or not (`-`)."""
    listing = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "-f", str(NOXFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listing.returncode == 0, f"`nox -l` failed:\n{listing.stdout}\n{listing.stderr}"
    found = re.findall(r"^([*-]) (\S+)(?: -> .*)?$", listing.stdout, flags=re.MULTILINE)
    return {name: mark == "*" for mark, name in found}


def session_problems(backends: Iterable[Backend], sessions: Iterable[str]) -> list[str]:
    listed = set(sessions)
    return [
        f"noxfile.py: no session `{b.session}` for the {b.marker} backend; the noxfile must "
        f"make one per entry of plugins.backends.BACKENDS"
        for b in backends
        if b.session not in listed
    ]


# -- README.md -------------------------------------------------------------------------------


def readme_table_rows(readme: str) -> list[str] | None:
    """The rows of README's backend table (header and rule excluded); None if there is none."""
    lines = readme.splitlines()
    if README_TABLE_HEADER not in lines:
        return None
    start = lines.index(README_TABLE_HEADER) + 2
    rows: list[str] = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def readme_problems(backends: Iterable[Backend], readme: str) -> list[str]:
    rows = readme_table_rows(readme)
    if rows is None:
        return [
            f"README.md: no backend table (header `{README_TABLE_HEADER}`): paste the output "
            f"of `python -m plugins.backends` into the section Tracks"
        ]
    by_marker = {row.split("|")[1].strip(): row for row in rows}
    problems: list[str] = []
    expected: set[str] = set()
    for backend in backends:
        row = readme_row(backend)
        first_cell = row.split("|")[1].strip()
        expected.add(first_cell)
        if first_cell not in by_marker:
            problems.append(f"README.md: add the row `{row}` to the backend table")
        elif by_marker[first_cell] != row:
            problems.append(
                f"README.md: the backend table's row for {first_cell} reads "
                f"`{by_marker[first_cell]}`; the registry gives `{row}`"
            )
    problems += [
        f"README.md: the backend table's row `{row}` matches no backend in "
        f"plugins/backends.py: remove it"
        for marker, row in by_marker.items()
        if marker not in expected
    ]
    return problems


# -- .github/workflows/ci.yml ----------------------------------------------------------------


def _nox_runs(job: dict[str, Any]) -> Iterator[tuple[str, dict[str, str]]]:
    """(session, env) for each session a job's steps run with `nox -s`, matrix expanded."""
    # A YAML key left empty reads as None, hence every `or`.
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    pythons = matrix.get("python") or [None]
    for step in job.get("steps") or []:
        env = {**(job.get("env") or {}), **(step.get("env") or {})}
        for python in pythons:
            command = step.get("run") or ""
            if python is not None:
                command = command.replace("${{ matrix.python }}", str(python))
            words = shlex.split(command)
            for at, word in enumerate(words):
                if word == "nox" and words[at + 1 : at + 2] == ["-s"]:
                    for name in words[at + 2 :]:
                        if name.startswith("-") or name in {"&&", ";", "|"}:
                            break
                        yield name, {k: str(v) for k, v in env.items()}


def workflow_problems(
    backends: Iterable[Backend], workflow: dict[str, Any], sessions: dict[str, bool]
) -> list[str]:
    jobs: dict[str, dict[str, Any]] = workflow.get("jobs") or {}
    runs = [(name, run) for name, job in jobs.items() for run in _nox_runs(job)]
    run_sessions = {session for _, (session, _) in runs}
    backends = list(backends)
    problems = [
        f".github/workflows/ci.yml: no job runs the default nox session `{session}`: add "
        f"`nox -s {session}` to a job"
        for session, selected in sessions.items()
        if (selected or session == CPU_TRACKS_SESSION) and session not in run_sessions
    ]
    for b in backends:
        job_id = f"backend-{b.marker}"
        job = jobs.get(job_id)
        if job is None:
            problems.append(
                f".github/workflows/ci.yml: add a job `{job_id}` that runs `nox -s {b.session}` "
                f"with `env: KATA_REQUIRE: {b.marker}`"
            )
            continue
        envs = [env for session, env in _nox_runs(job) if session == b.session]
        if not envs:
            problems.append(
                f".github/workflows/ci.yml: the job `{job_id}` must run `nox -s {b.session}`"
            )
        elif any(env.get("KATA_REQUIRE") != b.marker for env in envs):
            problems.append(
                f".github/workflows/ci.yml: the job `{job_id}` must set `KATA_REQUIRE: {b.marker}` "
                f"so that an absent {b.marker} backend fails it instead of skipping"
            )
        commands = " ".join(step.get("run") or "" for step in job.get("steps") or [])
        problems += [
            f".github/workflows/ci.yml: the job `{job_id}` must `apt-get install` {package}"
            for package in b.apt
            if not re.search(rf"apt-get install[^\n;&|]*\b{re.escape(package)}\b", commands)
        ]
        runs_on = job.get("runs-on") or []
        labels = [runs_on] if isinstance(runs_on, str) else list(runs_on)
        if not b.from_pypi and "self-hosted" not in labels:
            problems.append(
                f".github/workflows/ci.yml: the job `{job_id}` needs a self-hosted runner "
                f"(runs-on: [self-hosted, ...]): GitHub's runners cannot give it {b.manual!r}"
            )
    markers = {b.marker for b in backends}
    problems += [
        f".github/workflows/ci.yml: the job `{name}` requires `{env['KATA_REQUIRE']}`, which "
        f"is no backend in plugins/backends.py"
        for name, (_, env) in runs
        if env.get("KATA_REQUIRE") and not set(env["KATA_REQUIRE"].split(",")) <= markers
    ]
    return problems


# -- the checks ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sessions() -> dict[str, bool]:
    return nox_sessions()


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{WORKFLOW} must hold one YAML mapping"
    return loaded


def _problems_text(problems: list[str]) -> str:
    return "the backend registry and its followers disagree:\n  " + "\n  ".join(problems)


def test_the_registry_names_each_marker_extra_and_session_once() -> None:
    for field in ("marker", "extra", "session"):
        values = [getattr(b, field) for b in BACKENDS.values()]
        assert len(values) == len(set(values)), f"two backends share a {field}: {values}"
    assert all(key == b.marker for key, b in BACKENDS.items()), "BACKENDS is keyed by marker"


def test_every_backend_has_its_extra_and_all_covers_those_from_pypi(
    pyproject: dict[str, Any],
) -> None:
    problems = extras_problems(BACKENDS.values(), pyproject)
    assert not problems, _problems_text(problems)


def test_every_backend_has_its_nox_session(sessions: dict[str, bool]) -> None:
    problems = session_problems(BACKENDS.values(), sessions)
    assert not problems, _problems_text(problems)


def test_the_readme_backend_table_matches_the_registry() -> None:
    readme = README.read_text(encoding="utf-8")
    problems = readme_problems(BACKENDS.values(), readme)
    assert not problems, _problems_text(problems)
    assert readme_table() in readme, (
        "README.md: the backend table must read exactly as `python -m plugins.backends` prints "
        "it, in the registry's order"
    )


def test_the_workflow_runs_every_session_and_one_required_job_per_backend(
    workflow: dict[str, Any], sessions: dict[str, bool]
) -> None:
    problems = workflow_problems(BACKENDS.values(), workflow, sessions)
    assert not problems, _problems_text(problems)


def test_the_workflow_tests_every_python_the_noxfile_tests(
    workflow: dict[str, Any], sessions: dict[str, bool]
) -> None:
    noxfile_pythons = {
        name.removeprefix("tests-") for name in sessions if name.startswith("tests-")
    }
    matrix = workflow["jobs"]["tests"]["strategy"]["matrix"]["python"]
    assert set(map(str, matrix)) == noxfile_pythons, (
        f".github/workflows/ci.yml: the tests job's matrix {matrix} must list the noxfile's "
        f"Pythons {sorted(noxfile_pythons)}"
    )


def test_a_backend_added_only_to_the_registry_is_reported_everywhere_it_is_missing(
    pyproject: dict[str, Any], workflow: dict[str, Any], sessions: dict[str, bool]
) -> None:
    # The checks above pass on this repository; this shows that they would catch the drift.
    quantum = replace(
        BACKENDS["pyro"], marker="quantum", extra="qubits", session="qubits", apt=("qpu-driver",)
    )
    backends = [*BACKENDS.values(), quantum]
    readme = README.read_text(encoding="utf-8")
    found = {
        "pyproject.toml": extras_problems(backends, pyproject),
        "noxfile.py": session_problems(backends, sessions),
        "README.md": readme_problems(backends, readme),
        ".github/workflows/ci.yml": workflow_problems(backends, workflow, sessions),
    }
    for where, problems in found.items():
        assert any(p.startswith(where) and ("qubits" in p or "quantum" in p) for p in problems), (
            f"a backend missing from {where} went unreported: {problems}"
        )


def test_a_manual_backend_in_all_or_on_a_hosted_runner_is_reported(
    pyproject: dict[str, Any], workflow: dict[str, Any], sessions: dict[str, bool]
) -> None:
    manual_pyro = replace(BACKENDS["pyro"], manual="build it by hand")
    others = [b for b in BACKENDS.values() if b.marker != "pyro"]
    assert any(
        "remove `pyro` from the `all` extra" in p
        for p in extras_problems([*others, manual_pyro], pyproject)
    ), "a backend that PyPI cannot install must be reported when `all` still lists it"
    assert any(
        "needs a self-hosted runner" in p
        for p in workflow_problems([*others, manual_pyro], workflow, sessions)
    ), "a backend that PyPI cannot install must be reported when its job runs on a hosted runner"
