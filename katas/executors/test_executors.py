"""Kata `executors`: thread and process pools from concurrent.futures, and a two-stage crawler."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import threading
import time
import urllib.error
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from executors import (
    MEETING_SECONDS,
    completion_order,
    cpu_map,
    crawl,
    first_result,
    meet,
    run_bounded,
    whoami,
)

# How long a blocked task waits for the test to release it before giving up by itself. It is
# only ever reached by code that waits for a task it should not wait for.
BLOCK_SECONDS = 3.0
# Generous bounds on "returned at once": a right answer returns within milliseconds, a wrong
# one waits for BLOCK_SECONDS or for a 2 s page, so the verdict never depends on machine load.
AT_ONCE_SECONDS = 1.5
# A free worker thread picks up a queued task within milliseconds; if none has after this long,
# none is coming.
EXTRA_WORKER_SECONDS = 0.3
# Tasks that finish one after another finish this far apart.
STEP_SECONDS = 0.1
# Each page takes this long to serve, so pages fetched at the same time overlap for sure.
PAGE_SECONDS = 0.15
PAGES = 6


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    yield
    left = multiprocessing.active_children()
    for child in left:
        child.kill()
        child.join(5)
    assert not left, (
        f"{len(left)} worker process(es) were still alive after the call returned: shut the "
        f"executor down (leave its with-block) before returning"
    )


class RecordingExecutor(ThreadPoolExecutor):
    """A thread pool that sets `finished[item]` once the future of `item` is done."""

    def __init__(self, max_workers: int) -> None:
        super().__init__(max_workers=max_workers)
        self.finished: dict[Any, threading.Event] = {}

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        event = self.finished.setdefault(args[0] if args else None, threading.Event())
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(lambda _: event.set())
        return future


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Blocked tasks wait for this event; it is always set at the end so no thread lingers."""
    event = threading.Event()
    yield event
    event.set()


def _must_raise(error_type: type[BaseException], call: Callable[[], Any], explanation: str) -> None:
    __tracebackhide__ = True
    other: Exception | None = None
    try:
        returned = call()
    except error_type:
        return
    except NotImplementedError:
        raise  # not written yet: the traceback points at the TODO
    except Exception as error:  # reported below, outside this block, without its traceback
        other = error
    if other is not None:
        pytest.fail(
            f"raised {type(other).__name__}({other}) instead of {error_type.__name__}: "
            f"{explanation}"
        )
    pytest.fail(f"returned {returned!r} instead of raising {error_type.__name__}: {explanation}")


# -- completion_order -------------------------------------------------------------------------


@pytest.mark.clause(1)
def test_completion_order_returns_results_in_the_order_the_tasks_finish() -> None:
    executor = RecordingExecutor(max_workers=4)
    count = 4

    def finish_after_the_next(index: int) -> int:
        # Task i waits until task i+1 is done, so the tasks finish last-first.
        if index + 1 < count:
            executor.finished.setdefault(index + 1, threading.Event()).wait(BLOCK_SECONDS)
        return index

    with executor:
        results = completion_order(executor, finish_after_the_next, range(count), timeout=10)
    assert results == [3, 2, 1, 0], (
        f"the tasks finished in the order 3, 2, 1, 0 but the results came back as {results}: "
        f"collect them with as_completed(), not in the order you submitted them"
    )


@pytest.mark.clause(2)
def test_completion_order_raises_the_exception_of_a_failing_task() -> None:
    with ThreadPoolExecutor(max_workers=2) as executor:
        _must_raise(
            ZeroDivisionError,
            lambda: completion_order(executor, lambda n: 1 / n, [1, 0, 2], timeout=10),
            "the task for 0 raised ZeroDivisionError and the caller never heard of it; a "
            "future keeps its task's exception until you call result(), which raises it",
        )


@pytest.mark.clause(3)
def test_completion_order_gives_up_after_its_timeout(release: threading.Event) -> None:
    with ThreadPoolExecutor(max_workers=2) as executor:
        started = time.monotonic()
        try:
            _must_raise(
                TimeoutError,
                lambda: completion_order(executor, lambda _: release.wait(BLOCK_SECONDS), [1], 0.2),
                "a task that never finishes was waited for; pass timeout= to as_completed",
            )
        finally:
            release.set()
        waited = time.monotonic() - started
    assert waited < AT_ONCE_SECONDS, (
        f"completion_order raised TimeoutError only after {waited:.1f} s, when the blocked task "
        f"had given up by itself, although its timeout was 0.2 s: give up at the deadline "
        f"(as_completed(futures, timeout=timeout)), not after waiting for every task"
    )


