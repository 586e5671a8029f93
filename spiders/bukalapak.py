"""Bukalapak: recheck of historic listing links (the marketplace stopped selling physical goods in
February 2025) and the historic search API shape, for old captures.

Host: ``bukalapak`` from ``Settings.base_url``. Listing id: the id at the end of
``/p/{category}/{slug}-{id}``.

Historic search: ``GET https://api.bukalapak.com/multistrategy-products?keywords=…&limit=50&offset=…`` →
``data[].{id, name, price, url, images.large_urls[], store.{id, name, address.city}}``, ``meta.total``.
It is not requested any more (no ``search_request``); :func:`parse_search` reads saved responses.

Detail verdicts [I]: HTTP 404 → REMOVED (``bukalapak.http_404``); a redirect (or a final URL) to the closure
notice ``/bukalapak-berhenti-jualan-produk-fisik`` → REMOVED (``bukalapak.closure_redirect``); a page with a
schema.org ``Product`` → LIVE; anything else → UNOBSERVABLE.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from crawler.config import Settings
from crawler.errors import UsageError
from crawler.items import Block, CheckResult, Listing, SearchPage, Verdict
from spiders.base import (
    AnswerRule,
    Body,
    PathReader,
    RequestSpec,
    SiteProfile,
    absolute_url,
    block_result,
    blocked_page,
    body_text,
    finish_listings,
    get_path,
    header,
    http_block,
    id_text,
    json_ld,
    looks_like_html,
    missing_item_paths,
    parse_price,
    read_api_json,
    strip_query,
    text_or_none,
    unobservable,
)

PLATFORM = "bukalapak"
PAGE_SIZE = 50
CLOSURE_PATH = "/bukalapak-berhenti-jualan-produk-fisik"
_ID_IN_URL = re.compile(r"/p/(?:[^/]+/)*[^/]*-([0-9a-z]+)(?:[/?#]|$)")


def listing_id_from_url(url: str) -> str | None:
    match = _ID_IN_URL.search(urlsplit(url).path + "/")
    return match.group(1) if match else None


def detail_request(settings: Settings, ref: str) -> RequestSpec:
    """The historic listing page, re-based onto the configured host (redirects must not be followed)."""
    path = urlsplit(ref).path if "://" in ref else ref
    if "/p/" not in path:
        raise UsageError(f"not a Bukalapak listing URL (…/p/…-ID): {ref}")
    return RequestSpec(settings.base_url("bukalapak") + path[path.index("/p/") :], "GET", {})


def _listing(item: Mapping[str, Any], base: str) -> Listing | None:
    listing_id = id_text(item.get("id"))
    url = absolute_url(base, item.get("url"))
    if not listing_id or not url:
        return None
    store = item.get("store") or {}
    images = get_path(item, "images.large_urls") or get_path(item, "images.small_urls") or []
    return Listing(
        platform=PLATFORM,
        listing_id=listing_id,
        url=strip_query(url),
        title=str(item.get("name") or "").strip(),
        description=str(item.get("description") or "").strip(),
        price=parse_price(item.get("price")),
        seller_id=id_text(store.get("id")),
        seller_name=text_or_none(store.get("name")),
        seller_city=text_or_none(get_path(store, "address.city")),
        shop_url=text_or_none(store.get("url")),
        image_url=text_or_none(images[0]) if images else None,
        condition=text_or_none(item.get("condition")),
        sold_text=text_or_none(get_path(item, "stats.sold_count")),
        status=text_or_none(item.get("state")),
        raw={"category": get_path(item, "category.name")},
    )


def parse_search(
    body: Body, *, url: str = "", query: str = "", page: int = 1, status: int = 200
) -> SearchPage:
    """A saved ``multistrategy-products`` response → listings (historic shape)."""
    data, block = read_api_json(
        PLATFORM,
        body,
        status=status,
        html_block=lambda _html: Block(PLATFORM, "unexpected_html", "HTML where API JSON was expected"),
    )
    if block:
        return blocked_page(PLATFORM, block)
    reader = PathReader()
    items = reader.require(data, "data", list)
    if items is None:
        return SearchPage(platform=PLATFORM, shape_ok=False, missing_paths=reader.missing)
    base = "https://www.bukalapak.com"
    listings = [item for item in (_listing(i, base) for i in items if isinstance(i, dict)) if item]
    total = get_path(data, "meta.total")
    missing = missing_item_paths(items, ("id", "name", "url"), "data")
    result = SearchPage(
        platform=PLATFORM,
        total=total if isinstance(total, int) else None,
        shape_ok=not missing,
        missing_paths=missing,
    )
    result.listings = finish_listings(listings, url=url, query=query, page=page)
    result.has_more = bool(items) and (result.total is None or page * PAGE_SIZE < result.total)
    return result


def parse_detail(
    body: Body, *, url: str = "", status: int = 200, headers: Mapping[str, Any] | None = None
) -> CheckResult:
    """A historic listing page (or its redirect) → verdict."""
    guess_id = listing_id_from_url(url) or ""
    if status == 404:
        return CheckResult(PLATFORM, guess_id, Verdict.REMOVED, "bukalapak.http_404", "HTTP 404")
    location = header(headers, "Location") if status in (301, 302, 303, 307, 308) else ""
    for target in (location, url):
        if target and CLOSURE_PATH in target:
            return CheckResult(PLATFORM, guess_id, Verdict.REMOVED, "bukalapak.closure_redirect", target)
    if location:
        return unobservable(PLATFORM, guess_id, "bukalapak.redirect_elsewhere", location)
    block = http_block(PLATFORM, status, headers)
    if block:
        return block_result(PLATFORM, guess_id, block)
    text = body_text(body)
    products = json_ld(text, "Product") if looks_like_html(text) else []
    if not products:
        return unobservable(PLATFORM, guess_id, "bukalapak.no_product_data", "no schema.org Product")
    product = products[0]
    offers = product.get("offers") or {}
    offer = offers[0] if isinstance(offers, list) and offers else offers
    listing = Listing(
        platform=PLATFORM,
        listing_id=guess_id or listing_id_from_url(str(product.get("url") or "")) or "",
        url=strip_query(url or str(product.get("url") or "")),
        title=str(product.get("name") or "").strip(),
        description=str(product.get("description") or "").strip(),
        price=parse_price(offer.get("price")) if isinstance(offer, dict) else None,
        seller_name=text_or_none(get_path(offer, "seller.name")) if isinstance(offer, dict) else None,
        source_url=url or None,
    )
    if not listing.listing_id:
        return unobservable(PLATFORM, "", "bukalapak.unexpected_shape", "no listing id")
    return CheckResult(PLATFORM, listing.listing_id, Verdict.LIVE, "bukalapak.jsonld_product", "", listing)


PROFILE = SiteProfile(
    platform=PLATFORM,
    display_name="Bukalapak",
    operator="PT Bukalapak.com Tbk",
    base_urls={"bukalapak": "https://www.bukalapak.com"},
    colour=(230, 0, 90),
    id_scheme="the id at the end of /p/…-{id}",
    no_search_reason="Bukalapak is recheck-only (it stopped selling physical goods in February 2025)",
    parse_search=parse_search,
    parse_detail=parse_detail,
    detail_request=detail_request,
    listing_id_from_url=listing_id_from_url,
    page_size=PAGE_SIZE,
    needs_browser=False,
    concurrency=1,
    download_delay=2.0,
    removal_rules=("bukalapak.http_404", "bukalapak.closure_redirect"),
    notes="Recheck only; physical-goods marketplace closed in February 2025. Do not follow redirects.",
    answers=(
        AnswerRule("search", r"^/multistrategy-products\b"),
        AnswerRule("detail", r"^/p/"),
    ),
)
