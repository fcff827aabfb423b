"""Benchmark of the controlled scheduler on every kata probe (`nox -s probe_bench`).

For each kata whose tests use the `probe` fixture it prints: per probe test, the schedules
explored and the median milliseconds per schedule; per mutant, the first schedule that killed
it (bar: within a quarter of the budget); false alarms on the reference over 10 seeds (bar: 0);
each probe test's seconds (bar: 1 s) and the seconds the kata file takes on the reference
(bar: 2 s). Exit status 1 if a bar fails.

    python -m plugins.probe_bench [KATA ...] [--seeds 10] [--budget 250] [--jobs 2]

Each run is a process of its own, forked from a warm worker (as `pytest --kata-verify` runs
them), so the bench does not pay Python's and pytest's start once per seed and per mutant; the
figures come from inside the run and are the same either way. Like the self-check's runs, each
is verdict-only (KATA_VERDICT_ONLY=1): a failing probe is reported unshrunk, and Hypothesis does
not shrink. The first killing schedule is found before any shrinking; shrinking each mutant's
failure (up to 800 re-runs of its schedules) measured nothing. Every run goes through one pool
of `--jobs` warm runners (default 2, one per core): the reference's seeds of every kata first,
seed by seed, then each kata's mutants as soon as its seed-0 run has said each probe test's
budget. A run's workers take turns (one thread runs at a time), but two runs at once still slow
each other on a shared VM (a pure-Python loop: 0.25-0.30 s alone, 0.26-0.41 s beside a copy of
itself), and the VM's speed varies by the hour: the speed check printed at the end says how
fast it was.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import queue
import re
import runpy
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from plugins import curriculum, mutants, parsing, verify_runs
from plugins.curriculum import Curriculum, Kata
from plugins.settings import VERDICT_ONLY_VARIABLE
from plugins.verify_runs import Outcome, Runner, WarmRunner

KATA_FILE_BAR_SECONDS = 2.0
PROBE_TEST_BAR_SECONDS = 1.0
MEDIAN_BAR_MS = 1.0


# A probe test is marked `probe` or asks for the `probe` fixture (which marks it at collection):
# katas/locks has no marker at all.
_USES_PROBE = re.compile(r"mark\.probe\b|\bprobe: Prober\b")


def _probe_katas(curriculum_: Curriculum, names: list[str]) -> list[Kata]:
    chosen = [k for k in curriculum_.katas if not names or k.name in names]
    return [
        k
        for k in chosen
        if (curriculum_.kata_dir(k) / f"test_{k.name}.py").is_file()
        and _USES_PROBE.search(
            (curriculum_.kata_dir(k) / f"test_{k.name}.py").read_text(encoding="utf-8")
        )
    ]


def _run(
    runner: Runner,
    root: Path,
    kata: Kata,
    target: str,
    seed: int,
    budget: int,
    stats: Path,
    *extra: str,
) -> tuple[Outcome, list[dict[str, Any]]]:
    stats.unlink(missing_ok=True)
    test_file = root / "katas" / kata.name / f"test_{kata.name}.py"
    outcome = verify_runs.run_suite(
        runner,
        test_file,
        target,
        f"--kata-probe-seed={seed}",
        f"--kata-probe-budget={budget}",
        f"--kata-probe-stats={stats}",
        *extra,
    )
    entries = (
        [json.loads(line) for line in stats.read_text().splitlines()] if stats.is_file() else []
    )
    return outcome, entries


def _first_kill(
    runner: Runner,
    root: Path,
    kata: Kata,
    target: str,
    budget: int,
    stats: Path,
    budgets: dict[str, int],
) -> tuple[int, float] | None:
    """The earliest schedule at which a probe test caught the mutant, and its bar. A run that
    stops at the first failing test (-x) is enough when that test failed at schedule 0 (no test
    can do better) or when nothing failed (it ran every test); otherwise the tests it did not
    reach run too, so the answer is always the one a full run gives. The tests it ran are not
    run again: their explorations are seeded, and would end the same way."""
    outcome, entries = _run(runner, root, kata, target, 0, budget, stats, "-m", "probe", "-x")
    kills = _kills(entries, budget, budgets)
    if (kills and min(kills)[0] == 0) or outcome.failed == 0:
        return min(kills) if kills else None
    skip = [arg for test in _deselectable(root, kata, entries) for arg in ("--deselect", test)]
    _outcome, rest = _run(runner, root, kata, target, 0, budget, stats, "-m", "probe", *skip)
    kills += _kills(rest, budget, budgets)
    return min(kills) if kills else None


def _deselectable(root: Path, kata: Kata, entries: list[dict[str, Any]]) -> list[str]:
    """The node ids of the tests a run explored that ``--deselect`` (which matches a prefix)
    can leave out without leaving out another test: ``test_a`` would take ``test_a_b`` too."""
    test_file = root / "katas" / kata.name / f"test_{kata.name}.py"
    names = [
        node.name
        for node in parsing.parse(test_file.read_text(encoding="utf-8"), str(test_file)).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    ]
    safe = []
    for test in sorted({e["test"] for e in entries}):
        name = test.rsplit("::", 1)[-1]
        if "[" in name or not any(o != name and o.startswith(name) for o in names):
            safe.append(test)
    return safe


def _kills(
    entries: list[dict[str, Any]], budget: int, budgets: dict[str, int]
) -> list[tuple[int, float]]:
    """(first failing schedule, bar) of each exploration that caught the mutant."""
    return [
        (int(e["first_failure"]), budgets.get(e["test"], budget) / 4)
        for e in entries
        if e["failed"] and e.get("first_failure") is not None
    ]


class Pool:
    """The warm runners, lent one run at a time to up to len(runners) threads."""

    def __init__(self, runners: Sequence[Runner]) -> None:
        self.free: queue.Queue[Runner] = queue.Queue()
        for runner in runners:
            self.free.put(runner)
        self.executor = ThreadPoolExecutor(len(runners))

    @contextlib.contextmanager
    def runner(self) -> Iterator[Runner]:
        slot = self.free.get()
        try:
            yield slot
        finally:
            self.free.put(slot)


def reference_run(
    pool: Pool, root: Path, kata: Kata, seed: int, budget: int, scratch: Path
) -> Future[tuple[Outcome, list[dict[str, Any]]]]:
    """The reference's run at ``seed``, queued on the pool: seed 0 runs the whole file (its
    time is the kata file's), the others only the probe tests."""

    def one() -> tuple[Outcome, list[dict[str, Any]]]:
        stats = scratch / f"{kata.name}-reference-{seed}.jsonl"
        extra = () if seed == 0 else ("-m", "probe")
        with pool.runner() as runner:
            return _run(runner, root, kata, "reference", seed, budget, stats, *extra)

    return pool.executor.submit(one)


