"""Count the instructions the probe executes per exploration, with valgrind's cachegrind.

Wall-clock time on a shared VM moves by a third from one second to the next; the number of
instructions a fixed exploration executes repeats to within 0.01% (with PYTHONHASHSEED=0),
so it shows a change of a few percent that no timing can. Two scenarios, each run under
cachegrind with FEW and with MANY explorations (the difference is per exploration, without
Python's and the imports' start):

- ``tracked``: the locks reference's counter (two workers incrementing twice) and its
  opposite transfers, proved by the exhaustive search (footprints, settrace);
- ``sampled``: the primitives reference's Barrier(3), each party waiting twice, 30 sampled
  schedules (rewritten code on 3.11).

Run from the repository root (about a minute; needs valgrind):
    python -m tests.probe.count_instructions [tracked|sampled ...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
from typing import Any

FEW, MANY = 2, 8


def _tracked(explorations: int) -> None:
    from plugins.probe import explore
    from reference.locks import locks

    def increment_twice(counter: locks.Counter) -> None:
        counter.increment()
        counter.increment()

    def pair() -> tuple[locks.Account, locks.Account]:
        return locks.Account(1, 100), locks.Account(2, 100)

    def there(accounts: tuple[locks.Account, locks.Account]) -> None:
        locks.transfer(accounts[0], accounts[1], 10)

    def back(accounts: tuple[locks.Account, locks.Account]) -> None:
        locks.transfer(accounts[1], accounts[0], 20)

    for _ in range(explorations):
        counted = explore(
            locks.Counter, [increment_twice] * 2, modules=[locks], exhaustive=25, budget=250
        )
        moved = explore(pair, [there, back], modules=[locks], exhaustive=25, budget=250)
        assert counted.proved and moved.proved, "the scenarios are meant to be proved"


class _Gate:
    def __init__(self) -> None:
        self.actions: list[str] = []
        self.barrier: Any = None

    def act(self) -> None:
        self.actions.append(threading.current_thread().name)


def _sampled(explorations: int) -> None:
    from plugins.probe import explore
    from reference.primitives import primitives

    def gate() -> _Gate:
        made = _Gate()
        made.barrier = primitives.Barrier(3, action=made.act)
        return made

    def party(made: _Gate) -> list[int]:
        return [made.barrier.wait() for _ in range(2)]

    for seed in range(explorations):
        explore(gate, [party] * 3, modules=[primitives], budget=30, seed=seed)


SCENARIOS = {"tracked": _tracked, "sampled": _sampled}
UNITS = {"tracked": "round (both proofs)", "sampled": "exploration (30 schedules)"}


def _instructions(scenario: str, explorations: int) -> int:
    """Instructions cachegrind counts for the whole process running ``explorations``."""
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, "-m", "tests.probe.count_instructions", "--child", scenario,
        str(explorations),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"cachegrind run failed:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help=f"of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--child", nargs=2, metavar=("SCENARIO", "N"), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.child:
        SCENARIOS[options.child[0]](int(options.child[1]))
        return 0
    unknown = set(options.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(
            f"no scenario {', '.join(sorted(unknown))}: choose from {', '.join(SCENARIOS)}"
        )
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 1
    for scenario in options.scenarios or list(SCENARIOS):
        few, many = _instructions(scenario, FEW), _instructions(scenario, MANY)
        each = (many - few) / (MANY - FEW)
        print(f"{scenario:8} {each / 1e6:9.2f} M instructions per {UNITS[scenario]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
