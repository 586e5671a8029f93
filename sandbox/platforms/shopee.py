"""Shopee Indonesia replica (host key ``shopee``): a browser-only search behind signed API calls.

What it serves (paths below the ``/shopee`` prefix; details in ``docs/sandbox-browser.md``):

- ``GET /search?keyword=…&page=N`` (0-based page): an HTML shell with a per-page nonce. Its inline
  JavaScript signs and fetches ``/api/v4/search/search_items?by=relevancy&keyword=…&limit=60&newest=N*60
  &order=desc&page_type=search&scenario=PAGE_GLOBAL_SEARCH&version=2`` and renders the items into the DOM.
- ``GET /api/v4/search/search_items``: v4 shape (``error, total_count, nomore, items[].{itemid, shopid,
  adsid, item_basic{…}}``, prices × 100000, ``image`` = the catalog ``image_seed``). Unsigned → HTTP 200
  ``{"error": 90309999}``; a wrong signature → HTTP 403 with the same error.
- ``GET /api/v4/pdp/get_pc?item_id=&shop_id=``: ``{"error":1,"data":null}`` unless signed.
- ``GET /{slug}-i.{shopid}.{itemid}`` and ``/product/{shopid}/{itemid}``: the listing page with
  ``<script type="text/mfe-initial-data">`` and a schema.org ``Product`` JSON-LD (live only). Removed →
  ``isError: true, error: 266900002`` (every third removed item instead shows ``item_status: "banned"``);
  hidden → ``item_status: "unlisted"``.
- Pacing: more than :attr:`ShopeeReplica.api_limit` API calls within :attr:`ShopeeReplica.api_window`
  seconds from one client (the ``SPC_F`` device cookie the search page sets, else address + User-Agent)
  → 302 to ``/verify/traffic``. The state's ``block_page`` fault → 302 to ``/verify/captcha``.
- ``GET /img/{seed}.jpg`` (:func:`sandbox.images.image_route`).

The signature (the page's JavaScript, re-implemented in :func:`sign`): ``af-ac-enc-dat`` carries the page
nonce (``{issued-hex}{mac}``, the mac an HMAC of the issue time under the replica's secret, so the server
checks it without storing anything); ``x-sap-ri`` is a random 32-hex request id; ``x-sap-sec`` is
``sap_hash(nonce + ri, path_and_query)`` where ``path_and_query`` is the path below the host prefix plus
``?`` and the raw query string, and ``sap_hash`` chains four FNV-1a 32-bit rounds (32 hex chars).

Knobs: constructor arguments of :class:`ShopeeReplica` (``api_limit``, ``api_window``, ``secret``,
``monotonic``); ``routes(state)`` uses the defaults. To add an endpoint, add a method and a ``Route`` in
:meth:`ShopeeReplica.routes`, and call :meth:`ShopeeReplica._gate` first so request logging and faults apply.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import html
import json
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.catalog import slugify
from sandbox.images import image_route
from sandbox.platforms import listing_slug, ships_from_abroad
from sandbox.spec import Policy, ReplicaSpec, Shop

if TYPE_CHECKING:  # pragma: no cover - typing only
    from sandbox.catalog import CatalogListing, IdGen
    from sandbox.state import SandboxState

PLATFORM = "shopee"
PAGE_SIZE = 60
PRICE_FACTOR = 100_000
ERROR_SIGNATURE = 90309999
ERROR_REMOVED = 266900002
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # the catalog's virtual day 0
SEARCH_API = "/api/v4/search/search_items"
DETAIL_API = "/api/v4/pdp/get_pc"
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_NONCE = re.compile(r"^[0-9a-f]{8}[0-9a-f]{16}$")


# -- the signature, shared by the server check and the page's JavaScript --------------------------------
def fnv1a(text: str) -> int:
    """32-bit FNV-1a over the string's code units (the page uses ``charCodeAt``; our input is ASCII)."""
    h = 0x811C9DC5
    for ch in text:
        h ^= ord(ch)
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def sap_hash(key: str, message: str) -> str:
    """Four chained FNV-1a rounds → 32 hex chars (same as ``sapHash`` in the page script)."""
    out = ""
    carry = key
    for round_no in range(4):
        part = f"{fnv1a(f'{carry}|{round_no}|{message}'):08x}"
        out += part
        carry = part + key
    return out


