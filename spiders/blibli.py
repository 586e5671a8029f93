"""Blibli: search (``/backend/search/products``) and listing detail (``/backend/product-detail/products/
ps--{SKU}/_summary``), wrapped (``{"data": <body>}``, as in the real captures) or unwrapped.

Host: ``blibli`` from ``Settings.base_url``. Listing id: the product SKU (``products[].sku``, e.g.
``UMB-60239-00003``) as used in ``ps--{SKU}`` URLs; catalogue URLs (``pc--MTA-…``) keep ``ds=`` so the
link opens the same offer.

Search paths: ``data.paging.{page, total_page, total_item}``, ``data.products[]``; HTTP 422 means "no
results" (an empty page, not a block). ``suggestions``/``correctedSearchResponses`` feed
``related_terms``. Sponsored products come in their own list with their own shape,
``data.sponsorProducts[].{skuId, sellerId, name, salePrice, imageUrl, location, rank, destinationUrl}``
(``destinationUrl`` is an ad click URL whose ``redirect_url`` is the item page ``/p/item-name/is--{skuId}``):
they are read as listings marked ``sponsored`` after the organic ones (``raw["ad_rank"]`` keeps their ad
rank; ``sellerAdsPosition`` names the page slots they fill). ``rootCategory.name`` is a marketing root
("Galeri Indonesia", "Blibli Hasanah - Muslim Corner"), not the product's category: the category comes
from ``categoryNameHierarchy`` when present and is left empty otherwise. A ``location`` Blibli gives as
abroad marks the item as shipped from abroad.

Detail verdicts: HTTP 404 (or a JSON body with ``code`` 404 / ``NOT_FOUND``) → REMOVED
(``blibli.http_404``/``blibli.code_404``); ``data.name`` present → LIVE; HTML where JSON was expected
(TLS-fingerprint or bot walls), 429, 5xx, malformed → UNOBSERVABLE.

``rank`` is the 1-based position within the page (global rank = ``(page - 1) * 40 + rank``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from crawler.config import Settings
from crawler.errors import UsageError
from crawler.items import Block, CheckResult, Listing, SearchPage, Verdict
from spiders.base import (
    AnswerRule,
    Body,
    PathReader,
    RequestSpec,
    SiteProfile,
    abroad_location,
    absolute_url,
    block_result,
    blocked_page,
    finish_listings,
    get_path,
    html_to_text,
    id_text,
    missing_item_paths,
    origin_fact,
    parse_price,
    query_string,
    read_api_json,
    set_origin,
    strip_query,
    text_or_none,
    unobservable,
    unwrap_data,
)

PLATFORM = "blibli"
PAGE_SIZE = 40
MAX_PAGES = 20
NO_RESULTS_STATUS = 422
BLOCK_MARKERS = ("<html", "captcha", "access denied")
_SKU_IN_URL = re.compile(r"/(ps|pc|is)--([A-Za-z0-9-]+?)(?:[?/#]|$)")
KEEP_PARAMS = ("ds",)


def search_url(settings: Settings, query: str, page: int = 1) -> str:
    page = max(page, 1)
    params = {"searchTerm": query, "page": page, "start": (page - 1) * PAGE_SIZE, "channelId": "web"}
    return f"{settings.base_url('blibli')}/backend/search/products?{query_string(params)}"


def search_request(settings: Settings, query: str, page: int = 1) -> RequestSpec:
    return RequestSpec(search_url(settings, query, page), "GET", {"accept": "application/json"})


def shop_request(settings: Settings, merchant_code: str, page: int = 1) -> RequestSpec:
    """A store's listings ([I]: the product search filtered by ``merchantCode``, as the store page does)."""
    page = max(page, 1)
    params = {
        "merchantCode": merchant_code,
        "page": page,
        "start": (page - 1) * PAGE_SIZE,
        "channelId": "web",
    }
    url = f"{settings.base_url('blibli')}/backend/search/products?{query_string(params)}"
    return RequestSpec(url, "GET", {"accept": "application/json"})


