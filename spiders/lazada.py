"""Lazada Indonesia: search (``/catalog/?ajax=true`` JSON, or ``window.pageData`` in the HTML page) and
listing detail (``var __moduleData__ = {...};`` plus a schema.org ``Product`` JSON-LD).

Host: ``lazada`` from ``Settings.base_url``. Listing id: ``itemId``; the ``skuId`` goes into
``Listing.extra_ids["sku_id"]``. Listing URLs look like ``/products/{slug}-i{itemId}-s{skuId}.html``.

Search paths: ``mainInfo.{totalResults, page, pageSize, noMorePages}``, ``mods.listItems[]``.
Block markers: JSON ``{"rgv587_flag": …}`` (punish/slider), HTML with "slide to verify"/``x5secdata``/
``punish``; 429/5xx; malformed bodies.

Detail verdicts [I]: a 301/302 from ``/products/…`` to anything that is not a product page and not a
block page (``/catalog/?q=…``, ``/``) → REMOVED (``lazada.redirect_off_product``);
``data.root.fields.product.status == "inactive"`` → HIDDEN (``lazada.product_inactive``); readable
``__moduleData__`` or JSON-LD ``Product`` → LIVE; an HTML page with neither → UNOBSERVABLE (blocked).

``rank`` is the 1-based position within the page (global rank = ``(page - 1) * 40 + rank``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from crawler.config import Settings
from crawler.errors import UsageError
from crawler.items import Block, CheckResult, Listing, SearchPage, Verdict
from spiders.base import (
    AnswerRule,
    Body,
    BodyError,
    PathReader,
    RequestSpec,
    SiteProfile,
    abroad_location,
    absolute_url,
    block_result,
    blocked_page,
    body_text,
    extract_js_assignment,
    find_marker,
    finish_listings,
    get_path,
    header,
    html_to_text,
    http_block,
    id_text,
    json_ld,
    load_json,
    looks_like_html,
    malformed,
    missing_item_paths,
    origin_fact,
    parse_price,
    query_string,
    set_origin,
    strip_query,
    text_or_none,
    unobservable,
)

PLATFORM = "lazada"
PAGE_SIZE = 40
MAX_PAGES = 102  # Lazada caps catalogue paging around 102 pages
BLOCK_MARKERS = ("slide to verify", "x5secdata", "punish", "rgv587_flag", "baxia-dialog", "captcha")
_ID_IN_URL = re.compile(r"-i(\d+)(?:-s(\d+))?\.html")


def search_url(settings: Settings, query: str, page: int = 1) -> str:
    params = {"ajax": "true", "q": query, "page": max(page, 1)}
    return f"{settings.base_url('lazada')}/catalog/?{query_string(params)}"


def search_request(settings: Settings, query: str, page: int = 1) -> RequestSpec:
    return RequestSpec(search_url(settings, query, page), "GET", {"accept": "application/json"})


def shop_request(settings: Settings, seller_id: str, page: int = 1) -> RequestSpec:
    """A store's listings ([I]: ``/shop/{sellerId}/?ajax=true`` answers the catalog's JSON shape; the real
    store pages are keyed by a shop slug, to be calibrated)."""
    params = {"ajax": "true", "from": "wangpu", "page": max(page, 1)}
    url = f"{settings.base_url('lazada')}/shop/{quote(seller_id, safe='')}/?{query_string(params)}"
    return RequestSpec(url, "GET", {"accept": "application/json"})


def listing_id_from_url(url: str) -> str | None:
    match = _ID_IN_URL.search(url)
    return match.group(1) if match else None


def detail_request(settings: Settings, ref: str) -> RequestSpec:
    """The product page for a listing URL (re-based onto the configured host); ids need the URL."""
    if not ref.startswith(("http://", "https://", "//")):
        raise UsageError("Lazada rechecks need the listing URL (…/products/…-i{itemId}-s{skuId}.html)")
    path = urlsplit(absolute_url("https://x", ref) or ref).path
    if "/products/" not in path:
        raise UsageError(f"not a Lazada product URL: {ref}")
    return RequestSpec(settings.base_url("lazada") + path[path.index("/products/") :], "GET", {})


def _base_of(url: str) -> str:
    if not url:
        return "https://www.lazada.co.id"
    parts = urlsplit(url)
    path = parts.path
    for marker in ("/catalog", "/products/", "/tag/"):
        if marker in path:
            path = path[: path.index(marker)]
            break
    return f"{parts.scheme}://{parts.netloc}{path.rstrip('/')}"


def _html_block(text: str) -> Block | None:
    marker = find_marker(text, BLOCK_MARKERS)
    return Block(PLATFORM, "slider", f"page containing {marker!r}") if marker else None


def _json_block(data: Any) -> Block | None:
    if isinstance(data, dict) and "rgv587_flag" in data:
        return Block(PLATFORM, "slider", f"rgv587_flag={data.get('rgv587_flag')} url={data.get('url', '')}")
    return None


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1")


def _listing(item: Mapping[str, Any], base: str) -> Listing | None:
    item_id = id_text(item.get("itemId") or item.get("nid"))
    href = item.get("itemUrl") or item.get("productUrl")
    if not item_id or not href:
        return None
    url = strip_query(absolute_url(base, str(href)) or "")
    sku = id_text(item.get("skuId") or item.get("sku"))
    listing = Listing(
        platform=PLATFORM,
        listing_id=item_id,
        url=url,
        title=str(item.get("name") or "").strip(),
        price=parse_price(item.get("price")) if item.get("price") else parse_price(item.get("priceShow")),
        seller_id=id_text(item.get("sellerId")),
        seller_name=text_or_none(item.get("sellerName")),
        seller_city=text_or_none(item.get("location")),
        image_url=absolute_url(base, item.get("image")),
        sold_text=text_or_none(item.get("itemSoldCntShow")),
        sponsored=_truthy(item.get("isSponsored")) or bool(item.get("isAD")),
        extra_ids={"sku_id": sku} if sku else {},
        raw={
            "price_show": item.get("priceShow"),
            "rating": item.get("ratingScore"),
            "reviews": item.get("review"),
            "brand": item.get("brandName"),
            "in_stock": item.get("inStock"),
        },
    )
    return _origin(listing, item)


# Lazada marks cross-border (LazGlobal) offers [I]: ``location`` "Overseas"/"Luar Negeri" or a country,
# a cross-border flag, or a LazGlobal/cross-border icon in ``icons[]``. Calibrate on a live answer.
_CROSS_BORDER_FLAGS = ("isCrossBorder", "crossBorder", "isCB", "is_cb", "isGlobal", "lazGlobal")
_CROSS_BORDER_WORDS = ("lazglobal", "crossborder", "cross_border", "cross-border", "cb_icon")


def _origin(listing: Listing, item: Mapping[str, Any]) -> Listing:
    facts = []
    location = item.get("location")
    if abroad_location(location):
        facts.append(origin_fact(PLATFORM, "location", location))
    for flag in _CROSS_BORDER_FLAGS:
        if _truthy(item.get(flag)):
            facts.append(origin_fact(PLATFORM, flag, True))
    for icon in item.get("icons") or []:
        if not isinstance(icon, dict):
            continue
        words = " ".join(str(icon.get(k) or "") for k in ("alias", "domClass", "type", "text", "group"))
        if any(w in words.lower() for w in _CROSS_BORDER_WORDS):
            name = icon.get("alias") or icon.get("domClass") or words.strip()
            facts.append(origin_fact(PLATFORM, "icon", str(name)))
    if facts:
        set_origin(listing, True, facts)
    return listing


def parse_search(
    body: Body, *, url: str = "", query: str = "", page: int = 1, status: int = 200
) -> SearchPage:
    """The catalogue JSON (``ajax=true``) or the HTML page with ``window.pageData`` → listings."""
    block = http_block(PLATFORM, status)
    if block:
        return blocked_page(PLATFORM, block)
    try:
        if isinstance(body, bytes | str) and looks_like_html(body_text(body)):
            text = body_text(body)
            data = extract_js_assignment(text, "window.pageData") or extract_js_assignment(text, "pageData")
            if data is None:
                return blocked_page(
                    PLATFORM,
                    _html_block(text)
                    or Block(PLATFORM, "unexpected_html", "HTML page without window.pageData"),
                )
        else:
            data = load_json(body)
    except BodyError as exc:
        return blocked_page(PLATFORM, malformed(PLATFORM, exc))
    block = _json_block(data)
    if block:
        return blocked_page(PLATFORM, block)
    reader = PathReader()
    info = reader.require(data, "mainInfo", dict) or {}
    mods = reader.require(data, "mods", dict)
    if mods is None:
        return SearchPage(platform=PLATFORM, shape_ok=False, missing_paths=reader.missing)
    items = mods.get("listItems")
    raw_total = info.get("totalResults")
    total = str(raw_total).strip() if raw_total is not None else None
    if items is None and total is not None and total in ("", "0"):  # "no results" pages omit listItems
        items = []
    if not isinstance(items, list):
        reader.require(data, "mods.listItems", list)
        return SearchPage(platform=PLATFORM, shape_ok=False, missing_paths=reader.missing)
    base = _base_of(url)
    listings = [item for item in (_listing(i, base) for i in items if isinstance(i, dict)) if item]
    missing = reader.missing + missing_item_paths(
        items, ("itemId|nid", "name", "itemUrl|productUrl"), "mods.listItems"
    )
    result = SearchPage(platform=PLATFORM, shape_ok=not missing, missing_paths=missing)
    result.listings = finish_listings(listings, url=url, query=query, page=page)
    result.total = int(total) if total and total.isdigit() else None
    result.has_more = bool(items) and not _truthy(info.get("noMorePages")) and page < MAX_PAGES
    related = mods.get("relatedSearch") or get_path(data, "mods.relatedSearch.keywords") or []
    if isinstance(related, dict):
        related = related.get("keywords") or []
    result.related_terms = [
        str(r.get("keyword") if isinstance(r, dict) else r) for r in related if r and r != query
    ]
    return result


def _detail_listing(module: Mapping[str, Any], url: str) -> Listing | None:
    fields = get_path(module, "data.root.fields") or {}
    product = fields.get("product") or {}
    primary = fields.get("primaryKey") or {}
    item_id = id_text(primary.get("itemId")) or listing_id_from_url(url)
    if not item_id or not product:
        return None
    seller = fields.get("seller") or {}
    sku_infos = fields.get("skuInfos") or {}
    first_sku: Any = next(iter(sku_infos.values()), {}) if isinstance(sku_infos, dict) else {}
    price = get_path(first_sku, "price.salePrice.value") or get_path(first_sku, "price.salePrice.text")
    images = get_path(fields, "skuGalleries.0") or []
    image = images[0].get("src") if images and isinstance(images[0], dict) else None
    url_ids = _ID_IN_URL.search(url)
    sku_id = id_text(primary.get("skuId")) or (url_ids.group(2) if url_ids else None)
    return Listing(
        platform=PLATFORM,
        listing_id=item_id,
        url=strip_query(url) if url else "",
        title=str(product.get("title") or "").strip(),
        description=html_to_text(str(product.get("desc") or "")),
        price=parse_price(price),
        seller_id=id_text(seller.get("sellerId")),
        seller_name=text_or_none(seller.get("name")),
        seller_city=text_or_none(seller.get("location")),
        image_url=absolute_url(_base_of(url), image) if image else None,
        status=text_or_none(product.get("status")),
        extra_ids={"sku_id": sku_id} if sku_id else {},
        source_url=url or None,
    )


def _jsonld_listing(product: Mapping[str, Any], url: str) -> Listing | None:
    item_id = listing_id_from_url(str(product.get("url") or "")) or listing_id_from_url(url)
    if not item_id:
        return None
    offers = product.get("offers") or {}
    offer = offers[0] if isinstance(offers, list) and offers else offers
    image = product.get("image")
    return Listing(
        platform=PLATFORM,
        listing_id=item_id,
        url=strip_query(url or str(product.get("url") or "")),
        title=str(product.get("name") or "").strip(),
        description=str(product.get("description") or "").strip(),
        price=parse_price(offer.get("price") or offer.get("lowPrice")) if isinstance(offer, dict) else None,
        seller_name=text_or_none(get_path(offer, "seller.name")) if isinstance(offer, dict) else None,
        image_url=image
        if isinstance(image, str)
        else (image[0] if isinstance(image, list) and image else None),
        source_url=url or None,
    )


def parse_detail(
    body: Body, *, url: str = "", status: int = 200, headers: Mapping[str, Any] | None = None
) -> CheckResult:
    """A product page (or its redirect) → verdict."""
    guess_id = listing_id_from_url(url) or ""
    text = body_text(body) if isinstance(body, bytes | str) else ""
    if status in (301, 302, 303, 307, 308):
        location = header(headers, "Location")
        if not location:
            return unobservable(PLATFORM, guess_id, "lazada.redirect_without_location", f"HTTP {status}")
        if find_marker(location, BLOCK_MARKERS) or find_marker(text, BLOCK_MARKERS):
            return unobservable(PLATFORM, guess_id, "lazada.slider", f"redirect to {location}")
        if "/products/" in urlsplit(absolute_url("https://x", location) or location).path:
            return unobservable(PLATFORM, guess_id, "lazada.redirect_to_product", location)
        return CheckResult(PLATFORM, guess_id, Verdict.REMOVED, "lazada.redirect_off_product", location)
    block = http_block(PLATFORM, status, headers)
    if block:
        return block_result(PLATFORM, guess_id, block)
    if not isinstance(body, bytes | str) or not looks_like_html(text):
        try:
            data = load_json(body)
        except BodyError as exc:
            return block_result(PLATFORM, guess_id, malformed(PLATFORM, exc))
        block = _json_block(data)
        if block:
            return block_result(PLATFORM, guess_id, block)
        return unobservable(
            PLATFORM, guess_id, "lazada.unexpected_shape", "JSON where a product page was expected"
        )
    try:
        module = extract_js_assignment(text, "__moduleData__")
    except BodyError as exc:
        return block_result(PLATFORM, guess_id, malformed(PLATFORM, exc))
    listing = _detail_listing(module, url) if isinstance(module, dict) else None
    if listing is None:
        products = json_ld(text, "Product")
        listing = _jsonld_listing(products[0], url) if products else None
        if listing is None:
            block = _html_block(text) or Block(
                PLATFORM, "no_product_data", "page without __moduleData__/JSON-LD"
            )
            return block_result(PLATFORM, guess_id, block)
        return CheckResult(PLATFORM, listing.listing_id, Verdict.LIVE, "lazada.jsonld_product", "", listing)
    if (listing.status or "").lower() == "inactive":
        return CheckResult(
            PLATFORM, listing.listing_id, Verdict.HIDDEN, "lazada.product_inactive", "inactive", listing
        )
    return CheckResult(
        PLATFORM, listing.listing_id, Verdict.LIVE, "lazada.module_data", listing.status or "", listing
    )


PROFILE = SiteProfile(
    platform=PLATFORM,
    display_name="Lazada",
    operator="PT Ecart Webportal Indonesia (Lazada)",
    base_urls={"lazada": "https://www.lazada.co.id"},
    colour=(15, 20, 110),
    id_scheme="itemId (the skuId is kept in extra_ids)",
    parse_search=parse_search,
    parse_detail=parse_detail,
    search_request=search_request,
    shop_request=shop_request,
    parse_shop=parse_search,
    detail_request=detail_request,
    listing_id_from_url=listing_id_from_url,
    page_size=PAGE_SIZE,
    max_pages=MAX_PAGES,
    needs_browser=False,
    concurrency=1,
    download_delay=3.0,
    block_markers=BLOCK_MARKERS,
    removal_rules=("lazada.redirect_off_product",),
    hidden_rules=("lazada.product_inactive",),
    notes="Detail fetches must not follow redirects (REDIRECT_ENABLED off / dont_redirect) to see the 302.",
    answers=(
        AnswerRule("search", r"^/catalog/?$"),
        AnswerRule("detail", r"^/products/.*-i\d+(-s\d+)?\.html"),
    ),
)
