"""TikTok Shop (Indonesia, served from ``shop-id.tokopedia.com``): product pages only.

The web has no keyword search: TikTok Shop products are found through the Tokopedia search
(``ttsProductID`` → ``Listing.extra_ids["tiktokshop_product_id"]``), then checked here.
Host: ``tiktokshop`` from ``Settings.base_url``. Listing id: the 19-digit product id.

Page data: ``<script id="__MODERN_ROUTER_DATA__" type="application/json">`` → ``loaderData`` (one key per
route; the first value with ``page_config``) → ``page_config.components_map[]`` of
``{component_type, component_data}``. All [I] — calibrate on the first live run.

Verdicts: ``product_info`` with ``product_model.status`` 1 → LIVE; 2 → REMOVED
(``tiktokshop.status_deleted``); 3 → REMOVED (``tiktokshop.status_banned``); 4 → HIDDEN
(``tiktokshop.status_under_review``); a ``product_not_found`` component → REMOVED
(``tiktokshop.product_not_found``). "not available in this country or region" without router data →
UNOBSERVABLE (``tiktokshop.region_locked``, not removal); "Security Check"/``captcha_container`` →
UNOBSERVABLE (``tiktokshop.security_check``); missing router data → UNOBSERVABLE
(``tiktokshop.no_router_data``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from crawler.config import Settings
from crawler.errors import UsageError
from crawler.items import CheckResult, Listing, Verdict
from spiders.base import (
    AnswerRule,
    Body,
    BodyError,
    RequestSpec,
    SiteProfile,
    block_result,
    body_text,
    find_marker,
    get_path,
    html_title,
    http_block,
    id_text,
    malformed,
    parse_price,
    script_json,
    text_or_none,
    unobservable,
)

PLATFORM = "tiktokshop"
REGION_TEXT = "not available in this country or region"
SECURITY_MARKERS = ("captcha_container", "security check")
STATUS_RULES = {
    2: (Verdict.REMOVED, "tiktokshop.status_deleted"),
    3: (Verdict.REMOVED, "tiktokshop.status_banned"),
    4: (Verdict.HIDDEN, "tiktokshop.status_under_review"),
}
_ID_IN_URL = re.compile(r"/(?:pdp/[^/]+|view/product)/(\d{6,})")


def listing_id_from_url(url: str) -> str | None:
    match = _ID_IN_URL.search(url)
    return match.group(1) if match else None


def product_url(settings: Settings, product_id: str) -> str:
    return f"{settings.base_url('tiktokshop')}/view/product/{product_id}"


def detail_request(settings: Settings, ref: str) -> RequestSpec:
    """The product page for a product id or a ``/pdp/…/{id}`` / ``/view/product/{id}`` URL."""
    product_id = listing_id_from_url(ref) if "/" in ref else ref.strip()
    if not product_id or not product_id.isdigit():
        raise UsageError(f"not a TikTok Shop product id or URL: {ref}")
    return RequestSpec(product_url(settings, product_id), "GET", {"accept": "text/html"})


def _components(router: Any) -> list[Mapping[str, Any]] | None:
    loader = router.get("loaderData") if isinstance(router, dict) else None
    if not isinstance(loader, dict):
        return None
    for value in loader.values():
        comps = get_path(value, "page_config.components_map")
        if isinstance(comps, list):
            return [c for c in comps if isinstance(c, dict)]
    return None


def _price(model: Mapping[str, Any]) -> int | None:
    for path in ("price.real_price", "price.min_price", "price.sale_price", "price.original_price", "price"):
        value = get_path(model, path)
        if isinstance(value, dict):
            value = value.get("price_val") or value.get("sale_price_decimal") or value.get("price_str")
        price = parse_price(value) if value is not None and not isinstance(value, dict) else None
        if price is not None:
            return price
    return None


def _listing(data: Mapping[str, Any], url: str, base: str) -> Listing | None:
    model = data.get("product_model") or {}
    shop = data.get("shop_info") or {}
    product_id = id_text(model.get("product_id")) or listing_id_from_url(url)
    if not product_id:
        return None
    images = model.get("images") or []
    image = None
    if images and isinstance(images[0], dict):
        image = (images[0].get("url_list") or [None])[0] or images[0].get("url")
    return Listing(
        platform=PLATFORM,
        listing_id=product_id,
        url=url or f"{base}/view/product/{product_id}",
        title=str(model.get("name") or model.get("title") or "").strip(),
        description=str(model.get("description") or "").strip(),
        price=_price(model),
        seller_id=id_text(shop.get("seller_id") or model.get("seller_id")),
        seller_name=text_or_none(shop.get("shop_name")),
        image_url=text_or_none(image),
        sold_text=text_or_none(model.get("sold_count")),
        status=text_or_none(model.get("status")),
        raw={"seller_id_model": model.get("seller_id")},
        source_url=url or None,
    )


def parse_detail(
    body: Body, *, url: str = "", status: int = 200, headers: Mapping[str, Any] | None = None
) -> CheckResult:
    """A product page → verdict from the router data's ``product_info``/``product_not_found``."""
    guess_id = listing_id_from_url(url) or ""
    block = http_block(PLATFORM, status, headers)
    if block:
        return block_result(PLATFORM, guess_id, block)
    text = body_text(body)
    try:
        blobs = script_json(text, id="__MODERN_ROUTER_DATA__")
    except BodyError as exc:
        return block_result(PLATFORM, guess_id, malformed(PLATFORM, exc))
    components = next((c for c in (_components(b) for b in blobs) if c is not None), None)
    if components is None:
        if "security check" in html_title(text).lower() or find_marker(text, SECURITY_MARKERS[:1]):
            return unobservable(PLATFORM, guess_id, "tiktokshop.security_check", "Security Check captcha")
        if REGION_TEXT in text.lower():
            return unobservable(PLATFORM, guess_id, "tiktokshop.region_locked", REGION_TEXT)
        return unobservable(PLATFORM, guess_id, "tiktokshop.no_router_data", "no __MODERN_ROUTER_DATA__")
    base = url.split("/pdp/")[0].split("/view/")[0] if url else "https://shop-id.tokopedia.com"
    for comp in components:
        kind = comp.get("component_type")
        if kind == "product_not_found":
            return CheckResult(PLATFORM, guess_id, Verdict.REMOVED, "tiktokshop.product_not_found", str(kind))
        if kind == "product_info":
            data = comp.get("component_data") or {}
            listing = _listing(data, url, base) if isinstance(data, dict) else None
            if listing is None:
                return unobservable(
                    PLATFORM, guess_id, "tiktokshop.unexpected_shape", "product_info without id"
                )
            raw_status = get_path(data, "product_model.status")
            try:
                code = int(raw_status)
            except (TypeError, ValueError):
                return unobservable(
                    PLATFORM, listing.listing_id, "tiktokshop.status_unrecognised", str(raw_status)
                )
            if code == 1:
                return CheckResult(
                    PLATFORM, listing.listing_id, Verdict.LIVE, "tiktokshop.status_live", "1", listing
                )
            if code in STATUS_RULES:
                verdict, rule = STATUS_RULES[code]
                return CheckResult(PLATFORM, listing.listing_id, verdict, rule, str(code), listing)
            return unobservable(PLATFORM, listing.listing_id, "tiktokshop.status_unrecognised", str(code))
    return unobservable(PLATFORM, guess_id, "tiktokshop.unexpected_shape", "no product_info component")


PROFILE = SiteProfile(
    platform=PLATFORM,
    display_name="TikTok Shop",
    operator="PT Tokopedia (TikTok Shop Indonesia)",
    base_urls={"tiktokshop": "https://shop-id.tokopedia.com"},
    colour=(20, 20, 20),
    id_scheme="the 19-digit product id",
    no_search_reason="TikTok Shop is found through Tokopedia's search (ttsProductID)",
    parse_detail=parse_detail,
    detail_request=detail_request,
    listing_id_from_url=listing_id_from_url,
    needs_browser=False,
    concurrency=1,
    download_delay=4.0,
    block_markers=SECURITY_MARKERS,
    removal_rules=("tiktokshop.product_not_found", "tiktokshop.status_deleted", "tiktokshop.status_banned"),
    hidden_rules=("tiktokshop.status_under_review",),
    notes="No keyword search: products come from the Tokopedia search (ttsProductID).",
    answers=(AnswerRule("detail", r"^/(pdp/[^/]+|view/product)/\d{6,}"),),
)
