"""Kata `barriers`: a cellular automaton computed by several threads in lockstep.

Almost every test runs its threads under the controlled scheduler (`probe`) on a virtual
clock that starts at a fixed, non-zero time: a five-second timeout costs nothing, and
`time.monotonic()` inside a worker reads that clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from barriers import DEFAULT_TIMEOUT, Simulation, rule90
from hypothesis import given
from hypothesis import strategies as st

from plugins.probe import Prober, scenario_settings

CELLS = [1, 0, 1, 1]  # its first four generations all differ
GENERATIONS = 3
# Schedules per probe: two parties and three generations are enough for every known bug of
# this kata to show within the first two schedules; 30 leaves a wide margin and stays fast.
SCHEDULES = 30
# Drawn scenarios: Hypothesis draws the number of parties, the row, the generations and where a
# party fails, and the probe explores each drawn scenario with fewer schedules than SCHEDULES
# (examples times schedules stays small).
DRAWN_EXAMPLES = 8
DRAWN_SCHEDULES = 12
# A timeout that differs from DEFAULT_TIMEOUT, so that a barrier that ignores the argument shows.
SHORT_TIMEOUT = 2.5


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


# -- §1 the barrier ------------------------------------------------------------------------


@pytest.mark.clause(1)
def test_the_barrier_is_made_for_exactly_the_given_number_of_parties() -> None:
    for parties in (2, 3):
        barrier = Simulation([0] * 6, parties).barrier
        assert isinstance(barrier, threading.Barrier), (
            f"Simulation(..., {parties}).barrier is {barrier!r}, not a threading.Barrier"
        )
        assert barrier.parties == parties, (
            f"Simulation(cells, {parties}).barrier waits for {barrier.parties} parties, not "
            f"{parties}: create it with threading.Barrier(parties, ...), never a fixed number"
        )


CELLS_6 = [1, 0, 1, 1, 0, 1]


@pytest.mark.probe
@pytest.mark.clause(1, 5)
def test_three_parties_compute_the_same_rows_as_one_thread_would(probe: Prober) -> None:
    expected = _serial(CELLS_6, GENERATIONS)

    def same_as_serial(sim: Simulation, results: list[object]) -> None:
        assert sim.current == expected, (
            f"three parties computed {sim.current} after {GENERATIONS} generations of "
            f"{CELLS_6}; one thread computes {expected}. A party read cells that were still "
            f"being written, the rows were swapped more or less than once per generation, or "
            f"the barrier does not wait for all three parties (Barrier(parties, ...), never a "
            f"fixed number)."
        )

    probe.explore(
        lambda: Simulation(CELLS_6, 3),
        [_party(0), _party(1), _party(2)],
        same_as_serial,
        budget=SCHEDULES,
    )


# -- §2 the timeout ------------------------------------------------------------------------


def _alone(generations: int = GENERATIONS) -> Callable[[Simulation], tuple[object, float]]:
    """Party 0 alone: what run_party gave and how many virtual seconds it took."""

    def body(sim: Simulation) -> tuple[object, float]:
        started = time.monotonic()  # the probe's virtual clock
        outcome = _party(0, generations)(sim)
        return outcome, time.monotonic() - started

    return body


@pytest.mark.probe
@pytest.mark.clause(2, 7)
def test_a_missing_party_breaks_the_barrier_instead_of_hanging(probe: Prober) -> None:
    def gave_up(_sim: Simulation, results: list[object]) -> None:
        outcome, _waited = results[0]  # type: ignore[misc]
        assert outcome is False, (
            f"the only party that came returned {outcome!r}: when the other party never "
            f"arrives, wait() times out and raises BrokenBarrierError; run_party must catch it "
            f"and return False"
        )

    with _hang_means(
        "the lone party waits forever for a party that never comes: give the barrier a "
        "timeout (Barrier(parties, action=..., timeout=timeout)) so that wait() gives up"
    ):
        probe.explore(_two_parties, {"the only party": _alone()}, gave_up, budget=1)


@pytest.mark.probe
@pytest.mark.clause(2)
@pytest.mark.parametrize(
    ("timeout", "made_with"),
    [
        (SHORT_TIMEOUT, f"Simulation(cells, 2, timeout={SHORT_TIMEOUT})"),
        (None, "Simulation(cells, 2)"),
    ],
    ids=["given-timeout", "default-timeout"],
)
def test_a_lone_party_gives_up_after_exactly_the_timeout(
    probe: Prober, timeout: float | None, made_with: str
) -> None:
    wanted = DEFAULT_TIMEOUT if timeout is None else timeout

    def setup() -> Simulation:
        if timeout is None:
            return Simulation(CELLS, 2)
        return Simulation(CELLS, 2, timeout=timeout)

    def waited_the_timeout(_sim: Simulation, results: list[object]) -> None:
        outcome, waited = results[0]  # type: ignore[misc]
        assert outcome is False, f"the lone party returned {outcome!r}, not False"
        assert waited == pytest.approx(wanted), (
            f"with {made_with} the lone party gave up after {waited:g} virtual seconds, not "
            f"{wanted:g}: the barrier's default timeout must be the `timeout` argument "
            f"(Barrier(..., timeout=timeout)), which defaults to DEFAULT_TIMEOUT"
        )

    with _hang_means(
        f"with {made_with} the lone party waits forever: the barrier needs timeout=timeout"
    ):
        probe.explore(setup, {"the only party": _alone()}, waited_the_timeout, budget=1)


# -- §3 §4 end_generation ------------------------------------------------------------------


@pytest.mark.clause(3)
def test_end_generation_swaps_the_rows_and_counts_the_generation() -> None:
    sim = Simulation([1, 1, 0, 0], 2)
    old_current, old_next = sim.current, [0, 1, 1, 0]
    sim.next = old_next
    sim.end_generation()
    assert sim.generation == 1, (
        f"after one end_generation() the generation is {sim.generation}, not 1: add 1 to it"
    )
    assert sim.current == [0, 1, 1, 0], (
        f"after end_generation() current is {sim.current}, not the row that was in next "
        f"([0, 1, 1, 0])"
    )
    assert sim.current is not sim.next, (
        "after end_generation() current and next are the same list: the next generation's "
        "compute_slice would overwrite the very row it reads. Swap them: "
        "self.current, self.next = self.next, self.current"
    )
    assert sim.next is old_current or sim.next == [1, 1, 0, 0], (
        f"after end_generation() next is {sim.next}: swap the two rows, so that next is the "
        f"old current row ([1, 1, 0, 0]), ready to be overwritten"
    )


@pytest.mark.probe
@pytest.mark.clause(4)
def test_the_barrier_action_runs_once_per_generation(probe: Prober) -> None:
    def counted_once(sim: Simulation, _results: list[object]) -> None:
        assert sim.generation == GENERATIONS, (
            f"after {GENERATIONS} generations of 2 parties, generation is {sim.generation}: "
            f"end_generation must run exactly once per generation. Pass it as the barrier's "
            f"action (the barrier runs it in one thread once all parties have arrived) instead "
            f"of calling it from every party, and give the barrier exactly `parties` parties."
        )

    probe.explore(_two_parties, [_party(0), _party(1)], counted_once, budget=SCHEDULES)


# -- §5 §6 run_party -----------------------------------------------------------------------


@pytest.mark.probe
@pytest.mark.clause(4, 5)
def test_the_parties_compute_the_same_rows_as_one_thread_would(probe: Prober) -> None:
    def same_as_serial(sim: Simulation, _results: list[object]) -> None:
        assert sim.current == EXPECTED, (
            f"after {GENERATIONS} generations the row is {sim.current}, one thread computes "
            f"{EXPECTED}: a party read its neighbours' cells while they were still being "
            f"written, or the rows were swapped at the wrong moment. Compute your slice, then "
            f"wait at the barrier; let the barrier's action swap the rows."
        )

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
@pytest.mark.clause(5)
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
@pytest.mark.clause(6)
def test_run_party_returns_true_when_all_its_generations_are_done(probe: Prober) -> None:
    def both_true(_sim: Simulation, results: list[object]) -> None:
        assert results == [True, True], (
            f"after {GENERATIONS} generations run_party returned {results}, not [True, True]: "
            f"return True once the loop over the generations has finished"
        )

    probe.explore(_two_parties, [_party(0), _party(1)], both_true, budget=5)


# -- §7 a broken barrier -------------------------------------------------------------------


class _Counting(Simulation):
    """A simulation that counts the slices each party computes."""

    def __init__(self) -> None:
        super().__init__(CELLS, 2)
        self.computed = [0, 0]

    def compute_slice(self, party: int) -> None:
        self.computed[party] += 1
        super().compute_slice(party)


@pytest.mark.probe
@pytest.mark.clause(7)
def test_a_party_stops_computing_as_soon_as_the_barrier_breaks(probe: Prober) -> None:
    def stopped(sim: _Counting, results: list[object]) -> None:
        outcome, _waited = results[0]  # type: ignore[misc]
        assert outcome is False, f"the lone party returned {outcome!r}, not False"
        assert sim.computed[0] == 1, (
            f"a lone party asked for {GENERATIONS} generations computed {sim.computed[0]} "
            f"slices: after its first wait() broke the barrier it went on computing. Return "
            f"False at once when wait() raises BrokenBarrierError; a broken barrier stays "
            f"broken, so every later generation is wasted work on a row nobody will use."
        )

    with _hang_means("the lone party waits forever: the barrier needs timeout=timeout"):
        probe.explore(_Counting, {"the only party": _alone()}, stopped, budget=1)


# -- §8 §9 a failing party -----------------------------------------------------------------


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


def _failing_run(probe: Prober, check: Callable[[_Failing, list[object]], None]) -> None:
    __tracebackhide__ = True
    probe.explore(
        _Failing,
        {"healthy": _timed(_party(0)), "failing": _timed(_party(1))},
        check,
        budget=SCHEDULES,
    )


@pytest.mark.probe
@pytest.mark.clause(7, 8)
def test_a_failing_party_stops_the_others_at_once(probe: Prober) -> None:
    def stopped_at_once(_state: _Failing, results: list[object]) -> None:
        (healthy, waited), _failing = results  # type: ignore[misc]
        assert healthy is False, (
            f"the healthy party returned {healthy!r} although the other party failed: it must "
            f"return False when the barrier breaks"
        )
        assert waited < DEFAULT_TIMEOUT, (
            f"the healthy party waited {waited:g} s, the whole timeout, for a party that had "
            f"already failed: abort() the barrier before re-raising, so that everyone waiting "
            f"now or arriving later gets BrokenBarrierError at once (reset() would only release "
            f"those already waiting, and leave the barrier whole for the next one)"
        )

    _failing_run(probe, stopped_at_once)


@pytest.mark.probe
@pytest.mark.clause(9)
def test_a_failing_party_lets_its_error_propagate(probe: Prober) -> None:
    def propagated(_state: _Failing, results: list[object]) -> None:
        _healthy, (failing, _) = results  # type: ignore[misc]
        assert failing == "raised its error", (
            f"the party whose computation raised returned {failing!r}: after aborting the "
            f"barrier, run_party must let its own error propagate (`raise`), or nobody learns "
            f"why the run stopped"
        )

    _failing_run(probe, propagated)


@dataclass(frozen=True)
class FailingRun:
    """A drawn scenario: `parties` parties run `generations` generations, and party `failing`
    fails while computing its slice of generation `fails_in`."""

    parties: int
    generations: int
    failing: int
    fails_in: int


@st.composite
def failing_runs(draw: st.DrawFn, *, max_parties: int = 4, max_generations: int = 3) -> FailingRun:
    """Scenarios with 2 to `max_parties` parties, one of which fails in some generation."""
    if max_parties < 2 or max_generations < 1:
        raise ValueError("a failing run needs at least 2 parties and 1 generation")
    parties = draw(st.integers(2, max_parties))
    generations = draw(st.integers(1, max_generations))
    failing = draw(st.integers(0, parties - 1))
    return FailingRun(parties, generations, failing, draw(st.integers(0, generations - 1)))


class _FailsIn(Simulation):
    """A simulation where one party's computation fails, counting the slices each computes."""

    def __init__(self, run: FailingRun) -> None:
        super().__init__([1, 0] * run.parties, run.parties)
        self.scenario = run
        self.computed = [0] * run.parties

    def compute_slice(self, party: int) -> None:
        if party == self.scenario.failing and self.computed[party] == self.scenario.fails_in:
            raise _Boom("this party's computation failed")
        self.computed[party] += 1
        super().compute_slice(party)


