"""Tokopedia: search (GraphQL ``SearchProductV5Query``, legacy V4 fallback) and listing detail
(``PDPGetLayoutQuery``).

Hosts: ``tokopedia`` (www, listing pages) and ``tokopedia-gql`` (GraphQL), both from
``Settings.base_url``. Listing id: the numeric ``oldID`` (``basicInfo.id`` on detail). TikTok Shop ids
carried by search results (``ttsProductID``, ``shop.ttsSellerID``) go into ``Listing.extra_ids`` as
``tiktokshop_product_id`` / ``tiktokshop_seller_id`` so a TikTok Shop recheck can follow them.

Search paths (a redesign is one edit here): ``[0].data.searchProductV5.{header, data.products}``, legacy
``data.ace_search_product_v4.{header, data.products}``. ``header.isQuerySafe == false`` marks a keyword
Tokopedia itself refuses (``SearchPage.query_blocked``, text from ``data.violation``).

Detail verdicts: GraphQL ``errors[].extensions.code == 2001`` → REMOVED (``tokopedia.gql_error_2001``);
``basicInfo.status`` BANNED/DELETED → REMOVED (``tokopedia.status_banned``/``…_deleted``); WAREHOUSE/HIDDEN
→ HIDDEN; ACTIVE → LIVE; Akamai pages, other GraphQL errors, 429/5xx, malformed → UNOBSERVABLE.

``rank`` is the 1-based position within the page (global rank = ``(page - 1) * 60 + rank``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

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
    block_result,
    blocked_page,
    find_marker,
    finish_listings,
    get_path,
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
)

PLATFORM = "tokopedia"
# Search answers tertib reads, by shape name and the path of their root. The sweep sends
# SearchProductV5Query (SWEEP_SEARCH_SHAPE); the web's own SearchProductQueryV4 (``ace_search_product_v4``)
# is read too, since an analyst's browser recording (``tertib calibrate``) may hold either.
SWEEP_SEARCH_SHAPE = "searchProductV5"
SEARCH_SHAPES: tuple[tuple[str, str], ...] = (
    ("searchProductV5", "data.searchProductV5"),
    ("ace_search_product_v4", "data.ace_search_product_v4"),
    ("searchProductV4", "data.searchProductV4"),
)
# What every answer's products carry (alternatives with |): missing from all of them is a shape change.
ITEM_PATHS = {
    "searchProductV5": ("oldID|id", "name", "url", "shop.oldID|shop.id|shop.shopId"),
    "ace_search_product_v4": ("id", "name", "url", "shop.shopId|shop.id"),
    "searchProductV4": ("id", "name", "url", "shop.shopId|shop.id"),
}
PAGE_SIZE = 60
MAX_PAGES = 100
BLOCK_MARKERS = ("access denied", "verify you are human", "reference #", "captcha")
REMOVED_STATUSES = {"BANNED": "tokopedia.status_banned", "DELETED": "tokopedia.status_deleted"}
HIDDEN_STATUSES = {"WAREHOUSE": "tokopedia.status_warehouse", "HIDDEN": "tokopedia.status_hidden"}
LIVE_STATUSES = {"ACTIVE"}
GQL_NOT_FOUND = "2001"

SEARCH_QUERY = """query SearchProductV5Query($params: String!) {
  searchProductV5(params: $params) {
    header { totalData responseCode keywordProcess keywordIntention componentID isQuerySafe
      additionalParams backendFilters meta { dynamicFields } }
    data {
      totalDataText
      banner { position text applink url imageURL }
      redirection { url }
      related { relatedKeyword position trackingOption otherRelated { keyword url applink componentID } }
      suggestion { currentKeyword suggestion query text componentID trackingOption }
      violation { headerText descriptionText imageURL ctaURL ctaApplink buttonText buttonType }
      products {
        oldID id ttsProductID name url applink mediaURL { image image300 videoCustom }
        shop { oldID id ttsSellerID name url city tier }
        badge { title url }
        price { text number range original discountPercentage }
        freeShipping { url }
        labelGroups { id position title type url styles { key value } }
        category { id name breadcrumb gaKey }
        rating wishlist
        ads { id productClickURL productViewURL productWishlistURL tag }
        meta { parentID warehouseID isImageBlurred isPortrait }
      }
    }
  }
}"""

PDP_QUERY = """query PDPGetLayoutQuery($shopDomain: String, $productKey: String, $layoutID: String,
  $apiVersion: Float, $userLocation: pdpUserLocation, $extParam: String, $tokonow: pdpTokoNow) {
  pdpGetLayout(shopDomain: $shopDomain, productKey: $productKey, layoutID: $layoutID,
    apiVersion: $apiVersion, userLocation: $userLocation, extParam: $extParam, tokonow: $tokonow) {
    requestID name pdpSession
    basicInfo { alias createdAt id shopID shopName minOrder maxOrder weight weightUnit condition status url
      catalogID category { id name title breadcrumbURL detail { id name breadcrumbURL } }
      txStats { transactionSuccess transactionReject countSold paymentVerified itemSoldFmt }
      stats { countView countReview countTalk rating } }
    components { name type position data { ...on pdpDataProductMedia { media { type urlOriginal } }
      ...on pdpDataProductContent { name price { value currency } stock { value } }
      ...on pdpDataProductDetail { content { title subtitle } } } }
  }
}"""

SHOP_PER_PAGE = 80
# [I] from public scrapers of the shop page; calibrate on a live capture
SHOP_QUERY = """query ShopProducts($sid: String!, $page: Int, $perPage: Int, $keyword: String,
  $etalaseId: String, $sort: Int) {
  GetShopProduct(shopId: $sid, filter: {page: $page, perPage: $perPage, fkeyword: $keyword,
    fmenu: $etalaseId, sort: $sort}) {
    status errors links { prev next }
    data { product_id name product_url stock price { text_idr } primary_image { original }
      flags { isSold isPreorder } stats { reviewCount rating } label_groups { position title type } }
  }
}"""

GQL_HEADERS = {
    "content-type": "application/json",
    "accept": "*/*",
    "x-source": "tokopedia-lite",
    "x-tkpd-lite-service": "zeus",
    "x-device": "desktop-0.0",
}


# --------------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------------
def search_params(query: str, page: int, *, unique_id: str | None = None, sort: int = 23) -> str:
    """The URL-encoded ``params`` string of a SearchProductV5 call (``ob=23`` is "most relevant")."""
    page = max(1, page)
    return query_string(
        {
            "q": query,
            "page": page,
            "rows": PAGE_SIZE,
            "start": (page - 1) * PAGE_SIZE,
            "st": "product",
            "device": "desktop",
            "source": "search",
            "ob": sort,
            "safe_search": "false",
            "unique_id": unique_id or uuid.uuid4().hex,
        }
    )


def _gql_headers(settings: Settings) -> dict[str, str]:
    www = settings.base_url("tokopedia")
    return {**GQL_HEADERS, "origin": www, "referer": www + "/"}


def search_request(
    settings: Settings, query: str, page: int = 1, *, unique_id: str | None = None
) -> RequestSpec:
    """POST ``{tokopedia-gql}/graphql/SearchProductV5Query`` with a one-element JSON array body."""
    body = [
        {
            "operationName": "SearchProductV5Query",
            "variables": {"params": search_params(query, page, unique_id=unique_id)},
            "query": SEARCH_QUERY,
        }
    ]
    url = settings.base_url("tokopedia-gql") + "/graphql/SearchProductV5Query"
    return RequestSpec(url, "POST", _gql_headers(settings), json.dumps(body, separators=(",", ":")))


def shop_request(settings: Settings, shop_id: str, page: int = 1) -> RequestSpec:
    """POST ``{tokopedia-gql}/graphql/ShopProducts``: one page of a shop's listings (seller following)."""
    body = [
        {
            "operationName": "ShopProducts",
            "variables": {
                "sid": shop_id,
                "page": max(1, page),
                "perPage": SHOP_PER_PAGE,
                "etalaseId": "etalase",
                "sort": 1,
                "keyword": "",
            },
            "query": SHOP_QUERY,
        }
    ]
    url = settings.base_url("tokopedia-gql") + "/graphql/ShopProducts"
    return RequestSpec(url, "POST", _gql_headers(settings), json.dumps(body, separators=(",", ":")))


