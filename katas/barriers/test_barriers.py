"""Kata `barriers`: a cellular automaton computed by several threads in lockstep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from barriers import DEFAULT_TIMEOUT, Simulation, rule90

from plugins.probe import Prober

CELLS = [1, 0, 1, 1]  # its first four generations all differ
GENERATIONS = 3
# Schedules per probe: two parties and three generations are enough for every known bug of
# this kata to show within the first two schedules; 30 leaves a wide margin and stays fast.
SCHEDULES = 30


def _serial(cells: list[int], generations: int) -> list[int]:
    """The oracle: the same automaton computed by one thread."""
    row = list(cells)
    for _ in range(generations):
        padded = [0, *row, 0]
        row = [rule90(padded[i - 1], padded[i], padded[i + 1]) for i in range(1, len(row) + 1)]
    return row


EXPECTED = _serial(CELLS, GENERATIONS)


@contextmanager
def _hang_means(explanation: str) -> Iterator[None]:
    """Put the meaning of a deadlock report first, in the words of this kata."""
    __tracebackhide__ = True
    try:
        yield
    except AssertionError as failure:
        if getattr(failure, "kind", None) == "deadlock":
            raise AssertionError(f"{explanation}\n\n{failure}") from None
        raise


def _party(number: int, generations: int = GENERATIONS) -> Callable[[Simulation], object]:
    """A worker running one party; it reports an exception instead of dying of it."""

    def body(sim: Simulation) -> object:
        try:
            return sim.run_party(number, generations)
        except threading.BrokenBarrierError:
            return "raised BrokenBarrierError"

    return body


def _two_parties() -> Simulation:
    return Simulation(CELLS, 2)


@pytest.mark.probe
def test_the_parties_compute_the_same_rows_as_one_thread_would(probe: Prober) -> None:
    def same_as_serial(sim: Simulation, results: list[object]) -> None:
        assert sim.current == EXPECTED, (
            f"after {GENERATIONS} generations the row is {sim.current}, one thread computes "
            f"{EXPECTED}: a party read its neighbours' cells while they were still being "
            f"written, or the rows were swapped at the wrong moment. Compute your slice, then "
            f"wait at the barrier; let the barrier's action swap the rows."
        )
        assert results == [True, True], f"run_party returned {results}; both must return True"

    probe.explore(_two_parties, [_party(0), _party(1)], same_as_serial, budget=SCHEDULES)


class _Logged(Simulation):
    """A simulation that records when each party starts and ends each of its generations."""

    def __init__(self) -> None:
        super().__init__(CELLS, 2)
        self.log: list[tuple[str, int, int]] = []  # (start|end, party, that party's generation)
        self.rounds = [0, 0]

    def compute_slice(self, party: int) -> None:
        mine = self.rounds[party]
        self.log.append(("start", party, mine))
        super().compute_slice(party)
        self.log.append(("end", party, mine))
        self.rounds[party] += 1


@pytest.mark.probe
def test_no_party_starts_a_generation_before_every_party_finished_the_previous_one(
    probe: Prober,
) -> None:
    def in_lockstep(sim: _Logged, _results: list[object]) -> None:
        for at, (what, party, generation) in enumerate(sim.log):
            if what != "start" or generation == 0:
                continue
            finished = {p for w, p, g in sim.log[:at] if w == "end" and g == generation - 1}
            assert finished == {0, 1}, (
                f"party {party} started generation {generation} when only parties "
                f"{sorted(finished)} had finished generation {generation - 1}: it ran ahead "
                f"and read cells that were still being written. The barrier must hold every "
                f"party until all {sim.parties} have arrived."
            )

    probe.explore(_Logged, [_party(0), _party(1)], in_lockstep, budget=SCHEDULES)


@pytest.mark.probe
def test_the_barrier_action_runs_once_per_generation(probe: Prober) -> None:
    def counted_once(sim: Simulation, _results: list[object]) -> None:
        assert sim.generation == GENERATIONS, (
            f"after {GENERATIONS} generations of 2 parties, generation is {sim.generation}: "
            f"end_generation must run exactly once per generation. Pass it as the barrier's "
            f"action (the barrier runs it in one thread once all parties have arrived) instead "
            f"of calling it from every party, and give the barrier exactly `parties` parties."
        )

    probe.explore(_two_parties, [_party(0), _party(1)], counted_once, budget=SCHEDULES)


@pytest.mark.probe
def test_a_missing_party_breaks_the_barrier_instead_of_hanging(probe: Prober) -> None:
    def gave_up(_sim: Simulation, results: list[object]) -> None:
        assert results[0] is False, (
            f"the only party that came returned {results[0]!r}: when the other party never "
            f"arrives, wait() times out and raises BrokenBarrierError; run_party must catch it "
            f"and return False"
        )

    with _hang_means(
        "the lone party waits forever for a party that never comes: give the barrier a "
        "timeout (Barrier(parties, action=..., timeout=timeout)) so that wait() gives up"
    ):
        probe.explore(_two_parties, {"the only party": _party(0)}, gave_up, budget=1)


class _Boom(Exception):
    """The failure of one party's computation."""


