"""The self-check's plan: which runs verify a kata, and the one pool of job slots that runs them.

The pool is warm workers (plugins/verify_runs.py) unless KATA_VERIFY_COLD=1; it has
KATA_VERIFY_JOBS slots (default: one per CPU), plus runs that mostly wait beside them, up to
KATA_VERIFY_MAX_RUNS in flight (default: four per slot); KATA_VERIFY_LOG=PATH appends one JSON
line per run.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from plugins import impl, mpi_warm, mutants, parsing, settings, verify_admission, verify_history
from plugins.backends import mpi_launcher
from plugins.curriculum import Curriculum, Kata
from plugins.verify_runs import Runner, WarmRunner, cold_runner
from plugins.verify_schedule import History, Run, Scheduler
from plugins.verify_worker import plugin_modules

JOBS_VARIABLE = "KATA_VERIFY_JOBS"
COLD_VARIABLE = "KATA_VERIFY_COLD"  # 1: a fresh `python -m pytest` per run, as before workers
TIMING = "timing"  # the marker of a test that measures speed (registered by plugins/verify.py)
LOG_VARIABLE = "KATA_VERIFY_LOG"  # a file: one JSON line per run (timings, counts)

warm_ranks_key = pytest.StashKey["mpi_warm.Server | None"]()
notes_key = pytest.StashKey[list[str]]()  # what went wrong with the workers, for the summary
scheduler_key = pytest.StashKey[Scheduler]()


def jobs() -> int:
    return max(1, int(os.environ.get(JOBS_VARIABLE, os.cpu_count() or 1)))


def cold() -> bool:
    return os.environ.get(COLD_VARIABLE, "") not in ("", "0")


def way() -> str:
    return "a fresh python -m pytest per run" if cold() else "warm workers forking each run"


def _preloaded_modules(config: pytest.Config) -> list[str]:
    return plugin_modules(config.pluginmanager.get_plugins())


def scheduler(config: pytest.Config) -> Scheduler:
    """The session's one pool of job slots (started with its first runs, closed at the end)."""
    if scheduler_key not in config.stash:
        root = config.rootpath
        notes = config.stash[notes_key]
        cold_way, preload = cold(), _preloaded_modules(config)

        def make_runner() -> Runner:
            return cold_runner(root) if cold_way else WarmRunner(root, preload, notes)

        log = os.environ.get(LOG_VARIABLE)
        pool = Scheduler(
            jobs(),
            make_runner,
            History(
                config.cache if hasattr(config, "cache") else None,
                root / verify_history.SEED_PATH,
            ),
            Path(log) if log else None,
            verify_admission.max_runs(jobs()),
            notes,
        )
        config.stash[scheduler_key] = pool
    return config.stash[scheduler_key]


def share_warm_ranks(config: pytest.Config) -> None:
    """One warm rank server (plugins/mpi_warm.py) for the ranks of every MPI run: each run
    would otherwise start its own, and most runs are one short launch. Its runs find it by the
    environment they inherit; until it listens, their ranks start cold."""
    if warm_ranks_key in config.stash:
        return
    config.stash[warm_ranks_key] = None
    if cold() or mpi_warm.cold() or os.environ.get(mpi_warm.SERVER_VARIABLE):
        return
    if mpi_launcher() is None:
        return
    server = mpi_warm.Server(config.rootpath, _preloaded_modules(config))
    config.stash[warm_ranks_key] = server
    os.environ[mpi_warm.SERVER_VARIABLE] = str(server.path)

    def stop() -> None:
        os.environ.pop(mpi_warm.SERVER_VARIABLE, None)
        server.stop()

    config.add_cleanup(stop)


def runs(
    config: pytest.Config, curriculum_: Curriculum, kata: Kata, timing: bool
) -> tuple[list[Run], list[str]]:
    """The runs that verify `kata`, and the mutants that do not fit the reference."""
    if "mpi" in kata.markers:
        share_warm_ranks(config)
    test_file = curriculum_.kata_dir(kata) / f"test_{kata.name}.py"
    history = scheduler(config).history
    reference_source = curriculum_.reference_path(kata).read_text(encoding="utf-8")
    targets: dict[str, tuple[str, tuple[str, ...]]] = {
        "stub": (impl.STUB, ()),
        "reference": (impl.REFERENCE, ()),
    }
    problems = []
    for mutant in mutants.load(curriculum_.mutants_path(kata)):
        try:
            # Checked here: a mutant the reference no longer fits is a problem to name, not a run.
            mutant.apply(reference_source)
        except mutants.MutantError as error:
            problems.append(str(error))
            continue
        label = f"mutant:{mutant.name}"
        targets[label] = (
            f"{impl.MUTANT_PREFIX}{kata.name}/{mutant.name}",
            history.mutant_args(kata.name, label),
        )
    common = tuple(settings.of(config).child_args())
    # Only some tests measure speed: the reference runs alone, the stub (it cannot pass a
    # timing test, however busy the machine) and the mutants' other tests beside other runs.
    some_timed = not timing and has_timing_tests(test_file)
    runs = []
    for label, (target, extra) in targets.items():
        alone = timing or (some_timed and label == "reference")
        split = some_timed and label.startswith("mutant:")
        runs.append(
            Run(
                kata=kata.name,
                label=label,
                test_file=test_file,
                target=target,
                extra=common + extra + (("-m", f"not {TIMING}") if split else ()),
                timing=alone,
                expected=history.durations.get(f"{kata.name}/{label}"),
                then_timing=common + extra + ("-m", TIMING) if split else None,
                # MPICH's ranks poll while they wait: an MPI run that waits still keeps cores
                # busy, and under contention it only looks like waiting (it waits for a core).
                polls="mpi" in kata.markers,
            )
        )
    return runs, problems


def has_timing_tests(test_file: Path) -> bool:
    """Whether a test in the file is marked `@pytest.mark.timing` (it measures speed)."""
    try:
        tree = parsing.parse(test_file.read_text(encoding="utf-8"), str(test_file))
    except (OSError, SyntaxError):
        return False
    return any(
        isinstance(node, ast.Attribute) and node.attr == TIMING and _is_mark(node.value)
        for node in ast.walk(tree)
    )


def _is_mark(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "mark"
