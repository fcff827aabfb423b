# mypy: disable-error-code="untyped-decorator"
# (Celery ships no type hints, so each @app.task would make its function untyped to mypy.)
"""A distributed web crawler: Celery workers fetch pages side by side and share, through Redis,
the set of URLs already claimed, so that no page is fetched twice.

The tests serve a small web site from 127.0.0.1 and start two real worker processes of this
module's app (`celery -A distributed_crawler worker`) against a real Redis server that the test
run starts; its URL is in the environment variable KATA_BROKER_URL. Given: `settings()` and
`app` (broker and result backend from KATA_BROKER_URL, JSON only), `store()` (a Redis client for
that same server, which every worker reaches), `SEEN_KEY` (the name of a crawl's set of claimed
URLs) and `Crawl` (what a crawl returns).

§1 `extract_links(html, base_url)` returns the target of every `<a href="...">` of `html` as an
  absolute URL, resolved against `base_url` the way a browser does (`urllib.parse.urljoin`:
  "b" and "../b" are relative to the page's folder, "/b" to the site's root), in the order the
  links first appear, each URL once.
§2 `extract_links` reads the HTML as a browser does: tag and attribute names in any case
  (`<A HREF=...>`), values in double, single or no quotes, character references decoded
  (`&amp;` is `&`), and nothing inside comments (`<!-- ... -->`).
§3 `extract_links` keeps only the links with `base_url`'s scheme and netloc (host and port):
  links to another host or port, `https:` links from an `http:` page, and `mailto:` links are
  dropped.
§4 `extract_links` removes the fragment of every URL: "/a#top" is "/a", the same page, which a
  crawler must not fetch twice.
§5 `claim(crawl_id, url)` returns True for the first caller only, however many workers claim
  the same URL at the same moment: it adds `url` to the set `SEEN_KEY.format(crawl_id=crawl_id)`
  in the Redis of `store()` with one SADD, whose answer says whether this call added it (never
  a membership check followed by an add), and keeps nothing in the process's own memory.
§6 `crawl_page(url, crawl_id, timeout)` is a task registered as
  "distributed_crawler.crawl_page" that fetches `url` with urllib within `timeout` seconds and
  returns {"url": url, "links": extract_links(the page, url), "claimed": the links for which
  claim(crawl_id, link) returned True, in the same order, "error": None}.
§7 `crawl_page` reports a page it cannot fetch instead of raising or retrying: an HTTP error
  status (404), no answer within `timeout` seconds, or a refused connection gives {"url": url,
  "links": [], "claimed": [], "error": str(the exception)}, e.g. "HTTP Error 404: Not Found" or
  "timed out".
§8 `crawl(start_url, max_depth, crawl_id, queue, timeout, wait)` claims `start_url`, then crawls
  level by level: it sends `crawl_page(url, crawl_id, timeout)` to the queue named `queue` for
  every URL of a level, all of them before it waits for the first result, and the next level is
  the URLs those tasks claimed.
§9 `crawl` returns Crawl(depth={url: depth}, errors={url: error}) for every page it sent a task
  for: `start_url` has depth 0, a page first linked from a page of depth d has depth d + 1, and
  the pages of depth `max_depth` are fetched but none deeper (a site can be endless, like a
  calendar's "next month" links).
§10 `crawl` fetches every page at most once, however many of its pages link to it (cycles
  included) and however many workers run its tasks.
§11 `crawl` raises celery.exceptions.TimeoutError when it is not done `wait` seconds after it
  started: one deadline for the whole crawl, not one per result or per level.
"""

from __future__ import annotations

import functools
import http.client
import os
import time
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import redis
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeoutError

BROKER_VARIABLE = "KATA_BROKER_URL"
# The Redis set of the URLs that a crawl's tasks have claimed, one set per crawl.
SEEN_KEY = "distributed_crawler:{crawl_id}:seen"


def settings() -> dict[str, Any]:
    """The app's configuration: this run's Redis as broker and result backend, JSON only."""
    url = os.environ[BROKER_VARIABLE]
    return {
        "broker_url": url,
        "result_backend": url,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
    }


