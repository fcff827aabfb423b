"""Kata `distributed_crawler`: a Celery crawler whose workers share one Redis set of claimed URLs."""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import celery.exceptions
import distributed_crawler
import pytest
from celery.result import AsyncResult
from celery.signals import before_task_publish
from distributed_crawler import (
    SEEN_KEY,
    Crawl,
    app,
    claim,
    crawl,
    crawl_page,
    extract_links,
    store,
)

from plugins.celery_workers import Worker, result_waits

# Every wait for one task is bounded: a task that never comes back fails its test within this
# many seconds, naming the task, its state and its queue (the get_result fixture).
WAIT = 5.0
# The site crawl's whole deadline (its `wait`): some 0.6 s of work, with room for a loaded
# machine. A crawler with no depth bound runs into the site's endless calendar until then.
CRAWL_WAIT = 6.0
# Each fetch's timeout; the slow page answers only after SLOW_SECONDS, far beyond it.
FETCH_TIMEOUT = 0.5
SLOW_SECONDS = 3.0
MAX_DEPTH = 3

# The site: path -> the hrefs of its links, as written in the page. "/slow" answers after
# SLOW_SECONDS, "/missing" is not there (404), and /calendar?month=N links to month N + 1 for
# ever. ELSEWHERE stands for another site (another server, on another port).
ELSEWHERE = "{elsewhere}"
PAGES: dict[str, list[str]] = {
    "/": ["/a", "b", "/a", "/a#intro", ELSEWHERE, "mailto:webmaster@example.com"],
    "/a": ["/", "/c", "/docs/index.html"],
    "/b": ["/c", "/missing", "/slow"],
    "/c": ["/a", "d"],
    "/docs/index.html": ["intro.html", "../c"],
    "/d": ["/e"],
    "/docs/intro.html": ["/d", "index.html#top"],
    "/e": ["/calendar?month=1"],
    "/slow": ["/a"],
}
# The depth of each page within MAX_DEPTH links of "/", and the pages that cannot be fetched.
DEPTHS = {
    "/": 0,
    "/a": 1,
    "/b": 1,
    "/c": 2,
    "/docs/index.html": 2,
    "/missing": 2,
    "/slow": 2,
    "/d": 3,
    "/docs/intro.html": 3,
}
FAILING = {"/missing": "404", "/slow": "timed out"}


@dataclass
class Site:
    """A web site served from 127.0.0.1, and the requests its server has seen."""

    base: str = ""
    other: str = ""  # the other site's base URL
    hits: Counter[str] = field(default_factory=Counter)
    other_hits: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set at the end: the slow page's handler stops waiting at once.
    closing: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return self.base + path

    def page(self, path: str) -> str | None:
        """The HTML of `path`, or None where the site has no such page."""
        if path.startswith("/calendar?month="):
            month = path.partition("=")[2]
            hrefs = [f"/calendar?month={int(month) + 1}"] if month.isdigit() else []
        elif path in PAGES:
            hrefs = [self.other + "/" if href == ELSEWHERE else href for href in PAGES[path]]
        else:
            return None
        links = "\n".join(f'<li><a href="{href}">{href}</a></li>' for href in hrefs)
        return f"<!DOCTYPE html>\n<html><body><h1>{path}</h1>\n<ul>\n{links}\n</ul></body></html>"