def mutant_kills(
    pool: Pool,
    root: Path,
    curriculum_: Curriculum,
    kata: Kata,
    budget: int,
    budgets: dict[str, int],
    scratch: Path,
) -> list[tuple[mutants.Mutant, Future[tuple[int, float] | None]]]:
    """Each mutant's first killing schedule, its runs queued on the pool."""
    source = curriculum_.reference_path(kata).read_text(encoding="utf-8")

    def kill_of(mutant: mutants.Mutant) -> tuple[int, float] | None:
        folder = scratch / mutant.name / kata.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{kata.module}.py").write_text(mutant.apply(source), encoding="utf-8")
        with pool.runner() as runner:
            mutant_stats = scratch / mutant.name / "stats.jsonl"
            return _first_kill(
                runner, root, kata, str(folder.parent), budget, mutant_stats, budgets
            )

    found = mutants.load(curriculum_.mutants_path(kata))
    return [(m, pool.executor.submit(kill_of, m)) for m in found]


def report_kata(
    kata: Kata,
    seeds: int,
    runs: list[tuple[Outcome, list[dict[str, Any]]]],
    kills: list[tuple[mutants.Mutant, Future[tuple[int, float] | None]]],
) -> bool:
    """Print one kata's tables; True when it meets every bar."""
    ok = True
    print(f"\n## {kata.name}", flush=True)
    (reference, first), *others = runs
    file_seconds = reference.test_seconds
    per_test: dict[str, list[dict[str, Any]]] = defaultdict(list)
    false_alarms = [e for _, entries in runs for e in entries if e["failed"]]
    for _, entries in [(reference, first), *others]:
        for entry in entries:
            per_test[entry["test"]].append(entry)
    print(f"{'probe test':64} {'schedules':>9} {'median ms':>9} {'max steps':>9} {'seconds':>7}")
    for test, entries in per_test.items():
        median = statistics.median(e["median_ms"] for e in entries)
        slowest = max(e["total_s"] for e in entries)
        flags = [
            *([] if median <= MEDIAN_BAR_MS else ["median over 1 ms"]),
            *([] if slowest <= PROBE_TEST_BAR_SECONDS else ["over 1 s"]),
        ]
        ok &= not flags
        print(
            f"{test.split('::')[-1][:64]:64} {entries[0]['schedules']:>9} {median:>9.3f} "
            f"{max(e['max_steps'] for e in entries):>9} {slowest:>7.2f}"
            + (f"  <- {', '.join(flags)}" if flags else "")
        )
    print(f"false alarms on the reference over {seeds} seeds: {len(false_alarms)}")
    print(
        f"kata file on the reference (seed 0, beside one other run): {file_seconds:.2f} s"
        f"{'' if file_seconds <= KATA_FILE_BAR_SECONDS else '  <- over 2 s'}"
    )
    ok &= not false_alarms and file_seconds <= KATA_FILE_BAR_SECONDS
    print(f"{'mutant':32} {'first killing schedule':>24}  {'bar (a quarter of its budget)':>30}")
    for mutant, future in kills:
        kill = future.result()
        if kill is not None:
            first_kill, bar = kill
            within = first_kill < max(bar, 1)
            ok &= within
            print(
                f"{mutant.name:32} {first_kill:>24} {'< ' + format(bar, 'g'):>30}"
                + ("" if within else "  <- past the bar")
            )
        else:
            print(f"{mutant.name:32} {'(killed by a plain test)':>24}")
    seconds = sum(o.seconds for o, _ in runs)
    print(f"runs: {seconds:.1f} s for {seeds} seeds of the reference", flush=True)
    return ok