def listing_id_from_url(url: str) -> str | None:
    """``…/ps--SKU`` → SKU; ``…/pc--MTA-…?ds=SKU-00001`` and ``…/is--SKU-00001`` (an item page, as sponsored
    products link) → SKU (the item suffix dropped)."""
    match = _SKU_IN_URL.search(url)
    if match and match.group(1) == "ps":
        return match.group(2)
    if match and match.group(1) == "is":
        return _product_sku(match.group(2))
    ds = dict(p.split("=", 1) for p in urlsplit(url).query.split("&") if "=" in p).get("ds", "")
    return _product_sku(ds)


def _product_sku(item_sku: str) -> str | None:
    """``BLI-60048-00074-00001`` (an item SKU) → ``BLI-60048-00074`` (the product SKU, our listing id)."""
    parts = item_sku.split("-")
    if len(parts) >= 3 and all(parts[:3]):
        return "-".join(parts[:3])
    return None


def detail_url(settings: Settings, sku: str) -> str:
    return f"{settings.base_url('blibli')}/backend/product-detail/products/ps--{sku}/_summary"


def detail_request(settings: Settings, ref: str) -> RequestSpec:
    """The ``_summary`` JSON for a listing URL or a product SKU."""
    sku = listing_id_from_url(ref) if "/" in ref else ref.strip()
    if not sku:
        raise UsageError(f"no Blibli product SKU in {ref!r} (expected …/ps--SKU or ?ds=SKU-…)")
    return RequestSpec(detail_url(settings, sku), "GET", {"accept": "application/json"})


def _base_of(url: str) -> str:
    if not url:
        return "https://www.blibli.com"
    parts = urlsplit(url)
    path = parts.path.split("/backend/")[0] if "/backend/" in parts.path else ""
    return f"{parts.scheme}://{parts.netloc}{path}"


def _html_block(text: str) -> Block:
    return Block(
        PLATFORM, "html_instead_of_json", f"HTML page where JSON was expected ({text[:60].strip()!r})"
    )


def _sold(value: Any) -> str | None:
    if isinstance(value, dict):
        return text_or_none(value.get("id") or value.get("en"))
    return text_or_none(value)


def _listing(product: Mapping[str, Any], base: str) -> Listing | None:
    sku = id_text(product.get("sku"))
    href = product.get("url")
    if not sku or not href:
        return None
    price = product.get("price") or {}
    images = product.get("images") or []
    tags = [str(t).upper() for t in product.get("tags") or []]
    url = strip_query(absolute_url(base, str(href)) or "", KEEP_PARAMS)
    hierarchy = product.get("categoryNameHierarchy")
    listing = Listing(
        platform=PLATFORM,
        listing_id=sku,
        url=url,
        title=str(product.get("name") or "").strip(),
        price=parse_price(price.get("minPrice"))
        if price.get("minPrice")
        else parse_price(price.get("priceDisplay")),
        seller_id=text_or_none(product.get("merchantCode")),
        seller_name=text_or_none(product.get("merchantName")),
        seller_city=text_or_none(product.get("location")),
        image_url=text_or_none(images[0]) if images else None,
        category=text_or_none(hierarchy[-1]) if isinstance(hierarchy, list) and hierarchy else None,
        sold_text=_sold(product.get("soldRangeCount")),
        sponsored="SPONSORED" in tags or bool(product.get("isSponsored")),
        status=text_or_none(product.get("status")),
        extra_ids={
            k: str(v)
            for k, v in (("product_code", product.get("id")), ("item_sku", product.get("itemSku")))
            if v
        },
        raw={
            "formatted_id": product.get("formattedId"),
            "price_display": price.get("priceDisplay"),
            "brand": product.get("brand"),
            "tags": product.get("tags"),
            "review": product.get("review"),
            "root_category": get_path(product, "rootCategory.name"),  # a marketing root, not the category
        },
    )
    return _origin(listing, product.get("location"))


