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

Spider arguments: ``work`` (:class:`crawler.work.SweepWork`: platforms × queries × a page window; a
platform's own ``max_pages`` still caps the window) and ``run_id`` (the SweepRun the pipelines record
against).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Mapping
from typing import Any, Self

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.config import Settings
from crawler.evidence.exchange import Exchange
from crawler.items import BlockedAttempt, QueryFinding, SearchPage
from crawler.work import SweepWork
from spiders.base import SiteProfile
from spiders.browser import browser_login, on_login_wall, playwright_meta

logger = logging.getLogger(__name__)

BLOCK_RETRIES = 2  # polite retries of a block page before it is recorded as UNOBSERVABLE
BLOCK_BACKOFF = 2.0  # seconds, doubled per retry (real sites); the sandbox uses 0.2


class SweepSpider(scrapy.Spider):
    name = "tertib-sweep"

    def __init__(self, work: SweepWork, run_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.work = work
        self.platforms: list[str] = []  # resolved against the registry in from_crawler()
        self.queries = list(work.queries)
        self.run_id = run_id
        self.related_terms: dict[str, set[str]] = defaultdict(set)
        # platform -> {missing path: answers}: what stopped matching the profile (a redesign), for health
        self.shape_changes: dict[str, Counter[str]] = defaultdict(Counter)
        self._browser_responses: dict[int, list[Any]] = defaultdict(list)

    @property
    def tertib_settings(self) -> Settings:
        settings: Settings = self.settings["TERTIB_SETTINGS"]
        return settings

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        registry = spider.tertib_settings.registry
        requested = spider.work.platforms
        spider.platforms = [p for p in requested if p in registry] or list(registry.search_names)
        return spider

    @property
    def profiles(self) -> Mapping[str, SiteProfile]:
        return self.tertib_settings.registry.profiles

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
                profile = self.profiles[platform]
                if profile.sweepable and self.work.first_page <= self._page_limit(profile):
                    # scroll-paginated platforms load from the top; the rest ask for the window's first page
                    first = 1 if profile.scroll_pagination else self.work.first_page
                    yield self.search_request(profile, query, first)

    def search_request(self, profile: SiteProfile, query: str, page: int) -> scrapy.Request:
        assert profile.search_request is not None
        spec = profile.search_request(self.tertib_settings, query, page)
        meta: dict[str, Any] = {
            "platform": profile.platform,
            "download_slot": profile.platform,
            "query": query,
            "page": page,
            "tertib_judge": True,  # the parser tells a block page from content (proxy health)
        }
        callback = self.parse_search
        if profile.needs_browser:
            callback = self.parse_browser_search
            meta.update(
                playwright_meta(
                    profile, playwright_page_event_handlers={"response": self._response_handler(profile)}
                )
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
        profile = self.profiles[platform]
        async for item in self._handle_search(
            response, profile, self._parse_response(profile, response), query, page
        ):
            yield item

    async def parse_browser_search(
        self, response: Response, platform: str, query: str, page: int
    ) -> AsyncIterator[Any]:
        """The page ran the platform's own scripts; parse the API responses it received.

        1. Log in first when the page landed on a login wall (sandbox test account only).
        2. First page: the data embedded in the page, else the API responses it received.
        3. Scroll-paginated platforms: scroll for each further page and read the new API responses.
        """
        profile = self.profiles[platform]
        browser_page = response.meta.get("playwright_page")
        egress = str(response.meta.get("tertib_egress") or "")  # the page's context's proxy, or "direct"
        if browser_page is None:
            async for item in self._handle_search(
                response, profile, self._parse_response(profile, response), query, page
            ):
                yield item
            return
        pages: list[tuple[int, SearchPage, list[Exchange]]] = []  # page number, result, evidence
        try:
            # 1. Login wall?
            html: bytes | str = response.body
            if on_login_wall(profile, browser_page.url):
                if not await self._login(
                    browser_page, profile, response.request.url if response.request else ""
                ):
                    self.stat(platform, "blocked")
                    self.stat(platform, "unobservable")
                    yield BlockedAttempt(
                        platform,
                        browser_page.url,
                        "login_wall",
                        query,
                        page,
                        exchange=Exchange.from_scrapy(response),
                    )
                    return
                html = await browser_page.content()
            # 2. First page.
            first = None
            first_exchanges: list[Exchange] = [Exchange.from_scrapy(response)]
            if profile.scroll_pagination:
                first = profile.parse_search(html, url=browser_page.url, query=query, page=page)  # type: ignore[misc]
                if not first.listings and first.block is None:
                    first = None
            if first is None:
                api = await self._new_api_responses(browser_page, seen=0)
                if api:
                    first, first_exchanges = await self._parse_api_responses(
                        profile, api, query, page, egress
                    )
                else:
                    first = profile.parse_search(html, url=browser_page.url, query=query, page=page)  # type: ignore[misc]
            pages.append((page, first, first_exchanges))
            # 3. More pages by scrolling.
            if profile.scroll_pagination and first.block is None and first.listings:
                seen = len(self._browser_responses.get(id(browser_page), []))
                for next_page in range(page + 1, self._page_limit(profile) + 1):
                    await browser_page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
                    api = await self._new_api_responses(browser_page, seen=seen)
                    if not api:
                        break
                    seen += len(api)
                    result, exchanges = await self._parse_api_responses(
                        profile, api, query, next_page, egress
                    )
                    pages.append((next_page, result, exchanges))
                    if result.block is not None or not result.has_more:
                        break
        except Exception as exc:  # the browser died or the page went away: unobservable, not "no listings"
            logger.warning("%s browser search failed for %r page %d: %s", platform, query, page, exc)
            self.stat(platform, "errors")
            self.stat(platform, "unobservable")
            yield BlockedAttempt(platform, response.url, f"browser_error:{type(exc).__name__}", query, page)
            return
        finally:
            self._browser_responses.pop(id(browser_page), None)
            await browser_page.close()
        for number, result, exchanges in pages:
            if number < self.work.first_page and result.block is None:
                continue  # scrolled past on the way to the window
            follow = not profile.scroll_pagination
            async for item in self._handle_search(
                response, profile, result, query, number, follow=follow, exchanges=exchanges
            ):
                yield item

    def _parse_response(self, profile: SiteProfile, response: Response) -> SearchPage:
        assert profile.parse_search is not None
        query, page = response.meta["query"], response.meta["page"]
        return profile.parse_search(
            response.body, url=response.url, query=query, page=page, status=response.status
        )

    def _page_limit(self, profile: SiteProfile) -> int:
        last = self.work.last_page
        return min(last, profile.max_pages or last)

    async def _login(self, browser_page: Any, profile: SiteProfile, target: str) -> bool:
        self._browser_responses.pop(id(browser_page), None)
        return await browser_login(browser_page, profile, self.tertib_settings, target)

    async def _parse_api_responses(
        self, profile: SiteProfile, api_responses: list[Any], query: str, page: int, egress: str
    ) -> tuple[SearchPage, list[Exchange]]:
        """Merge the search results of the API responses one page render (or one scroll) received;
        the responses themselves, as received (through ``egress``), are the evidence."""
        merged: SearchPage | None = None
        exchanges: list[Exchange] = []
        for api_response in api_responses:
            result, exchange = await self._parse_api_response(profile, api_response, query, page, egress)
            exchanges.append(exchange)
            if merged is None or (merged.block is not None and result.block is None):
                merged = result
            elif result.block is None:
                merged.listings.extend(result.listings)
                merged.has_more = result.has_more
                merged.related_terms.extend(result.related_terms)
        assert merged is not None
        return merged, exchanges

    async def _parse_api_response(
        self, profile: SiteProfile, api_response: Any, query: str, page: int, egress: str
    ) -> tuple[SearchPage, Exchange]:
        """Parse one API response the page received; a redirect (captcha, traffic check) is read from its
        Location, since a redirect has no body."""
        assert profile.parse_search is not None
        exchange = await Exchange.from_playwright(api_response, egress=egress)
        if 300 <= exchange.status < 400:
            location = dict(exchange.response_headers).get("location") or api_response.url
            return profile.parse_search(
                b"", url=location, query=query, page=page, status=exchange.status
            ), exchange
        result = profile.parse_search(
            exchange.body, url=exchange.url, query=query, page=page, status=exchange.status
        )
        return result, exchange

    async def _new_api_responses(self, browser_page: Any, *, seen: int, timeout: float = 10.0) -> list[Any]:
        """API responses received after the first ``seen`` ones, waiting up to ``timeout`` for one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            found = self._browser_responses.get(id(browser_page), [])
            if len(found) > seen:
                await asyncio.sleep(0.2)  # let sibling responses of the same render arrive
                return list(self._browser_responses.get(id(browser_page), []))[seen:]
            await asyncio.sleep(0.05)
        return []

    def _response_handler(self, profile: SiteProfile) -> Any:
        markers = profile.browser_api_markers

        async def on_response(response: Any) -> None:
            if any(marker in response.url for marker in markers):
                self._browser_responses[id(response.frame.page)].append(response)

        return on_response

    async def _handle_search(
        self,
        response: Response,
        profile: SiteProfile,
        result: SearchPage,
        query: str,
        page: int,
        *,
        follow: bool = True,
        exchanges: list[Exchange] | None = None,
    ) -> AsyncIterator[Any]:
        platform = profile.platform
        self.stat(platform, "responses")
        self._proxy_feedback(response, result)
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
                exchange=Exchange.from_scrapy(response),
                final=final,
            )
            if not final:
                await asyncio.sleep(self.backoff * (2**retries))
                request = response.request
                assert request is not None
                retry = request.replace(dont_filter=True, priority=request.priority - 1)
                retry.meta.pop("download_latency", None)
                retry.meta["block_retries"] = retries + 1
                self.stat(platform, "block_retries")
                yield retry
            else:
                self.stat(platform, "unobservable")
            return
        if not result.shape_ok:  # not a block (returned above), not an empty page: the shape changed
            self.stat(platform, "shape_mismatch")
            self.shape_changes[platform].update(result.missing_paths or ["(no path named)"])
        if result.query_blocked:
            self.stat(platform, "query_blocked")
            yield QueryFinding(platform=platform, query=query, detail=result.query_blocked_detail)
        self.related_terms[platform].update(result.related_terms)
        if not result.listings:
            self.stat(platform, "empty_pages")
        # the evidence of every listing on this page (the candidates share one exchange object, so the
        # recorder digests and block-checks it once)
        evidence = list(exchanges) if exchanges else [Exchange.from_scrapy(response)]
        for listing in result.listings:
            listing.query = query
            listing.page = page
            listing.source_url = response.url
            listing.exchanges = list(evidence)
            self.stat(platform, "listings")
            yield listing
        if follow and result.has_more and page < self._page_limit(profile) and result.listings:
            yield self.search_request(profile, query, page + 1)

    def _proxy_feedback(self, response: Response, result: SearchPage) -> None:
        """Tell the proxy pool whether the answer that came through a proxy was content or a block page."""
        used = response.meta.get("tertib_proxy")
        pool = self.settings.get("TERTIB_PROXY_POOL")
        if used and pool is not None:
            if result.block is not None:
                pool.report(*used, "block", f"{result.block.reason}: {result.block.detail}"[:160])
            else:
                pool.report(*used, "ok")

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
