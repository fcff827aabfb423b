"""The deadlock verdict: a report only when no rank can ever move on, never while one may."""

from __future__ import annotations

from typing import Any

from plugins import mpi_deadlock

WORLD = "test1"


def send(peer: int, tag: int = 0, op: str = "send") -> dict[str, Any]:
    return {
        "kind": "send",
        "op": op,
        "comm": WORLD,
        "peer": peer,
        "tag": tag,
        "shown": f"{op}(dest={peer}, tag={tag})",
        "where": "kata.py:9",
    }


def recv(peer: int | None, tag: int | None = 0) -> dict[str, Any]:
    return {
        "kind": "recv",
        "op": "recv",
        "comm": WORLD,
        "peer": peer,
        "tag": tag,
        "shown": f"recv(source={peer}, tag={tag})",
        "where": "kata.py:12",
    }


def collective(op: str, members: list[int]) -> dict[str, Any]:
    return {
        "kind": "coll",
        "op": op,
        "comm": WORLD,
        "members": members,
        "shown": f"{op}()",
        "where": "kata.py:15",
    }


def blocked(call: dict[str, Any], pending: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"phase": "blocked", "test": "t", "call": call, "pending": pending or []}


def test_a_ring_of_sends_with_no_receive_is_a_deadlock() -> None:
    states = {r: blocked(send((r + 1) % 3)) for r in range(3)}
    report = mpi_deadlock.verdict(states)
    assert report is not None and "every rank sends first, and none receives" in report


def test_a_send_and_its_receive_are_no_deadlock_however_long_they_take() -> None:
    states = {0: blocked(send(1)), 1: blocked(recv(0))}
    assert mpi_deadlock.verdict(states) is None


def test_any_source_and_any_tag_match_any_sender() -> None:
    states = {0: blocked(send(1, tag=7)), 1: blocked(recv(None, None))}
    assert mpi_deadlock.verdict(states) is None


def test_a_posted_receive_matches_a_send_while_its_rank_is_blocked_elsewhere() -> None:
    states = {0: blocked(send(1), pending=[recv(1)]), 1: blocked(send(0), pending=[recv(0)])}
    assert mpi_deadlock.verdict(states) is None


def test_a_rank_running_python_code_may_still_send() -> None:
    states = {0: blocked(recv(1)), 1: {"phase": "running", "test": "t", "call": None}}
    assert mpi_deadlock.verdict(states) is None


def test_a_collective_every_member_entered_will_complete() -> None:
    states = {r: blocked(collective("allreduce", [0, 1, 2])) for r in range(3)}
    assert mpi_deadlock.verdict(states) is None


def test_different_collectives_on_the_same_communicator_never_complete() -> None:
    states = {0: blocked(collective("bcast", [0, 1])), 1: blocked(collective("barrier", [0, 1]))}
    report = mpi_deadlock.verdict(states)
    assert report is not None and "a collective (barrier, bcast) must be called" in report


def test_a_wait_on_a_request_made_outside_the_traced_communicator_is_never_judged() -> None:
    wait = {"kind": "wait", "op": "Wait", "ops": [], "untraced": True, "shown": "Wait()"}
    states = {0: blocked(wait), 1: blocked(recv(0))}
    assert mpi_deadlock.verdict(states) is None


def test_a_wait_on_a_send_nobody_receives_is_a_deadlock_named_by_its_request() -> None:
    wait = {
        "kind": "wait",
        "op": "Waitall",
        "ops": [send(1, op="isend")],
        "untraced": False,
        "shown": "Waitall(isend(dest=1, tag=0))",
        "where": "kata.py:20",
    }
    states = {0: blocked(wait, pending=[send(1, op="isend")]), 1: blocked(recv(0, tag=4))}
    report = mpi_deadlock.verdict(states)
    assert report is not None
    assert "rank 0 waits in Waitall(isend(dest=1, tag=0)) at kata.py:20" in report
    assert "rank 0's send (tag 0) and rank 1's receive (tag 4) do not match" in report


def test_a_send_to_proc_null_completes_on_its_own() -> None:
    states = {0: blocked(send(-1)), 1: blocked(recv(0))}
    assert mpi_deadlock.verdict(states) is None
