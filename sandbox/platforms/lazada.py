"""Lazada Indonesia replica.

- ``GET /catalog/?ajax=true&q=…&page=N`` → JSON, 40 per page: ``mainInfo.{totalResults, page, pageSize,
  noMorePages}``, ``mods.listItems[].{itemId, skuId, name, price, priceShow, ratingScore, review,
  itemSoldCntShow, location, sellerName, sellerId, brandName, image, inStock, isSponsored, itemUrl}``.
  Without ``ajax=true``: HTML embedding ``window.pageData = {…};`` with the same object.
- ``GET /products/{slug}-i{itemId}-s{skuId}.html``: HTML with ``var __moduleData__ = {…};``
  (``data.root.fields.{product.{title, desc, status}, seller.{name, sellerId}, skuInfos}``) and a schema.org
  ``Product`` JSON-LD. HIDDEN → ``product.status == "inactive"``. REMOVED → 302 to ``/catalog/?q=…``;
  unknown → 302 to ``/``.
- Platform-blocked keywords return an empty result (Lazada gives no banner).
- Block fault: ``{"rgv587_flag": "sm", "url": "…/punish?x5secdata=…"}`` for JSON, the "slide to verify"
  page for HTML.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
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
    root_url,
    rupiah,
    script_json,
    ships_from_abroad,
    sold_count,
    sold_rounded,
    virtual_day,
)
from sandbox.spec import Policy, ReplicaSpec, Shop
from sandbox.state import Fault, SandboxState

PLATFORM = "lazada"
PAGE_SIZE = 40

SLIDER_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Lazada</title></head><body>
<div id="nocaptcha" class="nc-container"><div class="nc_wrapper">Please slide to verify</div></div>
<script>var x5secdata="{token}";</script></body></html>"""


def block_page(request: Request, fault: Fault) -> Response:
    token = f"xcs{pick(request.url.path, 'x5', 10**12):012d}"
    if request.query_params.get("ajax") == "true":
        return json_response(
            {"rgv587_flag": "sm", "url": f"{root_url(request)}/lazada//punish?x5secdata={token}"}
        )
    return html_response(SLIDER_PAGE.replace("{token}", token))


def item_url(request: Request, listing: CatalogListing) -> str:
    _, path = page_path(listing)
    return f"//{request.url.netloc}/lazada{path}"


