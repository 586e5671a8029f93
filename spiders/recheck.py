"""The recheck spider: fetch reported listings again and say what the platform shows now.

For each target (a listing that was requested for takedown, or any listing to audit) it fetches the
listing with its platform's own detail method from the site profile — the GraphQL detail for Tokopedia,
``_summary`` for Blibli, the product page for Lazada/TikTok Shop/Bukalapak, and the listing page in the
browser for Shopee, Facebook and Instagram — without following redirects (a redirect *is* the removal
signal on some platforms), and classifies it with the profile's rules into LIVE, REMOVED, HIDDEN or
UNOBSERVABLE (:class:`crawler.items.CheckResult` names the rule that fired).

Blocks, captchas, login walls, 429s, 5xx and malformed bodies are UNOBSERVABLE: retried politely
(``BLOCK_RETRIES``), then recorded as such — never as REMOVED.

Listings are opened with :mod:`spiders.pages`, the same request and reader the sweep's detail fetches use.

Spider arguments: ``targets`` (:class:`crawler.items.RecheckTarget`), ``run_id``. Yields
:class:`crawler.items.RecheckObservation` items; the recheck pipeline (``crawler.recheck``) captures
evidence and writes the ledger.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.config import Settings
from crawler.items import CheckResult, RecheckObservation, RecheckTarget, Verdict
from spiders.base import SiteProfile
from spiders.pages import listing_request, read_listing_page

logger = logging.getLogger(__name__)

BLOCK_RETRIES = 2


class RecheckSpider(scrapy.Spider):
    name = "tertib-recheck"

    def __init__(
        self, targets: Iterable[RecheckTarget] = (), run_id: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.targets = list(targets)
        self.run_id = run_id
        self.platforms = sorted({t.platform for t in self.targets})

    @property
    def tertib_settings(self) -> Settings:
        settings: Settings = self.settings["TERTIB_SETTINGS"]
        return settings

    @property
    def backoff(self) -> float:
        return 0.2 if self.tertib_settings.sandbox_url else 2.0

    def stat(self, platform: str, key: str) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"tertib/{platform}/{key}")

    async def start(self) -> AsyncIterator[Any]:
        for target in self.targets:
            profile = self.tertib_settings.registry.find(target.platform)
            if profile is None:
                logger.warning("no site profile for %s; skipping %s", target.platform, target.url)
                continue
            yield self.detail_request(profile, target)

    def detail_request(self, profile: SiteProfile, target: RecheckTarget, retries: int = 0) -> scrapy.Request:
        self.stat(profile.platform, "requests")
        return listing_request(
            profile,
            self.tertib_settings,
            target.url,
            meta={"block_retries": retries},
            callback=self.parse_recheck,
            errback=self.on_error,
            cb_kwargs={"target": target},
        )

    async def parse_recheck(self, response: Response, target: RecheckTarget) -> AsyncIterator[Any]:
        profile = self.tertib_settings.registry.get(target.platform)
        self.stat(profile.platform, "responses")
        page = await read_listing_page(
            response,
            profile,
            self.tertib_settings,
            target.url,
            screenshot=self.settings.getbool("EVIDENCE_SCREENSHOT", True),
        )
        if page.error is not None:  # what the page showed before the failing step is still the answer
            logger.warning("recheck: a browser step failed for %s: %s", target.url, page.error)
        result = page.check(profile)
        retries = int(response.meta.get("block_retries", 0))
        if result.verdict is Verdict.UNOBSERVABLE and retries < BLOCK_RETRIES:
            self.stat(profile.platform, "block_retries")
            await asyncio.sleep(self.backoff * 2**retries)
            yield self.detail_request(profile, target, retries=retries + 1)
            return
        self.stat(profile.platform, result.verdict.value.lower())
        yield RecheckObservation(
            target=target, result=result, exchange=page.exchange, screenshot_png=page.screenshot_png
        )

    async def on_error(self, failure: Failure) -> AsyncIterator[Any]:
        request = failure.request  # type: ignore[attr-defined]  # Scrapy sets it on errback failures
        target: RecheckTarget = request.cb_kwargs["target"]
        platform = target.platform
        page = request.meta.get("playwright_page")
        if page is not None:
            await page.close()
        self.stat(platform, "errors")
        retries = int(request.meta.get("block_retries", 0))
        if retries < BLOCK_RETRIES:
            await asyncio.sleep(self.backoff * 2**retries)
            yield self.detail_request(
                self.tertib_settings.registry.get(platform), target, retries=retries + 1
            )
            return
        self.stat(platform, "unobservable")
        assert failure.type is not None
        result = CheckResult(
            platform=platform,
            listing_id=target.listing_key.partition(":")[2],
            verdict=Verdict.UNOBSERVABLE,
            rule=f"{platform}.network_error",
            signal=failure.type.__name__,
        )
        yield RecheckObservation(target=target, result=result, exchange=None)
