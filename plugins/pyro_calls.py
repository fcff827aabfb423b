"""Remote calls in flight, recorded per process, so that a hang can be told as a chain of calls.

Every Pyro4 call a process makes through a proxy is noted, while it runs, in a small JSON file
of that process (one file per process, in the folder named by KATA_PYRO_CALLS): who is calling
(the process's server name, or "the test"), which object (`PYRO:obj@host:port`, or the name it
was looked up by) and which method, since when. When a test's remote call does not return,
`chain(folder)` reads every file and tells the story: the test waits for ring.1.forward(); ring.1
waits for ring.2.forward(); ...; and who is waiting on whom in a circle.

A plain library (no pytest): `plugins/pyro_serve.py` installs it in each server process, and
`plugins/pyro_names.py` in the test process.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

FOLDER_VARIABLE = "KATA_PYRO_CALLS"


class CallLog:
    """This process's remote calls in flight, mirrored to its file after every change."""

    def __init__(self, folder: Path, who: str) -> None:
        self.path = folder / f"{os.getpid()}.json"
        self.who = who
        self.lock = threading.Lock()
        self.calls: dict[int, dict[str, Any]] = {}
        self.next_id = 0

    def begin(self, target: str, method: str) -> int:
        with self.lock:
            self.next_id += 1
            self.calls[self.next_id] = {
                "target": target,
                "method": method,
                "since": time.time(),
                "thread": threading.current_thread().name,
            }
            self._write()
            return self.next_id

    def end(self, call: int) -> None:
        with self.lock:
            self.calls.pop(call, None)
            self._write()

    def _write(self) -> None:
        state = {"pid": os.getpid(), "who": self.who, "calls": list(self.calls.values())}
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(self.path)  # readers never see half a file


def install(who: str) -> CallLog | None:
    """Record every proxy call of this process (where KATA_PYRO_CALLS names a folder)."""
    folder = os.environ.get(FOLDER_VARIABLE)
    if not folder:
        return None
    import Pyro4.core

    proxy = Pyro4.core.Proxy
    if getattr(proxy._pyroInvoke, "kata_recorded", False):
        return None
    log = CallLog(Path(folder), who)
    invoke, connect = proxy._pyroInvoke, proxy._Proxy__pyroCreateConnection

    def recorded_invoke(
        self: Any, methodname: str, vargs: Any, kwargs: Any, flags: int = 0, objectId: Any = None
    ) -> Any:
        call = log.begin(str(self._pyroUri), f"{methodname}()")
        try:
            return invoke(self, methodname, vargs, kwargs, flags, objectId)
        finally:
            log.end(call)

    def recorded_connect(self: Any, *args: Any, **kwargs: Any) -> Any:
        # Connecting includes a handshake that the server must answer: a busy single-threaded
        # server leaves its caller waiting here, before any method is called.
        call = log.begin(str(self._pyroUri), "connection")
        try:
            return connect(self, *args, **kwargs)
        finally:
            log.end(call)

    recorded_invoke.kata_recorded = True  # type: ignore[attr-defined]
    proxy._pyroInvoke = recorded_invoke
    proxy._Proxy__pyroCreateConnection = recorded_connect
    return log


def read_all(folder: Path) -> list[dict[str, Any]]:
    """Every process's state, of those still running (a dead one's calls are over)."""
    states = []
    for path in sorted(folder.glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(path.read_text())
            if Path(f"/proc/{state['pid']}").exists():
                states.append(state)
    return states


def chain(folder: Path, names: dict[str, str], since: float = 0.0) -> str:
    """The calls in flight that began at or after `since` (a time.time()), told as sentences.
    `names` maps object URIs to the names they were registered under."""
    states = read_all(folder)
    lines = []
    waiting_on: dict[str, str] = {}
    now = time.time()
    for state in states:
        for call in state["calls"]:
            if call["since"] < since:
                continue  # stuck since an earlier test: not this failure's story
            target = names.get(call["target"], call["target"])
            who = state["who"]
            lines.append(
                f"- {who} waits for {_what(target, call['method'])} "
                f"(for {now - call['since']:.1f} s, in its thread {call['thread']})"
            )
            waiting_on[who] = target
    if not lines:
        return ""
    circle = _circle(waiting_on)
    text = "Remote calls still in flight:\n" + "\n".join(lines)
    if circle:
        text += (
            "\n" + " -> ".join([*circle, circle[0]]) + ": each of these waits for the next, in "
            "a circle, so none of the calls can ever return. A server that handles one call "
            "at a time (Pyro's multiplex server) cannot take a call back into itself while "
            "its own outgoing call is still running: use the thread server "
            "(Pyro4.config.SERVERTYPE = 'thread'), or a oneway call where no answer is needed."
        )
    return text


def _what(target: str, method: str) -> str:
    if method == "connection":
        return f"{target} to accept its connection"
    return f"{target}.{method}"


def _circle(waiting_on: dict[str, str]) -> list[str]:
    for start in waiting_on:
        seen = [start]
        current = waiting_on.get(start)
        while current is not None and current not in seen:
            seen.append(current)
            current = waiting_on.get(current)
        if current is not None and current == start:
            return seen
    return []