def split_listing_url(listing_url: str) -> tuple[str, str]:
    """``https://www.tokopedia.com/{shopDomain}/{productKey}?…`` → (shopDomain, productKey)."""
    path = [p for p in urlsplit(listing_url).path.split("/") if p]
    # a sandbox base URL carries a "/tokopedia" prefix: the last two segments are what matter
    if len(path) < 2:
        raise UsageError(f"not a Tokopedia listing URL (expected /shop/product): {listing_url}")
    return path[-2], path[-1]


def detail_request(settings: Settings, listing_url: str) -> RequestSpec:
    """POST ``{tokopedia-gql}/graphql/PDPGetLayoutQuery`` for a listing URL (ids alone are not enough)."""
    if not listing_url.startswith(("http://", "https://")):
        raise UsageError("Tokopedia rechecks need the listing URL (https://www.tokopedia.com/shop/product)")
    shop_domain, product_key = split_listing_url(listing_url)
    body = [
        {
            "operationName": "PDPGetLayoutQuery",
            "variables": {
                "shopDomain": shop_domain,
                "productKey": product_key,
                "layoutID": "",
                "apiVersion": 1,
                "userLocation": {"cityID": "176", "addressID": "0", "districtID": "2274", "postalCode": ""},
                "extParam": "",
            },
            "query": PDP_QUERY,
        }
    ]
    url = settings.base_url("tokopedia-gql") + "/graphql/PDPGetLayoutQuery"
    return RequestSpec(url, "POST", _gql_headers(settings), json.dumps(body, separators=(",", ":")))