def _handler(site: Site, *, other: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with site.lock:
                (site.other_hits if other else site.hits)[self.path] += 1
            if other:
                html: str | None = f'<a href="{site.base}/a">the crawled site</a>'
            else:
                if self.path == "/slow":
                    site.closing.wait(SLOW_SECONDS)
                html = site.page(self.path)
            # A client that gave up (its timeout ran out) has closed the connection: no matter.
            with contextlib.suppress(ConnectionError):
                if html is None:
                    self.send_error(404)
                    return
                body = html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    return Handler


@contextlib.contextmanager
def serving(kata_namespace: Any) -> Iterator[Site]:
    """The site and another one, each a ThreadingHTTPServer on 127.0.0.1 at a port of this
    run, served from a thread, and shut down (threads ended) when the block ends."""
    site = Site()
    servers = []
    try:
        for other in (False, True):
            port = kata_namespace.port()
            server = ThreadingHTTPServer(("127.0.0.1", port), _handler(site, other=other))
            serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
            serving.start()
            servers.append((server, serving))
            if other:
                site.other = f"http://127.0.0.1:{port}"
            else:
                site.base = f"http://127.0.0.1:{port}"
        yield site
    finally:
        site.closing.set()
        for server, serving in servers:
            server.shutdown()
            server.server_close()
            serving.join(5)


@pytest.fixture
def site(kata_namespace: Any) -> Iterator[Site]:
    """The site, served for one test. (A server thread that outlived its test would be
    reported as left running, so each test that fetches pages gets servers of its own.)"""
    with serving(kata_namespace) as site:
        yield site


@pytest.fixture(scope="module")
def queue(kata_namespace: Any) -> str:
    """The crawler's queue, which both workers consume (a name no other run uses)."""
    return str(kata_namespace.name("crawl"))


@pytest.fixture(scope="module")
def workers(celery_workers: Callable[..., list[Worker]], queue: str) -> list[Worker]:
    # Two workers of 3 processes each, started side by side: claims race across processes and
    # across workers. Each process takes one task at a time, so a level's tasks spread over them.
    spec = {
        "queues": [queue],
        "concurrency": 3,
        "app": app,
        "options": ["--prefetch-multiplier", "1"],
    }
    return celery_workers(
        "distributed_crawler", [{**spec, "name": name} for name in ("crawler-a", "crawler-b")]
    )


@pytest.fixture
def crawl_id(kata_namespace: Any) -> str:
    """A crawl id no other test or run uses."""
    return str(kata_namespace.name("crawl-id"))


@pytest.fixture
def idle_queue(kata_namespace: Any) -> str:
    """A queue that no worker consumes."""
    return str(kata_namespace.name("idle"))


# -- extract_links ---------------------------------------------------------------------------

BASE = "http://127.0.0.1:8123/docs/page.html"


def _links_must_be(html: str, expected: list[str], meaning: str) -> None:
    __tracebackhide__ = True
    got = extract_links(html, BASE)
    assert got == expected, (
        f"extract_links({html!r}, {BASE!r}) returned {got}, expected {expected}: {meaning}"
    )


@pytest.mark.clause(1)
def test_extract_links_resolves_relative_links_against_the_page() -> None:
    _links_must_be(
        '<a href="/root">r</a> <a href="sibling.html">s</a> <a href="../up">u</a> '
        '<a href="http://127.0.0.1:8123/full">f</a> <a href="?page=2">q</a>',
        [
            "http://127.0.0.1:8123/root",
            "http://127.0.0.1:8123/docs/sibling.html",
            "http://127.0.0.1:8123/up",
            "http://127.0.0.1:8123/full",
            "http://127.0.0.1:8123/docs/page.html?page=2",
        ],
        "a link is relative to the page it is on: 'sibling.html' on /docs/page.html is "
        "/docs/sibling.html, '../up' is /up, '/root' starts at the site's root; "
        "urllib.parse.urljoin(base_url, href) does exactly what a browser does",
    )


@pytest.mark.clause(1)
def test_extract_links_gives_each_url_once_in_the_order_of_the_page() -> None:
    _links_must_be(
        '<p><a href="/z">z</a> <a href="/a">a</a> <a href="/z">z again</a> '
        '<a href="/m">m</a> <a href="/a">a again</a></p>',
        ["http://127.0.0.1:8123/z", "http://127.0.0.1:8123/a", "http://127.0.0.1:8123/m"],
        "each URL once, where it first appears (not sorted, and without the repeats)",
    )


@pytest.mark.clause(1)
def test_extract_links_ignores_other_tags_and_anchors_without_href() -> None:
    _links_must_be(
        '<link href="/style.css" rel="stylesheet"><img src="/logo.png">'
        '<a name="top">top</a> <area href="/map"> <a href="/only">the one link</a>',
        ["http://127.0.0.1:8123/only"],
        "only <a> tags with an href are links (not <link>, <area> or <img>, and not "
        '<a name="...">)',
    )


@pytest.mark.parametrize(
    ("html", "expected", "meaning"),
    [
        pytest.param(
            '<A HREF="/upper">U</A> <a Href="/mixed">M</a>',
            ["/upper", "/mixed"],
            "HTML tag and attribute names are case-insensitive: <A HREF=...> is a link",
            id="any-case",
        ),
        pytest.param(
            "<a href='/single'>s</a> <a href=/bare>b</a> <a href = \"/spaced\">sp</a>",
            ["/single", "/bare", "/spaced"],
            "an attribute value may be in single quotes, in double quotes, or bare, and may "
            "have spaces around its '='",
            id="quotes",
        ),
        pytest.param(
            '<a href="/search?q=1&amp;page=2">s</a> <a href="/o\'brien">o</a>',
            ["/search?q=1&page=2", "/o'brien"],
            "'&amp;' in an attribute is the character '&' (a character reference), and a "
            "single quote inside double quotes is part of the value (the book's regex stops "
            "at either quote)",
            id="references-and-quotes-inside",
        ),
        pytest.param(
            '<!-- <a href="/hidden">old menu</a> -->\n<a\n  class="nav"\n  href="/shown">s</a>',
            ["/shown"],
            "a link inside an HTML comment is no link, and a tag may span several lines",
            id="comments",
        ),
    ],
)
@pytest.mark.clause(2)
def test_extract_links_reads_html_as_a_browser_does(
    html: str, expected: list[str], meaning: str
) -> None:
    _links_must_be(
        html,
        ["http://127.0.0.1:8123" + path for path in expected],
        meaning + ". html.parser.HTMLParser reads HTML this way; a regular expression does not",
    )


@pytest.mark.clause(3)
def test_extract_links_keeps_only_links_to_the_same_site() -> None:
    _links_must_be(
        '<a href="http://example.com/">e</a> <a href="http://127.0.0.1:9999/other-port">p</a> '
        '<a href="https://127.0.0.1:8123/secure">s</a> <a href="mailto:me@example.com">m</a> '
        '<a href="//example.org/x">n</a> <a href="http://127.0.0.1:8123/here">h</a>',
        ["http://127.0.0.1:8123/here"],
        "a crawler stays on its site: keep a URL only when its scheme and netloc (host and "
        "port) are the page's (urllib.parse.urlsplit gives both)",
    )


@pytest.mark.clause(4)
def test_extract_links_removes_fragments() -> None:
    _links_must_be(
        '<a href="/guide#install">i</a> <a href="/guide#usage">u</a> <a href="#top">t</a>',
        ["http://127.0.0.1:8123/guide", "http://127.0.0.1:8123/docs/page.html"],
        "a fragment (#...) names a place in a page, not another page, and never reaches the "
        "server: urllib.parse.urldefrag(url).url drops it, so /guide#install and "
        "/guide#usage are one URL",
    )


# -- claim -----------------------------------------------------------------------------------


@pytest.mark.clause(5)
def test_claim_is_true_for_the_first_claim_of_a_url_in_a_crawl_only(crawl_id: str) -> None:
    url, another = "http://127.0.0.1:8123/x", "http://127.0.0.1:8123/y"
    answers = [claim(crawl_id, url), claim(crawl_id, url), claim(crawl_id, another)]
    assert answers == [True, False, True], (
        f"claim(crawl_id, x), claim(crawl_id, x), claim(crawl_id, y) answered {answers}, not "
        "[True, False, True]: the first claim of a URL wins, every later one loses"
    )
    assert claim(crawl_id + "-next", url) is True, (
        "claim(another crawl id, x) answered False because x was claimed in an earlier crawl: "
        "each crawl has its own set, SEEN_KEY.format(crawl_id=crawl_id)"
    )


@pytest.mark.clause(5)
def test_claim_keeps_the_claims_in_redis_where_every_worker_sees_them(crawl_id: str) -> None:
    key = SEEN_KEY.format(crawl_id=crawl_id)
    taken = "http://127.0.0.1:8123/claimed-by-another-worker"
    store().sadd(key, taken)
    assert claim(crawl_id, taken) is False, (
        f"another worker had claimed {taken} (it is in the Redis set {key!r}), yet claim "
        "answered True: the claims must live in Redis, which all workers share, not in one "
        "process's memory"
    )
    fresh = "http://127.0.0.1:8123/fresh"
    assert claim(crawl_id, fresh) is True
    assert store().sismember(key, fresh), (
        f"claim({crawl_id!r}, {fresh!r}) answered True, but {fresh} is not in the Redis set "
        f"{key!r}: other workers cannot see the claim"
    )


class Lockstep:
    """A stand-in for a Redis client shared by two threads: a thread's second command waits
    until the other thread has sent its first (or until a second has passed). A claim made of
    one command is unaffected; a check followed by an add is forced into its unlucky order."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.barrier = threading.Barrier(2, timeout=1.0)
        self.calls = threading.local()
        self.commands: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.real, name)
        if not callable(attribute):
            return attribute

        def command(*args: Any, **kwargs: Any) -> Any:
            count = getattr(self.calls, "count", 0)
            self.calls.count = count + 1
            if count == 1:
                with contextlib.suppress(threading.BrokenBarrierError):
                    self.barrier.wait()
            self.commands.append(name)
            return attribute(*args, **kwargs)

        return command


@pytest.mark.clause(5)
def test_claim_lets_only_one_of_two_simultaneous_claims_win(
    crawl_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lockstep = Lockstep(store())
    monkeypatch.setattr(distributed_crawler, "store", lambda: lockstep)
    url = "http://127.0.0.1:8123/wanted-by-two"
    answers: list[Any] = [None, None]

    def claim_as(index: int) -> None:
        answers[index] = claim(crawl_id, url)

    threads = [threading.Thread(target=claim_as, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert not any(thread.is_alive() for thread in threads), "claim did not return within 5 s"
    assert sorted(answers, key=str) == [False, True], (
        f"two workers claimed the same URL at the same moment and claim answered {answers} "
        f"(Redis commands: {lockstep.commands}): only one may win. A membership check followed "
        "by an add lets both see 'not there yet' before either adds it; SADD adds and answers "
        "whether it added in one atomic command"
    )


# -- crawl_page on the workers ---------------------------------------------------------------


@pytest.mark.clause(6)
def test_crawl_page_returns_the_page_s_links_and_those_it_claimed_first(
    site: Site, workers: list[Worker], queue: str, crawl_id: str, get_result: Callable[..., Any]
) -> None:
    assert crawl_page.name == "distributed_crawler.crawl_page", (
        f"crawl_page is registered as {crawl_page.name!r}"
    )
    claim(crawl_id, site.url("/c"))  # as if another task had claimed /c already
    url = site.url("/docs/index.html")
    page = get_result(crawl_page.apply_async((url, crawl_id, FETCH_TIMEOUT), queue=queue), WAIT)
    links = [site.url("/docs/intro.html"), site.url("/c")]
    expected = {"url": url, "links": links, "claimed": links[:1], "error": None}
    assert page == expected, (
        f"crawl_page({url!r}, ...) returned {page}, expected {expected}: /c had been claimed "
        "before, so this task must not claim it (another task follows it); 'claimed' holds "
        "only the links for which claim(crawl_id, link) answered True"
    )


def _report_of(result: AsyncResult, get_result: Callable[..., Any], what: str) -> Any:
    """The task's result; a test failure that says so when the task raised instead."""
    __tracebackhide__ = True
    try:
        return get_result(result, WAIT)
    except Exception as error:
        raised = error  # failed below, outside the handler, without the chain of exceptions
    if isinstance(raised, NotImplementedError):
        pytest.fail(
            "crawl_page raised NotImplementedError on the worker: it is not implemented yet "
            "(fill in its TODO(kata))",
            pytrace=False,
        )
    pytest.fail(
        f"crawl_page of {what} raised {type(raised).__name__}: {raised}. Report the error in "
        "the result instead, {'error': str(error), ...}: a raised error fails the whole crawl "
        "(or is retried), where one bad page should only be noted",
        pytrace=False,
    )


@pytest.mark.clause(7)
def test_crawl_page_reports_a_missing_page_as_an_error(
    site: Site, workers: list[Worker], queue: str, crawl_id: str, get_result: Callable[..., Any]
) -> None:
    url = site.url("/missing")
    result = crawl_page.apply_async((url, crawl_id, FETCH_TIMEOUT), queue=queue)
    page = _report_of(result, get_result, "a page that answers 404")
    expected = {"url": url, "links": [], "claimed": [], "error": "HTTP Error 404: Not Found"}
    assert isinstance(page, dict) and "404" in str(page.get("error")), (
        f"crawl_page of a page that answers 404 returned {page}, expected {expected}: a 404 is "
        "not a page without links, it is an error to report, {'error': str(the HTTPError)}"
    )
    assert page == expected, f"crawl_page of a missing page returned {page}, expected {expected}"


@pytest.mark.clause(7)
def test_crawl_page_reports_a_refused_connection_as_an_error(
    workers: list[Worker],
    queue: str,
    crawl_id: str,
    kata_namespace: Any,
    get_result: Callable[..., Any],
) -> None:
    url = f"http://127.0.0.1:{kata_namespace.port()}/"  # reserved for this run, nobody listens
    result = crawl_page.apply_async((url, crawl_id, FETCH_TIMEOUT), queue=queue)
    page = _report_of(result, get_result, "a URL where no server listens")
    assert isinstance(page, dict) and "refused" in str(page.get("error")), (
        f"crawl_page of a URL where no server listens returned {page}: report the error (a "
        "URLError, which is an OSError) as {'error': str(error), ...}"
    )
    assert page.get("links") == [] and page.get("claimed") == [] and page.get("url") == url


# -- crawl: the whole site -------------------------------------------------------------------


@dataclass
class SiteCrawl:
    """One crawl of the site, and what the servers and the test process saw meanwhile."""

    site: Site
    report: Crawl | None = None
    error: BaseException | None = None
    seconds: float = 0.0
    hits: Counter[str] = field(default_factory=Counter)
    other_hits: Counter[str] = field(default_factory=Counter)
    events: list[str] = field(default_factory=list)  # "send" and "wait", in order
    routes: list[str] = field(default_factory=list)  # the queue of every task sent


def _recording(events: list[str], routes: list[str]) -> contextlib.ExitStack:
    """Record every task sent, and every call that waits for (or peeks at) a result."""
    stack = contextlib.ExitStack()
    patch = stack.enter_context(pytest.MonkeyPatch.context())

    def watch(cls: type, name: str) -> None:
        original = getattr(cls, name)

        def waiting(self: Any, *args: Any, **kwargs: Any) -> Any:
            events.append("wait")
            return original(self, *args, **kwargs)

        patch.setattr(cls, name, waiting)

    for cls, names in result_waits():
        for name in names:
            watch(cls, name)

    def sent(routing_key: str = "", **_: Any) -> None:
        events.append("send")
        routes.append(routing_key)

    before_task_publish.connect(sent, weak=False, dispatch_uid="test-site-crawl")
    stack.callback(before_task_publish.disconnect, dispatch_uid="test-site-crawl")
    return stack


@pytest.fixture(scope="module")
def site_crawl(workers: list[Worker], queue: str, kata_namespace: Any) -> SiteCrawl:
    """crawl(the site's /, MAX_DEPTH, ...) once, on servers of its own that are stopped before
    it returns, for the tests below, which judge what it did."""
    with serving(kata_namespace) as site:
        run = SiteCrawl(site)
        started = time.monotonic()
        with _recording(run.events, run.routes):
            try:
                run.report = crawl(
                    site.url("/"),
                    MAX_DEPTH,
                    kata_namespace.name("site-crawl"),
                    queue,
                    FETCH_TIMEOUT,
                    CRAWL_WAIT,
                )
            except Exception as error:
                run.error = error
        run.seconds = time.monotonic() - started
    run.hits, run.other_hits = site.hits, site.other_hits
    return run


def _finished(run: SiteCrawl, queue: str) -> Crawl:
    """The crawl's report; a test failure that says why when crawl raised instead."""
    __tracebackhide__ = True
    if isinstance(run.error, celery.exceptions.TimeoutError):
        elsewhere = sorted(set(run.routes) - {queue})
        months = sum(n for path, n in run.hits.items() if path.startswith("/calendar"))
        if elsewhere:
            why = f"Its tasks went to {elsewhere}, where no worker listens: apply_async(..., queue=queue)"
        elif months:
            why = (
                f"It went on past depth {MAX_DEPTH} into the site's endless calendar ({months} "
                "months fetched): stop after the level of depth max_depth"
            )
        else:
            why = "The site needs well under a second of work"
        pytest.fail(
            f"crawl(..., max_depth={MAX_DEPTH}, wait={CRAWL_WAIT}) raised TimeoutError after "
            f"{run.seconds:.1f} s ({run.error}). {why}",
            pytrace=False,
        )
    if isinstance(run.error, NotImplementedError):
        frames = traceback.extract_tb(run.error.__traceback__)
        if frames and Path(frames[-1].filename).name == "distributed_crawler.py":
            raise run.error  # crawl itself, or a function of the module that it called here
        pytest.fail(
            "crawl raised NotImplementedError from a task: crawl_page is not implemented yet "
            "(fill in its TODO(kata))",
            pytrace=False,
        )
    if run.error is not None:
        pytest.fail(
            f"crawl(..., max_depth={MAX_DEPTH}) raised {type(run.error).__name__}: {run.error}",
            pytrace=False,
        )
    assert run.report is not None and isinstance(run.report, Crawl), (
        f"crawl returned {run.report!r}, not a Crawl"
    )
    return run.report


def _paths(site: Site, urls: Any) -> dict[str, Any]:
    """{path: value} for a dict or set keyed by the site's URLs (other URLs kept whole)."""
    items = urls.items() if isinstance(urls, dict) else ((url, None) for url in urls)
    return {url.removeprefix(site.base) or url: value for url, value in items}


@pytest.mark.clause(8, 9)
def test_crawl_reaches_every_page_within_max_depth_at_its_depth(
    site_crawl: SiteCrawl, queue: str
) -> None:
    site = site_crawl.site
    report = _finished(site_crawl, queue)
    depth = _paths(site, report.depth)
    missing = sorted(set(DEPTHS) - set(depth))
    assert not missing, (
        f"crawl from / with max_depth={MAX_DEPTH} did not reach {missing} (it reached "
        f"{depth}): every page within {MAX_DEPTH} links of the start must be in Crawl.depth, "
        "the pages that could not be fetched included"
    )
    deeper = {path: d for path, d in depth.items() if path not in DEPTHS}
    assert not deeper, (
        f"crawl with max_depth={MAX_DEPTH} also went to {deeper}: those are more than "
        f"{MAX_DEPTH} links away from the start (the start page has depth 0); fetch the "
        "level of depth max_depth and stop"
    )
    wrong = {path: (depth[path], DEPTHS[path]) for path in DEPTHS if depth[path] != DEPTHS[path]}
    assert not wrong, (
        f"crawl put these pages at the wrong depth {{path: (found, expected)}}: {wrong}. The "
        "depth of a page is the length of the shortest chain of links from the start page to "
        "it; level-by-level crawling finds it (each level is one link further). A page found "
        "deeper than it is was fetched again at a later level: it had not been claimed"
    )


@pytest.mark.clause(9)
def test_crawl_never_fetches_a_page_deeper_than_max_depth(
    site_crawl: SiteCrawl, queue: str
) -> None:
    _finished(site_crawl, queue)
    deeper = sorted(path for path in site_crawl.hits if path not in DEPTHS)
    assert not deeper, (
        f"the server was asked for {deeper}, which lie deeper than max_depth={MAX_DEPTH}: "
        "send no task for a page beyond max_depth"
    )


@pytest.mark.clause(10)
def test_crawl_fetches_every_page_exactly_once(site_crawl: SiteCrawl, queue: str) -> None:
    _finished(site_crawl, queue)
    repeated = {path: n for path, n in site_crawl.hits.items() if n > 1}
    assert not repeated, (
        f"the server was asked for these pages more than once {{path: times}}: {repeated}. "
        "The site links to / from /a, to /a three times from / (once with #intro), to /c from "
        "/a, /b and /docs/index.html: a task may follow a link only when its claim of the URL "
        "won, and crawl must claim the start page too"
    )
    unfetched = sorted(path for path in DEPTHS if site_crawl.hits[path] == 0)
    assert not unfetched, f"crawl never fetched {unfetched}"


@pytest.mark.clause(7, 9)
def test_crawl_reports_the_pages_it_could_not_fetch(site_crawl: SiteCrawl, queue: str) -> None:
    site = site_crawl.site
    report = _finished(site_crawl, queue)
    errors = _paths(site, report.errors)
    for path, sign in FAILING.items():
        reason = (
            "it answers 404 Not Found"
            if path == "/missing"
            else f"it answers only after {SLOW_SECONDS} s, and the fetch timeout is "
            f"{FETCH_TIMEOUT} s: urlopen(url, timeout=timeout), or a page that never answers "
            "holds a worker for ever"
        )
        assert sign in str(errors.get(path)), (
            f"crawl reported errors {errors}: {path} must be in Crawl.errors with an error "
            f"naming {sign!r}, because {reason}"
        )
    assert sorted(errors) == sorted(FAILING), (
        f"crawl reported errors for {sorted(errors)}, but only {sorted(FAILING)} fail"
    )


@pytest.mark.clause(3)
def test_crawl_never_leaves_the_site(site_crawl: SiteCrawl, queue: str) -> None:
    site = site_crawl.site
    _finished(site_crawl, queue)
    assert not site_crawl.other_hits, (
        f"the crawl fetched {dict(site_crawl.other_hits)} from another site ({site.other}), "
        "linked from /: follow only the links with the start page's scheme, host and port"
    )


@pytest.mark.clause(8)
def test_crawl_sends_a_whole_level_to_the_queue_before_waiting(
    site_crawl: SiteCrawl, queue: str
) -> None:
    report = _finished(site_crawl, queue)
    routes = Counter(site_crawl.routes)
    assert set(routes) == {queue}, (
        f"crawl sent its tasks to {dict(routes)}: every crawl_page goes to the queue named "
        f"{queue!r}, the one the crawler's workers consume: apply_async(..., queue=queue)"
    )
    bursts = [
        len(list(run)) for kind, run in itertools.groupby(site_crawl.events) if kind == "send"
    ]
    depths = Counter(report.depth.values())
    levels = [depths[depth] for depth in sorted(depths)]
    assert bursts == levels, (
        f"crawl sent its tasks in {len(bursts)} bursts of {bursts}, waiting for results in "
        f"between, although its levels held {levels} pages: send every page of a level first, "
        "then collect their results, so that the workers fetch them side by side"
    )


@pytest.mark.clause(11)
def test_crawl_gives_up_when_the_whole_crawl_is_not_done_within_wait(
    idle_queue: str, crawl_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No worker serves idle_queue. Every AsyncResult.get takes 0.15 s and returns a page that
    # claimed one new link: an endless site, whose levels each come back within any timeout.
    timeouts: list[float | None] = []
    pages = itertools.count(1)
    urls: dict[str, str] = {}

    def sent(headers: Any = None, body: Any = None, **_: Any) -> None:
        args, kwargs = (body[0], body[1]) if isinstance(body, (list, tuple)) else ((), {})
        urls[str((headers or {}).get("id"))] = str(args[0] if args else kwargs.get("url"))

    def get(self: AsyncResult, timeout: float | None = None, *args: Any, **kwargs: Any) -> Any:
        timeouts.append(None if timeout is None else round(timeout, 2))
        if timeout is None:
            pytest.fail(
                "crawl called get() without a timeout: when no worker runs the task, it waits "
                "for ever (the book's dispatcher hangs this way)",
                pytrace=False,
            )
        if timeout < 0.15:
            time.sleep(max(timeout, 0))
            raise celery.exceptions.TimeoutError("the operation timed out")
        time.sleep(0.15)
        link = f"http://127.0.0.1:8123/endless/{next(pages)}"
        return {"url": urls.get(self.id, "?"), "links": [link], "claimed": [link], "error": None}

    monkeypatch.setattr(AsyncResult, "get", get)
    before_task_publish.connect(sent, weak=False, dispatch_uid="test-endless")
    wait = 0.5
    started = time.monotonic()
    try:
        report = crawl("http://127.0.0.1:8123/endless/0", 8, crawl_id, idle_queue, 0.1, wait)
    except celery.exceptions.TimeoutError:
        report = None
    finally:
        before_task_publish.disconnect(dispatch_uid="test-endless")
    took = time.monotonic() - started
    # One deadline for the whole crawl: each get() is given what is left of it, never more than
    # the one before. (Checked as well as the outcome: on a heavily loaded machine, sending a
    # level can take so long that a deadline per level runs out too.)
    grew = [
        (a, b) for a, b in itertools.pairwise(timeouts) if a is not None and b is not None and b > a
    ]
    if grew:
        pytest.fail(
            f"crawl gave its get() calls the timeouts {timeouts}: {grew[0][1]} after "
            f"{grew[0][0]}, more than before. `wait` bounds the whole crawl: compute one deadline "
            "before the first level and give each get() only what is left of it",
            pytrace=False,
        )
    if report is not None:
        pytest.fail(
            f"crawl(..., max_depth=8, wait={wait}) returned after {took:.2f} s, although each "
            "result took 0.15 s to come: `wait` bounds the whole crawl; give each get() only "
            f"what is left of one deadline (it was given {timeouts})",
            pytrace=False,
        )
    assert took >= wait - 0.02, (
        f"crawl gave up after {took:.2f} s, before its wait of {wait} s: a result that is not "
        "ready yet is no failure; wait for it until the deadline"
    )