def sign(nonce: str, path_and_query: str, request_id: str | None = None) -> dict[str, str]:
    """The three headers the search page sends for ``path_and_query`` (path below the host prefix)."""
    ri = request_id or secrets.token_hex(16)
    return {"af-ac-enc-dat": nonce, "x-sap-ri": ri, "x-sap-sec": sap_hash(nonce + ri, path_and_query)}


_SIGN_JS = r"""
function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  return h >>> 0;
}
function hex8(n) { return ('00000000' + n.toString(16)).slice(-8); }
function sapHash(key, msg) {
  let out = '', carry = key;
  for (let r = 0; r < 4; r++) {
    const p = hex8(fnv1a(carry + '|' + r + '|' + msg));
    out += p;
    carry = p + key;
  }
  return out;
}
function randomHex(n) {
  const a = new Uint8Array(n);
  crypto.getRandomValues(a);
  return Array.from(a, b => ('0' + b.toString(16)).slice(-2)).join('');
}
function sapHeaders(nonce, pathAndQuery) {
  const ri = randomHex(16);
  return {'af-ac-enc-dat': nonce, 'x-sap-ri': ri, 'x-sap-sec': sapHash(nonce + ri, pathAndQuery)};
}
"""


def _prefix(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _stable_int(key: str, salt: str, lo: int, hi: int) -> int:
    digest = hashlib.sha256(f"{salt}|{key}".encode()).digest()
    return lo + int.from_bytes(digest[:8], "big") % (hi - lo + 1)


def rupiah(amount: int) -> str:
    """``Rp150.000`` (Indonesian thousands separator)."""
    return "Rp" + f"{amount:,}".replace(",", ".")


def _json_script(data: Any) -> str:
    """JSON safe to put inside a <script> element."""
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


class ShopeeReplica:
    """Routes and per-client pacing for the Shopee replica over one :class:`SandboxState`."""

    def __init__(
        self,
        state: SandboxState,
        *,
        api_limit: int = 3,
        api_window: float = 2.0,
        secret: bytes | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.api_limit = api_limit
        self.api_window = api_window
        self.secret = secret or secrets.token_bytes(32)
        self.monotonic = monotonic
        self._calls: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)

    # -- plumbing ------------------------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/search", self.search_page, methods=["GET"]),
            Route(SEARCH_API, self.search_api, methods=["GET"]),
            Route(DETAIL_API, self.detail_api, methods=["GET"]),
            Route("/verify/traffic", self.verify_page, methods=["GET"]),
            Route("/verify/captcha", self.verify_page, methods=["GET"]),
            Route("/product/{shopid}/{itemid}", self.listing_page, methods=["GET"]),
            image_route(self.state),
            Route("/{slug}-i.{shopid}.{itemid}", self.listing_page, methods=["GET"]),
        ]

    def new_nonce(self) -> str:
        issued = f"{int(time.time()) & 0xFFFFFFFF:08x}"
        mac = hmac.new(self.secret, issued.encode(), hashlib.sha256).hexdigest()[:16]
        return issued + mac

    def nonce_ok(self, nonce: str) -> bool:
        if not _NONCE.match(nonce):
            return False
        mac = hmac.new(self.secret, nonce[:8].encode(), hashlib.sha256).hexdigest()[:16]
        return hmac.compare_digest(mac, nonce[8:])

    def signature_state(self, request: Request, sub_path: str) -> str:
        """``"ok"``, ``"missing"`` (no signature headers) or ``"bad"``."""
        nonce = request.headers.get("af-ac-enc-dat", "")
        ri = request.headers.get("x-sap-ri", "")
        sec = request.headers.get("x-sap-sec", "")
        if not (nonce or ri or sec):
            return "missing"
        if not (self.nonce_ok(nonce) and _HEX32.match(ri)):
            return "bad"
        query = request.url.query
        expected = sap_hash(nonce + ri, f"{sub_path}?{query}" if query else sub_path)
        return "ok" if hmac.compare_digest(expected, sec) else "bad"

    def client_id(self, request: Request) -> str:
        device = request.cookies.get("SPC_F")
        if device:
            return "spc:" + device
        host = request.client.host if request.client else "?"
        return f"{host}|{request.headers.get('user-agent', '')}"

    def too_fast(self, request: Request) -> bool:
        """Count one API call for this client; True when it exceeds the pacing limit."""
        now = self.monotonic()
        calls = self._calls[self.client_id(request)]
        while calls and now - calls[0] > self.api_window:
            calls.popleft()
        if len(calls) >= self.api_limit:
            return True
        calls.append(now)
        return False

    async def _gate(self, request: Request, sub_path: str, *, api: bool) -> Response | None:
        """Record the request and apply faults; a Response means: answer with it instead."""
        self.state.record_request(request.url.path, request.headers.get("user-agent", ""))
        prefix = _prefix(request)
        fault = self.state.fault(PLATFORM, request.url.path)
        if fault is not None:
            if fault.kind == "slow":
                await asyncio.sleep(float(getattr(fault, "delay", 0) or 0))
            elif fault.kind == "rate_limit_429":
                retry = str(int(getattr(fault, "retry_after", 0) or 30))
                return JSONResponse({"error": 429}, status_code=429, headers={"retry-after": retry})
            elif fault.kind == "block_page":
                return RedirectResponse(f"{prefix}/verify/captcha", status_code=302)
            elif fault.kind == "server_error":
                return HTMLResponse("<html><body>502 Bad Gateway</body></html>", status_code=502)
            elif fault.kind == "malformed":
                body = '{"error":null,"total_count":' if api else '<html><head><script type="text/mfe-'
                return Response(body, status_code=200, media_type="application/json" if api else "text/html")
        if api and self.too_fast(request):
            return RedirectResponse(f"{prefix}/verify/traffic", status_code=302)
        return None

    # -- data shapes ---------------------------------------------------------------------------------
    def item_basic(self, listing: CatalogListing, *, item_status: str = "normal") -> dict[str, Any]:
        key = listing.key
        shopid, itemid = int(listing.extra["shopid"]), int(listing.extra["itemid"])
        price = listing.price * PRICE_FACTOR
        sold = _stable_int(key, "sold", 0, 900)
        stock = _stable_int(key, "stock", 1, 400)
        ctime = int(
            (EPOCH + timedelta(days=listing.created_day, seconds=_stable_int(key, "t", 0, 86399))).timestamp()
        )
        rating_count = _stable_int(key, "rc", 0, 120)
        return {
            "itemid": itemid,
            "shopid": shopid,
            "name": listing.title,
            "label_ids": [35, 1000006],
            "image": listing.image_seed,
            "images": [listing.image_seed],
            "currency": "IDR",
            "stock": stock,
            "status": 1,
            "ctime": ctime,
            "sold": min(sold, 99),
            "historical_sold": sold,
            "liked": False,
            "liked_count": _stable_int(key, "like", 0, 300),
            "view_count": _stable_int(key, "view", 10, 5000),
            "catid": 100011 if "Wanita" not in listing.category else 100017,
            "brand": "Tidak Ada Merek",
            "cmt_count": rating_count,
            "flag": 196608,
            "cb_option": 1 if ships_from_abroad(listing) else 0,
            "item_status": item_status,
            "price": price,
            "price_min": price,
            "price_max": price,
            "price_min_before_discount": -1,
            "price_max_before_discount": -1,
            "hidden_price_display": None,
            "price_before_discount": 0,
            "has_lowest_price_guarantee": False,
            "show_discount": 0,
            "raw_discount": 0,
            "discount": None,
            "is_category_failed": False,
            "size_chart": None,
            "video_info_list": [],
            "tier_variations": [],
            "item_rating": {
                "rating_star": round(_stable_int(key, "star", 38, 50) / 10, 1) if rating_count else 0.0,
                "rating_count": [rating_count, 0, 0, 0, 0, rating_count],
                "rcount_with_image": 0,
                "rcount_with_context": 0,
            },
            "item_type": 0,
            "reference_item_id": "",
            "transparent_background_image": "",
            "is_adult": False,
            "badge_icon_type": 0,
            "shopee_verified": False,
            "is_official_shop": False,
            "show_official_shop_label": False,
            "show_shopee_verified_label": False,
            "show_official_shop_label_in_title": False,
            "is_cc_installment_payment_eligible": False,
            "is_non_cc_installment_payment_eligible": False,
            "coin_earn_label": None,
            "show_free_shipping": True,
            "preview_info": None,
            "bundle_deal_id": 0,
            "can_use_bundle_deal": False,
            "bundle_deal_info": None,
            "is_group_buy_item": None,
            "has_group_buy_stock": None,
            "group_buy_info": None,
            "welcome_package_type": 0,
            "welcome_package_info": None,
            "add_on_deal_info": None,
            "can_use_wholesale": False,
            "is_preferred_plus_seller": False,
            # a cross-border seller's shop says "Luar Negeri", as on the real site
            "shop_location": "Luar Negeri" if ships_from_abroad(listing) else listing.seller_city.upper(),
            "can_use_cod": True,
            "is_on_flash_sale": False,
            "shop_name": listing.seller_name,
            "condition": 4 if listing.condition == "USED" else 1,
        }

    def search_result(self, query: str, newest: int, limit: int) -> dict[str, Any]:
        listings, total = self.state.search(PLATFORM, query, newest, limit)
        items = []
        for listing in listings:
            basic = self.item_basic(listing)
            items.append(
                {
                    "item_basic": basic,
                    "adsid": _stable_int(listing.key, "ads", 10**8, 10**9) if listing.sponsored else None,
                    "campaignid": None,
                    "distance": None,
                    "match_type": 0,
                    "ads_keyword": query if listing.sponsored else None,
                    "deduction_info": None,
                    "collection_id": None,
                    "display_name": None,
                    "campaign_stock": None,
                    "json_data": "",
                    "tracking_info": {"viral_spu_tracking": None, "business_tracking": None},
                    "itemid": basic["itemid"],
                    "shopid": basic["shopid"],
                    "algo_image": None,
                    "fe_flags": None,
                    "item_type": 0,
                }
            )
        blocked = self.state.blocked_query(PLATFORM, query)
        return {
            "show_disclaimer": blocked,
            "disclaimer_infos": (
                [{"type": 1, "text": "Produk terkait kata kunci ini dilarang diperjualbelikan di Shopee."}]
                if blocked
                else None
            ),
            "query_rewrite": {"FEQueryWriteStatus": 0, "ori_keyword": query, "ori_totalCount": total},
            "adjust": {},
            "version": hashlib.md5(f"{query}|{newest}".encode()).hexdigest(),
            "algorithm": "eyJzZWFyY2giOiJzYW5kYm94In0=",
            "total_count": 0 if blocked else total,
            "error": None,
            "total_ads_count": sum(1 for i in items if i["adsid"]),
            "nomore": blocked or newest + len(items) >= total,
            "price_adjust": {},
            "json_data": "",
            "suggestion_algorithm": 0,
            "items": [] if blocked else items,
            "reserved_keyword": None,
            "hint_keywords": None,
        }

    def find(self, shopid: str, itemid: str) -> CatalogListing | None:
        if not (shopid.isdigit() and itemid.isdigit()):
            return None
        return self.state.get(PLATFORM, f"{shopid}.{itemid}")

    def item_state(self, listing: CatalogListing | None) -> tuple[str, str | None]:
        """(status word, item_status) — ``("REMOVED", None)`` means the isError/266900002 shell."""
        if listing is None:
            return "REMOVED", None
        status = self.state.status(PLATFORM, listing.listing_id)
        if status == "LIVE":
            return "LIVE", "normal"
        if status == "HIDDEN":
            return "HIDDEN", "unlisted"
        if status == "REMOVED" and int(listing.extra.get("itemid", "0") or 0) % 3 == 0:
            return "REMOVED", "banned"
        return "REMOVED", None

    # -- endpoints -----------------------------------------------------------------------------------
    async def search_api(self, request: Request) -> Response:
        blocked = await self._gate(request, SEARCH_API, api=True)
        if blocked is not None:
            return blocked
        verdict = self.signature_state(request, SEARCH_API)
        if verdict != "ok":
            body = {"error": ERROR_SIGNATURE, "is_customized": False, "is_login": False, "action_type": 2}
            return JSONResponse(body, status_code=403 if verdict == "bad" else 200)
        params = request.query_params
        keyword = params.get("keyword", "").strip()
        try:
            newest = max(0, int(params.get("newest", "0")))
            limit = min(PAGE_SIZE, max(1, int(params.get("limit", str(PAGE_SIZE)))))
        except ValueError:
            return JSONResponse({"error": 4, "error_msg": "invalid params"}, status_code=200)
        if not keyword:
            return JSONResponse({"error": 4, "error_msg": "keyword required"}, status_code=200)
        return JSONResponse(self.search_result(keyword, newest, limit))

    async def detail_api(self, request: Request) -> Response:
        blocked = await self._gate(request, DETAIL_API, api=True)
        if blocked is not None:
            return blocked
        if self.signature_state(request, DETAIL_API) != "ok":
            return JSONResponse({"error": 1, "data": None})
        listing = self.find(request.query_params.get("shop_id", ""), request.query_params.get("item_id", ""))
        _word, item_status = self.item_state(listing)
        if listing is None or item_status is None:
            return JSONResponse({"error": ERROR_REMOVED, "error_msg": None, "data": None})
        item = self.item_basic(listing, item_status=item_status)
        item["description"] = listing.description
        shop = {"shopid": item["shopid"], "name": listing.seller_name, "shop_location": item["shop_location"]}
        return JSONResponse({"error": None, "error_msg": None, "data": {"item": item, "shop_detailed": shop}})

    async def verify_page(self, request: Request) -> Response:
        self.state.record_request(request.url.path, request.headers.get("user-agent", ""))
        kind = "captcha" if request.url.path.endswith("captcha") else "traffic"
        text = (
            "Verifikasi bahwa kamu bukan robot" if kind == "captcha" else "Lalu lintas tidak biasa terdeteksi"
        )
        page = (
            f'<!DOCTYPE html><html lang="id"><head><meta charset="utf-8"><title>Shopee | Verifikasi</title>'
            f'</head><body><div id="verify" data-verify="{kind}"><h1>{text}</h1>'
            f"<p>Silakan coba lagi beberapa saat lagi.</p></div></body></html>"
        )
        return HTMLResponse(page)

    async def search_page(self, request: Request) -> Response:
        blocked = await self._gate(request, "/search", api=False)
        if blocked is not None:
            return blocked
        keyword = request.query_params.get("keyword", "")
        try:
            page = max(0, int(request.query_params.get("page", "0")))
        except ValueError:
            page = 0
        prefix = _prefix(request)
        config = {
            "keyword": keyword,
            "page": page,
            "nonce": self.new_nonce(),
            "prefix": prefix,
            "limit": PAGE_SIZE,
        }
        body = _SEARCH_HTML.format(
            title=html.escape(f"{keyword} | Shopee Indonesia" if keyword else "Shopee Indonesia"),
            keyword=html.escape(keyword),
            config=_json_script(config),
            sign_js=_SIGN_JS,
            page_js=_SEARCH_JS,
        )
        response = HTMLResponse(body)
        if "SPC_F" not in request.cookies:
            response.set_cookie("SPC_F", secrets.token_hex(16), path=prefix or "/", samesite="lax")
        return response

    async def listing_page(self, request: Request) -> Response:
        shopid = str(request.path_params["shopid"])
        itemid = str(request.path_params["itemid"])
        blocked = await self._gate(request, request.url.path[len(_prefix(request)) :], api=False)
        if blocked is not None:
            return blocked
        listing = self.find(shopid, itemid)
        word, item_status = self.item_state(listing)
        prefix_url = _origin(request) + _prefix(request)
        if listing is None or item_status is None:
            mfe: dict[str, Any] = {
                "initialState": {"item": {"isError": True, "error": ERROR_REMOVED, "item": None}}
            }
            return HTMLResponse(
                _LISTING_HTML.format(
                    title="Shopee Indonesia | Situs Belanja Online Terlengkap",
                    head="",
                    body='<div class="product-not-exist"><h2>Produk ini tidak ada</h2></div>',
                    mfe=_json_script(mfe),
                )
            )
        item = self.item_basic(listing, item_status=item_status)
        item["description"] = listing.description
        image = f"{prefix_url}/img/{listing.image_seed}.jpg"
        url = f"{prefix_url}/{listing.extra.get('slug', 'produk')}-i.{shopid}.{itemid}"
        shop = {"shopid": item["shopid"], "name": listing.seller_name, "shop_location": item["shop_location"]}
        mfe = {"initialState": {"item": {"isError": False, "error": None, "item": item, "shop": shop}}}
        head = (
            f'<meta property="og:title" content="{html.escape(listing.title)}">'
            f'<meta property="og:image" content="{html.escape(image)}">'
            f'<meta property="og:url" content="{html.escape(url)}">'
            f'<link rel="canonical" href="{html.escape(url)}">'
        )
        if word == "LIVE":
            ld = {
                "@context": "http://schema.org",
                "@type": "Product",
                "name": listing.title,
                "description": listing.description,
                "url": url,
                "productID": itemid,
                "image": image,
                "brand": "Tidak Ada Merek",
                "offers": {
                    "@type": "Offer",
                    "price": f"{listing.price:.2f}",
                    "priceCurrency": "IDR",
                    "availability": "http://schema.org/InStock",
                    "seller": {"@type": "Organization", "name": listing.seller_name},
                },
            }
            head += f'<script type="application/ld+json">{_json_script(ld)}</script>'
            notice = ""
        else:
            notice = '<div class="product-unavailable">Produk ini tidak tersedia</div>'
        body = (
            f'<div class="page-product">{notice}<h1 class="product-title">{html.escape(listing.title)}</h1>'
            f'<img class="product-image" src="{html.escape(image)}" alt="">'
            f'<div class="product-price">{rupiah(listing.price)}</div>'
            f'<div class="product-description">{html.escape(listing.description)}</div>'
            f'<div class="shop-name">{html.escape(listing.seller_name)}</div></div>'
        )
        return HTMLResponse(
            _LISTING_HTML.format(
                title=html.escape(f"{listing.title} | Shopee Indonesia"),
                head=head,
                body=body,
                mfe=_json_script(mfe),
            )
        )


