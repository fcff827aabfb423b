"""The words a report uses for the instruction a worker was preempted before."""

from __future__ import annotations

import dis

from plugins.probe.tracing import describe


def _calls_and_reads(self: object, items: list[int]) -> object:
    print(len(items))
    self.items.append(1)  # type: ignore[attr-defined]
    return GLOBAL_TOTAL


GLOBAL_TOTAL = 0


def test_no_description_names_the_null_that_dis_shows_beside_a_called_name() -> None:
    # dis writes "NULL + len" (3.11, 3.12), "NULL|self + append" (3.12) or "len + NULL" (3.13);
    # a report once read "preempted just before it reads NULL".
    described = [describe(i) for i in dis.get_instructions(_calls_and_reads)]
    assert not [d for d in described if "NULL" in d], described
    for words in (
        "reads print",
        "reads len",
        "reads .items",
        "reads .append",
        "reads GLOBAL_TOTAL",
    ):
        assert words in described, f"{words!r} missing from {described}"
