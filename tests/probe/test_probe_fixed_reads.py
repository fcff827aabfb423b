"""No switch point before reading a name that nothing rebinds while a run goes on (a field
set only in ``__init__``, a method, a module's constant, a closure's argument); one before
reading every other name, and before every read in a file that rebinds names by other means."""

from __future__ import annotations

import dis
from collections.abc import Callable
from types import CodeType

import pytest

from plugins.probe import ProbeFailure, api, explore
from plugins.probe.strategies import Replay
from plugins.probe.tracing import switch_points, weights_of
from tests.probe.samples import fixed_reads, fixed_reads_reinit, fixed_reads_setattr

_READS = ("LOAD_ATTR", "LOAD_METHOD", "LOAD_GLOBAL", "LOAD_DEREF")


def _reads_with_points(code: CodeType) -> list[str]:
    """The reads of names that have a switch point before them, as ``LOAD_ATTR name``."""
    points = switch_points(code)
    return [
        f"{ins.opname} {ins.argval}"
        for ins in dis.get_instructions(code)
        if ins.opname in _READS and ins.offset in points
    ]


def test_a_field_set_only_in_init_a_method_and_a_constant_are_read_with_no_switch_point() -> None:
    deposit = _reads_with_points(fixed_reads.Account.deposit.__code__)
    assert deposit == ["LOAD_ATTR balance"], (
        f"deposit's reads with a switch point: {deposit}. `self.lock` is set only in __init__ "
        "and nothing rebinds it while the workers run: a switch before reading it gives the "
        "states a switch a step later gives. `self.balance` is stored by deposit itself."
    )
    report = _reads_with_points(fixed_reads.Account.report.__code__)
    assert report == [], f"report's reads with a switch point: {report}, not none"
    assert _reads_with_points(fixed_reads.limit_into.__code__) == [], (
        "reading the module's constant LIMIT switches workers, though no function stores it"
    )
    read = fixed_reads.reader(fixed_reads.Account(0)).__code__  # type: ignore[attr-defined]
    assert _reads_with_points(read) == [], (
        "reading `account`, an argument the closure keeps and nothing stores, switches workers"
    )
    assert _reads_with_points(fixed_reads.file_item.__code__) == [], (
        "`item is STOP` looks into neither object, and both ways on from it reach a call: "
        "reading STOP there needs no switch point"
    )
    assert _reads_with_points(fixed_reads.paired.__code__) == [], (
        "LIMIT goes into a tuple beside an empty dict, then to a call: no switch point needed"
    )
    assert _reads_with_points(fixed_reads.file_default.__code__) == [], (
        "`if DEFAULT is None` looks into nothing and both ways on reach a call: reading "
        "DEFAULT needs no switch point"
    )


@pytest.mark.parametrize(
    ("function", "kept"),
    [
        (fixed_reads.Account.over, ["LOAD_ATTR balance", "LOAD_ATTR limit"]),
        (fixed_reads.Shelf.take, ["LOAD_ATTR items"]),
        (fixed_reads.Shelf.total, ["LOAD_ATTR items"]),
        (fixed_reads.Shelf.counted_all, ["LOAD_ATTR count", "LOAD_ATTR items"]),
        (fixed_reads.is_stop, ["LOAD_GLOBAL STOP"]),
        (fixed_reads.keyed, ["LOAD_GLOBAL LIMIT"]),
    ],
    ids=[
        "compared",
        "truth-tested",
        "iterated",
        "tested-after-another-read",
        "returned",
        "hashed-as-a-key",
    ],
)
def test_a_fixed_name_whose_value_is_looked_into_keeps_its_switch_point(
    function: Callable[..., object], kept: list[str]
) -> None:
    got = _reads_with_points(function.__code__)
    assert got == kept, (
        f"{function.__name__}'s reads with a switch point: {got}, not {kept}. The read's "
        "value is compared, tested or iterated before the next switch point: the switch point "
        "before the read is also the one before that look into the object, which another "
        "worker may change"
    )


def test_a_check_that_reads_a_field_then_tests_a_fixed_list_is_caught() -> None:
    def counted(shelf: fixed_reads.Shelf, results: list[object]) -> None:
        assert results[1] is True, "counted_all saw the list hold an item its count missed"

    with pytest.raises(ProbeFailure, match="count missed"):
        explore(
            fixed_reads.Shelf,
            [lambda s: s.put(1), lambda s: s.counted_all()],
            counted,
            modules=[fixed_reads],
            budget=50,
            exhaustive=500,
        )


