"""Kata `events`: a start gun, a stoppable poller and an inbox built on threading.Event."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from events import Inbox, Poller, StartGun

from plugins.probe import Prober

# Under the probe, time.sleep, time.monotonic and every timeout run on a virtual clock: these
# seconds cost no real time, and the times the tests measure are exact.
PATIENCE = 5.0
# Not 1 s, so a pause hard-coded to 1 s shows; the stop comes 0.4 s into the third pause.
INTERVAL = 0.75
STOP_AT = 1.9


def _runner(gun: StartGun) -> tuple[bool, float]:
    started = time.monotonic()
    passed = gun.wait(timeout=PATIENCE)
    return passed, time.monotonic() - started


@pytest.mark.probe
@pytest.mark.clause(1)
def test_runners_waiting_at_the_line_all_start_when_the_gun_fires(probe: Prober) -> None:
    def starter(gun: StartGun) -> None:
        time.sleep(1.0)  # both runners are at the line by now
        gun.fire()

    def everybody_started(_gun: StartGun, results: list[object]) -> None:
        passed = [result[0] for result in results[:2]]  # type: ignore[index]
        assert True in passed, (
            f"two runners waited at the line and the gun fired after 1 s, well within their "
            f"{PATIENCE:g} s; wait() returned {passed} for both. wait() must wait on the event "
            f"and return what that wait returned: self._fired.wait(timeout)"
        )
        assert passed == [True, True], (
            f"two runners waited at the line and the gun fired after 1 s; wait() returned "
            f"{passed}. fire() must release every waiting runner, not just one: a semaphore "
            f"released once lets one thread through, an Event's set() wakes them all"
        )

    workers = {"runner-1": _runner, "runner-2": _runner, "starter": starter}
    probe.explore(StartGun, workers, everybody_started)


@pytest.mark.probe
@pytest.mark.clause(2, 3)
def test_a_runner_who_arrives_after_the_shot_starts_at_once(probe: Prober) -> None:
    def late_runner(gun: StartGun) -> tuple[bool, float, bool]:
        time.sleep(1.0)  # the gun fired long ago
        passed, waited = _runner(gun)
        return passed, waited, gun.fired

    def passed_at_once(_gun: StartGun, results: list[object]) -> None:
        passed, waited, fired = results[1]  # type: ignore[misc]
        assert (passed, waited) == (True, 0.0), (
            f"the gun fired at 0 s; a runner who came to the line at 1 s got {passed} from "
            f"wait(timeout={PATIENCE:g}) after {waited:g} s. It must pass at once: fire() "
            f"must leave the gun fired. A set() followed by clear() is a pulse that only "
            f"threads already waiting can see (B1's Event.py)"
        )
        assert fired is True, (
            f"after fire(), gun.fired is {fired!r}, not True: return self._fired.is_set()"
        )

    workers = {"starter": lambda gun: gun.fire(), "late": late_runner}
    probe.explore(StartGun, workers, passed_at_once)


@pytest.mark.probe
@pytest.mark.clause(4)
def test_wait_without_a_timeout_waits_as_long_as_the_gun_takes(probe: Prober) -> None:
    def patient(gun: StartGun) -> tuple[bool, float]:
        started = time.monotonic()
        passed = gun.wait()
        return passed, round(time.monotonic() - started, 6)

    def fire_late(gun: StartGun) -> None:
        time.sleep(10.0)
        gun.fire()

    def passed_late(_gun: StartGun, results: list[object]) -> None:
        assert results[0] == (True, 10.0), (
            f"the gun fired after 10 s; wait() with no timeout returned {results[0]} (passed, "
            f"seconds waited), expected (True, 10.0): without a timeout it waits on the event "
            f"for as long as it takes"
        )

    probe.explore(
        StartGun,
        {"runner": patient, "starter": fire_late},
        passed_late,
        budget=min(probe.budget, 25),
    )


@pytest.mark.probe
@pytest.mark.clause(5)
def test_a_gun_that_fires_just_before_the_timeout_still_starts_the_runner(probe: Prober) -> None:
    def fire_at(gun: StartGun) -> None:
        time.sleep(0.9)
        gun.fire()

    def runner(gun: StartGun) -> tuple[bool, float]:
        started = time.monotonic()
        passed = gun.wait(timeout=1.0)
        return passed, round(time.monotonic() - started, 6)

    def started_in_time(_gun: StartGun, results: list[object]) -> None:
        assert results[0] == (True, 0.9), (
            f"the gun fired 0.9 s into wait(timeout=1), which returned {results[0]} (passed, "
            f"seconds waited) instead of (True, 0.9): wait on the event with the timeout, "
            f"self._fired.wait(timeout), which returns the moment it is set"
        )

    probe.explore(
        StartGun,
        {"runner": runner, "starter": fire_at},
        started_in_time,
        budget=min(probe.budget, 25),
    )


@pytest.mark.probe
@pytest.mark.clause(3, 5)
def test_waiting_for_a_gun_that_never_fires_returns_false_after_the_timeout(probe: Prober) -> None:
    def wait_in_vain(gun: StartGun) -> tuple[bool, float, bool]:
        started = time.monotonic()
        passed = gun.wait(timeout=1.0)
        return passed, time.monotonic() - started, gun.fired

    def timed_out(_gun: StartGun, results: list[object]) -> None:
        passed, waited, fired = results[0]  # type: ignore[misc]
        assert (passed, waited) == (False, 1.0), (
            f"nobody fired the gun; wait(timeout=1) returned {passed} after {waited:g} s. It "
            f"must return False after 1 s: return what the event's wait() returned"
        )
        assert fired is False, (
            f"an unfired gun says fired == {fired!r}, not False: return self._fired.is_set() "
            f"(the Event object itself is always truthy)"
        )

    probe.explore(StartGun, [wait_in_vain], timed_out, budget=1)


class RanAway(Exception):
    """A poller kept stepping long after it should have stopped."""


class Plant:
    """A poller whose step records the (virtual) time of each call."""

    def __init__(self, give_up_after: int = 100) -> None:
        self.ticks: list[float] = []
        self.started = 0.0  # when run() was called (virtual clock)
        self.give_up_after = give_up_after
        self.poller = Poller(self.tick, INTERVAL)

    def tick(self) -> None:
        self.ticks.append(time.monotonic())
        if len(self.ticks) >= self.give_up_after:
            raise RanAway


def _poll(plant: Plant) -> tuple[int, float]:
    plant.started = time.monotonic()
    steps = plant.poller.run()
    return steps, time.monotonic()


def _stop_later(plant: Plant) -> float:
    time.sleep(STOP_AT)
    plant.poller.stop()
    return time.monotonic()


def _poll_and_stop() -> dict[str, Callable[[Plant], object]]:
    return {"poller": _poll, "stopper": _stop_later}


@pytest.mark.probe
@pytest.mark.clause(6)
def test_the_poller_steps_once_per_interval_until_it_is_stopped(probe: Prober) -> None:
    def paced(plant: Plant, results: list[object]) -> None:
        steps, _ = results[0]  # type: ignore[misc]
        started = plant.started
        at = [round(tick - started, 6) for tick in plant.ticks]
        expected = [0.0, INTERVAL, 2 * INTERVAL]
        assert at == expected, (
            f"a poller with interval {INTERVAL:g} s, stopped at {STOP_AT:g} s, called step() at "
            f"{at} s, expected at {expected} s: step first, then pause `interval` seconds (the "
            f"interval it was given), and check for stop() before every step"
        )
        assert steps == len(plant.ticks), (
            f"run() returned {steps}, but it called step() {len(plant.ticks)} times: return "
            f"the number of steps"
        )

    probe.explore(Plant, _poll_and_stop(), paced)


@pytest.mark.probe
@pytest.mark.clause(7)
def test_stop_ends_the_pause_at_once_instead_of_waiting_it_out(probe: Prober) -> None:
    def prompt(_plant: Plant, results: list[object]) -> None:
        _, finished = results[0]  # type: ignore[misc]
        stopped = results[1]
        late = round(finished - stopped, 6)  # type: ignore[operator]
        assert late == 0.0, (
            f"run() returned {late:g} s after stop() was called during its pause. The pause "
            f"must end the moment stop() is called: wait on the stop event with "
            f"timeout=interval instead of time.sleep(interval)"
        )

    probe.explore(Plant, _poll_and_stop(), prompt)


@pytest.mark.probe
@pytest.mark.clause(8)
def test_a_stop_before_the_poller_starts_is_not_lost(probe: Prober) -> None:
    def stop_then_run(plant: Plant) -> object:
        plant.poller.stop()
        try:
            return plant.poller.run()
        except RanAway:
            return "still running"

    def never_stepped(plant: Plant, results: list[object]) -> None:
        assert (results[0], plant.ticks) == (0, []), (
            "stop() came before run(), yet run() "
            + (
                "was still stepping when the test gave up after 5 steps"
                if results[0] == "still running"
                else f"returned {results[0]!r} after calling step() {len(plant.ticks)} time(s)"
            )
            + ": run() must check the stop event before every step, the "
            "first one included (`while not stopping.is_set():`), and must never clear it"
        )

    # A poller that forgets the early stop would run for ever: its step gives up after 5 calls.
    probe.explore(lambda: Plant(give_up_after=5), [stop_then_run], never_stepped, budget=1)


@pytest.mark.probe
@pytest.mark.clause(9)
def test_collect_returns_every_item_oldest_first_and_leaves_the_inbox_empty(
    probe: Prober,
) -> None:
    def post_then_collect(inbox: Inbox[str]) -> tuple[list[str], list[str]]:
        for item in ("a", "b", "c"):
            inbox.post(item)
        return inbox.collect(timeout=PATIENCE), inbox.collect(timeout=0.5)

    def emptied(_inbox: Inbox[str], results: list[object]) -> None:
        first, second = results[0]  # type: ignore[misc]
        assert first == ["a", "b", "c"], (
            f"'a', 'b', 'c' were posted, and collect() returned {first}: it returns every item "
            f"posted, oldest first"
        )
        assert second == [], (
            f"a second collect(timeout=0.5), with nothing posted since, returned {second}: "
            f"collect() must leave the inbox empty (swap the list for a new one) and clear the "
            f"event"
        )

    probe.explore(
        Inbox,
        [post_then_collect],
        emptied,
        budget=1,
        explain={
            "deadlock": (
                "collect() waited for ever. Either post() did not set the event, or the second "
                "collect(timeout=0.5), with nothing posted since the first, did not pass its "
                "timeout on to the event's wait: self._ready.wait(timeout), and [] when that "
                "returns False."
            )
        },
    )


@pytest.mark.probe
@pytest.mark.clause(10)
def test_an_item_posted_before_the_collector_waits_is_not_lost(probe: Prober) -> None:
    def collect(inbox: Inbox[str]) -> list[str]:
        return inbox.collect(timeout=PATIENCE)

    def delivered(_inbox: Inbox[str], results: list[object]) -> None:
        assert results[1] == ["parcel"], (
            f"one thread posted 'parcel' and the collector got {results[1]} within "
            f"{PATIENCE:g} s. When the post came before the collector started waiting, the "
            f"signal was gone: post() must leave the event set (B1's Event.py calls set() and "
            f"clear() back to back, a pulse that only a thread already waiting can see)"
        )

    workers = {"poster": lambda inbox: inbox.post("parcel"), "collector": collect}
    probe.explore(Inbox, workers, delivered)


@pytest.mark.probe
@pytest.mark.clause(10)
def test_items_posted_while_the_collector_takes_the_previous_ones_are_not_lost(
    probe: Prober,
) -> None:
    def post_two(inbox: Inbox[str]) -> None:
        inbox.post("a")
        inbox.post("b")

    def collect_twice(inbox: Inbox[str]) -> list[str]:
        return inbox.collect(timeout=PATIENCE) + inbox.collect(timeout=PATIENCE)

    def both_delivered(_inbox: Inbox[str], results: list[object]) -> None:
        got = results[1]
        assert isinstance(got, list)
        twice = sorted({item for item in got if got.count(item) > 1})
        assert not twice, (
            f"'a' and 'b' were posted, and two collect() calls got {got}: {twice} came out "
            f"twice. collect() must take the items out of the inbox, not copy them"
        )
        assert results[1] == ["a", "b"], (
            f"'a' and 'b' were posted, and two collect() calls got {results[1]}: an item was "
            f"left behind while the event said there was nothing. Take the items and clear "
            f"the event under the same lock that post() holds while it appends and sets"
        )

    probe.explore(Inbox, {"poster": post_two, "collector": collect_twice}, both_delivered)


@pytest.mark.probe
@pytest.mark.clause(11)
def test_collect_returns_an_empty_list_after_its_timeout_when_nothing_came(probe: Prober) -> None:
    def collect_in_vain(inbox: Inbox[str]) -> tuple[list[str], float]:
        started = time.monotonic()
        got = inbox.collect(timeout=1.0)
        return got, time.monotonic() - started

    def empty(_inbox: Inbox[str], results: list[object]) -> None:
        got, waited = results[0]  # type: ignore[misc]
        assert (got, waited) == ([], 1.0), (
            f"nothing was posted; collect(timeout=1) returned {got} after {waited:g} s, "
            f"expected [] after 1 s"
        )

    probe.explore(
        Inbox,
        [collect_in_vain],
        empty,
        budget=1,
        explain={
            "deadlock": (
                "nothing was posted, and collect(timeout=1) waited for ever: pass its timeout on "
                "to the event's wait, self._ready.wait(timeout), and return [] when that returns "
                "False."
            )
        },
    )


@pytest.mark.probe
@pytest.mark.clause(11)
def test_collect_returns_an_item_posted_just_before_its_timeout(probe: Prober) -> None:
    def post_late(inbox: Inbox[str]) -> None:
        time.sleep(0.9)
        inbox.post("late")

    def collect_once(inbox: Inbox[str]) -> tuple[list[str], float]:
        started = time.monotonic()
        got = inbox.collect(timeout=1.0)
        return got, round(time.monotonic() - started, 6)

    def in_time(_inbox: Inbox[str], results: list[object]) -> None:
        assert results[1] == (["late"], 0.9), (
            f"'late' was posted 0.9 s into collect(timeout=1), which returned {results[1]} "
            f"(items, seconds waited) instead of (['late'], 0.9): wait on the event with the "
            f"timeout, which returns the moment post() sets it"
        )

    probe.explore(
        Inbox,
        {"poster": post_late, "collector": collect_once},
        in_time,
        budget=min(probe.budget, 25),
    )