class _Failing:
    """A simulation whose rule fails in generation 1 for the worker named 'failing'."""

    def __init__(self) -> None:
        self.sim = Simulation(CELLS, 2, rule=self.rule)

    def rule(self, left: int, cell: int, right: int) -> int:
        if self.sim.generation == 1 and threading.current_thread().name == "failing":
            raise _Boom("this party's computation failed")
        return rule90(left, cell, right)


def _timed(party: Callable[[Simulation], object]) -> Callable[[_Failing], tuple[object, float]]:
    def body(state: _Failing) -> tuple[object, float]:
        started = time.monotonic()  # the probe's virtual clock
        try:
            outcome = party(state.sim)
        except _Boom:
            outcome = "raised its error"
        return outcome, time.monotonic() - started

    return body


@pytest.mark.probe
def test_a_failing_party_stops_the_others_at_once(probe: Prober) -> None:
    def stopped_at_once(_state: _Failing, results: list[object]) -> None:
        (healthy, waited), (failing, _) = results
        assert healthy is False, (
            f"the healthy party returned {healthy!r} although the other party failed: it must "
            f"return False when the barrier breaks"
        )
        assert waited < DEFAULT_TIMEOUT, (
            f"the healthy party waited {waited:g} s, the whole timeout, for a party that had "
            f"already failed: abort() the barrier before re-raising, so that everyone waiting "
            f"gets BrokenBarrierError at once"
        )
        assert failing == "raised its error", (
            f"the failing party returned {failing!r}: after aborting the barrier, run_party "
            f"must let its own error propagate, or nobody learns why the run stopped"
        )

    probe.explore(
        _Failing,
        {"healthy": _timed(_party(0)), "failing": _timed(_party(1))},
        stopped_at_once,
        budget=SCHEDULES,
    )


@pytest.mark.probe
def test_restart_makes_a_broken_simulation_usable_again(probe: Prober) -> None:
    def broken_then_restarted() -> Simulation:
        sim = Simulation([0, 0, 0, 0], 2)
        sim.barrier.abort()
        sim.restart(CELLS)
        return sim

    def works_again(sim: Simulation, results: list[object]) -> None:
        assert results == [True, True], (
            f"after restart() the parties returned {results}: the barrier was still broken. A "
            f"broken barrier fails every wait() until reset() is called on it."
        )
        assert (sim.current, sim.generation) == (EXPECTED, GENERATIONS), (
            f"after restart({CELLS}) and {GENERATIONS} generations, the row is {sim.current} "
            f"at generation {sim.generation}; expected {EXPECTED} at {GENERATIONS}: restart "
            f"must start from the new cells at generation 0"
        )

    probe.explore(broken_then_restarted, [_party(0), _party(1)], works_again, budget=SCHEDULES)


def _run(sim: Simulation) -> object:
    try:
        return sim.run(GENERATIONS)
    except threading.BrokenBarrierError:
        return "raised BrokenBarrierError"


@pytest.mark.probe
def test_run_runs_every_party_at_once_and_returns_the_final_row(probe: Prober) -> None:
    def final_row(_sim: Simulation, results: list[object]) -> None:
        assert results[0] == EXPECTED, (
            f"run({GENERATIONS}) gave {results[0]!r}, expected {EXPECTED}. If it raised "
            f"BrokenBarrierError, the parties did not run at the same time: a party waits at "
            f"the barrier for all the others, so start every thread before joining any."
        )

    with _hang_means("run() never returned: a thread waits forever"):
        probe.explore(_two_parties, {"caller": _run}, final_row, budget=SCHEDULES)


@pytest.mark.probe
def test_run_raises_brokenbarriererror_when_a_party_could_not_finish(probe: Prober) -> None:
    def aborted() -> Simulation:
        sim = _two_parties()
        sim.barrier.abort()
        return sim

    def reported(_sim: Simulation, results: list[object]) -> None:
        assert results[0] == "raised BrokenBarrierError", (
            f"run() on an aborted barrier returned {results[0]!r}: when a party returns False "
            f"its part of the row is unfinished, so run must raise BrokenBarrierError"
        )

    with _hang_means("run() never returned: a thread waits forever"):
        probe.explore(aborted, {"caller": _run}, reported, budget=SCHEDULES)