def listing_id_from_url(url: str) -> str | None:
    """Tokopedia listing URLs carry no numeric id; only ``?…id=123`` tracking parameters do."""
    for key, value in parse_qsl(urlsplit(url).query):
        if key in ("id", "product_id", "productID") and value.isdigit():
            return value
    return None


# --------------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------------
def _html_block(text: str) -> Block:
    marker = find_marker(text, BLOCK_MARKERS)
    if marker:
        return Block(PLATFORM, "akamai", f"HTML page containing {marker!r}")
    return Block(PLATFORM, "unexpected_html", "HTML page where GraphQL JSON was expected")


def _first(obj: Any) -> Any:
    return obj[0] if isinstance(obj, list) and obj else obj


def _product_url(raw_url: str | None) -> str | None:
    """Ads URLs go through ``ta.tokopedia.com/promo/…?r=<target>``; keep the target, drop tracking."""
    if not raw_url:
        return None
    parts = urlsplit(raw_url)
    if parts.netloc.startswith("ta.tokopedia"):
        target = dict(parse_qsl(parts.query)).get("r")
        if target:
            raw_url = unquote(target)
    return strip_query(raw_url)


def _sold_text(product: Mapping[str, Any]) -> str | None:
    for label in product.get("labelGroups") or []:
        title = str(label.get("title") or "")
        if "terjual" in title.lower() or label.get("position") == "ri_product_credibility":
            return title or None
    return None


def _ads_id(ads: Any) -> str | None:
    """The ad id: ``ads.id`` (V5) or ``ads.adsId`` (the web V4 query's alias); non-empty = sponsored."""
    if not isinstance(ads, dict):
        return None
    return id_text(ads.get("id")) or id_text(ads.get("adsId"))


def _origin(listing: Listing, shop: Mapping[str, Any]) -> Listing:
    """A shop city Tokopedia reports as abroad ("Luar Negeri") marks the item as shipped from abroad."""
    city = shop.get("city")
    if abroad_location(city):
        set_origin(listing, True, [origin_fact(PLATFORM, "shop.city", city)])
    return listing


def _listing_v5(product: Mapping[str, Any]) -> Listing | None:
    listing_id = id_text(product.get("oldID")) or id_text(product.get("id"))
    url = _product_url(product.get("url"))
    if not listing_id or not url:
        return None
    shop = product.get("shop") or {}
    price = product.get("price") or {}
    ads_id = _ads_id(product.get("ads"))
    extra = {}
    if id_text(product.get("ttsProductID")):
        extra["tiktokshop_product_id"] = str(id_text(product.get("ttsProductID")))
    if id_text(shop.get("ttsSellerID")):
        extra["tiktokshop_seller_id"] = str(id_text(shop.get("ttsSellerID")))
    new_id = id_text(product.get("id"))
    if new_id and new_id != listing_id:
        extra["tokopedia_id"] = new_id
    category = product.get("category") or {}
    listing = Listing(
        platform=PLATFORM,
        listing_id=listing_id,
        url=url,
        title=str(product.get("name") or "").strip(),
        price=parse_price(price.get("number")) if price.get("number") else parse_price(price.get("text")),
        seller_id=id_text(shop.get("oldID")) or id_text(shop.get("id")) or id_text(shop.get("shopId")),
        seller_name=text_or_none(shop.get("name")),
        seller_city=text_or_none(shop.get("city")),
        shop_url=text_or_none(shop.get("url")),
        image_url=text_or_none(get_path(product, "mediaURL.image")),
        category=text_or_none(category.get("breadcrumb") or category.get("name")),
        sold_text=_sold_text(product),
        sponsored=bool(ads_id),
        extra_ids=extra,
        raw={
            "price_text": price.get("text"),
            "rating": product.get("rating"),
            "shop_tier": shop.get("tier"),
            "category_id": category.get("id"),
            "ads_id": ads_id,
        },
    )
    return _origin(listing, shop)


