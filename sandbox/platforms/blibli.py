"""Blibli replica: search and product-summary JSON in the shape of the real captures.

- ``GET /backend/search/products?searchTerm=…&page=N&start=…&channelId=web`` → ``{code: 200, status: "OK",
  data: {searchTerm, products[], paging.{page, total_page, item_per_page, total_item}, …}}`` with the keys
  of the real ``search_kaos_wrapped.json`` (``id``, ``sku``, ``formattedId`` ``ps--{sku}``, ``name``,
  ``status`` AVAILABLE, ``price.{priceDisplay, minPrice, …}``, ``images[]``, ``location``, ``merchantCode``,
  ``url`` ``/p/{slug}/ps--{sku}``, …), 40 per page. No results (or a platform-blocked keyword) → HTTP 422.
- ``GET /backend/product-detail/products/ps--{SKU}/_summary`` → ``{code, status, data}`` with the keys of the
  real ``product_detail_wrapped.json`` plus ``price``, ``merchant`` and ``statistics.sold``. REMOVED or
  unknown → HTTP 404. HIDDEN → 200 with ``data.buyable == false`` and ``data.status == "UNAVAILABLE"``
  (inferred; Blibli documents no hidden state).
- ``GET /p/{slug}/ps--{SKU}``: a small HTML listing page (404 when removed).
- Block fault: an HTML "Access Denied" body where JSON was expected (HTTP 200).
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.catalog import CatalogListing, IdGen, slugify
from sandbox.images import image_route
from sandbox.platforms import (
    escape,
    guarded,
    html_response,
    image_url,
    json_response,
    listing_slug,
    pick,
    rupiah,
    sold_count,
    sold_rounded,
    virtual_day,
)
from sandbox.spec import Policy, ReplicaSpec, Shop
from sandbox.state import Fault, SandboxState

PLATFORM = "blibli"
PAGE_SIZE = 40
MAX_PAGES = 20

BLOCK_HTML = """<!DOCTYPE html><html><head><title>Access Denied</title></head><body><h1>Access Denied</h1>
<p>Your request has been blocked. Reference ID: {ref}</p></body></html>"""


def block_page(request: Request, fault: Fault) -> Response:
    return html_response(BLOCK_HTML.replace("{ref}", str(pick(request.url.path, "bb", 10**9))))


def _price(listing: CatalogListing) -> dict[str, Any]:
    shown = rupiah(listing.price).replace("Rp", "Rp ")
    return {
        "priceDisplay": shown,
        "strikeThroughPriceDisplay": "",
        "discount": 0,
        "minPrice": float(listing.price),
        "offerPriceDisplay": shown,
    }


def _code(listing: CatalogListing) -> str:
    return listing.extra.get("product_code") or f"MTA-{pick(listing.key, 'mta', 10**7):07d}"


def product(request: Request, listing: CatalogListing) -> dict[str, Any]:
    _, path = page_path(listing)
    sku = listing.listing_id
    return {
        "id": _code(listing),
        "sku": sku,
        "merchantCode": listing.seller_id,
        "status": "AVAILABLE",
        "name": listing.title,
        "price": _price(listing),
        "images": [image_url(request, PLATFORM, listing)],
        # as on the real site: the root is a marketing group, the category sits in categoryNameHierarchy
        "rootCategory": {"id": "GA-1000036", "name": "Galeri Indonesia"},
        "categoryNameHierarchy": [part.strip() for part in listing.category.split("/") if part.strip()],
        "brand": "No Brand",
        "review": {"rating": 4 + pick(listing.key, "r", 2), "count": sold_count(listing) // 5},
        "otherOfferings": {"count": 0, "startPrice": "", "allOfferPageUrl": ""},
        "itemCount": 1,
        "defaultSku": f"{sku}-00001",
        "itemSku": f"{sku}-00001",
        "tags": ["NEW" if listing.condition == "NEW" else "USED", "REGULAR"],
        "formattedId": f"ps--{sku}",
        "url": f"{path}?ds={sku}-00001&source=SEARCH",
        "attributes": [],
        "productFeatures": "",
        "storeClosingInfo": {"storeClosed": False, "delayShipping": False},
        "promoEndTime": 0,
        "debugData": {},
        "allCategories": ["54817"],
        "merchantVoucherCount": 0,
        "expandedProducts": [],
        "location": listing.seller_city,
        "numLocations": 1,
        "merchantName": listing.seller_name,
        "soldRangeCount": {
            "id": f"{sold_rounded(sold_count(listing, virtual_day(request)))} terjual",
            "en": f"{sold_rounded(sold_count(listing, virtual_day(request)), english=True)} sold",
        },
    }


def search_answer(
    state: SandboxState, request: Request, term: str, page: int, merchant: str | None = None
) -> tuple[int, dict[str, Any]]:
    """A search answer; with ``merchant`` (``merchantCode=``), that store's listings, newest first."""
    found: list[CatalogListing] = []
    total = 0
    if merchant and 1 <= page <= MAX_PAGES:
        found, total = state.shop(PLATFORM, merchant, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    elif term and not state.blocked_query(PLATFORM, term) and 1 <= page <= MAX_PAGES:
        found, total = state.search(PLATFORM, term, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    if not found:
        return 422, {"code": 422, "status": "UNPROCESSABLE_ENTITY", "errors": {"searchTerm": ["NO_RESULTS"]}}
    total_page = min(MAX_PAGES, -(-total // PAGE_SIZE))
    return 200, {
        "code": 200,
        "status": "OK",
        "data": {
            "pageType": [],
            "searchTerm": term,
            "suggestions": [],
            "correctedSearchResponses": [],
            "ageRestricted": False,
            "products": [product(request, x) for x in found],
            "sorting": {"parameter": "sort", "options": []},
            "filters": [],
            "quickFilters": [],
            "paging": {
                "page": page,
                "total_page": total_page,
                "item_per_page": PAGE_SIZE,
                "total_item": total,
            },
            "maxOffers": 50,
            "serverCurrentTime": int(state.clock.now().timestamp() * 1000),
            "productInfo": {},
            "code": "OK",
            "selectedCategoryIds": [],
            "visibleCategoryIds": [],
            "exclusiveCampProducts": [],
            "exclusiveCampRow": 0,
            "responseFlags": [],
            "redirectionUrl": "",
            "intentAttributes": {},
            "personalizedAttributes": {},
            "intentApplied": False,
            "showAllCategories": True,
            "searchPageUrl": "",
            "catIntentFailed": False,
            "sellerAdsPosition": [],
        },
    }


def summary(request: Request, listing: CatalogListing, status: str) -> dict[str, Any]:
    _, path = page_path(listing)
    root = f"{request.url.scheme}://{request.url.netloc}/blibli"
    sku = listing.listing_id
    code = _code(listing)
    parts = [p.strip() for p in listing.category.split("/") if p.strip()]
    cats = [
        {
            "level": i + 1,
            "id": f"C-{pick(p, 'cat', 10**6)}",
            "label": p,
            "url": f"{root}/c/{pick(p, 'cat', 10**6)}",
            "productCategoryCode": f"C-{pick(p, 'cat', 10**6)}",
        }
        for i, p in enumerate(parts)
    ]
    img = image_url(request, PLATFORM, listing)
    data = {
        "name": listing.title,
        "url": f"{root}{path}?ds={sku}",
        "urlFriendlyName": path.split("/")[2],
        "categories": cats,
        "masterCategories": cats,
        "brand": {"name": "No Brand", "logo": "", "code": "no-brand", "official": False},
        "images": [{"full": img, "thumbnail": img}],
        "conditions": ["ONLINE"],
        "type": "REGULAR",
        "attributes": {},
        "uniqueSellingPoint": "",
        "warranty": "",
        "description": "<p>" + escape(listing.description).replace("\n", "<br />") + "</p>",
        "specifications": [{"name": "Kondisi", "value": "Baru" if listing.condition == "NEW" else "Bekas"}],
        "sku": sku,
        "code": code,
        "ean": "",
        "pristineId": "",
        "itemSku": f"{sku}-00001",
        "itemCode": f"{code}-00001",
        "productItemCode": f"pic--{code}-00001",
        "review": {"rating": float(4 + pick(listing.key, "r", 2)), "count": sold_count(listing) // 5},
        "merchantCode": listing.seller_id,
        "itemSkus": [f"{sku}-00001"],
        "ampUrl": f"{root}/amp{path}",
        "usageProductCode": f"ps--{sku}",
        "idType": "ps",
        "price": _price(listing),
        "merchant": {
            "code": listing.seller_id,
            "name": listing.seller_name,
            "location": listing.seller_city,
        },
        "statistics": {
            "sold": sold_count(listing, virtual_day(request)),
            "seen": sold_count(listing, virtual_day(request)) * 30,
        },
        "status": "AVAILABLE" if status == "LIVE" else "UNAVAILABLE",
        "buyable": status == "LIVE",
    }
    return {"code": 200, "status": "OK", "data": data}


def routes(state: SandboxState) -> list[BaseRoute]:
    guard = guarded(state, PLATFORM, block_page)

    @guard
    async def search(request: Request) -> Response:
        term = request.query_params.get("searchTerm", "")
        try:
            page = int(request.query_params.get("page", "1"))
        except ValueError:
            page = 1
        merchant = request.query_params.get("merchantCode") or None
        status, body = search_answer(state, request, term, page, merchant)
        return json_response(body, status)

    def _lookup(sku: str) -> tuple[CatalogListing | None, str]:
        listing = state.get(PLATFORM, sku)
        status = state.status(PLATFORM, sku) if listing else "UNKNOWN"
        return listing, status

    @guard
    async def detail(request: Request) -> Response:
        ref = str(request.path_params["ref"])
        listing, status = _lookup(ref.removeprefix("ps--"))
        if listing is None or status in ("REMOVED", "UNKNOWN"):
            return json_response(
                {"code": 404, "status": "NOT_FOUND", "errors": {"product": ["NOT_FOUND"]}}, 404
            )
        return json_response(summary(request, listing, status))

    @guard
    async def page(request: Request) -> Response:
        listing, status = _lookup(str(request.path_params["sku"]))
        if listing is None or status in ("REMOVED", "UNKNOWN"):
            return html_response(
                "<html><head><title>Produk tidak ditemukan | Blibli</title></head></html>", 404
            )
        return html_response(
            f"""<!DOCTYPE html><html lang="id"><head><meta charset="utf-8"><title>{escape(listing.title)} |
Blibli</title><meta property="og:title" content="{escape(listing.title)}"></head><body>
<h1 class="product-name">{escape(listing.title)}</h1><div class="final-price">{rupiah(listing.price)}</div>
<div class="seller-name">{escape(listing.seller_name)}</div></body></html>"""
        )

    return [
        image_route(state),
        Route("/backend/search/products", search, methods=["GET"]),
        Route("/backend/product-detail/products/{ref}/_summary", detail, methods=["GET"]),
        Route("/p/{slug}/ps--{sku}", page, methods=["GET"]),
    ]


# -- the replica's spec (sandbox.spec) ------------------------------------------------------------------


def page_path(listing: CatalogListing) -> tuple[str, str]:
    return "blibli", f"/p/{listing_slug(listing)}/ps--{listing.listing_id}"


def sku(gen: IdGen) -> str:
    prefix = "".join(gen.rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(3))
    return f"{prefix}-60{gen.digits(3)}-{gen.rng.randint(1, 999):05d}"


def new_ids(gen: IdGen, shop: Shop, title: str) -> tuple[str, dict[str, str]]:
    lid = gen.unique(lambda: sku(gen))
    return lid, {"slug": slugify(title), "product_code": gen.unique(lambda: f"MTA-{gen.digits(7)}")}


SPEC = ReplicaSpec(
    platform=PLATFORM,
    share=0.08,
    mounts={PLATFORM: routes},
    page_path=page_path,
    new_ids=new_ids,
    shop_id=lambda gen: gen.unique(lambda: sku(gen)[:9]),
    takedown=Policy(0.80, 1, 3, 0.10, 0.20, (3, 7)),
    blocklist=("pakaian bekas impor",),
    url_patterns=(re.compile(r"ps--([A-Za-z0-9\-]+)$"),),
    relists_elsewhere=True,
)