def _origin(listing: Listing, location: Any) -> Listing:
    if abroad_location(location):
        set_origin(listing, True, [origin_fact(PLATFORM, "location", location)])
    return listing


def _ad_target(destination: Any) -> str | None:
    """The item page behind a sponsored product's ad click URL (its ``redirect_url`` parameter)."""
    if not isinstance(destination, str):
        return None
    target = dict(parse_qsl(urlsplit(destination).query)).get("redirect_url")
    return target or (destination if "/p/" in destination else None)


def _sponsored_listing(ad: Mapping[str, Any], base: str) -> Listing | None:
    """One ``sponsorProducts[]`` entry: ``skuId`` is the item SKU; the listing id is its product SKU."""
    item_sku = text_or_none(ad.get("skuId"))
    sku = _product_sku(item_sku or "")
    if not item_sku or not sku:
        return None
    target = _ad_target(ad.get("destinationUrl"))
    path = urlsplit(target).path if target else ""
    # the ad's own item page, on the configured host (sandbox or real); the click tracker is not kept
    url = f"{base}{path}" if path.startswith("/p/") else f"{base}/p/item-name/is--{item_sku}"
    listing = Listing(
        platform=PLATFORM,
        listing_id=sku,
        url=url,
        title=str(ad.get("name") or "").strip(),
        price=parse_price(ad.get("salePrice")),
        seller_id=text_or_none(ad.get("sellerId")),
        seller_city=text_or_none(ad.get("location")),
        image_url=text_or_none(ad.get("imageUrl")),
        sold_text=_sold(ad.get("soldRangeCount")),
        sponsored=True,
        extra_ids={"item_sku": item_sku},
        raw={
            "ad_rank": ad.get("rank"),
            "list_price": ad.get("mrp"),
            "tags": ad.get("tags"),
            "official": ad.get("official"),
            "merchant_badge": get_path(ad, "badge.merchantBadge"),
        },
    )
    return _origin(listing, ad.get("location"))


def _terms(values: Any) -> list[str]:
    out = []
    for value in values or []:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            for key in ("keyword", "searchTerm", "label", "name", "value"):
                if value.get(key):
                    out.append(str(value[key]))
                    break
    return out


def parse_search(
    body: Body, *, url: str = "", query: str = "", page: int = 1, status: int = 200
) -> SearchPage:
    """A ``backend/search/products`` body (wrapped or not) → listings; 422 → an empty, complete page."""
    if status == NO_RESULTS_STATUS:
        return SearchPage(platform=PLATFORM, total=0, has_more=False)
    data, block = read_api_json(PLATFORM, body, status=status, html_block=_html_block, unwrap=unwrap_data)
    if block:
        return blocked_page(PLATFORM, block)
    reader = PathReader()
    inner = reader.require(data, "data", dict)
    products = reader.require(data, "data.products", list) if inner is not None else None
    paging = reader.require(data, "data.paging", dict) if inner is not None else None
    if products is None:
        return SearchPage(platform=PLATFORM, shape_ok=False, missing_paths=reader.missing)
    inner = inner or {}
    base = _base_of(url)
    listings = [item for item in (_listing(p, base) for p in products if isinstance(p, dict)) if item]
    ads = inner.get("sponsorProducts")
    for ad in ads if isinstance(ads, list) else ():
        listing = _sponsored_listing(ad, base) if isinstance(ad, dict) else None
        if listing:
            listings.append(listing)
    missing = reader.missing + missing_item_paths(
        products, ("sku", "name", "url", "merchantCode"), "data.products"
    )
    if isinstance(ads, list):
        missing += missing_item_paths(ads, ("skuId", "name", "sellerId"), "data.sponsorProducts")
    result = SearchPage(platform=PLATFORM, shape_ok=not missing, missing_paths=missing)
    result.listings = finish_listings(listings, url=url, query=query, page=page)
    paging = paging or {}
    total, total_pages = paging.get("total_item"), paging.get("total_page")
    result.total = total if isinstance(total, int) else None
    current: int = paging["page"] if isinstance(paging.get("page"), int) else page
    result.has_more = (
        bool(products) and isinstance(total_pages, int) and current < min(total_pages, MAX_PAGES)
    )
    terms = _terms(inner.get("suggestions")) + _terms(inner.get("correctedSearchResponses"))
    result.related_terms = [t for i, t in enumerate(terms) if t != query and t not in terms[:i]]
    return result


