"""The follow spider: every listing of the shops of confirmed sellers, page by page.

A seller whose listing a reviewer approved keeps selling, often under new words after a takedown; no lexicon
query finds those listings, their shop page does. This spider is the sweep spider with a different kind of
request: for each target it asks the platform's shop listing endpoint (``SiteProfile.shop_request``, parsed
by ``SiteProfile.parse_shop``) instead of the keyword search, so politeness, block retries, the
per-platform counters and every pipeline stage (score, evidence, persist) are the sweep's.

Spider arguments: ``targets`` (dicts ``{platform, seller_id, name}``; platforms without a shop endpoint are
skipped), ``max_pages`` (per shop), ``run_id``. Each listing's provenance query is ``seller:<seller id>``
and it carries the followed seller's id and name when the shop page does not repeat them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Self

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawler.items import Listing, SearchPage
from crawler.work import SweepWork
from spiders.base import SiteProfile
from spiders.sweep import SweepSpider

PREFIX = "seller:"


class FollowSpider(SweepSpider):
    name = "tertib-follow"

    def __init__(
        self,
        targets: Iterable[Mapping[str, Any]] = (),
        max_pages: int = 5,
        run_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.targets = [dict(t) for t in targets if t.get("platform")]
        self.names: dict[tuple[str, str], str | None] = {}
        platforms = sorted({str(t["platform"]) for t in self.targets})
        super().__init__(SweepWork.of(platforms, (), last_page=max_pages), run_id=run_id, **kwargs)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        # only shops whose platform's profile can be followed; no fallback to every searchable platform
        profiles = spider.profiles
        spider.targets = [
            t for t in spider.targets if t["platform"] in profiles and profiles[t["platform"]].can_follow
        ]
        spider.platforms = sorted({t["platform"] for t in spider.targets})
        spider.queries = [
            f"{PREFIX}{t['platform']}:{t['seller_id']}" for t in spider.targets
        ]  # health checks
        spider.names = {(t["platform"], str(t["seller_id"])): t.get("name") for t in spider.targets}
        return spider

    async def start(self) -> AsyncIterator[Any]:
        for target in self.targets:
            yield self.search_request(self.profiles[target["platform"]], f"{PREFIX}{target['seller_id']}", 1)

    def search_request(self, profile: SiteProfile, query: str, page: int) -> scrapy.Request:
        """A page of a shop (``query`` is ``seller:<id>``); the sweep's callbacks handle the answer."""
        assert profile.shop_request is not None
        spec = profile.shop_request(self.tertib_settings, query[len(PREFIX) :], page)
        meta: dict[str, Any] = {
            "platform": profile.platform,
            "download_slot": profile.platform,
            "query": query,
            "page": page,
        }
        self.stat(profile.platform, "requests")
        return scrapy.Request(
            spec.url,
            method=spec.method,
            headers=spec.headers or None,
            body=spec.body,
            callback=self.parse_search,
            errback=self.on_error,
            meta=meta,
            cb_kwargs={"platform": profile.platform, "query": query, "page": page},
            dont_filter=True,
        )

    def _parse_response(self, profile: SiteProfile, response: Response) -> SearchPage:
        assert profile.parse_shop is not None
        query, page = response.meta["query"], response.meta["page"]
        return profile.parse_shop(
            response.body, url=response.url, query=query, page=page, status=response.status
        )

    async def _handle_search(
        self,
        response: Response,
        profile: SiteProfile,
        result: SearchPage,
        query: str,
        page: int,
        *,
        follow: bool = True,
        exchanges: list[Any] | None = None,
    ) -> AsyncIterator[Any]:
        seller_id = query[len(PREFIX) :]
        async for item in super()._handle_search(
            response, profile, result, query, page, follow=follow, exchanges=exchanges
        ):
            if isinstance(item, Listing):
                item.seller_id = item.seller_id or seller_id
                item.seller_name = item.seller_name or self.names.get((profile.platform, seller_id))
            yield item
