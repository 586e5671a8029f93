"""Bukalapak replica: historic listing links only (Bukalapak stopped selling physical goods in Feb 2025).

- ``GET /p/{category...}/{slug}-{id}``: for a catalog listing, a stable half answer HTTP 404 and the other
  half 302 to ``/bukalapak-berhenti-jualan-produk-fisik`` (the closure notice, HTTP 200). Unknown → 404.
- No search (the historic API is gone). Block fault: a plain "Access Denied" HTML page.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.catalog import CatalogListing, IdGen, slugify
from sandbox.images import image_route
from sandbox.platforms import guarded, html_response, listing_slug, pick
from sandbox.spec import Policy, ReplicaSpec, Shop
from sandbox.state import Fault, SandboxState

PLATFORM = "bukalapak"
CLOSURE_PATH = "/bukalapak-berhenti-jualan-produk-fisik"

CLOSURE_PAGE = """<!DOCTYPE html><html lang="id"><head><meta charset="utf-8">
<title>Bukalapak berhenti jualan produk fisik</title></head><body><main><h1>Terima kasih!</h1>
<p>Mulai 9 Februari 2025, Bukalapak berhenti jualan produk fisik. Kamu masih bisa beli produk virtual
seperti pulsa, paket data, dan token listrik di aplikasi Bukalapak.</p></main></body></html>"""

NOT_FOUND = """<!DOCTYPE html><html lang="id"><head><meta charset="utf-8"><title>Halaman tidak ditemukan |
Bukalapak</title></head><body><h1>404</h1><p>Halaman yang kamu cari tidak ditemukan.</p></body></html>"""


def block_page(request: Request, fault: Fault) -> Response:
    return html_response("<html><head><title>Access Denied</title></head><body>Access Denied</body></html>")


def routes(state: SandboxState) -> list[BaseRoute]:
    guard = guarded(state, PLATFORM, block_page)

    @guard
    async def listing(request: Request) -> Response:
        key = state.resolve(request.url.path)
        if key is None or state.get_by_key(key) is None:
            return html_response(NOT_FOUND, 404)
        if pick(key, "bl-closure", 2) == 0:
            return RedirectResponse(f"/bukalapak{CLOSURE_PATH}", status_code=302)
        return html_response(NOT_FOUND, 404)

    @guard
    async def closure(request: Request) -> Response:
        return html_response(CLOSURE_PAGE)

    return [
        image_route(state),
        Route(CLOSURE_PATH, closure, methods=["GET"]),
        Route("/p/{rest:path}", listing, methods=["GET"]),
    ]


# -- the replica's spec (sandbox.spec) ------------------------------------------------------------------


def page_path(listing: CatalogListing) -> tuple[str, str]:
    category = listing.extra.get("category_slug", "fashion-pria")
    return "bukalapak", f"/p/{category}/{listing_slug(listing)}-{listing.listing_id}"


def new_ids(gen: IdGen, shop: Shop, title: str) -> tuple[str, dict[str, str]]:
    lid = gen.unique(
        lambda: "".join(gen.rng.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(7))
    )
    return lid, {"slug": slugify(title), "category_slug": "fashion-pria"}


SPEC = ReplicaSpec(
    platform=PLATFORM,
    share=0.05,
    mounts={PLATFORM: routes},
    page_path=page_path,
    new_ids=new_ids,
    takedown=Policy(1.00, 0, 0, 0.00, 0.00, (0, 0)),
    url_patterns=(re.compile(r"^/p/.+-([a-z0-9]+)$"),),
    # closed for physical goods in Feb 2025: every listing is old and REMOVED; its sellers moved on
    created_days=(335, 700),
    closed=True,
    successors=("tokopedia", "shopee"),
    relists_elsewhere=True,
)