def parse_detail(
    body: Body, *, url: str = "", status: int = 200, headers: Mapping[str, Any] | None = None
) -> CheckResult:
    """A ``_summary`` body → verdict; HTTP 404 is Blibli's removal signal."""
    guess_id = listing_id_from_url(url) or ""
    if status == 404:
        return CheckResult(PLATFORM, guess_id, Verdict.REMOVED, "blibli.http_404", "HTTP 404")
    data, block = read_api_json(
        PLATFORM, body, status=status, headers=headers, html_block=_html_block, unwrap=unwrap_data
    )
    if block:
        return block_result(PLATFORM, guess_id, block)
    if not isinstance(data, dict):
        return unobservable(PLATFORM, guess_id, "blibli.unexpected_shape", type(data).__name__)
    if str(data.get("code")) == "404" or str(data.get("status")).upper() == "NOT_FOUND":
        return CheckResult(PLATFORM, guess_id, Verdict.REMOVED, "blibli.code_404", f"code={data.get('code')}")
    product = data.get("data")
    if not isinstance(product, dict) or not product.get("name"):
        return unobservable(PLATFORM, guess_id, "blibli.unexpected_shape", "no data.name")
    sku = id_text(product.get("sku")) or guess_id
    images = product.get("images") or []
    first = images[0] if images else None
    image = first.get("full") if isinstance(first, dict) else first
    merchant = product.get("merchant") or {}
    price = product.get("price") or {}
    categories = product.get("categories") or []
    product_url = text_or_none(product.get("url")) or url
    listing = Listing(
        platform=PLATFORM,
        listing_id=sku,
        url=strip_query(absolute_url(_base_of(url), product_url) or "", KEEP_PARAMS),
        title=str(product.get("name") or "").strip(),
        description=html_to_text(str(product.get("description") or "")),
        price=parse_price(price.get("offered") or price.get("minPrice") or price.get("priceDisplay"))
        if isinstance(price, dict)
        else parse_price(price),
        seller_id=text_or_none(merchant.get("code")) or text_or_none(product.get("merchantCode")),
        seller_name=text_or_none(merchant.get("name")),
        seller_city=text_or_none(merchant.get("location")),
        image_url=text_or_none(image),
        category=text_or_none(categories[-1].get("label"))
        if categories and isinstance(categories[-1], dict)
        else None,
        sold_text=text_or_none(get_path(product, "statistics.sold")),
        status=text_or_none(product.get("status")),
        extra_ids={k: str(v) for k, v in (("product_code", product.get("code")),) if v},
        raw={
            "brand": get_path(product, "brand.name"),
            "usage_product_code": product.get("usageProductCode"),
            "specifications": product.get("specifications"),
        },
        source_url=url or None,
    )
    return CheckResult(PLATFORM, sku, Verdict.LIVE, "blibli.summary_ok", str(data.get("code", "")), listing)


PROFILE = SiteProfile(
    platform=PLATFORM,
    display_name="Blibli",
    operator="PT Global Digital Niaga Tbk (Blibli)",
    base_urls={"blibli": "https://www.blibli.com"},
    colour=(0, 149, 218),
    id_scheme="the product SKU (products[].sku; catalogue URLs pc--MTA-…?ds=SKU-… map to it)",
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
    concurrency=2,
    download_delay=2.0,
    block_markers=BLOCK_MARKERS,
    removal_rules=("blibli.http_404", "blibli.code_404"),
    notes="TLS fingerprinting reported; an HTML body where JSON was expected is a block.",
    answers=(
        AnswerRule("search", r"^/backend/search/products\b"),
        AnswerRule("detail", r"^/backend/product-detail/products/[^/]+/_summary"),
    ),
)