def _timed_party(number: int, generations: int) -> Callable[[Simulation], tuple[object, float]]:
    def body(sim: Simulation) -> tuple[object, float]:
        started = time.monotonic()  # the probe's virtual clock
        try:
            outcome = _party(number, generations)(sim)
        except _Boom:
            outcome = "raised its error"
        return outcome, time.monotonic() - started

    return body


@pytest.mark.probe
@pytest.mark.clause(7, 8, 9)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(run=failing_runs())
def test_a_failing_party_stops_every_other_party_at_once_however_many_there_are(
    probe: Prober, run: FailingRun
) -> None:
    def stopped_at_once(sim: _FailsIn, results: list[object]) -> None:
        failed = f"party {run.failing} of {run.parties} failed in generation {run.fails_in}"
        for party, (outcome, waited) in enumerate(results):  # type: ignore[misc]
            if party == run.failing:
                assert outcome == "raised its error", (
                    f"{failed} and its run_party returned {outcome!r}: after aborting the "
                    f"barrier it must let its own error propagate (`raise`)"
                )
                continue
            assert outcome is False, (
                f"{failed}, and party {party} returned {outcome!r}: it must return False "
                f"when the barrier breaks"
            )
            assert waited < DEFAULT_TIMEOUT, (
                f"{failed}, and party {party} waited {waited:g} s, the whole timeout, before "
                f"it gave up: the failing party must abort() the barrier before re-raising, and "
                f"a party that finds the barrier broken must leave it broken. One that reset()s "
                f"it makes it whole again, and a party that arrives afterwards waits alone"
            )
            assert sim.computed[party] == run.fails_in + 1, (
                f"{failed}, and party {party} computed {sim.computed[party]} slices, not "
                f"{run.fails_in + 1}: once wait() raises BrokenBarrierError, return False at "
                f"once, without computing another generation"
            )

    workers = {
        ("failing" if party == run.failing else f"party-{party}"): _timed_party(
            party, run.generations
        )
        for party in range(run.parties)
    }
    with _hang_means(
        f"party {run.failing} of {run.parties} failed and the others waited for ever: abort() "
        f"the barrier before re-raising, and give it a timeout"
    ):
        probe.explore(
            lambda: _FailsIn(run),
            workers,
            stopped_at_once,
            budget=min(probe.budget, DRAWN_SCHEDULES),
        )


