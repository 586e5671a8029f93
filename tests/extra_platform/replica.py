"""The sandbox replica of the extra test platform (see ``tests/extra_platform/spider.py`` for its shapes)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.catalog import CatalogListing, IdGen, slugify
from sandbox.platforms import escape, guarded, html_response, json_response
from sandbox.spec import Policy, ReplicaSpec, Shop
from sandbox.state import Fault, SandboxState

PLATFORM = "pasarloak"
PAGE_SIZE = 20


def block_page(request: Request, fault: Fault) -> Response:
    return html_response("<html><head><title>Akses ditolak</title></head><body>Akses ditolak</body></html>")


def _item(listing: CatalogListing) -> dict[str, object]:
    return {
        "id": listing.listing_id,
        "title": listing.title,
        "price": listing.price,
        "seller": {"id": listing.seller_id, "name": listing.seller_name},
    }


def routes(state: SandboxState) -> list[BaseRoute]:
    guard = guarded(state, PLATFORM, block_page)

    @guard
    async def search(request: Request) -> Response:
        query = request.query_params.get("q", "")
        try:
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page = 1
        found, total = state.search(PLATFORM, query, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        return json_response(
            {"items": [_item(x) for x in found], "page": page, "has_more": page * PAGE_SIZE < total}
        )

    @guard
    async def detail(request: Request) -> Response:
        listing_id = str(request.path_params["id"])
        listing = state.get(PLATFORM, listing_id)
        status = state.status(PLATFORM, listing_id) if listing else "UNKNOWN"
        if listing is None or status in ("REMOVED", "UNKNOWN"):
            return json_response({"error": "not found"}, 404)
        if status == "HIDDEN":
            return json_response({"item": {"id": listing_id, "status": "disembunyikan"}})
        return json_response({"item": {**_item(listing), "description": listing.description}})

    @guard
    async def page(request: Request) -> Response:
        listing = state.get(PLATFORM, str(request.path_params["id"]))
        if listing is None:
            return html_response("<html><body>tidak ada</body></html>", 404)
        return html_response(f"<html><head><title>{escape(listing.title)}</title></head></html>")

    return [
        Route("/api/search", search, methods=["GET"]),
        Route("/api/barang/{id}", detail, methods=["GET"]),
        Route("/barang/{id}", page, methods=["GET"]),
    ]


def page_path(listing: CatalogListing) -> tuple[str, str]:
    return PLATFORM, f"/barang/{listing.listing_id}"


def new_ids(gen: IdGen, shop: Shop, title: str) -> tuple[str, dict[str, str]]:
    return gen.unique(lambda: gen.digits(9)), {"slug": slugify(title)}


SPEC = ReplicaSpec(
    platform=PLATFORM,
    share=0.30,
    mounts={PLATFORM: routes},
    page_path=page_path,
    new_ids=new_ids,
    takedown=Policy(1.00, 1, 1, 0.00, 0.00, (0, 0)),
)
