"""Pasar Loak, a made-up JSON marketplace: the site profile of the extra test platform.

Search ``GET /api/search?q=…&page=N`` → ``{"items": [{"id", "title", "price", "seller": {"id", "name"}}],
"page", "has_more"}``; listing page ``/barang/{id}``; detail ``GET /api/barang/{id}`` → ``{"item": {…,
"description"}}`` (LIVE), HTTP 404 (REMOVED), ``{"item": {"status": "disembunyikan"}}`` (HIDDEN).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from crawler.config import Settings
from crawler.items import Block, CheckResult, Listing, SearchPage, Verdict
from spiders.base import (
    Body,
    PathReader,
    RequestSpec,
    SiteProfile,
    block_result,
    blocked_page,
    finish_listings,
    html_title,
    id_text,
    parse_price,
    query_string,
    read_api_json,
    text_or_none,
)

PLATFORM = "pasarloak"
PAGE_SIZE = 20
_ID = re.compile(r"/barang/(\d+)")


def _html_block(text: str) -> Block:
    return Block(PLATFORM, "html_block", html_title(text))


def listing_id_from_url(url: str) -> str | None:
    match = _ID.search(url)
    return match.group(1) if match else None


def search_request(settings: Settings, query: str, page: int = 1) -> RequestSpec:
    params = query_string({"q": query, "page": max(page, 1)})
    return RequestSpec(f"{settings.base_url(PLATFORM)}/api/search?{params}")


def detail_request(settings: Settings, url: str) -> RequestSpec:
    return RequestSpec(f"{settings.base_url(PLATFORM)}/api/barang/{listing_id_from_url(url) or ''}")


def parse_search(body: Body, *, url: str, query: str, page: int, status: int = 200) -> SearchPage:
    data, block = read_api_json(PLATFORM, body, status=status, html_block=_html_block)
    if block is not None:
        return blocked_page(PLATFORM, block)
    reader = PathReader()
    items = reader.require(data, "items", list) or []
    base = url.split("/api/", 1)[0]
    listings = []
    for item in items:
        listing_id = id_text(item.get("id")) if isinstance(item, dict) else None
        if not listing_id:
            continue
        seller = item.get("seller") or {}
        listings.append(
            Listing(
                platform=PLATFORM,
                listing_id=listing_id,
                url=f"{base}/barang/{listing_id}",
                title=str(item.get("title") or ""),
                price=parse_price(item.get("price")),
                seller_id=id_text(seller.get("id")),
                seller_name=text_or_none(seller.get("name")),
            )
        )
    return SearchPage(
        platform=PLATFORM,
        listings=finish_listings(listings, url=url, query=query, page=page),
        has_more=bool(isinstance(data, dict) and data.get("has_more")),
        shape_ok=reader.ok,
    )


def parse_detail(
    body: Body, *, url: str, status: int = 200, headers: Mapping[str, Any] | None = None
) -> CheckResult:
    listing_id = listing_id_from_url(url) or ""
    if status == 404:
        return CheckResult(PLATFORM, listing_id, Verdict.REMOVED, "pasarloak.http_404", "404")
    data, block = read_api_json(PLATFORM, body, status=status, headers=headers, html_block=_html_block)
    if block is not None:
        return block_result(PLATFORM, listing_id, block)
    item = data.get("item") if isinstance(data, dict) else None
    if not isinstance(item, dict):
        return block_result(PLATFORM, listing_id, _html_block("no item"))
    if item.get("status") == "disembunyikan":
        return CheckResult(PLATFORM, listing_id, Verdict.HIDDEN, "pasarloak.hidden", "disembunyikan")
    listing = Listing(
        platform=PLATFORM,
        listing_id=listing_id,
        url=url,
        title=str(item.get("title") or ""),
        description=str(item.get("description") or ""),
    )
    return CheckResult(PLATFORM, listing_id, Verdict.LIVE, "pasarloak.item", "", listing)


PROFILE = SiteProfile(
    platform=PLATFORM,
    display_name="Pasar Loak",
    operator="PT Pasar Loak Nusantara (uji)",
    base_urls={PLATFORM: "https://www.pasarloak.invalid"},
    colour=(90, 60, 30),
    id_scheme="the numeric id at the end of /barang/{id}",
    parse_search=parse_search,
    search_request=search_request,
    parse_detail=parse_detail,
    detail_request=detail_request,
    listing_id_from_url=listing_id_from_url,
    page_size=PAGE_SIZE,
    max_pages=5,
    concurrency=2,
    download_delay=1.0,
    removal_rules=("pasarloak.http_404",),
    hidden_rules=("pasarloak.hidden",),
)
