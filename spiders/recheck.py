"""The recheck spider: fetch reported listings again and say what the platform shows now.

For each target (a listing that was requested for takedown, or any listing to audit) it fetches the
listing with its platform's own detail method from the site profile — the GraphQL detail for Tokopedia,
``_summary`` for Blibli, the product page for Lazada/TikTok Shop/Bukalapak, and the listing page in the
browser for Shopee, Facebook and Instagram — without following redirects (a redirect *is* the removal
signal on some platforms), and classifies it with the profile's rules into LIVE, REMOVED, HIDDEN or
UNOBSERVABLE (:class:`crawler.items.CheckResult` names the rule that fired).

Blocks, captchas, login walls, 429s, 5xx and malformed bodies are UNOBSERVABLE: retried politely
(``BLOCK_RETRIES``), then recorded as such — never as REMOVED.

Spider arguments: ``targets`` (dicts with listing_id, listing_key, platform, url, takedown_item_id,
round_days, due_at, attempt), ``run_id``. Yields :class:`RecheckObservation` items; the recheck pipeline
captures evidence and writes the ledger.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import scrapy
from scrapy.http import Response

from crawler.config import Settings
from crawler.items import CheckResult, Verdict
from spiders.base import SiteProfile
from spiders.browser import browser_login, on_login_wall, playwright_meta

logger = logging.getLogger(__name__)

BLOCK_RETRIES = 2


@dataclass(slots=True)
class RecheckObservation:
    target: dict[str, Any]
    result: CheckResult
    response: Any  # the scrapy Response observed (evidence), or None after a network error
    page_html: str | None = None  # rendered page for browser platforms
    screenshot_png: bytes | None = None  # taken in the platform's logged-in browser context


class RecheckSpider(scrapy.Spider):
    name = "tertib-recheck"

    def __init__(
        self, targets: Iterable[Mapping[str, Any]] = (), run_id: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.targets = [dict(t) for t in targets]
        self.run_id = run_id
        self.platforms = sorted({t["platform"] for t in self.targets})

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
            profile = self.tertib_settings.registry.find(target["platform"])
            if profile is None:
                logger.warning("no site profile for %s; skipping %s", target["platform"], target["url"])
                continue
            yield self.detail_request(profile, target)

    def detail_request(
        self, profile: SiteProfile, target: dict[str, Any], retries: int = 0
    ) -> scrapy.Request:
        meta: dict[str, Any] = {
            "platform": profile.platform,
            "download_slot": profile.platform + ":detail",
            "dont_redirect": True,
            "handle_httpstatus_all": True,
            "block_retries": retries,
        }
        if profile.needs_browser:
            # the listing page as a person sees it; redirects (login walls) are followed by the browser
            url, method, headers, body = target["url"], "GET", None, None
            meta.update(playwright_meta(profile))
            meta.pop("dont_redirect")
        else:
            spec = profile.detail_request(self.tertib_settings, target["url"])
            url, method, headers, body = spec.url, spec.method, spec.headers or None, spec.body
        self.stat(profile.platform, "requests")
        return scrapy.Request(
            url,
            method=method,
            headers=headers,
            body=body,
            meta=meta,
            callback=self.parse_recheck,
            errback=self.on_error,
            cb_kwargs={"target": target},
            dont_filter=True,
        )

    async def parse_recheck(self, response: Response, target: dict[str, Any]) -> AsyncIterator[Any]:
        profile = self.tertib_settings.registry.get(target["platform"])
        self.stat(profile.platform, "responses")
        page = response.meta.get("playwright_page")
        html: str | None = None
        png: bytes | None = None
        body: bytes | str = response.body
        url, status = response.url, response.status
        try:
            if page is not None:
                if on_login_wall(profile, page.url) and await browser_login(
                    page, profile, self.tertib_settings, target["url"]
                ):
                    body = await page.content()
                url, html = page.url, body if isinstance(body, str) else response.text
                if self.settings.getbool("EVIDENCE_SCREENSHOT", True):
                    png = await page.screenshot(full_page=True, type="png")
        except Exception as exc:
            logger.warning("recheck login failed for %s: %s", target["url"], exc)
        finally:
            if page is not None:
                await page.close()
        headers = {k.decode("latin-1"): b",".join(v).decode("latin-1") for k, v in response.headers.items()}
        result = profile.parse_detail(body, url=url, status=status, headers=headers)
        if result.verdict is Verdict.UNOBSERVABLE and response.meta.get("block_retries", 0) < BLOCK_RETRIES:
            self.stat(profile.platform, "block_retries")
            await asyncio.sleep(self.backoff * 2 ** response.meta.get("block_retries", 0))
            yield self.detail_request(profile, target, retries=response.meta.get("block_retries", 0) + 1)
            return
        self.stat(profile.platform, result.verdict.value.lower())
        yield RecheckObservation(
            target=target, result=result, response=response, page_html=html, screenshot_png=png
        )

    async def on_error(self, failure: Any) -> AsyncIterator[Any]:
        request = failure.request
        target = request.cb_kwargs["target"]
        platform = target["platform"]
        page = request.meta.get("playwright_page")
        if page is not None:
            await page.close()
        self.stat(platform, "errors")
        retries = request.meta.get("block_retries", 0)
        if retries < BLOCK_RETRIES:
            await asyncio.sleep(self.backoff * 2**retries)
            yield self.detail_request(
                self.tertib_settings.registry.get(platform), target, retries=retries + 1
            )
            return
        self.stat(platform, "unobservable")
        result = CheckResult(
            platform=platform,
            listing_id=target["listing_key"].partition(":")[2],
            verdict=Verdict.UNOBSERVABLE,
            rule=f"{platform}.network_error",
            signal=failure.type.__name__,
        )
        yield RecheckObservation(target=target, result=result, response=None)