def test_a_field_an_init_stores_onto_another_object_keeps_its_switch_point() -> None:
    kept = _reads_with_points(fixed_reads.latest_into.__code__)
    assert kept == ["LOAD_ATTR latest"], (
        f"latest_into's reads with a switch point: {kept}. Member.__init__ stores `latest` onto "
        "the registry it was given, an object other workers may already read: only an "
        "__init__'s stores onto its own new object leave a field fixed"
    )


def test_a_global_a_function_stores_and_a_primitives_property_keep_their_switch_points() -> None:
    assert _reads_with_points(fixed_reads.count.__code__) == ["LOAD_GLOBAL seen"], (
        "`seen` is stored by count(): reading it must stay a switch point"
    )
    assert _reads_with_points(fixed_reads.broken_into.__code__) == ["LOAD_ATTR broken"], (
        "Barrier.broken is a property over state that other workers change: reading it must "
        "stay a switch point"
    )


@pytest.mark.parametrize(
    ("code", "kept"),
    [
        (fixed_reads_setattr.Flag.is_up.__code__, "LOAD_ATTR up"),
        (fixed_reads_reinit.Row.first.__code__, "LOAD_ATTR cells"),
    ],
    ids=["setattr", "init-called-again"],
)
def test_a_file_that_rebinds_by_other_means_keeps_every_read_a_switch_point(
    code: CodeType, kept: str
) -> None:
    assert kept in _reads_with_points(code), (
        f"{code.co_filename.rsplit('/', 1)[-1]} rebinds fields without a store outside "
        f"__init__ (setattr, or __init__ called again): {kept} must stay a switch point"
    )


def test_a_lost_update_on_a_field_a_method_stores_is_still_found() -> None:
    def no_deposit_lost(account: fixed_reads.Account, _results: list[object]) -> None:
        assert account.balance == 2, f"{2 - account.balance} of 2 deposits were lost"

    with pytest.raises(AssertionError, match="deposits were lost"):
        explore(
            lambda: fixed_reads.Account(0),
            [lambda a: a.deposit_unlocked(1), lambda a: a.deposit_unlocked(1)],
            no_deposit_lost,
            modules=[fixed_reads],
            budget=50,
        )


def test_the_locked_deposit_is_proved_and_no_step_stops_before_reading_its_lock() -> None:
    def setup() -> fixed_reads.Account:
        return fixed_reads.Account(0)

    workers = [lambda a: a.deposit(1), lambda a: a.deposit(1)]

    def both_deposited(account: fixed_reads.Account, _results: list[object]) -> None:
        assert account.balance == 2, f"{2 - account.balance} of 2 locked deposits were lost"

    stats = explore(setup, workers, both_deposited, modules=[fixed_reads], budget=50, exhaustive=50)
    assert stats.proved, "two locked deposits are small enough to check every interleaving"
    execute = api._executor(setup, workers, both_deposited, [fixed_reads], 1_000, 2.0)
    stops = [event[3] for event in execute(Replay([])).events if event[0] == "s"]
    assert stops and "reads .lock" not in stops, (
        f"a run of the two deposits stopped at {stops}: a step still stops before reading "
        "`self.lock`, which only __init__ sets"
    )


def test_the_switch_point_after_dropped_reads_stands_for_them() -> None:
    # deposit: `with self.lock:` reads the lock with no switch point; the next switch point
    # in the code, reading `self.balance`, stands for both. over(): the read of `self.limit`
    # comes after its last switch point, so nothing stands for it.
    deposit = fixed_reads.Account.deposit.__code__
    points = switch_points(deposit)
    weights = {points[offset]: weight for offset, weight in weights_of(deposit).items()}
    assert weights == {"reads .balance": 2}, (
        f"deposit's switch points standing for more than one: {weights}, not the read of "
        "`self.balance` standing for itself and the dropped read of `self.lock`"
    )
    assert weights_of(fixed_reads.Account.over.__code__) == {}, (
        "over()'s only switch point comes before the dropped read, so it stands for itself"
    )