@pytest.mark.clause(3)
def test_completion_order_has_one_deadline_for_all_the_tasks_not_one_per_task(
    release: threading.Event,
) -> None:
    count = 8
    timeout = 3 * STEP_SECONDS

    # Task i finishes (i + 1) steps after the call: each one a step after the one before, the
    # last one long after the timeout of three steps.
    def finish_one_step_after_the_previous(index: int) -> int:
        release.wait((index + 1) * STEP_SECONDS)
        return index

    with ThreadPoolExecutor(max_workers=count) as executor:
        started = time.monotonic()
        try:
            _must_raise(
                TimeoutError,
                lambda: completion_order(
                    executor, finish_one_step_after_the_previous, range(count), timeout
                ),
                f"the {count} tasks finished {STEP_SECONDS} s apart, the last one "
                f"{count * STEP_SECONDS:.1f} s after the call, long past the {timeout:.1f} s "
                f"timeout: the timeout was counted afresh for each task. It is one deadline "
                f"for the whole call: as_completed(futures, timeout=timeout) counts from the "
                f"moment you call it",
            )
            waited = time.monotonic() - started
        finally:
            release.set()
    assert waited < (count - 0.5) * STEP_SECONDS, (
        f"completion_order raised TimeoutError only after {waited:.2f} s, when the tasks were "
        f"about done, although its timeout was {timeout:.1f} s: it must give up at the deadline, "
        f"not check the clock after collecting every result"
    )


# -- first_result -----------------------------------------------------------------------------


@pytest.mark.clause(4)
def test_first_result_returns_the_first_finished_result_without_waiting_for_the_rest(
    release: threading.Event,
) -> None:
    def task(name: str) -> str:
        if name == "slow":
            release.wait(BLOCK_SECONDS)
        return name

    with ThreadPoolExecutor(max_workers=2) as executor:
        started = time.monotonic()
        try:
            result = first_result(executor, task, ["slow", "quick"], timeout=10)
            waited = time.monotonic() - started
        finally:
            release.set()
    assert not isinstance(result, Future), (
        f"first_result returned the future {result!r} instead of its value: call result() on "
        f"the done future"
    )
    assert result == "quick", f"first_result returned {result!r}, but 'quick' finished first"
    assert waited < AT_ONCE_SECONDS, (
        f"first_result took {waited:.1f} s: it waited for the slow task too; "
        f"wait(..., return_when=FIRST_COMPLETED) returns as soon as one task is done"
    )


@pytest.mark.clause(5)
def test_first_result_cancels_the_tasks_that_have_not_started(release: threading.Event) -> None:
    ran: list[str] = []

    def task(name: str) -> str:
        ran.append(name)
        if name == "blocker":
            release.wait(BLOCK_SECONDS)
        return name

    # One worker: "quick" runs and finishes, "blocker" then holds the worker, so the two
    # queued tasks cannot have started when first_result returns.
    with ThreadPoolExecutor(max_workers=1) as executor:
        try:
            result = first_result(executor, task, ["quick", "blocker", "queued-1", "queued-2"], 10)
        finally:
            release.set()
    assert result == "quick", f"first_result returned {result!r}, but 'quick' finished first"
    late = [name for name in ran if name.startswith("queued")]
    assert not late, (
        f"{late} ran after first_result had its answer: cancel() every future that is not "
        f"done, so tasks still waiting in the queue never start"
    )


@pytest.mark.clause(6)
def test_first_result_gives_up_after_its_timeout(release: threading.Event) -> None:
    with ThreadPoolExecutor(max_workers=2) as executor:
        started = time.monotonic()
        try:
            _must_raise(
                TimeoutError,
                lambda: first_result(executor, lambda _: release.wait(BLOCK_SECONDS), [1, 2], 0.2),
                "no task finished within the 0.2 s timeout; pass timeout= to wait(), and when "
                "it returns an empty `done` set raise TimeoutError yourself (wait() itself "
                "raises nothing, and next(iter(done)) on an empty set raises StopIteration)",
            )
        finally:
            release.set()
        waited = time.monotonic() - started
    assert waited < AT_ONCE_SECONDS, (
        f"first_result raised TimeoutError only after {waited:.1f} s, when the blocked tasks "
        f"had given up by themselves, although its timeout was 0.2 s: pass timeout= to wait()"
    )


