"""Facebook Marketplace: search (the search page's embedded ``data-sjs`` JSON and the ``/api/graphql/``
responses fetched on scroll) and listing pages (``/marketplace/item/{id}/``).

Host: ``facebook`` from ``Settings.base_url``. Listing id: the numeric listing id. Needs a logged-in
browser profile (``needs_browser``, ``needs_login``): without ``c_user``/``xs`` cookies every page 302s to
``/login/?next=…``, which is a block (``login_wall``), never "no listings".

Search paths: ``data.marketplace_search.feed_units.{edges[].node.listing, page_info.{has_next_page,
end_cursor}}`` — found wherever ``marketplace_search`` sits in the JSON (the HTML embeds it in one of several
``<script type="application/json" data-sjs>`` tags). :func:`next_cursor` gives the cursor for the next
GraphQL page (``SearchPage`` has no cursor field).

Detail verdicts: listing JSON present → LIVE; "This listing isn't available anymore" without listing
JSON → REMOVED (``facebook.listing_unavailable``); login redirect or login form → UNOBSERVABLE
(``facebook.login_wall``); Open Graph tags only → LIVE from OG (``facebook.og_tags``).

``rank`` is the 1-based position within the page (scroll batches count as pages).
"""

from __future__ import annotations

import json
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
    BodyError,
    BrowserLogin,
    RequestSpec,
    SiteProfile,
    block_result,
    blocked_page,
    body_text,
    find_deep,
    finish_listings,
    get_path,
    header,
    http_block,
    id_text,
    load_json,
    looks_like_html,
    malformed,
    meta_tags,
    missing_item_paths,
    parse_price,
    query_string,
    script_json,
    text_or_none,
    unobservable,
)

PLATFORM = "facebook"
PAGE_SIZE = 24  # one scroll batch, roughly
MAX_PAGES = 10
UNAVAILABLE_TEXTS = ("this listing isn't available anymore", "this listing isn’t available anymore")
LOGIN_MARKERS = ('action="/login/', 'name="pass"', 'id="login_form"')
_ID_IN_URL = re.compile(r"/marketplace/item/(\d+)")


def search_url(settings: Settings, query: str) -> str:
    return f"{settings.base_url('facebook')}/marketplace/search/?{query_string({'query': query})}"


def search_request(settings: Settings, query: str, page: int = 1) -> RequestSpec:
    """Page 1 is the search page (browser); later pages come from :func:`graphql_search_request`."""
    return RequestSpec(search_url(settings, query), "GET", {"accept": "text/html"})


def graphql_search_request(settings: Settings, query: str, cursor: str, doc_id: str) -> RequestSpec:
    """The scroll request: form fields ``variables`` (JSON) and ``doc_id`` (rotates; read from the page)."""
    variables = json.dumps({"query": query, "cursor": cursor, "count": PAGE_SIZE}, separators=(",", ":"))
    return RequestSpec(
        f"{settings.base_url('facebook')}/api/graphql/",
        "POST",
        {"content-type": "application/x-www-form-urlencoded"},
        query_string({"variables": variables, "doc_id": doc_id}),
    )


def listing_url(base: str, listing_id: str) -> str:
    return f"{base.rstrip('/')}/marketplace/item/{listing_id}/"


def listing_id_from_url(url: str) -> str | None:
    match = _ID_IN_URL.search(url)
    return match.group(1) if match else None


def detail_request(settings: Settings, ref: str) -> RequestSpec:
    listing_id = listing_id_from_url(ref) if "/" in ref else ref.strip()
    if not listing_id or not listing_id.isdigit():
        raise UsageError(f"not a Facebook Marketplace listing id or URL: {ref}")
    return RequestSpec(listing_url(settings.base_url("facebook"), listing_id), "GET", {"accept": "text/html"})


def _base_of(url: str) -> str:
    if not url:
        return "https://www.facebook.com"
    parts = urlsplit(url)
    path = parts.path
    for marker in ("/marketplace/", "/api/", "/login"):
        if marker in path:
            path = path[: path.index(marker)]
            break
    return f"{parts.scheme}://{parts.netloc}{path.rstrip('/')}"