def _item(request: Request, listing: CatalogListing) -> dict[str, Any]:
    sold = sold_count(listing, virtual_day(request))
    return {
        "name": listing.title,
        "nid": listing.listing_id,
        "itemId": listing.listing_id,
        "skuId": listing.extra.get("sku_id", "0"),
        "icons": [],
        "image": image_url(request, PLATFORM, listing),
        "itemUrl": item_url(request, listing),
        "price": f"{listing.price}.00",
        "priceShow": rupiah(listing.price),
        "ratingScore": f"4.{pick(listing.key, 'rating', 10)}",
        "review": str(sold // 4),
        "itemSoldCntShow": f"{sold_rounded(sold)} Terjual",
        "location": "Overseas" if ships_from_abroad(listing) else listing.seller_city,
        "sellerName": listing.seller_name,
        "sellerId": listing.seller_id,
        "brandName": "No Brand",
        "brandId": "0",
        "inStock": True,
        "isSponsored": listing.sponsored,
        "categories": [1000 + pick(listing.category, "cat", 8000)],
        "cheapest_sku": listing.extra.get("sku_id", "0"),
    }


def search_data(
    state: SandboxState, request: Request, query: str, page: int, seller: str | None = None
) -> dict[str, Any]:
    """A catalog answer; with ``seller``, that shop's listings (the store page ``/shop/{sellerId}/``)."""
    items: list[CatalogListing] = []
    total = 0
    if seller is not None and page >= 1:
        items, total = state.shop(PLATFORM, seller, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    elif query and not state.blocked_query(PLATFORM, query) and page >= 1:
        items, total = state.search(PLATFORM, query, (page - 1) * PAGE_SIZE, PAGE_SIZE)
    return {
        "templates": {},
        "mods": {"listItems": [_item(request, x) for x in items], "filter": {}, "breadcrumb": []},
        "mainInfo": {
            "title": query,
            "q": query,
            "totalResults": str(total),
            "page": str(page),
            "pageSize": str(PAGE_SIZE),
            "noMorePages": page * PAGE_SIZE >= total,
        },
        "seoInfo": {"seoTitle": f"Jual {query} | Lazada.co.id"},
    }


def _module_data(request: Request, listing: CatalogListing, status: str) -> dict[str, Any]:
    sku = listing.extra.get("sku_id", "0")
    return {
        "data": {
            "root": {
                "fields": {
                    "product": {
                        "title": listing.title,
                        "desc": listing.description.replace("\n", "<br/>"),
                        "itemId": listing.listing_id,
                        "status": "active" if status == "LIVE" else "inactive",
                        "brand": {"name": "No Brand"},
                    },
                    "seller": {
                        "name": listing.seller_name,
                        "sellerId": listing.seller_id,
                        "location": listing.seller_city,
                    },
                    "skuInfos": {
                        "0": {
                            "skuId": sku,
                            "price": {"salePrice": {"value": listing.price, "text": rupiah(listing.price)}},
                        },
                        sku: {
                            "skuId": sku,
                            "price": {"salePrice": {"value": listing.price, "text": rupiah(listing.price)}},
                        },
                    },
                    "skuGalleries": {"0": [{"src": image_url(request, PLATFORM, listing), "type": "img"}]},
                    "specifications": {
                        sku: {"features": {"Kondisi": "Baru" if listing.condition == "NEW" else "Bekas"}}
                    },
                }
            }
        }
    }


def render_detail(request: Request, listing: CatalogListing, status: str) -> str:
    module = _module_data(request, listing, status)
    ld = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": listing.title,
        "image": image_url(request, PLATFORM, listing),
        "description": listing.description,
        "sku": listing.extra.get("sku_id", "0"),
        "offers": {
            "@type": "Offer",
            "priceCurrency": "IDR",
            "price": listing.price,
            "availability": "https://schema.org/InStock"
            if status == "LIVE"
            else "https://schema.org/OutOfStock",
            "seller": {"@type": "Organization", "name": listing.seller_name},
        },
    }
    return f"""<!DOCTYPE html><html lang="id"><head><meta charset="utf-8">
<title>{escape(listing.title)} | Lazada Indonesia</title>
<script type="application/ld+json">{script_json(ld)}</script></head><body>
<div id="module_product_title_1"><h1 class="pdp-mod-product-badge-title">{escape(listing.title)}</h1></div>
<div data-qa-locator="product-price">{rupiah(listing.price)}</div>
<div data-qa-locator="seller-name">{escape(listing.seller_name)}</div>
<script>
var __moduleData__ = {script_json(module)};
var __googleBot__ = "";
</script></body></html>"""


def routes(state: SandboxState) -> list[BaseRoute]:
    guard = guarded(state, PLATFORM, block_page)

    @guard
    async def catalog(request: Request) -> Response:
        query = request.query_params.get("q", "")
        try:
            page = int(request.query_params.get("page", "1"))
        except ValueError:
            page = 1
        data = search_data(state, request, query, page)
        if request.query_params.get("ajax") == "true":
            return json_response(data)
        return html_response(
            f"""<!DOCTYPE html><html lang="id"><head><meta charset="utf-8"><title>Jual {escape(query)}
| Lazada</title></head><body><div id="root"></div><script>window.pageData = {script_json(data)};</script>
</body></html>"""
        )

    @guard
    async def shop(request: Request) -> Response:
        try:
            page = int(request.query_params.get("page", "1"))
        except ValueError:
            page = 1
        seller = str(request.path_params["seller"])
        data = search_data(state, request, "", page, seller=seller)
        if request.query_params.get("ajax") == "true":
            return json_response(data)
        return html_response(
            f"""<!DOCTYPE html><html lang="id"><head><meta charset="utf-8"><title>Toko {escape(seller)}
| Lazada</title></head><body><div id="root"></div><script>window.pageData = {script_json(data)};</script>
</body></html>"""
        )

    @guard
    async def product(request: Request) -> Response:
        key = state.resolve(request.url.path)
        listing = state.get_by_key(key) if key else None
        if listing is None:
            return RedirectResponse("/lazada/", status_code=302)
        status = state.status(PLATFORM, listing.listing_id)
        if status == "REMOVED":
            words = " ".join(listing.title.split()[:3])
            return RedirectResponse(f"/lazada/catalog/?q={quote(words)}", status_code=302)
        return html_response(render_detail(request, listing, status))

    @guard
    async def home(request: Request) -> Response:
        return html_response(
            "<!DOCTYPE html><html><head><title>Lazada Indonesia</title></head><body></body></html>"
        )

    return [
        image_route(state),
        Route("/catalog/", catalog, methods=["GET"]),
        Route("/shop/{seller}/", shop, methods=["GET"]),
        Route("/products/{rest:path}", product, methods=["GET"]),
        Route("/", home, methods=["GET"]),
    ]


# -- the replica's spec (sandbox.spec) ------------------------------------------------------------------


def page_path(listing: CatalogListing) -> tuple[str, str]:
    sku = listing.extra.get("sku_id", "0")
    return "lazada", f"/products/{listing_slug(listing)}-i{listing.listing_id}-s{sku}.html"


def new_ids(gen: IdGen, shop: Shop, title: str) -> tuple[str, dict[str, str]]:
    lid = gen.unique(lambda: gen.digits(10))
    return lid, {"slug": slugify(title), "sku_id": gen.unique(lambda: gen.digits(11))}


SPEC = ReplicaSpec(
    platform=PLATFORM,
    share=0.12,
    mounts={PLATFORM: routes},
    page_path=page_path,
    new_ids=new_ids,
    takedown=Policy(0.70, 1, 4, 0.15, 0.30, (3, 7)),
    blocklist=("pakaian bekas impor", "balpres"),
    url_patterns=(re.compile(r"-i(\d+)(?:-s\d+)?\.html$"),),
    sponsored_share=0.05,
)
