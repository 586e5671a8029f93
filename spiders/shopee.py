"""Shopee Indonesia: search (``/api/v4/search/search_items``, v4 ``item_basic`` and v2 flat shapes) and
listing detail (``item/get`` JSON, ``pdp/get_pc`` JSON, or the listing page's ``mfe-initial-data``).

Host: ``shopee`` from ``Settings.base_url``. Listing id: ``{shopid}.{itemid}``. Prices are IDR × 100000.
Shopee signs its API calls in the page's own JavaScript, so the spider loads the *search page*
(:func:`search_page_url`, 0-based ``page`` parameter) in a logged-in browser (``needs_browser``) and reads
the ``search_items`` response the page requests (:func:`search_api_url` names it, for matching).

Block markers (UNOBSERVABLE, never "no listings"): ``{"error": 90309999}`` (unsigned call), ``{"error": 1,
"data": null}``, final URLs or redirects to ``/verify/captcha``, ``/verify/traffic``, ``/buyer/login``.

Detail verdicts: ``isError`` with ``266900002`` (or the same code as the API ``error``) → REMOVED
(``shopee.mfe_error_266900002`` / ``shopee.api_error_266900002``); ``item_status`` ``banned``/``deleted``
→ REMOVED; ``unlisted`` → HIDDEN; ``normal``/``sold_out`` → LIVE.

``rank`` is the 1-based position within the page (global rank = ``(page - 1) * 60 + rank``).
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
    block_result,
    blocked_page,
    body_text,
    finish_listings,
    get_path,
    header,
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
    script_json,
    set_origin,
    shopee_price,
    text_or_none,
    unobservable,
)

PLATFORM = "shopee"
PAGE_SIZE = 60
MAX_PAGES = 17  # Shopee stops serving results after ~1000 items (17 × 60)
IMAGE_CDN = "https://down-id.img.susercontent.com/file/"
SIGNATURE_ERROR = 90309999
REMOVED_ERROR = 266900002
BLOCK_PATHS = ("/verify/captcha", "/verify/traffic", "/buyer/login")
BLOCK_MARKERS = (*BLOCK_PATHS, "90309999")
CONDITIONS = {1: "NEW", 4: "USED"}
REMOVED_ITEM_STATUS = {"banned": "shopee.item_status_banned", "deleted": "shopee.item_status_deleted"}
HIDDEN_ITEM_STATUS = {"unlisted": "shopee.item_status_unlisted"}
LIVE_ITEM_STATUS = {"normal", "sold_out"}
_ID_PATTERNS = (re.compile(r"-i\.(\d+)\.(\d+)"), re.compile(r"/product/(\d+)/(\d+)"))


# --------------------------------------------------------------------------------------------------
# Requests and URLs
# --------------------------------------------------------------------------------------------------
def search_page_url(settings: Settings, query: str, page: int = 1) -> str:
    """The search page the browser loads; Shopee's ``page`` parameter is 0-based."""
    return (
        f"{settings.base_url('shopee')}/search?{query_string({'keyword': query, 'page': max(page, 1) - 1})}"
    )


def search_api_url(settings: Settings, query: str, page: int = 1) -> str:
    """The (signed) API call the search page makes for our 1-based ``page``."""
    params = {
        "by": "relevancy",
        "keyword": query,
        "limit": PAGE_SIZE,
        "newest": (max(page, 1) - 1) * PAGE_SIZE,
        "order": "desc",
        "page_type": "search",
        "scenario": "PAGE_GLOBAL_SEARCH",
        "version": 2,
    }
    return f"{settings.base_url('shopee')}/api/v4/search/search_items?{query_string(params)}"


SEARCH_API_PATH = "/api/v4/search/search_items"


def search_request(settings: Settings, query: str, page: int = 1) -> RequestSpec:
    """A browser navigation to the search page (the page itself signs and issues the API call)."""
    return RequestSpec(search_page_url(settings, query, page), "GET", {"accept": "text/html"})


def slug(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "-", name).strip("-")[:100] or "product"


def listing_url(settings_or_base: Settings | str, shopid: str, itemid: str, name: str = "") -> str:
    base = settings_or_base if isinstance(settings_or_base, str) else settings_or_base.base_url("shopee")
    return f"{base.rstrip('/')}/{slug(name)}-i.{shopid}.{itemid}"


def listing_id_from_url(url: str) -> str | None:
    for pattern in _ID_PATTERNS:
        match = pattern.search(urlsplit(url).path)
        if match:
            return f"{match.group(1)}.{match.group(2)}"
    return None


