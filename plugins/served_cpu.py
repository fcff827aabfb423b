"""CPU seconds a run's processes spend outside its own process tree, counted back into the run.

The self-check judges how busy a run is by its process tree's CPU seconds (wait4): a run that
mostly waits may start beside busy runs (plugins/verify_admission.py). MPI ranks and Celery
workers are forked by warm servers (plugins/mpi_warm.py, plugins/celery_warm.py), not by the
run, so their CPU was missing: an MPI run whose four ranks kept two cores busy looked like a run
that waits. Now the run's environment names a file (VARIABLE); a warm server that reaps a
process it forked for that run appends the process's CPU seconds there, before it reports the
end to the run, and the verify worker adds them to the run's own. Standard library only.
"""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Mapping
from pathlib import Path

VARIABLE = "KATA_SERVED_CPU_FILE"


def record(environment: Mapping[str, str], usage: resource.struct_rusage | None) -> None:
    """Append a reaped process's CPU seconds to the file its run's `environment` names."""
    path = environment.get(VARIABLE)
    if not path or usage is None:
        return
    with contextlib.suppress(OSError), open(path, "a", encoding="ascii") as file:
        file.write(f"{usage.ru_utime + usage.ru_stime:.3f}\n")


def collect(path: Path) -> float:
    """The CPU seconds recorded in `path` (none: 0), and the file removed."""
    try:
        text = path.read_text(encoding="ascii")
    except OSError:
        return 0.0
    path.unlink(missing_ok=True)
    total = 0.0
    for line in text.split():
        with contextlib.suppress(ValueError):
            total += float(line)
    return total
