"""Downloader middlewares: the sandbox guard and Retry-After handling (``crawler/middlewares.py``).

Unit tests with a small fake crawler (settings, stats, an engine whose downloader has real Scrapy slots),
plus a check on the middleware chain Scrapy builds from ``crawler.settings.build`` — the order decides
whether a 429 ever reaches the Retry-After middleware. The end-to-end checks (a sweep against the sandbox
with forced 429s, the sandbox's request log) are in ``tests/test_sweep_faults.py`` and
``tests/test_sweep_integration.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from scrapy import Request, Spider
from scrapy.core.downloader import Slot
from scrapy.core.downloader.middleware import DownloaderMiddlewareManager
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.settings import Settings as ScrapySettings
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from crawler import settings as crawl_settings
from crawler.config import load_settings
from crawler.middlewares import RetryAfterMiddleware, SandboxGuardMiddleware, retry_after_seconds

ROOT = "http://127.0.0.1:8899"


@dataclass
class FakeDownloader:
    slots: dict[str, Slot] = field(default_factory=dict)

    def get_slot_key(self, request: Request) -> str:
        return str(request.meta.get("download_slot", "default"))


@dataclass
class FakeEngine:
    downloader: FakeDownloader = field(default_factory=FakeDownloader)


class FakeCrawler:
    """What the middlewares use of a crawler: settings, stats, engine."""

    def __init__(self, values: dict[str, Any] | None = None, engine: Any = None) -> None:
        self.settings = ScrapySettings(values or {})
        self.stats = MemoryStatsCollector(self)  # type: ignore[arg-type]
        self.engine = engine
        self.spider = None


# --------------------------------------------------------------------------------------------------
# retry_after_seconds
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (b"5", 5.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        (None, None),
        ("", None),
        (b"", None),
        ("soon", None),
        ("-3", None),
        ("1.5", None),  # RFC 9110: delay-seconds is a non-negative integer
    ],
)
def test_retry_after_seconds(value: bytes | str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date_is_relative_to_now() -> None:
    now = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(later, now=now.timestamp()) == pytest.approx(90.0)
    assert retry_after_seconds(later.encode("latin-1"), now=now.timestamp()) == pytest.approx(90.0)
    earlier = format_datetime(now - timedelta(minutes=5), usegmt=True)
    assert retry_after_seconds(earlier, now=now.timestamp()) == 0.0  # a date in the past: go now


# --------------------------------------------------------------------------------------------------
# SandboxGuardMiddleware
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["/_sandbox/truth", "/_sandbox/clock", "/_sandbox/takedowns", "/_sandbox", "/_sandbox/requests?x=1"],
)
def test_guard_refuses_the_control_plane(path: str) -> None:
    crawler = FakeCrawler()
    guard = SandboxGuardMiddleware.from_crawler(crawler)  # type: ignore[arg-type]
    with pytest.raises(IgnoreRequest, match="control plane"):
        guard.process_request(Request(ROOT + path))
    assert crawler.stats.get_value("tertib/sandbox_guard/refused") == 1


@pytest.mark.parametrize(
    "path",
    [
        "/tokopedia-gql/graphql/SearchProductV5Query",
        "/lazada/catalog/?ajax=true&q=_sandbox",
        "/blibli/_sandboxes/x",  # only the exact control prefix is off limits
        "/shopee/search?keyword=_sandbox/truth",
        "/",
    ],
)
def test_guard_lets_replica_pages_through(path: str) -> None:
    crawler = FakeCrawler()
    guard = SandboxGuardMiddleware.from_crawler(crawler)  # type: ignore[arg-type]
    guard.process_request(Request(ROOT + path))  # no IgnoreRequest: the request goes on
    assert crawler.stats.get_value("tertib/sandbox_guard/refused") is None


def test_guard_can_be_switched_off() -> None:
    with pytest.raises(NotConfigured):
        SandboxGuardMiddleware.from_crawler(FakeCrawler({"SANDBOX_GUARD_ENABLED": False}))  # type: ignore[arg-type]


def test_guard_is_wired_first_in_every_crawl() -> None:
    values = crawl_settings.build(load_settings(sandbox_url=ROOT), platforms=("lazada",))
    assert values["SANDBOX_GUARD_ENABLED"] is True
    crawler = get_crawler(Spider, {"DOWNLOADER_MIDDLEWARES": values["DOWNLOADER_MIDDLEWARES"]})
    manager = DownloaderMiddlewareManager.from_crawler(crawler)
    names = [type(m.__self__).__name__ for m in manager.methods["process_request"]]  # type: ignore[union-attr]
    # only Scrapy's offsite filter (which can only drop requests) may look at a request before the guard
    assert set(names[: names.index("SandboxGuardMiddleware")]) <= {"OffsiteMiddleware"}, names


# --------------------------------------------------------------------------------------------------
# RetryAfterMiddleware
# --------------------------------------------------------------------------------------------------
def middleware(
    max_delay: float = 5.0, times: int = 3, engine: Any = None
) -> tuple[RetryAfterMiddleware, Any]:
    crawler = FakeCrawler({"RETRY_AFTER_MAX_DELAY": max_delay, "RETRY_TIMES": times}, engine=engine)
    return RetryAfterMiddleware.from_crawler(crawler), crawler  # type: ignore[arg-type]


def request(**meta: Any) -> Request:
    return Request(
        ROOT + "/lazada/catalog/?ajax=true&q=jaket&page=1",
        meta={"platform": "lazada", "download_slot": "lazada", **meta},
        priority=10,
    )


def response(req: Request, status: int, retry_after: str | None = None) -> Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Response(req.url, status=status, headers=headers, request=req)


@pytest.mark.parametrize(
    ("status", "header"), [(200, "3"), (404, "3"), (500, "3"), (429, None), (503, None), (429, "later")]
)
def test_retry_after_passes_other_responses_on(status: int, header: str | None) -> None:
    mw, crawler = middleware()
    req = request()
    resp = response(req, status, header)
    assert asyncio.run(mw.process_response(req, resp)) is resp
    assert crawler.stats.get_value("tertib/lazada/retry_after") is None
    assert "dont_retry" not in req.meta  # plain 429/503: Scrapy's RetryMiddleware backs off itself


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_retries_the_request_after_the_wait(status: int) -> None:
    mw, crawler = middleware()
    req = request()
    out = asyncio.run(mw.process_response(req, response(req, status, "0")))
    assert isinstance(out, Request)
    assert out.url == req.url and out.dont_filter
    assert out.priority == req.priority - 1
    assert out.meta["retry_after_times"] == 1
    assert out.meta["platform"] == "lazada" and out.meta["download_slot"] == "lazada"
    assert crawler.stats.get_value("tertib/lazada/retry_after") == 1


def test_retry_after_gives_up_on_a_wait_longer_than_the_maximum() -> None:
    mw, crawler = middleware(max_delay=5.0)
    req = request()
    resp = response(req, 429, "600")
    assert asyncio.run(mw.process_response(req, resp)) is resp  # the spider records rate_limited
    assert req.meta["dont_retry"] is True  # and Scrapy's retry must not hammer on
    assert crawler.stats.get_value("tertib/lazada/retry_after") == 1


def test_retry_after_gives_up_after_retry_times() -> None:
    mw, _crawler = middleware(times=2)
    req = request(retry_after_times=2)
    resp = response(req, 429, "0")
    assert asyncio.run(mw.process_response(req, resp)) is resp
    assert req.meta["dont_retry"] is True
    ok = request(retry_after_times=1)
    assert isinstance(asyncio.run(mw.process_response(ok, response(ok, 429, "0"))), Request)


def test_retry_after_slows_the_platform_slot_while_waiting_then_restores_it() -> None:
    """The platform's real Scrapy slot is paced at the asked delay during the wait, and only that slot."""
    downloader = FakeDownloader({"lazada": Slot(4, 0.0, 0.0), "blibli": Slot(4, 0.0, 0.0)})
    mw, _crawler = middleware(engine=FakeEngine(downloader))
    req = request()
    observed: dict[str, float] = {}

    async def scenario() -> Any:
        task = asyncio.ensure_future(mw.process_response(req, response(req, 429, "1")))
        await asyncio.sleep(0.3)
        observed["during"] = downloader.slots["lazada"].delay
        observed["other"] = downloader.slots["blibli"].delay
        return await task

    out = asyncio.run(scenario())
    assert isinstance(out, Request)
    assert observed == {"during": 1.0, "other": 0.0}
    assert downloader.slots["lazada"].delay == 0.0


def test_retry_after_sees_429s_before_scrapys_retry_middleware() -> None:
    """Response order in the chain Scrapy builds from our settings.

    Scrapy calls ``process_response`` from the highest order number down; if RetryMiddleware (550) sees
    a 429 first it retries at once and the Retry-After is never honoured.
    """
    values = crawl_settings.build(load_settings(sandbox_url=ROOT), platforms=("lazada",))
    crawler = get_crawler(Spider, {"DOWNLOADER_MIDDLEWARES": values["DOWNLOADER_MIDDLEWARES"]})
    manager = DownloaderMiddlewareManager.from_crawler(crawler)
    names = [type(m.__self__).__name__ for m in manager.methods["process_response"]]  # type: ignore[union-attr]
    assert names.index("RetryAfterMiddleware") < names.index("RetryMiddleware"), names