# -- §10 §11 restart -----------------------------------------------------------------------


@pytest.mark.probe
@pytest.mark.clause(11)
def test_restart_makes_a_broken_barrier_work_again(probe: Prober) -> None:
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

    probe.explore(broken_then_restarted, [_party(0), _party(1)], works_again, budget=SCHEDULES)


LONGER = [0, 1, 1, 0, 1, 0]


class _Restarted:
    """A simulation that got as far as generation 7, then restart()ed from the list `given`."""

    def __init__(self) -> None:
        self.given = list(LONGER)
        self.sim = Simulation(CELLS, 2)
        self.sim.generation, self.sim.current = 7, [1, 1, 1, 1]
        self.sim.restart(self.given)


def _restarted_party(number: int) -> Callable[[_Restarted], object]:
    def body(state: _Restarted) -> object:
        try:
            return _party(number)(state.sim)
        except IndexError:
            return "raised IndexError"

    return body


@pytest.mark.probe
@pytest.mark.clause(10)
def test_restart_starts_over_from_a_copy_of_the_new_cells(probe: Prober) -> None:
    expected = _serial(LONGER, GENERATIONS)

    def started_over(state: _Restarted, results: list[object]) -> None:
        sim = state.sim
        assert "raised IndexError" not in results, (
            f"after restart() from {len(LONGER)} cells (the old row had {len(CELLS)}), "
            f"compute_slice raised IndexError: `next` still had the old length. restart "
            f"must make a fresh next row of len(cells) zeros"
        )
        assert state.given == LONGER, (
            f"the list handed to restart() now reads {state.given}, not {LONGER}: the "
            f"simulation wrote its rows into the caller's list. Keep a copy: "
            f"self.current = list(cells)"
        )
        assert (sim.current, sim.generation) == (expected, GENERATIONS), (
            f"after restart({LONGER}) and {GENERATIONS} generations, the row is {sim.current} "
            f"at generation {sim.generation}; expected {expected} at {GENERATIONS}: restart "
            f"must start from the new cells at generation 0"
        )

    probe.explore(
        _Restarted, [_restarted_party(0), _restarted_party(1)], started_over, budget=SCHEDULES
    )


