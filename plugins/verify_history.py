"""The self-check's committed history: `python -m plugins.verify_history` after a verify.

A verify remembers in its pytest cache how long each run took, how much CPU it used and which
test killed each mutant (plugins/verify_schedule.py), and starts each mutant's run with its
last killer. A fresh clone, as in CI, has no cache and would run every mutant's suite in file
order. This command copies those three mappings into `reference/verify-history.json`, kept
in git, for the runs that still exist; the self-check reads it under its own cache. It is
only a scheduling hint: every run is still made and judged in full, a stale killer name just
runs no test first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from plugins import curriculum, mutants

SEED_PATH = Path("reference") / "verify-history.json"
CACHE_DIR = Path(".pytest_cache") / "v" / "kata" / "verify"
MAPPINGS = ("durations", "killers", "cpu")  # file names under CACHE_DIR, keys in the seed


def live_runs(root: Path) -> set[str]:
    """Every run a verify of this checkout makes: kata/stub, kata/reference, kata/mutant:NAME."""
    lessons = curriculum.load(root)
    keys: set[str] = set()
    for kata in lessons.katas:
        keys.update({f"{kata.name}/stub", f"{kata.name}/reference"})
        if lessons.mutants_path(kata).is_file():
            found = mutants.load(lessons.mutants_path(kata))
            keys.update(f"{kata.name}/mutant:{mutant.name}" for mutant in found)
    return keys


def collect(root: Path) -> dict[str, dict[str, object]]:
    """The cache's mappings, restricted to live runs (a mutant's @timing phase included)."""
    live = live_runs(root)
    seed: dict[str, dict[str, object]] = {}
    for name in MAPPINGS:
        path = root / CACHE_DIR / name
        stored = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        seed[f"kata/verify/{name}"] = {
            key: value for key, value in sorted(stored.items()) if key.split("@")[0] in live
        }
    return seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the checkout's root")
    args = parser.parse_args(argv)
    seed = collect(args.root)
    if not seed["kata/verify/killers"]:
        print("no verify history in .pytest_cache: run pytest --kata-verify first", file=sys.stderr)
        return 1
    target = args.root / SEED_PATH
    target.write_text(json.dumps(seed, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    counts = ", ".join(f"{len(v)} {k.rsplit('/', 1)[1]}" for k, v in seed.items())
    print(f"wrote {target}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