app = Celery("distributed_crawler")
app.add_defaults(settings)


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def store() -> redis.Redis:
    """A client of this run's Redis (the broker's server), the one that all workers share."""
    return _client(os.environ[BROKER_VARIABLE])


@dataclass
class Crawl:
    """What a crawl reached."""

    # Every page the crawl sent a task for -> its distance in links from the start page.
    depth: dict[str, int] = field(default_factory=dict)
    # The pages among them that could not be fetched -> why (crawl_page's "error").
    errors: dict[str, str] = field(default_factory=dict)


class _Anchors(HTMLParser):
    """Collects the href of every <a> tag, as a browser's parser reads it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # html.parser gives tag and attribute names in lower case, values unquoted and decoded.
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


def extract_links(html: str, base_url: str) -> list[str]:
    """The absolute, fragment-free URLs of the page's links to its own site, in order, once."""
    # A real HTML parser, not a regex: case, quoting, entities and comments are its business.
    parser = _Anchors()
    parser.feed(html)
    parser.close()
    base = urlsplit(base_url)
    links: list[str] = []
    for href in parser.hrefs:
        # urljoin resolves "b", "../b" and "/b" as a browser would; the fragment names no page.
        url = urldefrag(urljoin(base_url, href.strip())).url
        target = urlsplit(url)
        # Same scheme, host and port only: the crawl stays on the site it was asked to crawl.
        if (target.scheme, target.netloc) == (base.scheme, base.netloc) and url not in links:
            links.append(url)
    return links


def claim(crawl_id: str, url: str) -> bool:
    """True for the first caller that claims `url` in this crawl, False for every later one."""
    # SADD is atomic and answers 1 only to the call that added the member: first claim wins.
    return bool(store().sadd(SEEN_KEY.format(crawl_id=crawl_id), url))


@app.task(name="distributed_crawler.crawl_page", shared=False)
def crawl_page(url: str, crawl_id: str, timeout: float) -> dict[str, Any]:
    """Fetch one page on a worker; its links, the links it claimed first, or why it failed."""
    try:
        # The timeout bounds each wait on the socket, so a page that never answers gives up.
        with urllib.request.urlopen(url, timeout=timeout) as response:
            charset = response.headers.get_content_charset() or "utf-8"
            html = response.read().decode(charset, errors="replace")
    except (OSError, http.client.HTTPException) as error:
        # HTTPError (404), TimeoutError and URLError are all OSErrors: reported, never retried.
        return {"url": url, "links": [], "claimed": [], "error": str(error)}
    links = extract_links(html, url)
    # Only the links this task claimed first are its to follow; another task follows the rest.
    claimed = [link for link in links if claim(crawl_id, link)]
    return {"url": url, "links": links, "claimed": claimed, "error": None}


def crawl(
    start_url: str, max_depth: int, crawl_id: str, queue: str, timeout: float, wait: float
) -> Crawl:
    """Crawl the site from `start_url`, level by level, down to `max_depth` links from it."""
    deadline = time.monotonic() + wait
    # Claimed like every other page, so that a link back to the start is not followed.
    claim(crawl_id, start_url)
    report = Crawl()
    level, depth = [start_url], 0
    while level and depth <= max_depth:
        # A whole level is sent before the first wait, so the workers fetch it side by side.
        results = [crawl_page.apply_async((url, crawl_id, timeout), queue=queue) for url in level]
        following: list[str] = []
        for url, result in zip(level, results, strict=True):
            # What is left of the one deadline: an endless site cannot stretch it.
            left = deadline - time.monotonic()
            if left <= 0:
                raise CeleryTimeoutError(f"crawl of {start_url}: not done within {wait} s")
            page = result.get(timeout=left)
            report.depth[url] = depth
            if page["error"] is not None:
                report.errors[url] = page["error"]
            following += page["claimed"]
        level, depth = following, depth + 1
    return report
