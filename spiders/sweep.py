"""The sweep spider: search every selected platform for every query, page by page.

One spider serves all platforms; everything platform-specific comes from the site profile in
``spiders/<platform>.py`` (request builders, parsers, page sizes, whether a browser is needed). Each
platform gets its own download slot (``meta["download_slot"]``) so politeness is per platform even when
the sandbox serves all of them from one address.

Callbacks by page type (STYLE.md §4): :meth:`SweepSpider.parse_search` for HTTP search responses,
:meth:`SweepSpider.parse_browser_search` for pages that need a browser (the page itself calls the
platform's signed API; we read the responses it receives). Listing details are fetched later by the
evidence pipeline, only for listings that score.

What it yields: :class:`crawler.items.Listing` (with provenance: query, page, rank, sponsored, the search
response as evidence), :class:`crawler.items.BlockedAttempt` (block pages, captchas, 429s, malformed bodies:
UNOBSERVABLE, never data) and :class:`crawler.items.QueryFinding` (a platform refusing a keyword itself).
Per-platform counters go to the Scrapy stats under ``tertib/<platform>/…`` for the health checks.

Spider arguments: ``platforms`` (names), ``queries`` (search terms), ``max_pages`` (per query),
``run_id`` (the SweepRun the pipelines record against).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Any

import scrapy
from scrapy.http import Response

from crawler.config import Settings
from crawler.items import BlockedAttempt, QueryFinding, SearchPage
from spiders import PROFILES
from spiders.base import SiteProfile

logger = logging.getLogger(__name__)

# URL fragments of the API responses a browser page receives for a search (the data we read).
BROWSER_SEARCH_APIS: dict[str, tuple[str, ...]] = {
    "shopee": ("/api/v4/search/search_items",),
    "facebook": ("/api/graphql",),
    "instagram": ("/api/v1/tags/",),
}
BLOCK_RETRIES = 2  # polite retries of a block page before it is recorded as UNOBSERVABLE
BLOCK_BACKOFF = 2.0  # seconds, doubled per retry (real sites); the sandbox uses 0.2


class SweepSpider(scrapy.Spider):
    name = "tertib-sweep"

    def __init__(
        self,
        platforms: Iterable[str] = (),
        queries: Iterable[str] = (),
        max_pages: int = 2,
        run_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.platforms = [p for p in platforms if p in PROFILES] or [
            name for name, profile in PROFILES.items() if profile.has_search
        ]
        self.queries = [q for q in dict.fromkeys(q.strip() for q in queries) if q]
        self.max_pages = max(1, int(max_pages))
        self.run_id = run_id
        self.related_terms: dict[str, set[str]] = defaultdict(set)
        self._browser_responses: dict[int, list[Any]] = defaultdict(list)

    @property
    def tertib_settings(self) -> Settings:
        settings: Settings = self.settings["TERTIB_SETTINGS"]
        return settings

    @property
    def backoff(self) -> float:
        return 0.2 if self.tertib_settings.sandbox_url else BLOCK_BACKOFF

    def stat(self, platform: str, key: str, count: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"tertib/{platform}/{key}", count)

    # -- requests --------------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        # Round-robin over platforms so every platform starts early and none starves the others.
        for query in self.queries:
            for platform in self.platforms:
                profile = PROFILES[platform]
                if profile.has_search:
                    yield self.search_request(profile, query, 1)

    def search_request(self, profile: SiteProfile, query: str, page: int) -> scrapy.Request:
        assert profile.search_request is not None
        spec = profile.search_request(self.tertib_settings, query, page)
        meta: dict[str, Any] = {
            "platform": profile.platform,
            "download_slot": profile.platform,
            "query": query,
            "page": page,
        }
        callback = self.parse_search
        if profile.needs_browser:
            callback = self.parse_browser_search
            meta.update(
                playwright=True,
                playwright_include_page=True,
                playwright_context=profile.platform,
                playwright_page_event_handlers={"response": self._on_browser_response},
            )
        self.stat(profile.platform, "requests")
        return scrapy.Request(
            spec.url,
            method=spec.method,
            headers=spec.headers or None,
            body=spec.body,
            callback=callback,
            errback=self.on_error,
            meta=meta,
            cb_kwargs={"platform": profile.platform, "query": query, "page": page},
            dont_filter=True,
        )

    # -- callbacks -------------------------------------------------------------------------------

    async def parse_search(
        self, response: Response, platform: str, query: str, page: int
    ) -> AsyncIterator[Any]:
        profile = PROFILES[platform]
        assert profile.parse_search is not None
        result = profile.parse_search(
            response.body, url=response.url, query=query, page=page, status=response.status
        )
        async for item in self._handle_search(response, profile, result, query, page, [response]):
            yield item

    async def parse_browser_search(
        self, response: Response, platform: str, query: str, page: int
    ) -> AsyncIterator[Any]:
        """The page ran the platform's own scripts; parse the API responses it received."""
        profile = PROFILES[platform]
        assert profile.parse_search is not None
        browser_page = response.meta.get("playwright_page")
        results: list[SearchPage] = []
        try:
            if browser_page is not None:
                api = await self._collect_api_responses(browser_page, platform)
                for api_response in api:
                    body = await api_response.body()
                    results.append(
                        profile.parse_search(
                            body, url=api_response.url, query=query, page=page, status=api_response.status
                        )
                    )
        finally:
            if browser_page is not None:
                self._browser_responses.pop(id(browser_page), None)
                await browser_page.close()
        if not results:
            # No API response arrived: the page itself may be a block/login page; let the parser judge it.
            results.append(
                profile.parse_search(
                    response.body, url=response.url, query=query, page=page, status=response.status
                )
            )
        for result in results:
            async for item in self._handle_search(response, profile, result, query, page, [response]):
                yield item

    async def _collect_api_responses(self, page: Any, platform: str, timeout: float = 10.0) -> list[Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            found = self._browser_responses.get(id(page))
            if found:
                await asyncio.sleep(0.2)  # let sibling responses of the same render arrive
                return list(self._browser_responses.get(id(page), []))
            await asyncio.sleep(0.1)
        return []

    async def _on_browser_response(self, response: Any) -> None:
        markers = BROWSER_SEARCH_APIS.get(self._platform_of(response.url), ())
        if any(marker in response.url for marker in markers):
            self._browser_responses[id(response.frame.page)].append(response)

    def _platform_of(self, url: str) -> str:
        settings = self.tertib_settings
        for platform in BROWSER_SEARCH_APIS:
            if url.startswith(settings.base_url(platform)):
                return platform
        return ""

    async def _handle_search(
        self,
        response: Response,
        profile: SiteProfile,
        result: SearchPage,
        query: str,
        page: int,
        exchanges: list[Any],
    ) -> AsyncIterator[Any]:
        platform = profile.platform
        self.stat(platform, "responses")
        if result.block is not None:
            self.stat(platform, "blocked")
            retries = response.meta.get("block_retries", 0)
            final = retries >= BLOCK_RETRIES
            yield BlockedAttempt(
                platform=platform,
                url=response.url,
                reason=result.block.reason,
                query=query,
                page=page,
                exchange=response,
                final=final,
            )
            if not final:
                await asyncio.sleep(self.backoff * (2**retries))
                request = response.request
                assert request is not None
                retry = request.replace(dont_filter=True, priority=request.priority - 1)
                retry.meta["block_retries"] = retries + 1
                self.stat(platform, "block_retries")
                yield retry
            else:
                self.stat(platform, "unobservable")
            return
        if not result.shape_ok:
            self.stat(platform, "shape_mismatch")
        if result.query_blocked:
            self.stat(platform, "query_blocked")
            yield QueryFinding(platform=platform, query=query, detail=result.query_blocked_detail)
        self.related_terms[platform].update(result.related_terms)
        if not result.listings:
            self.stat(platform, "empty_pages")
        for listing in result.listings:
            listing.query = query
            listing.page = page
            listing.source_url = response.url
            listing.exchanges = list(exchanges)
            self.stat(platform, "listings")
            yield listing
        limit = min(self.max_pages, profile.max_pages or self.max_pages)
        if result.has_more and page < limit and result.listings:
            yield self.search_request(profile, query, page + 1)

    async def on_error(self, failure: Any) -> AsyncIterator[Any]:
        request = failure.request
        platform = request.meta.get("platform", "unknown")
        self.stat(platform, "errors")
        self.stat(platform, "unobservable")
        page = request.meta.get("playwright_page")
        if page is not None:
            await page.close()
        yield BlockedAttempt(
            platform=platform,
            url=request.url,
            reason=f"error:{failure.type.__name__}",
            query=request.meta.get("query"),
            page=request.meta.get("page"),
            exchange=None,
        )