# -- §12 §13 §14 run -----------------------------------------------------------------------


def _run(sim: Simulation) -> tuple[object, int, float]:
    """What run() gave, the generation at the moment it came back, and the virtual time it took."""
    started = time.monotonic()
    try:
        outcome: object = sim.run(GENERATIONS)
    except threading.BrokenBarrierError:
        outcome = "raised BrokenBarrierError"
    return outcome, sim.generation, time.monotonic() - started


@pytest.mark.probe
@pytest.mark.clause(12)
def test_run_runs_every_party_at_once_and_returns_the_final_row(probe: Prober) -> None:
    def final_row(_sim: Simulation, results: list[object]) -> None:
        outcome, generation, took = results[0]  # type: ignore[misc]
        assert generation == GENERATIONS, (
            f"run({GENERATIONS}) came back ({outcome!r}) while the parties were at generation "
            f"{generation}"
            + (
                f", after {took:g} virtual seconds: a party waited alone at the barrier until "
                f"it timed out, so the parties did not run at the same time. Start every "
                f"thread before joining any."
                if took >= DEFAULT_TIMEOUT
                else ": it did not wait for them. join() every thread before reading the row."
            )
        )
        assert outcome == EXPECTED, f"run({GENERATIONS}) gave {outcome!r}, expected {EXPECTED}"

    with _hang_means("run() never returned: a thread waits forever"):
        probe.explore(_two_parties, {"caller": _run}, final_row, budget=SCHEDULES)


