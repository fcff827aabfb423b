"""Oclgrind's logs (recorded from Oclgrind 21.10 on this project's machine) read and explained."""

from __future__ import annotations

from pathlib import Path

from plugins.oclgrind_report import explain, parse

DATA = Path(__file__).parent / "data"
RACE_AND_BOUNDS = (DATA / "oclgrind-race-and-bounds.log").read_text()
DIVERGENCE = (DATA / "oclgrind-barrier-divergence.log").read_text()


def test_a_race_names_both_work_items_with_their_source_lines() -> None:
    race = parse(RACE_AND_BOUNDS)[0]
    assert race.kind == "race" and race.memory == "local" and race.kernel == "reduce"
    assert race.offset == 4, "the byte offset is the address without the buffer's number"
    first, second = race.accesses
    assert (first.global_id, first.local_id, first.group_id) == ((1, 0, 0), (1, 0, 0), (0, 0, 0))
    assert (first.line, first.source) == (4, "tmp[l] = x[g];")
    assert (second.line, second.source) == (6, "if (l < s) tmp[l] += tmp[l+s];")


def test_an_out_of_bounds_write_names_its_work_item_and_byte() -> None:
    bounds = next(p for p in parse(RACE_AND_BOUNDS) if p.kind == "bounds")
    assert bounds.kernel == "oob" and bounds.memory == "global" and bounds.offset == 44
    assert [a.global_id for a in bounds.accesses] == [(11, 0, 0)]


def test_a_barrier_reached_by_some_work_items_only_gives_its_line_and_how_many() -> None:
    problems = parse(DIVERGENCE)
    assert [p.kind for p in problems] == ["barrier", "barrier"]
    assert problems[0].line == 4 and "barrier(CLK_LOCAL_MEM_FENCE)" in problems[0].source
    assert problems[0].details == ["Only 4 out of 8 work-items executed barrier"]
    assert [p.work_group for p in problems] == ["(0,0,0)", "(1,0,0)"]


def test_the_explanation_groups_alike_problems_and_says_what_fixes_each() -> None:
    problems = parse(RACE_AND_BOUNDS)
    text = explain(problems, RACE_AND_BOUNDS)
    races = sum(p.kind == "race" for p in problems)
    assert (
        f"Read-write data race in kernel `reduce` (local memory, byte 4 of its buffer), {races}x"
        in text
    )
    assert "work-item 1 (local 1 of group 0) at line 4: `tmp[l] = x[g];`" in text
    assert "put barrier(CLK_LOCAL_MEM_FENCE) after the step that writes" in text
    assert "guard the body with `if (i < n)`" in text
    divergence = explain(parse(DIVERGENCE), DIVERGENCE)
    assert "2 memory problems" in divergence and "(1 distinct)" in divergence
    assert "Only 4 out of 8 work-items executed barrier (in work-groups (0,0,0), (1,0,0))" in (
        divergence
    )
    # The learner's report ends with Oclgrind's own log, from its start.
    assert "own report (first part):\n" + DIVERGENCE[:40] in divergence, divergence
    assert "a barrier inside an `if` that not all work-items take" in divergence