def bench(
    runners: Sequence[Runner],
    root: Path,
    curriculum_: Curriculum,
    katas: list[Kata],
    seeds: int,
    budget: int,
    scratch: Path,
) -> list[bool]:
    """Every kata's reference runs, then, as each kata's come back, its mutants' runs: all
    on one pool, so both runners stay busy from the first run to the last."""
    pool = Pool(runners)
    try:
        for kata in katas:
            (scratch / kata.name).mkdir(parents=True, exist_ok=True)
        # Seed by seed, every kata at each: a kata's ten seeds then run spread over the whole
        # reference phase, not within the same three seconds, so that the median over them is
        # not one moment's speed of a shared VM (a kata whose seeds all ran while the VM was
        # slow showed 1.06 ms, against 0.63-0.69 in the benches before and after).
        pending: list[tuple[Kata, list[Future[tuple[Outcome, list[dict[str, Any]]]]]]] = [
            (k, []) for k in katas
        ]
        for seed in range(seeds):
            for kata, futures in pending:
                futures.append(reference_run(pool, root, kata, seed, budget, scratch / kata.name))
        staged = []
        for kata, futures in pending:
            runs = [future.result() for future in futures]
            # A passing reference run explores a test's whole budget; a test may set its own.
            budgets = {e["test"]: e["schedules"] for e in runs[0][1]}
            kills = mutant_kills(
                pool, root, curriculum_, kata, budget, budgets, scratch / kata.name / "mutants"
            )
            staged.append((kata, runs, kills))
        return [report_kata(kata, seeds, runs, kills) for kata, runs, kills in staged]
    finally:
        pool.executor.shutdown(wait=True, cancel_futures=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "katas", nargs="*", help="kata names (default: every kata with probe tests)"
    )
    parser.add_argument(
        "--seeds", type=int, default=10, help="seeds for the false-alarm check (default 10)"
    )
    parser.add_argument("--budget", type=int, default=250, help="schedules per probe (default 250)")
    parser.add_argument(
        "--jobs", type=int, default=2, help="runs at once (default 2, one per core)"
    )
    options = parser.parse_args(argv)
    if options.seeds < 1 or options.budget < 1 or options.jobs < 1:
        parser.error("--seeds, --budget and --jobs must be at least 1")
    root = curriculum.find_root(Path.cwd())
    if root is None:
        parser.error("run this from inside the repository")
    curriculum_ = curriculum.load(root)
    katas = _probe_katas(curriculum_, options.katas)
    if not katas:
        parser.error("no kata with probe tests matches")
    speed_before = speed_check()
    started = time.perf_counter()
    notes: list[str] = []  # a worker that died and was replaced: said at the end
    with _environment(VERDICT_ONLY_VARIABLE, "1"):
        preload = _plugin_modules(root)
        runners = [WarmRunner(root, preload, notes) for _ in range(options.jobs)]
        try:
            with tempfile.TemporaryDirectory(prefix="probe-bench-") as scratch:
                results = bench(
                    runners, root, curriculum_, katas, options.seeds, options.budget, Path(scratch)
                )
        finally:
            for runner in runners:
                runner.close()
    for note in notes:
        print(f"note: {note}")
    took = time.perf_counter() - started
    print(
        f"\nspeed check: a pure-Python loop took {speed_before:.2f} s before the bench and "
        f"{speed_check():.2f} s after (compare benches only at like figures)"
    )
    print(f"{sum(results)} of {len(results)} katas meet every bar; the bench took {took:.0f} s")
    return 0 if all(results) else 1


def speed_check() -> float:
    """Seconds this process takes for a fixed pure-Python loop: the VM's speed at the time, by
    which the milliseconds of two benches can be compared (a shared VM's speed varies by 1.5x
    and more from hour to hour)."""
    started = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i * i % 7
    return time.perf_counter() - started


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """``name=value`` for the runs started meanwhile (each takes this process's environment):
    only ever set while no other run is being started."""
    inherited = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if inherited is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = inherited


def _plugin_modules(root: Path) -> list[str]:
    """What the warm worker imports once: the plugins the root conftest lists."""
    listed = runpy.run_path(str(root / "conftest.py")).get("pytest_plugins", [])
    return [str(name) for name in listed]


if __name__ == "__main__":
    sys.exit(main())