@pytest.mark.clause(7)
def test_first_result_cancels_the_queued_tasks_when_it_times_out(release: threading.Event) -> None:
    ran: list[str] = []

    def task(name: str) -> str:
        ran.append(name)
        release.wait(BLOCK_SECONDS)
        return name

    # One worker, held by the blocker until the test releases it, after first_result gave up.
    with ThreadPoolExecutor(max_workers=1) as executor:
        try:
            _must_raise(
                TimeoutError,
                lambda: first_result(executor, task, ["blocker", "queued-1", "queued-2"], 0.2),
                "no task finished within the 0.2 s timeout",
            )
        finally:
            release.set()
    late = [name for name in ran if name.startswith("queued")]
    assert not late, (
        f"{late} ran after first_result had timed out: cancel() every future that is not "
        f"done *before* raising TimeoutError, or the queued tasks still run for nobody"
    )


# -- run_bounded ------------------------------------------------------------------------------


@dataclass
class Gauge:
    """Counts the tasks inside `task` at once, under a lock."""

    limit: int
    inside: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    full: threading.Event = field(default_factory=threading.Event)
    over: threading.Event = field(default_factory=threading.Event)


@pytest.mark.clause(8)
def test_run_bounded_runs_exactly_max_workers_tasks_at_once(release: threading.Event) -> None:
    gauge = Gauge(limit=3)

    def task(number: int) -> int:
        with gauge.lock:
            gauge.inside += 1
            gauge.peak = max(gauge.peak, gauge.inside)
            if gauge.inside >= gauge.limit:
                gauge.full.set()
            if gauge.inside > gauge.limit:
                gauge.over.set()
        release.wait(BLOCK_SECONDS)
        with gauge.lock:
            gauge.inside -= 1
        return number * 10

    raised: list[BaseException] = []

    def run() -> None:
        try:
            run_bounded(task, range(9), 3)
        except BaseException as error:  # handed to the test's thread below
            raised.append(error)
            gauge.full.set()

    runner = threading.Thread(target=run)
    runner.start()
    try:
        full = gauge.full.wait(BLOCK_SECONDS - 1)
        over = gauge.over.wait(EXTRA_WORKER_SECONDS)
    finally:
        release.set()
        runner.join(BLOCK_SECONDS * 4)
    if raised:
        raise raised[0]
    assert full, (
        f"with max_workers=3 and 9 blocked tasks, only {gauge.peak} ran at the same time: "
        f"the executor must have 3 worker threads"
    )
    assert not over, (
        f"{gauge.peak} tasks ran at the same time although max_workers=3: pass max_workers= "
        f"to ThreadPoolExecutor (its default is min(32, cores + 4))"
    )


@pytest.mark.clause(9)
def test_run_bounded_returns_a_list_in_the_order_of_the_items() -> None:
    # Item i takes (4 - i) steps, so the tasks finish in the reverse order of the items.
    def reversed_finish(number: int) -> int:
        time.sleep((4 - number) * STEP_SECONDS / 2)
        return number * 10

    results = run_bounded(reversed_finish, range(4), 4)
    assert isinstance(results, list), (
        f"run_bounded returned {results!r}, not a list: executor.map gives an iterator; return "
        f"list(executor.map(...)), made inside the with-block"
    )
    assert results == [0, 10, 20, 30], (
        f"run_bounded returned {results} for items 0, 1, 2, 3 that finished last-first: result "
        f"i must be function(items[i]), whatever order the tasks finish in; executor.map keeps "
        f"the order of the items (as_completed does not)"
    )


# -- cpu_map ----------------------------------------------------------------------------------


