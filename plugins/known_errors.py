"""Classic concurrency errors explained: a failing kata test whose error is one Python raises for
a well-known mistake gets a section saying what the mistake is, in plain words.

`RuntimeError: cannot join thread before it is started` alone teaches nothing; "you joined a
Thread you never started" does. The error is found in the exception a test raised, its causes
(a probe failure chains the worker's own exception) and the members of an exception group
(a TaskGroup's), which the section also lists one by one with the line that raised each.

An exception that ends a thread during a kata test that fails anyway is shown the same way, in
one line with the learner's line, instead of pytest's 14-line warning per thread (the untouched
stub of a threads kata would print one for every test). In a test that passes, pytest reports it
as before.
"""

from __future__ import annotations

import re
import threading
import traceback
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import pytest

from plugins import impl

SECTION = "what this error usually means"
THREADS_SECTION = "exceptions that ended other threads"
MOST_MEMBERS = 5

thread_errors_key = pytest.StashKey[list[threading.ExceptHookArgs]]()


@dataclass(frozen=True)
class Known:
    kinds: tuple[str, ...]  # exception class names (the class or any base)
    pattern: str  # searched in str(exception)
    meaning: str


KNOWN = (
    Known(
        ("RuntimeError",),
        r"cannot join thread before it is started",
        "join() was called on a Thread that was never started: call start() on every thread "
        "first, then join() each (and check that start() is really reached).",
    ),
    Known(
        ("RuntimeError",),
        r"threads can only be started once",
        "a Thread object runs once: create a new Thread for each run instead of starting the "
        "same one again.",
    ),
    Known(
        ("RuntimeError",),
        r"cannot join current thread",
        "a thread tried to join() itself, which would wait for ever: join other threads only.",
    ),
    Known(
        ("RuntimeError", "ValueError"),
        r"release unlocked lock|lock released too many times|Semaphore released too many times|"
        r"cannot release un-acquired lock",
        "a lock or semaphore was released more often than it was acquired: release only what "
        "you acquired, once; `with lock:` pairs them for you, even when the block raises.",
    ),
    Known(
        ("TypeError",),
        r"object is not callable",
        "something that is not a function was called. The classic cause: calling the function "
        "yourself where the function itself was wanted (`Thread(target=f(x))`, `submit(f(x))`, "
        "`call_later(1, f())`) passes its *result*; pass `f` and its arguments separately "
        "(`target=f, args=(x,)`, `submit(f, x)`).",
    ),
    Known(
        ("PicklingError", "AttributeError", "TypeError"),
        r"[Cc]an't pickle|[Cc]an't get local object|cannot pickle",
        "something sent to another process could not be pickled. A process receives functions "
        "by name: define them at the top level of the module (not a lambda, not a function "
        "nested in another), and send plain data, not locks, sockets, open files or generators.",
    ),
    Known(
        ("BrokenProcessPool",),
        r"",
        "a worker process of the pool died abruptly (killed, os._exit, a crash), so the pool "
        "refuses more work: find what ended that process; an exception in the worker does not "
        "break the pool, its death does.",
    ),
    Known(
        ("RuntimeError",),
        r"cannot be called from a running event loop",
        "asyncio.run() (or run_until_complete) was called inside a coroutine, where a loop is "
        "already running: `await` the coroutine instead.",
    ),
    Known(
        ("RuntimeError",),
        r"no running event loop",
        "get_running_loop(), create_task() or similar was called outside a coroutine: they need "
        "the loop that runs the current coroutine, so call them from inside one.",
    ),
    Known(
        ("RuntimeError",),
        r"Event loop is closed",
        "the event loop was used after it was closed: keep all work for a loop inside the "
        "asyncio.run() call that owns it.",
    ),
    Known(
        ("RuntimeError",),
        r"attached to a different loop|got Future .* attached to a different loop",
        "an asyncio object (a Future, Queue, Lock or Event) made under one event loop was used "
        "under another: create them inside the coroutine that asyncio.run() runs.",
    ),
    Known(
        ("BufferError",),
        r"exported pointers exist",
        "a shared-memory block (or mmap) was closed while a NumPy array or memoryview still used "
        "its memory: drop every view of it first (`del view`, and return `view.copy()`, never "
        "the view itself), then close() the block.",
    ),
    Known(
        ("BrokenBarrierError",),
        r"",
        "the barrier was broken: a party timed out, was aborted or raised while the others "
        "waited, so every waiter gave up. Check that exactly `parties` threads reach wait().",
    ),
    Known(
        ("Empty",),
        r"",
        "a queue get() with a timeout (or get_nowait()) found the queue empty: nobody put an "
        "item in time, or the consumer asked once more than the producers gave.",
    ),
)


def _names(error: BaseException) -> set[str]:
    return {kind.__name__ for kind in type(error).__mro__}


def meaning(error: BaseException) -> str | None:
    for known in KNOWN:
        if _names(error) & set(known.kinds) and re.search(known.pattern, str(error)):
            return known.meaning
    return None


def related(error: BaseException) -> Iterator[BaseException]:
    """The error, its causes and contexts, and the members of exception groups, depth first."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(reversed(current.exceptions))
        for linked in (current.__context__, current.__cause__):
            if linked is not None:
                pending.append(linked)


def _text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {last.filename.rsplit('/', 1)[-1]}:{last.lineno} `{(last.line or '').strip()}`)"


def members(group: BaseExceptionGroup[BaseException]) -> str:
    """Each leaf of an exception group on a line of its own, with the line that raised it."""
    leaves = [e for e in related(group) if not isinstance(e, BaseExceptionGroup)]
    lines = [f"  - {_text(e)}{_where(e)}" for e in leaves[:MOST_MEMBERS]]
    if len(leaves) > MOST_MEMBERS:
        lines.append(f"  - ... and {len(leaves) - MOST_MEMBERS} more")
    return (
        f"{type(group).__name__} is several errors raised together (a TaskGroup, gather or "
        f"except* collects them); each one:\n" + "\n".join(lines)
    )


def explanation(error: BaseException) -> str:
    parts = []
    group = next((e for e in related(error) if isinstance(e, BaseExceptionGroup)), None)
    if group is not None:
        parts.append(members(group))
    for candidate in related(error):
        found = meaning(candidate)
        if found:
            parts.append(f"{_text(candidate)}\n{found}")
            break
    return "\n\n".join(parts)


# -- run-time hooks --------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Collect what ends a thread while a kata test runs; hand it to pytest if the test passes."""
    if impl.kata_of(item) is None:
        return (yield)
    caught: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook
    threading.excepthook = caught.append
    try:
        result = yield
    except BaseException:
        item.stash[thread_errors_key] = caught  # shown in the failure, one line each
        raise
    finally:
        threading.excepthook = previous
    for args in caught:
        previous(args)
    return result


def _thread_lines(caught: list[threading.ExceptHookArgs]) -> str:
    lines = []
    for args in caught:
        name = args.thread.name if args.thread is not None else "?"
        error = args.exc_value
        if error is None:
            continue
        found = meaning(error)
        lines.append(
            f"thread {name} raised {_text(error)}{_where(error)}"
            + (f"\n  {found}" if found else "")
        )
    return "\n".join(lines)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and call.excinfo is not None and impl.kata_of(item) is not None:
        text = explanation(call.excinfo.value)
        if text:
            report.sections.append((SECTION, text))
        threads = _thread_lines(item.stash.get(thread_errors_key, []))
        if threads and call.when == "call":
            report.sections.append((THREADS_SECTION, threads))
    return report