def _login_block(url: str, text: str, status: int, headers: Mapping[str, Any] | None) -> Block | None:
    location = header(headers, "Location") if status in (301, 302, 303, 307, 308) else ""
    for target in (location, url):
        if target and "/login" in urlsplit(target).path:
            return Block(PLATFORM, "login_wall", f"redirect to {urlsplit(target).path}")
    if text and looks_like_html(text) and sum(m in text for m in LOGIN_MARKERS) >= 2:
        return Block(PLATFORM, "login_wall", "login form")
    return None


def _documents(body: Body) -> list[Any]:
    """The JSON documents in a body: the GraphQL JSON itself, or every ``data-sjs`` script of the HTML."""
    if isinstance(body, bytes | str) and looks_like_html(body_text(body)):
        return script_json(body_text(body), type="application/json")
    return [load_json(body)]


def _listing(node: Mapping[str, Any], base: str) -> Listing | None:
    listing_id = id_text(node.get("id"))
    if not listing_id:
        return None
    price = node.get("listing_price") or {}
    seller = node.get("marketplace_listing_seller") or {}  # null on real answers (seller not shown)
    return Listing(
        platform=PLATFORM,
        listing_id=listing_id,
        url=listing_url(base, listing_id),
        title=str(node.get("marketplace_listing_title") or "").strip(),
        description=str(get_path(node, "redacted_description.text") or "").strip(),
        price=_rupiah(price),
        seller_id=id_text(seller.get("id")),
        seller_name=text_or_none(seller.get("name")),
        seller_city=text_or_none(get_path(node, "location.reverse_geocode.city")),
        image_url=text_or_none(get_path(node, "primary_listing_photo.image.uri")),
        sponsored=bool(node.get("is_sponsored")),
        status="sold" if node.get("is_sold") else None,
        raw={
            "formatted_price": price.get("formatted_amount"),
            "amount": price.get("amount"),
            "currency": price.get("currency"),
            "created": node.get("creation_time"),
        },
    )


def _rupiah(price: Mapping[str, Any]) -> int | None:
    """Whole rupiah from ``listing_price``: ``amount`` is a decimal *string* ("150000.00") in the listing's
    currency; a listing priced in another currency ("$40") has no rupiah price (the raw values are kept)."""
    formatted = str(price.get("formatted_amount") or "").strip()
    currency = str(price.get("currency") or "").upper()
    if currency and currency != "IDR":
        return None
    if formatted and not currency and not formatted.lower().startswith(("rp", "idr")):
        return None
    amount = price.get("amount")
    return parse_price(amount) if amount not in (None, "") else parse_price(formatted)


def _feed(documents: list[Any]) -> Mapping[str, Any] | None:
    for doc in documents:
        for search in find_deep(doc, "marketplace_search"):
            feed = search.get("feed_units") if isinstance(search, dict) else None
            if isinstance(feed, dict):
                return feed
    return None


def next_cursor(body: Body) -> str | None:
    """``page_info.end_cursor`` of a search body, when ``has_next_page``."""
    try:
        feed = _feed(_documents(body))
    except BodyError:
        return None
    info = (feed or {}).get("page_info") or {}
    return text_or_none(info.get("end_cursor")) if info.get("has_next_page") else None