def routes(state: SandboxState) -> list[BaseRoute]:
    """The Shopee replica's routes (mounted by ``sandbox/app.py`` under ``/shopee``)."""
    return ShopeeReplica(state).routes()


_LISTING_HTML = """<!DOCTYPE html>
<html lang="id"><head><meta charset="utf-8"><title>{title}</title>{head}</head>
<body><div id="main">{body}</div>
<script type="text/mfe-initial-data" data-module="pdp">{mfe}</script>
</body></html>"""

_SEARCH_HTML = """<!DOCTYPE html>
<html lang="id"><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<div id="main"><div class="shopee-search-page">
  <h1 class="shopee-search-result-header">Hasil pencarian untuk '<span>{keyword}</span>'</h1>
  <div class="shopee-search-status" data-state="loading">Memuat…</div>
  <ul class="shopee-search-item-result__items"></ul>
  <nav class="shopee-page-controller"></nav>
</div></div>
<script type="application/json" id="__SEARCH_CONFIG__">{config}</script>
<script>{sign_js}</script>
<script>{page_js}</script>
</body></html>"""

_SEARCH_JS = r"""
(function(){
  const cfg = JSON.parse(document.getElementById('__SEARCH_CONFIG__').textContent);
  const status = document.querySelector('.shopee-search-status');
  const list = document.querySelector('.shopee-search-item-result__items');
  const nav = document.querySelector('.shopee-page-controller');
  const api = '/api/v4/search/search_items';
  const query = 'by=relevancy&keyword=' + encodeURIComponent(cfg.keyword) + '&limit=' + cfg.limit +
    '&newest=' + (cfg.page * cfg.limit) +
    '&order=desc&page_type=search&scenario=PAGE_GLOBAL_SEARCH&version=2';
  const pathAndQuery = api + '?' + query;
  function slug(name) {
    return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'produk';
  }
  function rupiah(p){ return 'Rp' + Math.round(p / 100000).toLocaleString('id-ID'); }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  if (!cfg.keyword) { status.dataset.state = 'empty'; status.textContent = 'Masukkan kata kunci'; return; }
  fetch(cfg.prefix + pathAndQuery, {headers: sapHeaders(cfg.nonce, pathAndQuery), credentials: 'same-origin'})
    .then(r => r.json())
    .then(data => {
      if (data.error) {
        status.dataset.state = 'error';
        status.textContent = 'Terjadi kesalahan (' + data.error + ')';
        return;
      }
      const items = data.items || [];
      status.dataset.state = 'done';
      status.dataset.total = String(data.total_count);
      status.textContent = data.total_count + ' produk';
      for (const it of items) {
        const b = it.item_basic;
        const li = el('li', 'shopee-search-item-result__item');
        li.dataset.sqe = 'item'; li.dataset.itemid = String(b.itemid); li.dataset.shopid = String(b.shopid);
        if (it.adsid) li.dataset.ad = '1';
        const a = el('a'); a.dataset.sqe = 'link';
        a.href = cfg.prefix + '/' + slug(b.name) + '-i.' + b.shopid + '.' + b.itemid;
        const img = el('img'); img.src = cfg.prefix + '/img/' + b.image + '.jpg'; img.alt = '';
        a.appendChild(img);
        const name = el('div', 'item-name', b.name); name.dataset.sqe = 'name'; a.appendChild(name);
        a.appendChild(el('span', 'item-price', rupiah(b.price)));
        a.appendChild(el('div', 'item-location', b.shop_location));
        li.appendChild(a); list.appendChild(li);
      }
      const base = cfg.prefix + '/search?keyword=' + encodeURIComponent(cfg.keyword) + '&page=';
      if (cfg.page > 0) {
        const p = el('a', 'shopee-icon-button--left', 'Sebelumnya');
        p.href = base + (cfg.page - 1);
        nav.appendChild(p);
      }
      if (!data.nomore) {
        const n = el('a', 'shopee-icon-button--right', 'Berikutnya');
        n.href = base + (cfg.page + 1);
        nav.appendChild(n);
      }
    })
    .catch(err => { status.dataset.state = 'error'; status.textContent = 'Gagal memuat: ' + err; });
})();
"""