def detail_request(settings: Settings, ref: str) -> RequestSpec:
    """The listing page (browser) for a listing URL or a ``shopid.itemid`` id."""
    if ref.startswith(("http://", "https://")):
        listing_id = listing_id_from_url(ref)
        if not listing_id:
            raise UsageError(f"not a Shopee listing URL (…-i.SHOPID.ITEMID): {ref}")
        # keep the listing's own path (…-i.SHOPID.ITEMID) but on the configured host (sandbox or real)
        segment = urlsplit(ref).path.rstrip("/").rsplit("/", 1)[-1]
        if "-i." in segment:
            return RequestSpec(f"{settings.base_url('shopee')}/{segment}", "GET", {})
        shopid, itemid = listing_id.split(".")
        return RequestSpec(f"{settings.base_url('shopee')}/product/{shopid}/{itemid}", "GET", {})
    match = re.fullmatch(r"(\d+)\.(\d+)", ref.strip())
    if not match:
        raise UsageError(f"not a Shopee listing id (SHOPID.ITEMID): {ref}")
    return RequestSpec(f"{settings.base_url('shopee')}/product/{match.group(1)}/{match.group(2)}", "GET", {})


def detail_api_url(settings: Settings, listing_id: str) -> str:
    shopid, itemid = listing_id.split(".", 1)
    return f"{settings.base_url('shopee')}/api/v4/pdp/get_pc?item_id={quote(itemid)}&shop_id={quote(shopid)}"


# --------------------------------------------------------------------------------------------------
# Shared
# --------------------------------------------------------------------------------------------------
def _base_of(url: str) -> str:
    """The Shopee base (scheme, host and any sandbox prefix) seen in a response URL; default real host."""
    if not url:
        return "https://shopee.co.id"
    parts = urlsplit(url)
    path = parts.path
    for marker in ("/api/", "/search", "/product/", "/verify/", "/buyer/"):
        if marker in path:
            path = path[: path.index(marker)]
            break
    else:
        path = re.sub(r"/[^/]*-i\.\d+\.\d+.*$", "", path)
    return f"{parts.scheme}://{parts.netloc}{path.rstrip('/')}"


def _image(value: Any) -> str | None:
    if not value:
        return None
    text = str(value)
    return text if text.startswith(("http://", "https://")) else IMAGE_CDN + text


def _redirect_block(url: str, status: int, headers: Mapping[str, Any] | None) -> Block | None:
    targets = [url]
    if status in (301, 302, 303, 307, 308):
        targets.append(header(headers, "Location"))
    for target in targets:
        for path in BLOCK_PATHS:
            if target and path in target:
                reason = "login_wall" if "login" in path else "captcha"
                return Block(PLATFORM, reason, f"redirect to {path}")
    return None


def _error_block(data: Any) -> Block | None:
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if error == SIGNATURE_ERROR or str(error) == str(SIGNATURE_ERROR):
        return Block(PLATFORM, "signature", f"error {SIGNATURE_ERROR} (unsigned or stale request)")
    if error == 1 and data.get("data") is None and "items" not in data and "item" not in data:
        return Block(PLATFORM, "error_1", '{"error":1,"data":null}')
    return None


def _item_listing(
    item: Mapping[str, Any], base: str, outer: Mapping[str, Any] | None = None
) -> Listing | None:
    """One item in any of the shapes (v4 ``item_basic``, v2 flat, ``item/get``, ``get_pc`` names)."""
    itemid = id_text(item.get("itemid") or item.get("item_id"))
    shopid = id_text(item.get("shopid") or item.get("shop_id"))
    if not itemid or not shopid:
        return None
    name = str(item.get("name") or item.get("title") or "").strip()
    outer = outer or {}
    ads = outer.get("adsid") or item.get("adsid")
    sold = item.get("historical_sold", item.get("sold"))
    condition = item.get("condition")
    listing = Listing(
        platform=PLATFORM,
        listing_id=f"{shopid}.{itemid}",
        url=listing_url(base, shopid, itemid, name),
        title=name,
        description=str(item.get("description") or "").strip(),
        price=shopee_price(item.get("price") if item.get("price") is not None else item.get("price_min")),
        seller_id=shopid,
        seller_name=text_or_none(item.get("shop_name")),
        seller_city=text_or_none(item.get("shop_location")),
        shop_url=f"{base}/shop/{shopid}",
        image_url=_image(item.get("image")),
        category=id_text(item.get("catid")),
        condition=CONDITIONS.get(condition) if isinstance(condition, int) else text_or_none(condition),
        sold_text=str(sold) if sold is not None else None,
        sponsored=bool(ads),
        status=text_or_none(item.get("item_status")),
        raw={
            "price_min": item.get("price_min"),
            "price_max": item.get("price_max"),
            "stock": item.get("stock"),
            "ctime": item.get("ctime"),
            "brand": item.get("brand"),
            "adsid": ads,
            "cb_option": item.get("cb_option"),
        },
    )
    return _origin(listing, item)


