"""``Failure``: what one schedule found wrong, in the words of the learner-facing report."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Failure:
    kind: str  # invariant | exception | deadlock | lock-order | livelock | misuse | uncontrolled
    headline: str
    details: list[str] = field(default_factory=list)
    signature: str = ""
    # A deadlock's wait-for graph, for a drawing: (worker, what it holds, what it waits for).
    graph: list[tuple[str, str, str]] = field(default_factory=list, compare=False)
    # The worker's own exception, chained to the ProbeFailure so tools that follow __cause__
    # (the progress plugin's "not implemented yet") see what the learner's code raised.
    error: BaseException | None = field(default=None, compare=False)

    def same_as(self, other: Failure | None) -> bool:
        return other is not None and (self.kind, self.signature) == (other.kind, other.signature)
