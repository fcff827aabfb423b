"""The bug/fix pairs that `python -m plugins.probe_compare` runs under each tool: the five
classic ones, and the `Condition` buffer again with two items per worker.

Each module holds `Broken` and `Fixed` (the setup for each version: a class built fresh per
schedule), the `WORKERS` that take that object, a `check` that raises `AssertionError` when an
invariant is broken, a `TITLE` and `MIN_PREEMPTIONS`, the fewest preemptions that break
`Broken` (reasoned out in the module's docstring).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import (
    check_then_act,
    condition_buffer,
    condition_buffer_two_each,
    lock_order,
    lost_update,
    three_preemptions,
)


@dataclass(frozen=True)
class Pair:
    """One bug/fix pair, read from its module."""

    name: str
    title: str
    module: types.ModuleType
    broken: Callable[[], Any]
    fixed: Callable[[], Any]
    workers: tuple[Callable[[Any], object], ...]
    check: Callable[[Any], None]
    min_preemptions: int

    def setup(self, variant: str) -> Callable[[], Any]:
        """The setup of the `broken` or `fixed` version."""
        if variant not in ("broken", "fixed"):
            raise ValueError(f"variant must be 'broken' or 'fixed', not {variant!r}")
        return self.broken if variant == "broken" else self.fixed


def _pair(module: types.ModuleType) -> Pair:
    return Pair(
        name=module.__name__.rsplit(".", 1)[-1],
        title=module.TITLE,
        module=module,
        broken=module.Broken,
        fixed=module.Fixed,
        workers=tuple(module.WORKERS),
        check=module.check,
        min_preemptions=module.MIN_PREEMPTIONS,
    )


PAIRS = tuple(
    _pair(m)
    for m in (
        lost_update,
        check_then_act,
        lock_order,
        condition_buffer,
        three_preemptions,
        condition_buffer_two_each,
    )
)
PAIRS_BY_NAME = {p.name: p for p in PAIRS}