def _origin(listing: Listing, item: Mapping[str, Any]) -> Listing:
    """Shopee's cross-border facts: ``cb_option`` 1 (a cross-border seller: the item ships from abroad)
    and the shop location "Luar Negeri"; ``cb_option`` 0 with an Indonesian location is a domestic item."""
    facts = []
    location = item.get("shop_location")
    if abroad_location(location):
        facts.append(origin_fact(PLATFORM, "shop_location", location))
    cb_option = item.get("cb_option", item.get("is_cb"))
    if cb_option in (1, True):
        facts.append(origin_fact(PLATFORM, "cb_option", 1))
    if facts:
        return set_origin(listing, True, facts)
    if cb_option in (0, False) and location:
        return set_origin(listing, False, [])
    return listing


# --------------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------------
def parse_search(
    body: Body, *, url: str = "", query: str = "", page: int = 1, status: int = 200
) -> SearchPage:
    """A ``search_items`` response (v4 or v2) → listings; signature/captcha/login answers → block."""
    block = _redirect_block(url, status, None) or http_block(PLATFORM, status)
    if block:
        return blocked_page(PLATFORM, block)
    if isinstance(body, bytes | str) and looks_like_html(body_text(body)):
        return blocked_page(
            PLATFORM, Block(PLATFORM, "unexpected_html", "HTML where search JSON was expected")
        )
    try:
        data = load_json(body)
    except BodyError as exc:
        return blocked_page(PLATFORM, malformed(PLATFORM, exc))
    block = _error_block(data)
    if block:
        return blocked_page(PLATFORM, block)
    reader = PathReader()
    if not isinstance(data, dict) or "items" not in data:
        reader.require(data, "items")
        return SearchPage(platform=PLATFORM, shape_ok=False, missing_paths=reader.missing)
    items = data.get("items") or []  # Shopee sends "items": null for no results
    if not isinstance(items, list):
        return SearchPage(platform=PLATFORM, shape_ok=False, missing_paths=["items"])
    missing = missing_item_paths(
        items, ("item_basic.itemid|itemid", "item_basic.shopid|shopid", "item_basic.name|name"), "items"
    )
    base = _base_of(url)
    listings = []
    for entry in items:
        if not isinstance(entry, dict):
            continue
        basic = entry.get("item_basic")
        item: Mapping[str, Any] = basic if isinstance(basic, dict) else entry
        listing = _item_listing(item, base, entry)
        if listing:
            listings.append(listing)
    result = SearchPage(platform=PLATFORM, shape_ok=not missing, missing_paths=missing)
    result.listings = finish_listings(listings, url=url, query=query, page=page)
    total = data.get("total_count")
    result.total = total if isinstance(total, int) else None
    result.has_more = bool(items) and not data.get("nomore") and page < MAX_PAGES
    terms: list[str] = []
    rewrite = data.get("query_rewrite") or {}
    if isinstance(rewrite, dict):
        for key in ("rewrite_keyword", "fe_query_write_keyword"):
            if rewrite.get(key):
                terms.append(str(rewrite[key]))
        terms.extend(str(k) for k in rewrite.get("hint_keywords") or [])
    terms.extend(str(k) for k in data.get("hint_keywords") or [] if k)
    result.related_terms = [t for i, t in enumerate(terms) if t and t != query and t not in terms[:i]]
    return result


# --------------------------------------------------------------------------------------------------
# Detail
# --------------------------------------------------------------------------------------------------
def _status_verdict(listing: Listing, origin: str) -> CheckResult:
    status = (listing.status or "").lower()
    if status in REMOVED_ITEM_STATUS:
        return CheckResult(
            PLATFORM, listing.listing_id, Verdict.REMOVED, REMOVED_ITEM_STATUS[status], status, listing
        )
    if status in HIDDEN_ITEM_STATUS:
        return CheckResult(
            PLATFORM, listing.listing_id, Verdict.HIDDEN, HIDDEN_ITEM_STATUS[status], status, listing
        )
    if status in LIVE_ITEM_STATUS or not status:
        return CheckResult(
            PLATFORM, listing.listing_id, Verdict.LIVE, f"shopee.{origin}_item", status, listing
        )
    return unobservable(PLATFORM, listing.listing_id, "shopee.item_status_unrecognised", status)


def _is_removed_error(value: Any) -> bool:
    return str(value) == str(REMOVED_ERROR)


