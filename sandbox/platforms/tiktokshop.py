"""TikTok Shop replica (``tiktokshop`` = shop-id.tokopedia.com): product pages only (the web has no search).

- ``GET /pdp/{slug}/{product_id}`` and ``GET /view/product/{product_id}``: HTML with
  ``<script id="__MODERN_ROUTER_DATA__" type="application/json">`` → ``loaderData["(pdp)/page"].page_config
  .components_map[]``. LIVE: a ``product_info`` component, ``product_model.status`` 1. REMOVED: status 2
  (deleted) or 3 (banned), or for an unknown id a ``product_not_found`` component. HIDDEN: status 4.
  Product ids are catalog ``tiktokshop`` listings or the ``tts_product_id`` of Tokopedia listings.
- Region lock: a stable ~4% of products answer "not available in this country or region" with no router
  data (not a removal: the parser must say UNOBSERVABLE).
- Block fault: the slide "Security Check" page (``captcha_container``).
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
    listing_slug,
    pick,
    script_json,
    sold_count,
)
from sandbox.spec import Policy, ReplicaSpec, Shop
from sandbox.state import Fault, SandboxState

PLATFORM = "tiktokshop"
STATUS_CODES = {"LIVE": 1, "HIDDEN": 4}

SECURITY_CHECK = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Security Check</title></head>
<body><div id="captcha_container" class="captcha_verify_container"><div class="captcha_verify_bar">
Drag the slider to fit the puzzle</div><div class="captcha-verify-image"></div></div></body></html>"""

REGION_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>TikTok Shop</title></head>
<body><div class="region-error"><h2>This product is not available in this country or region</h2></div>
</body></html>"""


def block_page(request: Request, fault: Fault) -> Response:
    return html_response(SECURITY_CHECK, 200)


def region_locked(product_id: str) -> bool:
    return pick(product_id, "tts-region", 25) == 0


def _find(state: SandboxState, product_id: str) -> tuple[CatalogListing | None, str]:
    """(listing, platform the state is kept on) for a TikTok Shop product id."""
    listing = state.get(PLATFORM, product_id)
    if listing is not None:
        return listing, PLATFORM
    with state.lock:
        for candidate in state.catalog:
            if candidate.extra.get("tts_product_id") == product_id and state.get_by_key(candidate.key):
                return candidate, candidate.platform
    return None, PLATFORM


def _router_data(components: list[dict[str, Any]], product_id: str) -> dict[str, Any]:
    return {
        "loaderData": {
            "layout": {"region": "ID", "language": "id-ID"},
            "(pdp)/page": {
                "page_config": {"page_name": "pdp", "product_id": product_id, "components_map": components},
            },
        },
        "errors": None,
    }


def _page(title: str, router: dict[str, Any], body: str = "") -> str:
    return f"""<!DOCTYPE html><html lang="id"><head><meta charset="utf-8"><title>{escape(title)}</title>
</head><body><div id="root">{body}</div>
<script id="__MODERN_ROUTER_DATA__" type="application/json">{script_json(router)}</script>
</body></html>"""


def render(request: Request, state: SandboxState, product_id: str) -> Response:
    listing, platform = _find(state, product_id)
    if listing is None:
        router = _router_data([{"component_type": "product_not_found", "component_data": {}}], product_id)
        return html_response(_page("Produk tidak ditemukan | TikTok Shop", router), 200)
    if region_locked(product_id):
        return html_response(REGION_PAGE, 200)
    status = state.status(platform, listing.listing_id)
    code = STATUS_CODES.get(status) or (2, 3)[pick(listing.key, "tts-removed", 2)]
    seller_id = listing.seller_id if platform == PLATFORM else "7" + listing.seller_id.rjust(18, "0")[-18:]
    model = {
        "product_id": product_id,
        "seller_id": seller_id,
        "name": listing.title,
        "description": listing.description,
        "sold_count": sold_count(listing),
        "status": code,
        "price": {
            "real_price": str(listing.price),
            "currency": "IDR",
            "sale_price_format": f"Rp{listing.price:,}",
        },
        "images": [{"url_list": [image_url(request, PLATFORM, listing)]}],
        "category_name": listing.category,
    }
    components = [
        {
            "component_type": "product_info",
            "component_data": {
                "product_model": model,
                "shop_info": {
                    "seller_id": seller_id,
                    "shop_name": listing.seller_name,
                    "shop_location": listing.seller_city,
                },
            },
        }
    ]
    body = f"<h1>{escape(listing.title)}</h1>" if code == 1 else ""
    return html_response(_page(f"{listing.title} | TikTok Shop", _router_data(components, product_id), body))


def routes(state: SandboxState) -> list[BaseRoute]:
    guard = guarded(state, PLATFORM, block_page)

    @guard
    async def pdp(request: Request) -> Response:
        return render(request, state, str(request.path_params["product_id"]))

    return [
        image_route(state),
        Route("/pdp/{slug}/{product_id}", pdp, methods=["GET"]),
        Route("/view/product/{product_id}", pdp, methods=["GET"]),
    ]


# -- the replica's spec (sandbox.spec) ------------------------------------------------------------------


def page_path(listing: CatalogListing) -> tuple[str, str]:
    return "tiktokshop", f"/pdp/{listing_slug(listing)}/{listing.listing_id}"


def new_ids(gen: IdGen, shop: Shop, title: str) -> tuple[str, dict[str, str]]:
    return gen.unique(lambda: "17" + gen.digits(17)), {"slug": slugify(title)}


SPEC = ReplicaSpec(
    platform=PLATFORM,
    share=0.09,
    mounts={PLATFORM: routes},
    page_path=page_path,
    new_ids=new_ids,
    shop_id=lambda gen: gen.unique(lambda: "7" + gen.digits(18)),
    takedown=Policy(0.75, 1, 3, 0.20, 0.35, (2, 6)),
    url_patterns=(re.compile(r"^/(?:pdp/[^/]+|view/product)/(\d+)$"),),
)