def _listing_v4(product: Mapping[str, Any]) -> Listing | None:
    """One product of the web query ``SearchProductQueryV4`` (``ace_search_product_v4``): flat fields and the
    aliases ``shop.shopId`` and ``ads.adsId`` (older app answers say ``shop.id``/``ads.id``)."""
    listing_id = id_text(product.get("id"))
    url = _product_url(product.get("url"))
    if not listing_id or not url:
        return None
    shop = product.get("shop") or {}
    ads_id = _ads_id(product.get("ads"))
    badges = [str(b["title"]) for b in product.get("badges") or [] if isinstance(b, dict) and b.get("title")]
    listing = Listing(
        platform=PLATFORM,
        listing_id=listing_id,
        url=url,
        title=str(product.get("name") or "").strip(),
        price=parse_price(product.get("priceInt") or product.get("price")),
        seller_id=id_text(shop.get("shopId")) or id_text(shop.get("id")),
        seller_name=text_or_none(shop.get("name")),
        seller_city=text_or_none(shop.get("city")),
        shop_url=text_or_none(shop.get("url")),
        image_url=text_or_none(product.get("imageUrl")),
        category=text_or_none(product.get("categoryName") or product.get("categoryBreadcrumb")),
        sold_text=_sold_text(product),
        sponsored=bool(ads_id),
        raw={
            "price_text": product.get("price"),
            "rating": product.get("rating"),
            "category_id": product.get("categoryId"),
            "ads_id": ads_id,
            "badges": badges or None,
            "official_store": shop.get("isOfficial"),
        },
    )
    return _origin(listing, shop)


def _related_terms(root: Mapping[str, Any]) -> list[str]:
    terms: list[str] = []
    related = get_path(root, "data.related") or {}
    if isinstance(related, dict):
        terms.append(str(related.get("relatedKeyword") or ""))
        terms.extend(
            str(o.get("keyword") or "") for o in related.get("otherRelated") or [] if isinstance(o, dict)
        )
    suggestion = get_path(root, "data.suggestion") or {}
    if isinstance(suggestion, dict):
        terms.append(str(suggestion.get("suggestion") or ""))
    additional = get_path(root, "header.additionalParams")
    if isinstance(additional, str) and "=" in additional:
        for key, value in parse_qsl(additional):
            if "keyword" in key.lower() or "related" in key.lower():
                terms.extend(v for v in value.split(","))
    seen: list[str] = []
    for term in (t.strip() for t in terms):
        if term and term not in seen:
            seen.append(term)
    return seen