@pytest.mark.clause(10)
def test_cpu_map_computes_in_worker_processes_and_keeps_the_order() -> None:
    results = cpu_map(whoami, range(6), max_workers=3)
    assert isinstance(results, list), f"cpu_map returned {results!r}, not a list"
    squares = [square for _, square in results]
    assert squares == [n * n for n in range(6)], f"cpu_map(whoami, range(6)) gave squares {squares}"
    assert os.getpid() not in {pid for pid, _ in results}, (
        "some items were computed in the calling process: threads cannot run Python code on "
        "two cores at once; use a ProcessPoolExecutor"
    )


@pytest.mark.clause(11)
def test_cpu_map_runs_max_workers_items_at_the_same_time(tmp_path: Path) -> None:
    tasks = [(value, str(tmp_path), 3) for value in range(3)]
    met = cpu_map(meet, tasks, max_workers=3)
    assert met == [1, 1, 1], (
        f"three items that wait for each other gave {met} (1 = met the other two within "
        f"{MEETING_SECONDS} s): with max_workers=3 they must all run at the same time; pass "
        f"max_workers=max_workers to the ProcessPoolExecutor (its own default is one process "
        f"per core, {os.cpu_count()} here)"
    )


@pytest.mark.clause(11)
def test_cpu_map_runs_two_items_at_the_same_time_by_default(tmp_path: Path) -> None:
    met = cpu_map(meet, [(0, str(tmp_path), 2), (1, str(tmp_path), 2)])
    assert met == [1, 1], (
        f"two items that wait for each other did not meet within {MEETING_SECONDS} s: with the "
        f"default max_workers=2 they never ran at the same time"
    )


@pytest.mark.clause(12)
def test_cpu_map_refuses_a_lambda_with_a_pickling_error() -> None:
    try:
        returned = cpu_map(lambda n: n + 1, [1, 2])
    except (pickle.PicklingError, AttributeError):
        return  # pickle's refusal: "Can't pickle local object ..." (AttributeError on 3.11)
    pytest.fail(
        f"cpu_map ran a lambda and returned {returned}: a lambda has no importable name, so it "
        f"cannot be sent to a worker process; only a ProcessPoolExecutor notices, a thread "
        f"pool runs it in this process"
    )


# -- crawl ------------------------------------------------------------------------------------


@dataclass
class Site:
    """A local web site of PAGES pages that link to each other, and what its server saw."""

    base: str
    hits: Counter[str] = field(default_factory=Counter)
    inside: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # How long each page number takes to serve, where it differs from PAGE_SECONDS.
    delays: dict[int, float] = field(default_factory=dict)
    # Set when the test ends: a page still being served stops waiting at once.
    closing: threading.Event = field(default_factory=threading.Event)

    def url(self, number: int) -> str:
        return f"{self.base}/page/{number}"

    def links_of(self, number: int) -> list[str]:
        """The absolute targets of page `number`'s links, in page order."""
        return [self.url((number + step) % PAGES) for step in (1, 2, 3)]


