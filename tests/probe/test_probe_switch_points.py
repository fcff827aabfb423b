"""Switch points go only where another worker could tell the difference: none before reading a
builtin's name or a local's arithmetic with a number, one before everything else."""

from __future__ import annotations

import dis
from types import CodeType

import pytest

from plugins.probe import explore
from plugins.probe.tracing import switch_points
from tests.probe.samples import invisible


def _points_at(code: CodeType, opname: str) -> list[str]:
    points = switch_points(code)
    return [
        f"{ins.opname} {ins.argrepr}"
        for ins in dis.get_instructions(code)
        if ins.opname == opname and ins.offset in points
    ]


def test_a_builtins_name_and_a_locals_arithmetic_with_a_number_are_no_switch_points() -> None:
    code = invisible.local_arithmetic.__code__
    assert _points_at(code, "LOAD_GLOBAL") == [], (
        "reading `len` or `range` switches workers, though nothing in a run rebinds them"
    )
    assert _points_at(code, "BINARY_OP") == [], (
        "`n - 1`, `i + 1` and `j // 2` switch workers, though they only make a new number"
    )


def test_a_global_the_module_writes_and_operators_that_read_items_stay_switch_points() -> None:
    assert _points_at(invisible.global_counter.__code__, "LOAD_GLOBAL") == ["LOAD_GLOBAL total"]
    assert len(_points_at(invisible.reads_items.__code__, "BINARY_OP")) == 2, (
        "`xs * 2` and `fmt % 3` read a list's or a value's items: they must stay switch points"
    )
    assert _points_at(invisible.shadowing_builtin.__code__, "STORE_GLOBAL") == ["STORE_GLOBAL len"]


def test_a_lost_update_on_a_module_global_is_still_found() -> None:
    def reset() -> None:
        invisible.total = 0

    def no_update_lost(_state: None, _results: list[object]) -> None:
        assert invisible.total == 2, f"{2 - invisible.total} of 2 updates were lost"

    with pytest.raises(AssertionError, match="updates were lost"):
        explore(
            reset,
            [lambda _: invisible.global_counter(), lambda _: invisible.global_counter()],
            no_update_lost,
            modules=[invisible],
            budget=50,
        )
