"""Deadlock verdicts for an MPI job: given every rank's state, can any rank ever move on?

A rank that is running Python code may yet send or receive anything, so there is no verdict
while one is. When every rank is blocked in an MPI call (or has left the test) and no rank's
call can be matched by what the others are blocked in or have posted, nothing can ever change:
that is a deadlock, reported as who waits for what, and where. The verdict errs towards "may
move on" (a wait on requests it cannot see, a collective every member has entered): a slow
test is the budget's to judge, a false alarm would be ours.

The states come from plugins/mpi_trace.py through plugins/mpi_state.py; this module is pure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from plugins import mpi_state

State = Mapping[str, Any]
Offer = Mapping[str, Any]

WHY_BUFFERED = (
    "A send may wait until its message is received (the MPI standard allows it, and the kata "
    "runner makes every send do so); code that works only because a small message was "
    "buffered fails as soon as the message is large."
)
WHY_RECEIVES = (
    "every rank waits to receive and none sends: a receive waits until a matching message "
    "arrives, so someone has to send first."
)
WHY_COLLECTIVE = (
    "a collective ({ops}) must be called by every rank of its communicator, in the same order; "
    "{missing} never called it."
)
WHY_LEFT = (
    "{ranks} left this test, so nothing more will come from {them}; the others still wait "
    "for a message or a collective from {them}."
)
WHY_TAGS = (
    "rank {sender}'s send (tag {sent}) and rank {receiver}'s receive (tag {wanted}) do not "
    "match: a receive only takes a message with the tag it names (or MPI.ANY_TAG). Either a "
    "tag is wrong, or rank {receiver} waits for a message that rank {sender} would send only "
    "after this one is received."
)
WHY_OTHER = (
    "none of these calls can be matched by another rank's call: a send needs a receive on the "
    "same communicator that names its source (or ANY_SOURCE) and its tag (or ANY_TAG)."
)


def _own(state: State) -> list[Offer]:
    """What a blocked rank's own call offers: the sends, receives or collective it waits on."""
    call = state.get("call") or {}
    kind = call.get("kind")
    if kind == "sendrecv":
        return list(call["parts"])
    if kind == "wait":
        return list(call["ops"])
    return [call] if kind in ("send", "recv", "coll") else []


def _all(state: State) -> Iterator[Offer]:
    """Its own call's offers and every operation it posted and has not completed."""
    yield from _own(state)
    yield from state.get("pending", [])


def _blocked(state: State) -> bool:
    return state.get("phase") in (mpi_state.BLOCKED, mpi_state.FINISHED)


def _received_by(send: Offer, sender: int, states: Mapping[int, State]) -> bool:
    receiver = states.get(send["peer"])
    return receiver is not None and any(
        q["kind"] == "recv"
        and q["comm"] == send["comm"]
        and q["peer"] in (sender, None)
        and q["tag"] in (send["tag"], None)
        for q in _all(receiver)
    )


def _sent_to(recv: Offer, receiver: int, states: Mapping[int, State]) -> bool:
    return any(
        q["kind"] == "send"
        and q["comm"] == recv["comm"]
        and q["peer"] == receiver
        and recv["tag"] in (q["tag"], None)
        for rank, state in states.items()
        if rank != receiver and recv["peer"] in (rank, None)
        for q in _all(state)
    )


def _complete(collective: Offer, states: Mapping[int, State]) -> bool:
    for member in collective["members"]:
        call = (states.get(member) or {}).get("call") or {}
        if call.get("kind") != "coll" or call["comm"] != collective["comm"]:
            return False
        if call["op"] != collective["op"]:
            return False
    return True


def can_move_on(rank: int, states: Mapping[int, State]) -> bool:
    state = states[rank]
    if state.get("phase") == mpi_state.FINISHED:
        return False
    call = state.get("call") or {}
    if call.get("untraced") or call.get("kind") not in ("send", "recv", "coll", "sendrecv", "wait"):
        return True  # a call we cannot see into may complete
    for offer in _own(state):
        if offer["kind"] == "send" and (offer["peer"] == -1 or _received_by(offer, rank, states)):
            return True
        if offer["kind"] == "recv" and (offer["peer"] == -1 or _sent_to(offer, rank, states)):
            return True
        if offer["kind"] == "coll" and _complete(offer, states):
            return True
    return False