def parse_search(
    body: Body, *, url: str = "", query: str = "", page: int = 1, status: int = 200
) -> SearchPage:
    """One SearchProductV5 (or legacy V4) response → listings, totals, query_blocked, related terms."""
    data, block = read_api_json(PLATFORM, body, status=status, html_block=_html_block, unwrap=_first)
    if block:
        return blocked_page(PLATFORM, block)
    reader = PathReader()
    root, shape = None, ""
    for name, path in SEARCH_SHAPES:
        root = get_path(data, path)
        if root is not None:
            shape = name
            break
    if root is None:
        errors = data.get("errors") if isinstance(data, dict) else None
        if errors:
            return blocked_page(PLATFORM, Block(PLATFORM, "gql_error", json.dumps(errors)[:300]))
        return SearchPage(platform=PLATFORM, shape_ok=False, missing_paths=[SEARCH_SHAPES[0][1]])
    legacy = shape != SWEEP_SEARCH_SHAPE
    header = reader.require(root, "header", dict) or {}
    products = reader.require(root, "data.products", list)
    root_path = dict(SEARCH_SHAPES)[shape]
    missing = [f"{root_path}.{path}" for path in reader.missing]
    missing += missing_item_paths(products or [], ITEM_PATHS[shape], f"{root_path}.data.products")
    result = SearchPage(platform=PLATFORM, shape_ok=not missing, missing_paths=missing, shape=shape)
    # V5 says isQuerySafe in the header; the web V4 query puts it under data
    query_safe = header.get("isQuerySafe", get_path(root, "data.isQuerySafe"))
    if query_safe is False:
        violation = get_path(root, "data.violation") or {}
        result.query_blocked = True
        result.query_blocked_detail = (
            " — ".join(t for t in (violation.get("headerText"), violation.get("descriptionText")) if t)
            or "isQuerySafe=false"
        )
    make = _listing_v4 if legacy else _listing_v5
    listings = [item for item in (make(p) for p in products or [] if isinstance(p, dict)) if item]
    result.listings = finish_listings(listings, url=url, query=query, page=page)
    total = header.get("totalData")
    result.total = int(total) if isinstance(total, int | str) and str(total).isdigit() else None
    seen = (max(page, 1) - 1) * PAGE_SIZE + len(products or [])
    result.has_more = bool(products) and page < MAX_PAGES and (result.total is None or seen < result.total)
    result.related_terms = _related_terms(root)
    return result


def parse_shop(body: Body, *, url: str = "", query: str = "", page: int = 1, status: int = 200) -> SearchPage:
    """One ShopProducts response → the shop's listings (``[0].data.GetShopProduct.{data, links.next}``)."""
    data, block = read_api_json(PLATFORM, body, status=status, html_block=_html_block, unwrap=_first)
    if block:
        return blocked_page(PLATFORM, block)
    reader = PathReader()
    root = reader.require(data, "data.GetShopProduct", dict)
    if root is None:
        errors = data.get("errors") if isinstance(data, dict) else None
        if errors:
            return blocked_page(PLATFORM, Block(PLATFORM, "gql_error", json.dumps(errors)[:300]))
        return SearchPage(platform=PLATFORM, shape_ok=False)
    products = reader.require(root, "data", list) or []
    listings = []
    for p in products:
        if not isinstance(p, dict):
            continue
        listing_id = id_text(p.get("product_id"))
        product_url = strip_query(str(p.get("product_url") or ""))
        if not listing_id or not product_url:
            continue
        listings.append(
            Listing(
                platform=PLATFORM,
                listing_id=listing_id,
                url=product_url,
                title=str(p.get("name") or "").strip(),
                price=parse_price(get_path(p, "price.text_idr")),
                image_url=text_or_none(get_path(p, "primary_image.original")),
                raw={"stock": p.get("stock")},
            )
        )
    result = SearchPage(platform=PLATFORM, shape_ok=reader.ok)
    result.listings = finish_listings(listings, url=url, query=query, page=page)
    result.has_more = bool(products) and bool(get_path(root, "links.next"))
    return result