@pytest.mark.probe
@pytest.mark.clause(13)
def test_run_returns_a_copy_of_the_row(probe: Prober) -> None:
    def changed_the_copy(sim: Simulation) -> object:
        try:
            row = sim.run(GENERATIONS)
        except threading.BrokenBarrierError:
            return "raised BrokenBarrierError"
        before = list(sim.current)
        row[0] = 7
        return before, sim.current

    def copied(_sim: Simulation, results: list[object]) -> None:
        assert results[0] != "raised BrokenBarrierError", (
            "run() raised BrokenBarrierError on a healthy simulation, so there was no row to "
            "check: make test_run_runs_every_party_at_once_and_returns_the_final_row pass first"
        )
        before, after = results[0]  # type: ignore[misc]
        assert after == before, (
            f"changing the list run() returned changed the simulation's row from {before} to "
            f"{after}: return a copy, list(self.current)"
        )

    probe.explore(_two_parties, {"caller": changed_the_copy}, copied, budget=1)


@pytest.mark.probe
@pytest.mark.clause(14)
def test_run_raises_brokenbarriererror_when_a_party_could_not_finish(probe: Prober) -> None:
    def aborted() -> Simulation:
        sim = _two_parties()
        sim.barrier.abort()
        return sim

    def reported(_sim: Simulation, results: list[object]) -> None:
        outcome, _generation, _took = results[0]  # type: ignore[misc]
        assert outcome == "raised BrokenBarrierError", (
            f"run() on an aborted barrier returned {outcome!r}: when a party returns False "
            f"its part of the row is unfinished, so run must raise BrokenBarrierError"
        )

    with _hang_means("run() never returned: a thread waits forever"):
        probe.explore(aborted, {"caller": _run}, reported, budget=SCHEDULES)


@pytest.mark.probe
@pytest.mark.clause(5, 12)
@scenario_settings(max_examples=DRAWN_EXAMPLES)
@given(
    parties=st.integers(2, 3),
    cells=st.lists(st.integers(0, 1), min_size=1, max_size=6),
    runs=st.lists(st.integers(0, 2), min_size=2, max_size=3),
)
def test_each_run_goes_on_from_where_the_previous_run_stopped(
    probe: Prober, parties: int, cells: list[int], runs: list[int]
) -> None:
    def run_in_turn(sim: Simulation) -> list[tuple[object, int]]:
        seen: list[tuple[object, int]] = []
        for generations in runs:
            try:
                row: object = sim.run(generations)
            except threading.BrokenBarrierError:
                row = "raised BrokenBarrierError"
            seen.append((row, sim.generation))
        return seen

    def went_on(_sim: Simulation, results: list[object]) -> None:
        done = 0
        for call, (generations, (row, generation)) in enumerate(
            zip(runs, results[0], strict=True),  # type: ignore[call-overload]
            start=1,
        ):
            done += generations
            expected = _serial(cells, done)
            assert (row, generation) == (expected, done), (
                f"Simulation({cells}, {parties}) then run() with {runs}: call {call}, "
                f"run({generations}), gave {row} at generation {generation}; expected {expected} "
                f"at generation {done}. Each run_party(party, generations) computes that many "
                f"generations more, whatever `generation` already counts: loop over "
                f"range(generations), not while self.generation < generations"
            )

    with _hang_means("run() never returned: a thread waits forever"):
        probe.explore(
            lambda: Simulation(cells, parties),
            {"caller": run_in_turn},
            went_on,
            budget=min(probe.budget, DRAWN_SCHEDULES),
        )