# -- the replica's spec (sandbox.spec) ------------------------------------------------------------------


def page_path(listing: CatalogListing) -> tuple[str, str]:
    x = listing.extra
    return "shopee", f"/{listing_slug(listing)}-i.{x.get('shopid', '')}.{x.get('itemid', '')}"


def new_ids(gen: IdGen, shop: Shop, title: str) -> tuple[str, dict[str, str]]:
    itemid = gen.unique(lambda: gen.digits(11))
    return f"{shop[0]}.{itemid}", {"slug": slugify(title), "shopid": shop[0], "itemid": itemid}


def check_id(listing_id: str, extra: dict[str, str]) -> str | None:
    shopid, _, itemid = listing_id.partition(".")
    if not (shopid.isdigit() and itemid.isdigit()):
        return "must be '{shopid}.{itemid}'"
    extra.setdefault("shopid", shopid)
    extra.setdefault("itemid", itemid)
    return None


SPEC = ReplicaSpec(
    platform=PLATFORM,
    share=0.20,
    mounts={PLATFORM: routes},
    page_path=page_path,
    new_ids=new_ids,
    shop_id=lambda gen: gen.unique(lambda: gen.digits(9)),
    check_id=check_id,
    takedown=Policy(0.85, 1, 3, 0.15, 0.35, (2, 6)),
    blocklist=("baju bekas impor", "pakaian bekas impor", "balpres", "bal segel"),
    url_patterns=(re.compile(r"-i\.(\d+)\.(\d+)$"), re.compile(r"^/product/(\d+)/(\d+)$")),
    sponsored_share=0.05,
    relist_destination=True,
)
