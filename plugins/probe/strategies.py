"""Scheduling strategies: random walk, PCT and replay, all drawn from one seeded Random, and
the shrinker's ``Anchored`` (switches tied to each worker's own steps).

A strategy is asked at every decision point (two or more enabled workers) and answers
an index into ``options``. ``options[0]`` is the natural choice: the worker that is
already running if it may continue (threads), or the oldest ready callback (asyncio).
That makes "0" mean "no preemption", which is what the shrinker and Hypothesis reduce to.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from typing import Any, Protocol


class Strategy(Protocol):
    name: str

    def choose(self, running: Hashable | None, options: Sequence[Hashable], step: int) -> int:
        """Index into ``options`` of the worker (or callback) to run next."""
        ...


class Indexed(Protocol):
    """What ``PCT.choose_indexed`` reads of an option: its key."""

    index: int


_BELOW_ALL = float("-inf")  # below every PCT rank, the lowered ones included


class RandomWalk:
    """Uniform choice among enabled workers at every decision (found most bugs in research)."""

    name = "random"

    def __init__(self, rng: random.Random) -> None:
        # random() is one C call; randrange() is Python code (a tenth of a random walk's time).
        # The scheduler calls draw itself, as choose does (a method call less per decision).
        self.draw = rng.random

    def choose(self, running: Hashable | None, options: Sequence[Hashable], step: int) -> int:
        return int(self.draw() * len(options))

    def choose_weighted(self, n: int, weight: int) -> int:
        """``choose`` at a switch point that stands for ``weight`` of them, the running worker
        first of the ``n`` options (``tracing.weights_of``): it is kept running with the
        chance that ``weight`` choices in a row would all have kept it, (1/n)^weight; else one
        of the others, uniformly. Weight 1 gives ``choose``'s answer for the same draw."""
        return weighted_index(self.draw(), n, weight)


def weighted_index(u: float, n: int, weight: int) -> int:
    """``RandomWalk.choose_weighted``'s answer for the draw ``u``: the scheduler's written-out
    random walks call this with their own draw."""
    stay = n**-weight
    return 0 if u < stay else 1 + int((u - stay) / (1 - stay) * (n - 1))


class PCT:
    """Probabilistic concurrency testing (Burckhardt et al. 2010) with depth ``depth``.

    Each worker gets a random distinct priority; the highest enabled one runs. At d-1
    change points drawn over the first ``k`` decisions the running worker drops below all.
    """

    def __init__(self, rng: random.Random, depth: int, k: int) -> None:
        self.name = f"pct-d{depth}"
        self._rng = rng
        self._prio: dict[Hashable, float] = {}
        self._low = 0.0
        span = max(k, depth)
        self._changes = frozenset(rng.sample(range(1, span + 1), depth - 1))

    def choose(
        self, running: Hashable | None, options: Sequence[Hashable], step: int, weight: int = 1
    ) -> int:
        """``step``: the decisions so far, each counted by the switch points it stood for;
        ``weight``: how many this one stands for (``tracing.weights_of``). A change point
        anywhere in them lowers the running worker, as it did where each read had a switch
        point of its own."""
        return self._highest(running, options, step, weight)

    def _changes_at(self, step: int, weight: int) -> bool:
        if weight == 1:
            return step in self._changes
        return not self._changes.isdisjoint(range(step, step + weight))

    def choose_indexed(
        self, running: int, options: Sequence[Indexed], step: int, weight: int = 1
    ) -> int:
        """``choose`` over objects keyed by their ``index`` (the scheduler's workers): the
        scheduler makes no list of keys at every decision. ``_highest`` written out for them
        (a tenth of a three-party barrier's schedule went to PCT's decisions)."""
        prio = self._prio
        if step in self._changes if weight == 1 else self._changes_at(step, weight):
            self._low -= 1.0
            prio[running] = self._low
        best, best_prio = 0, _BELOW_ALL
        for i, option in enumerate(options):
            p = prio.get(option.index)
            if p is None:
                # New workers (spawned threads) get a fresh random rank, drawn in first-seen order.
                p = prio[option.index] = 1.0 + self._rng.random()
            if p > best_prio:  # the first option always sets it
                best, best_prio = i, p
        return best

    def _highest(
        self,
        running: Hashable | None,
        options: Sequence[Any],
        step: int,
        weight: int = 1,
    ) -> int:
        prio = self._prio
        if running is not None and self._changes_at(step, weight):
            self._low -= 1.0
            prio[running] = self._low
        best, best_prio = 0, 0.0
        for i, option in enumerate(options):
            p = prio.get(option)
            if p is None:
                # New workers (spawned threads) get a fresh random rank, drawn in first-seen order.
                p = prio[option] = 1.0 + self._rng.random()
            if i == 0 or p > best_prio:
                best, best_prio = i, p
        return best