def verdict(states: Mapping[int, State]) -> str | None:
    """A report when no rank can ever move on; None while one may."""
    if not states or not all(_blocked(state) for state in states.values()):
        return None
    if any(can_move_on(rank, states) for rank in states):
        return None
    return report(states)


# -- the report ------------------------------------------------------------------------------


def _ranks(ranks: list[int]) -> str:
    if len(ranks) == 1:
        return f"rank {ranks[0]}"
    return "ranks " + ", ".join(str(r) for r in ranks[:-1]) + f" and {ranks[-1]}"


def describe(state: State, plural: bool = False) -> str:
    """What a rank (or, `plural`, each of several ranks alike) is doing, after "rank N"."""
    call = state.get("call") or {}
    if state.get("phase") == mpi_state.FINISHED:
        return "have finished all their tests" if plural else "has finished all its tests"
    if call.get("runner"):
        return (
            "have finished this test and wait at the start of the next one"
            if plural
            else "has finished this test and waits at the start of the next one"
        )
    if state.get("phase") == mpi_state.RUNNING:
        return "are running Python code" if plural else "is running Python code"
    verb = "wait" if plural else "waits"
    return f"{verb} in {call.get('shown', '?')} at {call.get('where', '?')}"


def _left(states: Mapping[int, State]) -> list[int]:
    return [
        rank
        for rank, state in states.items()
        if state.get("phase") == mpi_state.FINISHED or (state.get("call") or {}).get("runner")
    ]


def _tag_mismatch(states: Mapping[int, State]) -> str | None:
    for sender, state in states.items():
        for send in _own(state):
            if send["kind"] != "send" or send["peer"] not in states:
                continue
            for recv in _all(states[send["peer"]]):
                if (
                    recv["kind"] == "recv"
                    and recv["comm"] == send["comm"]
                    and recv["peer"] in (sender, None)
                    and recv["tag"] not in (send["tag"], None)
                ):
                    return WHY_TAGS.format(
                        sender=sender, sent=send["tag"], receiver=send["peer"], wanted=recv["tag"]
                    )
    return None


def explanation(states: Mapping[int, State]) -> str:
    left = _left(states)
    if left:
        them = "it" if len(left) == 1 else "them"
        return WHY_LEFT.format(ranks=_ranks(left).capitalize(), them=them)
    mismatch = _tag_mismatch(states)
    if mismatch:
        return mismatch
    kinds = {offer["kind"] for state in states.values() for offer in _own(state)}
    collectives = sorted(
        {
            offer["op"]
            for state in states.values()
            for offer in _own(state)
            if offer["kind"] == "coll"
        }
    )
    if collectives:
        missing = [
            rank
            for rank, state in states.items()
            if not any(o["kind"] == "coll" and o["op"] in collectives for o in _own(state))
        ]
        return WHY_COLLECTIVE.format(
            ops=", ".join(collectives), missing=_ranks(missing) if missing else "some rank"
        )
    if kinds == {"send"}:
        if len(states) == 2:
            return "each waits for the other to receive first. " + WHY_BUFFERED
        return "every rank sends first, and none receives. " + WHY_BUFFERED
    if kinds == {"recv"}:
        return WHY_RECEIVES
    return WHY_OTHER


def report(states: Mapping[int, State]) -> str:
    """One line per group of ranks doing the same thing, then why none can move on."""
    groups: dict[str, list[int]] = {}
    for rank in sorted(states):
        groups.setdefault(describe(states[rank]), []).append(rank)
    lines = []
    for line, ranks in groups.items():
        shown = line if len(ranks) == 1 else describe(states[ranks[0]], plural=True)
        lines.append(f"{_ranks(ranks)} {shown}")
    return (
        "deadlock: every rank is blocked and none can move on.\n"
        + ";\n".join(lines)
        + "\n— "
        + explanation(states)
    )
