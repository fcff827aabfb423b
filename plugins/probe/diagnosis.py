"""The wording of what the scheduler itself detects: deadlock, livelock, a lock still held
at exit, misuse, and a worker blocked outside the harness's control. (A worker's uncaught
exception is worded by ``failures.raised``, the same in both modes.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .finding import Failure
from .sites import Site, short, source

if TYPE_CHECKING:
    from .locks import Lock
    from .scheduler import Run, Worker

UNCONTROLLED_ADVICE = (
    "A real lock, socket, subprocess or sleep cannot be scheduled. A lock inside an object "
    "made before the run (at import), or one already held when the run starts, is a real "
    "lock: create it in __init__ so each schedule gets a cooperative one (a free lock a "
    "module or class made at import is swapped for one while the run lasts)."
)


def livelock(w: Worker, site: Site, max_steps: int) -> Failure:
    return Failure(
        "livelock",
        f"livelock or starvation: no worker finished within {max_steps} "
        f"steps ({w.name} was at {short(site)} `{source(site)}`)",
    )


def busy_loop(w: Worker, site: Site, seconds: float, spun_before: float | None) -> Failure:
    """``spun_before``: the longer spin at the same loop, earlier in this test, that made the
    scheduler judge this one sooner (None if it is the first)."""
    earlier = (
        ""
        if spun_before is None
        else f" (it had already spun {spun_before:g} s in an earlier schedule of this test, "
        "so it was stopped sooner this time)"
    )
    return Failure(
        "livelock",
        f"busy loop: {w.name} kept going round the loop at {short(site)} `{source(site)}` for "
        f"{seconds:g} s without touching anything another thread could change, so nothing can "
        f"ever end it{earlier}",
        details=[
            "A loop that waits for another thread must wait on something that thread can "
            "signal (a Condition, an Event, a Queue, a lock); one that spins on a local "
            "variable or on nothing at all never ends and burns a core while it runs."
        ],
        signature="busy-loop",
    )


def held_at_exit(run: Run, w: Worker, locks: list[Lock]) -> Failure:
    held = ", ".join(f"{run.label(lock)} acquired at {short(lock.acquired_at)}" for lock in locks)
    return Failure(
        "misuse",
        f"misuse: {w.name} finished while still holding {held}; every acquire "
        "needs a release on every path (use `with lock:`)",
        signature="held-at-exit",
    )


def misuse(w: Worker, text: str, signature: str, site: Site) -> Failure:
    return Failure(
        "misuse", f"misuse: {w.name} {text} at {short(site)} `{source(site)}`", signature=signature
    )


def deadlock(run: Run, unfinished: list[Worker]) -> Failure:
    """Every unfinished worker is blocked and no virtual deadline can wake one."""
    parts: list[str] = []
    hints: list[str] = []
    graph: list[tuple[str, str, str]] = []
    for x in unfinished:
        held = ", ".join(run.label(lock) for lock in x.held) or "no lock"
        waiting_on = x.waiting_on
        what = run.label(waiting_on) if waiting_on is None else waiting_on.wait_text(run)
        parts.append(f"{x.name} holds {held} and waits for {what} at {short(x.wait_site)}")
        graph.append((x.name, held, what))
        hint = waiting_on.deadlock_hint(run, x) if waiting_on is not None else ""
        if hint and hint not in hints:
            hints.append(hint)
    return Failure(
        "deadlock",
        "deadlock: " + "; ".join(parts),
        details=hints,
        signature="deadlock",
        graph=graph,
    )


def uncontrolled(w: Worker, site: Site, watchdog_s: float) -> Failure:
    return Failure(
        "uncontrolled",
        f"{w.name} is blocked outside the harness's control at {short(site)} "
        f"`{source(site)}` (no progress for {watchdog_s:g} s of real time)",
        details=[UNCONTROLLED_ADVICE],
        signature="uncontrolled",
    )