def _detail_from_html(text: str, url: str, guess_id: str) -> CheckResult:
    try:
        blobs = script_json(text, type="text/mfe-initial-data")
    except BodyError as exc:
        return unobservable(PLATFORM, guess_id, "shopee.malformed", str(exc))
    for blob in blobs:
        state = get_path(blob, "initialState.item")
        if not isinstance(state, dict):
            continue
        if state.get("isError"):
            if _is_removed_error(state.get("error")):
                return CheckResult(
                    PLATFORM, guess_id, Verdict.REMOVED, "shopee.mfe_error_266900002", str(state.get("error"))
                )
            return unobservable(PLATFORM, guess_id, "shopee.mfe_error", str(state.get("error")))
        item = state.get("item")
        if isinstance(item, dict):
            listing = _item_listing(item, _base_of(url))
            if listing:
                listing.source_url = url or None
                return _status_verdict(listing, "mfe")
    # The shell loaded but without item data: read the schema.org Product, else unobservable.
    products = json_ld(text, "Product")
    if products and guess_id:
        product = products[0]
        offers = product.get("offers") or {}
        offer = offers[0] if isinstance(offers, list) and offers else offers
        listing = Listing(
            platform=PLATFORM,
            listing_id=guess_id,
            url=url,
            title=str(product.get("name") or "").strip(),
            description=str(product.get("description") or "").strip(),
            price=parse_price(offer.get("price") or offer.get("lowPrice"))
            if isinstance(offer, dict)
            else None,
            image_url=text_or_none(product.get("image")) if isinstance(product.get("image"), str) else None,
            source_url=url or None,
        )
        return CheckResult(PLATFORM, guess_id, Verdict.LIVE, "shopee.jsonld_product", "", listing)
    return unobservable(PLATFORM, guess_id, "shopee.no_item_data", "page without mfe-initial-data item")


def parse_detail(
    body: Body, *, url: str = "", status: int = 200, headers: Mapping[str, Any] | None = None
) -> CheckResult:
    """``item/get`` or ``get_pc`` JSON, or the listing page HTML (``mfe-initial-data``) → verdict."""
    guess_id = listing_id_from_url(url) or ""
    block = _redirect_block(url, status, headers) or http_block(PLATFORM, status, headers)
    if block:
        return block_result(PLATFORM, guess_id, block)
    if isinstance(body, bytes | str) and looks_like_html(body_text(body)):
        return _detail_from_html(body_text(body), url, guess_id)
    try:
        data = load_json(body)
    except BodyError as exc:
        return block_result(PLATFORM, guess_id, malformed(PLATFORM, exc))
    block = _error_block(data)
    if block:
        return block_result(PLATFORM, guess_id, block)
    if not isinstance(data, dict):
        return unobservable(PLATFORM, guess_id, "shopee.unexpected_shape", type(data).__name__)
    if _is_removed_error(data.get("error")):
        return CheckResult(
            PLATFORM, guess_id, Verdict.REMOVED, "shopee.api_error_266900002", str(data["error"])
        )
    item = data.get("item") if isinstance(data.get("item"), dict) else get_path(data, "data.item")
    if not isinstance(item, dict):
        return unobservable(PLATFORM, guess_id, "shopee.no_item_data", f"error={data.get('error')!r}")
    merged = dict(item)
    shop = get_path(data, "data.shop_detailed") or {}
    if isinstance(shop, dict):  # get_pc keeps shop facts beside the item
        merged.setdefault("shop_name", shop.get("name"))
        merged.setdefault("shop_location", shop.get("shop_location"))
    listing = _item_listing(merged, _base_of(url))
    if listing is None:
        return unobservable(PLATFORM, guess_id, "shopee.unexpected_shape", "item without itemid/shopid")
    listing.source_url = url or None
    return _status_verdict(listing, "api")


PROFILE = SiteProfile(
    platform=PLATFORM,
    display_name="Shopee",
    operator="PT Shopee International Indonesia",
    base_urls={"shopee": "https://shopee.co.id"},
    colour=(238, 77, 45),
    id_scheme="{shopid}.{itemid}",
    parse_search=parse_search,
    parse_detail=parse_detail,
    search_request=search_request,
    detail_request=detail_request,
    listing_id_from_url=listing_id_from_url,
    page_size=PAGE_SIZE,
    max_pages=MAX_PAGES,
    needs_browser=True,
    needs_login=True,
    concurrency=1,
    download_delay=8.0,
    block_markers=BLOCK_MARKERS,
    removal_rules=("shopee.mfe_error_266900002", "shopee.api_error_266900002", *REMOVED_ITEM_STATUS.values()),
    hidden_rules=tuple(HIDDEN_ITEM_STATUS.values()),
    notes="Signed API: read the responses the page requests in a logged-in browser, one tab, slowly.",
    browser_api_markers=("/api/v4/search/search_items",),
    answers=(
        AnswerRule("search", r"^/api/v4/search/search_items"),
        AnswerRule("detail", r"^/api/v4/(pdp/get_pc|item/get)\b"),
        AnswerRule("detail", r"(-i\.\d+\.\d+|^/product/\d+/\d+)/?$"),
    ),
)