def _handler_for(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = self.path.split("/")
            found = len(parts) == 3 and parts[1] == "page" and parts[2].isdigit()
            number = int(parts[2]) if found else -1
            with site.lock:
                site.hits[self.path] += 1
                site.inside += 1
                site.peak = max(site.peak, site.inside)
            try:
                site.closing.wait(site.delays.get(number, PAGE_SECONDS))
            finally:
                # Counted out before the reply goes out: once a client has its page it may send
                # the next request at once, and this handler must not still count as inside.
                with site.lock:
                    site.inside -= 1
            if not found:
                self.send_error(404)
                return
            # One link absolute from the root, one relative, one with scheme and host.
            hrefs = [
                f"/page/{(number + 1) % PAGES}",
                f"{(number + 2) % PAGES}",
                site.url((number + 3) % PAGES),
            ]
            body = "".join(f'<a href="{href}">link</a>\n' for href in hrefs).encode()
            # A client that gave up (its timeout ran out) has closed the connection: no matter.
            with contextlib.suppress(ConnectionError):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    return Handler


@pytest.fixture
def site() -> Iterator[Site]:
    """A ThreadingHTTPServer on 127.0.0.1 (port chosen by the OS), shut down after the test."""
    site = Site(base="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(site))
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    serving.start()
    try:
        yield site
    finally:
        site.closing.set()
        server.shutdown()
        server.server_close()
        serving.join(5)


@pytest.mark.clause(15)
def test_crawl_files_each_page_s_links_under_its_own_url(site: Site) -> None:
    # Page 0 is slow, so the pages complete in the order 1, 2, 0, not in the order submitted.
    site.delays = {0: 2 * PAGE_SECONDS, 1: PAGE_SECONDS / 4, 2: PAGE_SECONDS}
    pages = crawl([site.url(0), site.url(1), site.url(2)], max_workers=3)
    expected = {site.url(n): site.links_of(n) for n in range(3)}
    misfiled = {
        url: next((site.url(n) for n in range(PAGES) if site.links_of(n) == links), links)
        for url, links in pages.items()
        if url in expected and links != expected[url]
    }
    assert not misfiled, (
        f"crawl filed the links of another page under these URLs ({{url: the page whose links "
        f"it got}}): {misfiled}. The pages completed in the order 1, 2, 0, and as_completed "
        f"yields them in that order, not in the order you submitted them: keep a dict "
        f"{{future: url}} and look each completed future's URL up in it"
    )
    assert pages == expected, (
        f"crawl returned {pages}, expected {expected}: each URL must map to fetch_links(url)"
    )


@pytest.mark.clause(13)
def test_crawl_fetches_each_distinct_url_only_once(site: Site) -> None:
    pages = crawl([site.url(0), site.url(1), site.url(0), site.url(1), site.url(0)], max_workers=3)
    fetched_twice = {path: n for path, n in site.hits.items() if n > 1}
    assert not fetched_twice, (
        f"the server was asked for {fetched_twice} more than once: stage 1 must group the "
        f"start URLs so that each distinct URL is fetched once"
    )
    assert sorted(pages) == [site.url(0), site.url(1)], f"crawl returned pages for {sorted(pages)}"


@pytest.mark.clause(14)
def test_crawl_fetches_pages_concurrently_but_never_more_than_max_workers(site: Site) -> None:
    pages = crawl([site.url(n) for n in range(4)], max_workers=2)
    peak = site.peak
    assert len(pages) == 4, f"crawl returned {len(pages)} of 4 pages"
    assert peak >= 2, (
        f"the server never served two pages at once (peak {peak}): the pages were "
        f"fetched one after another; submit them all to the executor before waiting"
    )
    assert peak <= 2, (
        f"the server served {peak} pages at once although max_workers=2: pass "
        f"max_workers=max_workers to the ThreadPoolExecutor (not a number of your own, and not "
        f"nothing: its default is min(32, cores + 4))"
    )


@pytest.mark.clause(14)
def test_crawl_fetches_at_most_three_pages_at_a_time_by_default(site: Site) -> None:
    pages = crawl([site.url(n) for n in range(4)])
    peak = site.peak
    assert len(pages) == 4, f"crawl returned {len(pages)} of 4 pages"
    assert 2 <= peak <= 3, (
        f"with the default max_workers=3 the server served up to {peak} of the 4 pages at "
        f"once, not 2 or 3: open the pool with ThreadPoolExecutor(max_workers=max_workers)"
    )


@pytest.mark.clause(16)
def test_crawl_gives_up_on_a_page_slower_than_its_timeout(site: Site) -> None:
    slow = 6 * PAGE_SECONDS
    site.delays = {0: slow}
    timeout = PAGE_SECONDS
    started = time.monotonic()
    try:
        pages = crawl([site.url(0)], max_workers=2, timeout=timeout)
    except OSError:  # socket.timeout (TimeoutError) or urllib's URLError wrapping it
        waited = time.monotonic() - started
        assert waited < slow, (
            f"crawl raised only after {waited:.1f} s, when the {slow:.1f} s page was served, "
            f"although timeout={timeout}"
        )
        return
    pytest.fail(
        f"crawl(..., timeout={timeout}) returned {pages} for a page that takes {slow:.1f} s: "
        f"the timeout never reached the fetch. Submit fetch_links(url, timeout), not "
        f"fetch_links(url) (whose own default is 5 s)"
    )


@pytest.mark.clause(17)
def test_crawl_raises_the_error_of_a_page_that_cannot_be_fetched(site: Site) -> None:
    _must_raise(
        urllib.error.HTTPError,
        lambda: crawl([site.url(0), f"{site.base}/missing", site.url(1)], max_workers=3),
        "the server answered 404 for /missing and crawl kept quiet about it: call result() "
        "on every future; it raises the error the fetch ran into",
    )