# --------------------------------------------------------------------------------------------------
# Detail
# --------------------------------------------------------------------------------------------------
def _component(layout: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for comp in layout.get("components") or []:
        if isinstance(comp, dict) and comp.get("name") == name:
            data = comp.get("data") or []
            return data[0] if data and isinstance(data[0], dict) else {}
    return {}


def _detail_listing(layout: Mapping[str, Any], url: str) -> Listing | None:
    info = layout.get("basicInfo") or {}
    listing_id = id_text(info.get("id"))
    if not listing_id:
        return None
    content = _component(layout, "product_content")
    media = _component(layout, "product_media").get("media") or []
    details = {
        str(c.get("title")): str(c.get("subtitle") or "")
        for c in _component(layout, "product_detail").get("content") or []
        if isinstance(c, dict)
    }
    product_url = strip_query(str(info.get("url") or url))
    shop_domain = urlsplit(product_url).path.strip("/").split("/")[0] if product_url else ""
    base = f"{urlsplit(product_url).scheme}://{urlsplit(product_url).netloc}" if product_url else ""
    stats = info.get("txStats") or {}
    return Listing(
        platform=PLATFORM,
        listing_id=listing_id,
        url=product_url,
        title=str(content.get("name") or info.get("alias") or "").strip(),
        description=details.get("Deskripsi", ""),
        price=parse_price(get_path(content, "price.value")),
        seller_id=id_text(info.get("shopID")),
        seller_name=text_or_none(info.get("shopName")),
        shop_url=f"{base}/{shop_domain}" if shop_domain else None,
        image_url=text_or_none(media[0].get("urlOriginal")) if media and isinstance(media[0], dict) else None,
        category=text_or_none(get_path(info, "category.name")),
        condition=text_or_none(info.get("condition")),
        sold_text=text_or_none(stats.get("itemSoldFmt") or stats.get("countSold")),
        status=text_or_none(info.get("status")),
        raw={
            "count_sold": stats.get("countSold"),
            "stock": get_path(content, "stock.value"),
            "kondisi": details.get("Kondisi"),
            "created_at": info.get("createdAt"),
        },
        source_url=url or None,
    )


def parse_detail(
    body: Body, *, url: str = "", status: int = 200, headers: Mapping[str, Any] | None = None
) -> CheckResult:
    """A PDPGetLayout response (array, ``{data: {pdpGetLayout}}`` or the bare object) → verdict."""
    guess_id = listing_id_from_url(url) or ""
    data, block = read_api_json(
        PLATFORM, body, status=status, headers=headers, html_block=_html_block, unwrap=_first
    )
    if block:
        return block_result(PLATFORM, guess_id, block)
    if not isinstance(data, dict):
        return unobservable(PLATFORM, guess_id, "tokopedia.unexpected_shape", type(data).__name__)
    for error in data.get("errors") or []:
        code = str(get_path(error, "extensions.code", ""))
        if code == GQL_NOT_FOUND:
            return CheckResult(
                PLATFORM,
                guess_id,
                Verdict.REMOVED,
                "tokopedia.gql_error_2001",
                str(error.get("message", code)),
            )
    layout = get_path(data, "data.pdpGetLayout") or (data if "basicInfo" in data else None)
    if not isinstance(layout, dict) or not isinstance(layout.get("basicInfo"), dict):
        if data.get("errors"):
            return unobservable(PLATFORM, guess_id, "tokopedia.gql_error", json.dumps(data["errors"])[:300])
        return unobservable(PLATFORM, guess_id, "tokopedia.unexpected_shape", "no pdpGetLayout.basicInfo")
    listing = _detail_listing(layout, url)
    state = str(layout["basicInfo"].get("status") or "").upper()
    listing_id = listing.listing_id if listing else guess_id
    if state in REMOVED_STATUSES:
        return CheckResult(PLATFORM, listing_id, Verdict.REMOVED, REMOVED_STATUSES[state], state, listing)
    if state in HIDDEN_STATUSES:
        return CheckResult(PLATFORM, listing_id, Verdict.HIDDEN, HIDDEN_STATUSES[state], state, listing)
    if state in LIVE_STATUSES and listing is not None:
        return CheckResult(PLATFORM, listing_id, Verdict.LIVE, "tokopedia.status_active", state, listing)
    return unobservable(PLATFORM, listing_id, "tokopedia.status_unrecognised", state or "empty status")


PROFILE = SiteProfile(
    platform=PLATFORM,
    display_name="Tokopedia",
    operator="PT Tokopedia",
    base_urls={"tokopedia": "https://www.tokopedia.com", "tokopedia-gql": "https://gql.tokopedia.com"},
    colour=(3, 172, 14),
    id_scheme="the numeric oldID (basicInfo.id on detail)",
    parse_search=parse_search,
    parse_detail=parse_detail,
    search_request=search_request,
    detail_request=detail_request,
    shop_request=shop_request,
    parse_shop=parse_shop,
    reports_refused_queries=True,  # header.isQuerySafe
    listing_id_from_url=listing_id_from_url,
    page_size=PAGE_SIZE,
    max_pages=MAX_PAGES,
    needs_browser=False,
    concurrency=2,
    download_delay=2.0,
    block_markers=BLOCK_MARKERS,
    removal_rules=("tokopedia.gql_error_2001", *REMOVED_STATUSES.values()),
    hidden_rules=tuple(HIDDEN_STATUSES.values()),
    notes="TikTok Shop products appear in results with ttsProductID (extra_ids).",
    answers=(
        AnswerRule("search", r"^/graphql/(SearchProductV5Query|SearchProductQueryV4|SearchProductV4Query)\b"),
        AnswerRule("detail", r"^/graphql/PDPGetLayoutQuery\b"),
    ),
)