def parse_search(
    body: Body, *, url: str = "", query: str = "", page: int = 1, status: int = 200
) -> SearchPage:
    """The search page HTML (embedded JSON) or a GraphQL scroll response → listings."""
    text = body_text(body) if isinstance(body, bytes | str) else ""
    block = _login_block(url, text, status, None) or http_block(PLATFORM, status)
    if block:
        return blocked_page(PLATFORM, block)
    try:
        documents = _documents(body)
    except BodyError as exc:
        return blocked_page(PLATFORM, malformed(PLATFORM, exc))
    feed = _feed(documents)
    if feed is None or not isinstance(feed.get("edges"), list):
        path = "data.marketplace_search.feed_units" + (".edges" if feed is not None else "")
        return SearchPage(platform=PLATFORM, shape_ok=False, missing_paths=[path])
    base = _base_of(url)
    nodes = [get_path(edge, "node.listing") for edge in feed["edges"]]
    listings = [item for item in (_listing(n, base) for n in nodes if isinstance(n, dict)) if item]
    missing = missing_item_paths(
        feed["edges"], ("node.listing.id", "node.listing.marketplace_listing_title"), "feed_units.edges"
    )
    result = SearchPage(platform=PLATFORM, shape_ok=not missing, missing_paths=missing)
    result.listings = finish_listings(listings, url=url, query=query, page=page)
    result.has_more = bool(get_path(feed, "page_info.has_next_page")) and page < MAX_PAGES
    return result


def parse_detail(
    body: Body, *, url: str = "", status: int = 200, headers: Mapping[str, Any] | None = None
) -> CheckResult:
    """A listing page → verdict."""
    guess_id = listing_id_from_url(url) or ""
    text = body_text(body) if isinstance(body, bytes | str) else ""
    block = _login_block(url, text, status, headers) or http_block(PLATFORM, status, headers)
    if block:
        return block_result(PLATFORM, guess_id, block)
    try:
        documents = _documents(body)
    except BodyError as exc:
        return block_result(PLATFORM, guess_id, malformed(PLATFORM, exc))
    base = _base_of(url)
    for doc in documents:
        for key in ("listing", "marketplace_product_details_page", "target"):
            for node in find_deep(doc, key):
                if isinstance(node, dict) and "marketplace_listing_title" in node:
                    listing = _listing(node, base)
                    if listing and (not guess_id or listing.listing_id == guess_id):
                        listing.source_url = url or None
                        return CheckResult(
                            PLATFORM, listing.listing_id, Verdict.LIVE, "facebook.listing_json", "", listing
                        )
    lower = text.lower()
    for phrase in UNAVAILABLE_TEXTS:
        if phrase in lower:
            return CheckResult(PLATFORM, guess_id, Verdict.REMOVED, "facebook.listing_unavailable", phrase)
    og = meta_tags(text) if text else {}
    if og.get("og:title") and guess_id:
        listing = Listing(
            platform=PLATFORM,
            listing_id=guess_id,
            url=listing_url(base, guess_id),
            title=og["og:title"],
            description=og.get("og:description", ""),
            image_url=og.get("og:image"),
            source_url=url or None,
        )
        return CheckResult(PLATFORM, guess_id, Verdict.LIVE, "facebook.og_tags", "", listing)
    return unobservable(
        PLATFORM, guess_id, "facebook.no_listing_data", "no listing JSON, OG tags or removal text"
    )


PROFILE = SiteProfile(
    platform=PLATFORM,
    display_name="Facebook Marketplace",
    operator="Meta Platforms, Inc. (Facebook)",
    base_urls={"facebook": "https://www.facebook.com"},
    colour=(24, 119, 242),
    id_scheme="the numeric Marketplace listing id",
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
    download_delay=10.0,
    block_markers=LOGIN_MARKERS,
    removal_rules=("facebook.listing_unavailable",),
    notes="Logged-in browser profile; per-IP limits with long cool-downs. Cursor: next_cursor(body).",
    browser_api_markers=("/api/graphql",),
    scroll_pagination=True,
    login=BrowserLogin(
        login_path="/login/",
        url_marker="/login/",
        user_field="input[name=email]",
        password_field="input[name=pass]",
        submit="#loginbutton",
        sandbox_user="analyst@sandbox.test",
        sandbox_password="sandbox-pass",
    ),
    answers=(
        AnswerRule("search", r"^/marketplace/search/?$"),
        AnswerRule("search", r"^/api/graphql/?$", contains="marketplace_search"),
        AnswerRule("detail", r"^/marketplace/item/\d+/?$"),
    ),
)