class Replay:
    """Follows a recorded choice list; past its end it keeps choosing 0 (no preemption)."""

    name = "replay"

    def __init__(self, choices: Sequence[int]) -> None:
        self._choices = list(choices)

    def choose(self, running: Hashable | None, options: Sequence[Hashable], step: int) -> int:
        if step < len(self._choices):
            return self._choices[step]
        return 0


Anchor = tuple[Hashable, int, int]  # (running worker, its steps so far, earlier decisions there)


class Anchored:
    """Switches tied to each worker's own progress, not to the count of decisions before.

    A schedule written as choice indices gives each choice its meaning from every choice
    before it: drop one preemption and every later index lands on another worker or step.
    Here a preemption is "when worker R has taken k steps, run T" (``switches``), and a
    choice where no worker is preempted (the running one blocked or ended) is "run T if it
    has taken k steps" (``resumes``), whoever ran last. Drop one preemption and the others
    stay where they were in each worker's code, so the shrinker can drop them one at a time
    (a livelock of four colliding retries was shown with 25 preemptions where 7 do).

    With ``replay`` it follows a choice list instead and records its choices as anchors
    (``recorded``, ``resumed``): that is how a found schedule is turned into one. The
    scheduler binds ``events`` to the run's, to count each worker's steps, and sets
    ``preemptible`` before each call: whether a choice other than 0 preempts.
    """

    name = "anchored"

    def __init__(
        self,
        switches: dict[Anchor, Hashable],
        resumes: frozenset[tuple[Hashable, int]] = frozenset(),
        replay: Sequence[int] | None = None,
    ) -> None:
        self.switches = switches
        self.resumes = resumes
        self._replay = replay
        self.recorded: dict[Anchor, Hashable] = {}
        self.resumed: set[tuple[Hashable, int]] = set()
        self.events: list[tuple[str, int, Any, str]] = []
        self.preemptible = False
        self._counted = 0
        self._steps: dict[Hashable, int] = {}
        self._seen: dict[tuple[Hashable, int], int] = {}

    def choose(self, running: Hashable | None, options: Sequence[Hashable], step: int) -> int:
        steps, events = self._steps, self.events
        for i in range(self._counted, len(events)):
            if events[i][0] == "s":
                who = events[i][1]
                steps[who] = steps.get(who, 0) + 1
        self._counted = len(events)
        replay = self._replay
        if replay is not None:
            idx = replay[step] if step < len(replay) else 0
            idx = idx if 0 <= idx < len(options) else 0
        if self.preemptible:
            at = (running, steps.get(running, 0))
            earlier = self._seen.get(at, 0)
            self._seen[at] = earlier + 1
            anchor: Anchor = (running, at[1], earlier)
            if replay is None:
                target = self.switches.get(anchor)
                idx = options.index(target) if target is not None and target in options else 0
            if idx:
                self.recorded[anchor] = options[idx]
            return idx
        if replay is None:
            idx = next(
                (i for i, o in enumerate(options) if (o, steps.get(o, 0)) in self.resumes), 0
            )
        self.resumed.add((options[idx], steps.get(options[idx], 0)))
        return idx


def normalize(choice: int, n_options: int, running_enabled: bool) -> int:
    """Map a raw choice onto an index: 0 keeps the running worker, k>0 the k-th other."""
    if n_options <= 1:
        return 0
    choice = abs(int(choice))
    if running_enabled:
        return 0 if choice == 0 else 1 + (choice - 1) % (n_options - 1)
    return choice % n_options


PORTFOLIO = ("random", "random", "random", "pct-d2", "pct-d3")


def make_strategy(spec: str, seed: int, index: int, k_estimate: int) -> Strategy:
    """Strategy for schedule ``index`` of an exploration; the same inputs give the same run.

    ``spec`` is "portfolio" (60% random walk, 20% PCT d=2, 20% PCT d=3, interleaved),
    "random", or "pct-dN".
    """
    rng = random.Random(seed * 1_000_003 + index)
    kind = PORTFOLIO[index % len(PORTFOLIO)] if spec == "portfolio" else spec
    if kind == "random":
        return RandomWalk(rng)
    if kind.startswith("pct-d") and kind[5:].isdigit():
        return PCT(rng, int(kind[5:]), max(k_estimate, 10))
    raise ValueError(
        f"unknown strategies={spec!r}: use 'portfolio', 'random' or 'pct-d2' / 'pct-d3'"
    )
