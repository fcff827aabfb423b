"""3.11: a sampled run swaps the learner's code for a copy that calls the scheduler at each
switch point (plugins/probe/instrument). The copy must stop exactly where settrace stops, keep
every line, handler and result, and give every exploration the same schedules and reports."""

from __future__ import annotations

import dis
import sys
import traceback
import types
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

import pytest

from plugins.probe import ProbeFailure, explore, instrument
from plugins.probe.tracing import switch_points, weights_of
from tests.probe.samples import rewrite_shapes
from tests.probe.samples.rewrite_shapes import Box
from tests.probe.scenarios import BUGS

pytestmark = pytest.mark.skipif(
    not instrument.AVAILABLE, reason="the rewriting is for 3.11: 3.12+ uses sys.monitoring"
)

Stop = tuple[str, int, str, int]  # function, offset, what, weight


def _settrace_stops(fn: Callable[[Box], object]) -> tuple[object, list[Stop]]:
    """What ``fn`` returns, and each switch point settrace's opcode events stop at."""
    stops: list[Stop] = []
    files = {rewrite_shapes.__file__}

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            what = switch_points(frame.f_code).get(frame.f_lasti)
            if what is not None:
                weight = weights_of(frame.f_code).get(frame.f_lasti, 1)
                stops.append((frame.f_code.co_name, frame.f_lasti, what, weight))
        return local

    def global_trace(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename not in files:
            return None
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        return local

    sys.settrace(global_trace)
    try:
        result = fn(Box())
    finally:
        sys.settrace(None)
    return result, stops


def _rewritten_stops(fn: Callable[[Box], object]) -> tuple[object, list[Stop]]:
    stops: list[Stop] = []

    def hook(args: tuple[CodeType, int, str, tuple[str, int], int]) -> None:
        code, offset, what, _site, weight = args
        stops.append((code.co_name, offset, what, weight))

    swapped = _swapped(hook)
    try:
        result = fn(Box())
    finally:
        _restore(swapped)
    return result, stops


def _swapped(hook: instrument.Hook) -> list[tuple[types.FunctionType, CodeType]]:
    """Every function of the sample module on code rewritten for ``hook`` (not the cache's:
    the scheduler's hook is cached there)."""
    swapped = []
    for function in instrument.learner_functions([rewrite_shapes]):
        new = instrument._rewrite(function.__code__, hook, cached=False)
        assert new is not None, f"{function.__name__} was not rewritten"
        swapped.append((function, function.__code__))
        function.__code__ = new
    return swapped


def _restore(swapped: list[tuple[types.FunctionType, CodeType]]) -> None:
    for function, code in swapped:
        function.__code__ = code


@pytest.mark.parametrize("fn", rewrite_shapes.ALL, ids=lambda fn: fn.__name__)
def test_the_rewritten_code_stops_where_settrace_stops_and_returns_the_same(
    fn: Callable[[Box], object],
) -> None:
    expected, at = _settrace_stops(fn)
    got, stops = _rewritten_stops(fn)
    assert got == expected, f"{fn.__name__} returned {got!r} rewritten, {expected!r} traced"
    differ = next(
        (n for n, (a, b) in enumerate(zip(stops, at, strict=False)) if a != b),
        min(len(stops), len(at)),
    )
    assert stops == at, (
        f"{fn.__name__}: the rewritten code stopped at {len(stops)} switch points, settrace at "
        f"{len(at)}; they differ from the {differ + 1}th on"
    )
    assert len(at) > 5, f"{fn.__name__} reached only {len(at)} switch points: it tests little"


def test_a_loop_whose_jump_back_grows_past_one_byte_gets_an_extended_arg() -> None:
    code = rewrite_shapes.long_loop.__code__
    back = [i for i in dis.get_instructions(code) if i.opname == "JUMP_BACKWARD"]
    assert back and back[0].arg < 256, "the sample's loop no longer fits one byte before"
    new = instrument._rewrite(code, lambda args: None, cached=False)
    assert new is not None
    grown = [i for i in dis.get_instructions(new) if i.opname == "JUMP_BACKWARD"]
    assert grown[0].arg > 255, f"the rewritten jump back is {grown[0].arg} units: nothing grew"


def test_a_traceback_shows_the_learners_line_in_rewritten_code() -> None:
    def line_of_error(fn: Callable[[Box], object]) -> int:
        try:
            fn(Box())
        except IndexError as error:
            return traceback.extract_tb(error.__traceback__)[-1].lineno or 0
        raise AssertionError("no IndexError")

    expected = line_of_error(rewrite_shapes.raises_at_a_known_line)
    swapped = _swapped(lambda args: None)
    try:
        got = line_of_error(rewrite_shapes.raises_at_a_known_line)
    finally:
        _restore(swapped)
    assert got == expected, f"the traceback points at line {got}, not {expected}"


def _every_code(module: types.ModuleType) -> list[CodeType]:
    found: list[CodeType] = []
    todo = [module.__loader__.get_code(module.__name__)]  # type: ignore[union-attr]
    while todo:
        code = todo.pop()
        found.append(code)
        todo.extend(c for c in code.co_consts if isinstance(c, CodeType))
    return found


def _marker(args: object) -> None:
    """The hook the stdlib's code is rewritten for: a written call loads it."""


@pytest.mark.parametrize("name", ["threading", "queue", "json.decoder", "dis", "asyncio.locks"])
def test_every_instruction_keeps_its_position_its_handler_and_its_jump(name: str) -> None:
    # Each original instruction, found again in the rewritten code in the same order, must
    # have the same line and columns and the same handler at the same stack depth, and a
    # jump must land on the same instruction, or on the call written just before it.
    module = __import__(name, fromlist=["_"])
    checked = 0
    for code in _every_code(module):
        new = instrument._rewrite(code, _marker, cached=False)
        assert new is not None, f"{name}: {code.co_qualname} was not rewritten"
        old_ins = [i for i in dis.get_instructions(code) if i.opname != "EXTENDED_ARG"]
        new_ins, landings = _without_calls(new)
        where = f"{name}: {code.co_qualname}"
        assert [i.opname for i in new_ins] == [i.opname for i in old_ins], where
        moved = {o.offset: n.offset for o, n in zip(old_ins, new_ins, strict=True)}
        old_handlers, new_handlers = _handlers(code), _handlers(new)
        for o, n in zip(old_ins, new_ins, strict=True):
            assert n.positions == o.positions, f"{where} at {o.offset} ({o.opname})"
            handler, got = old_handlers.get(o.offset), new_handlers.get(n.offset)
            assert (handler is None) == (got is None), f"{where} at {o.offset} ({o.opname})"
            if handler is not None and got is not None:
                expected = moved[_resolved(code, handler[0])]
                assert (got[1:], _resolved(new, got[0])) == (handler[1:], expected), where
            if o.opcode in dis.hasjrel:
                target = moved[_resolved(code, o.argval)]
                assert n.argval == landings.get(target, target) or (
                    target not in landings and _resolved(new, n.argval) == target
                ), f"{where}: the jump at {o.offset} lands at {n.argval}, not {target}"
            checked += 1
    assert checked > 500, f"only {checked} instructions of {name} were checked"


def _without_calls(code: CodeType) -> tuple[list[dis.Instruction], dict[int, int]]:
    """The rewritten code's own instructions (no written call, no EXTENDED_ARG), and the
    offset of each instruction that has a call written before it -> where that call starts
    (a call's is written before its PRECALL and KW_NAMES)."""
    listing = list(dis.get_instructions(code))
    own: list[dis.Instruction] = []
    landings: dict[int, int] = {}
    n = 0
    while n < len(listing):
        ins = listing[n]
        after = n + 1
        while after < len(listing) and listing[after].opname == "EXTENDED_ARG":
            after += 1
        if ins.opname == "PUSH_NULL" and after < len(listing) and listing[after].argval is _marker:
            block = listing[n].offset
            while listing[n].opname != "POP_TOP":
                n += 1
            n += 1
            while listing[n].opname == "EXTENDED_ARG":
                n += 1
            landings[listing[n].offset] = block
            continue
        if ins.opname != "EXTENDED_ARG":
            own.append(ins)
        n += 1
    return own, landings


def _resolved(code: CodeType, offset: int) -> int:
    """The instruction a jump to ``offset`` runs first: past EXTENDED_ARG prefixes."""
    listing = list(dis.get_instructions(code))
    at = next(n for n, i in enumerate(listing) if i.offset == offset)
    while listing[at].opname == "EXTENDED_ARG":
        at += 1
    return listing[at].offset


def _handlers(code: CodeType) -> dict[int, tuple[int, int, bool]]:
    """Offset -> (handler, depth, lasti) of each instruction inside a try."""
    found: dict[int, tuple[int, int, bool]] = {}
    for entry in dis._parse_exception_table(code):  # type: ignore[attr-defined]
        for offset in range(entry.start, entry.end, 2):
            found.setdefault(offset, (entry.target, entry.depth, entry.lasti))
    return found


def test_explorations_find_the_same_bugs_the_same_way_with_either_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def reports() -> list[str]:
        found = []
        for scenario in BUGS:
            try:
                explore(
                    scenario.setup,
                    scenario.workers,
                    scenario.check,
                    modules=[scenario.module],
                    budget=250,
                    seed=3,
                    **scenario.extra,
                )
                found.append(f"{scenario.name}: passed")
            except ProbeFailure as failure:
                found.append(f"{scenario.name}: {failure}")
        return found

    rewritten = reports()
    monkeypatch.setenv("PROBE_TRACER", "settrace")
    traced = reports()
    for mine, theirs in zip(rewritten, traced, strict=True):
        assert mine == theirs, f"rewritten:\n{mine}\n\nsettrace:\n{theirs}"
    assert sum("passed" not in r for r in traced) >= len(BUGS) - 1, traced


def test_the_learners_own_code_is_back_after_a_run_whose_setup_raises() -> None:
    def broken_setup() -> Box:
        raise KeyError("no box")

    with pytest.raises(Exception, match="no box"):
        explore(broken_setup, [rewrite_shapes.loops], None, modules=[rewrite_shapes], budget=3)
    swapped = [
        f.__name__
        for f in instrument.learner_functions([rewrite_shapes])
        if instrument.is_rewritten(f.__code__)
    ]
    assert not swapped, f"still running rewritten code after the run: {swapped}"
