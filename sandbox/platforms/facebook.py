"""Facebook Marketplace replica (host key ``facebook``): login wall, infinite-scroll search, listing pages.

Paths below the ``/facebook`` prefix (details in ``docs/sandbox-browser.md``):

- ``GET /login/`` (form) and ``POST /login/`` (fields ``email``, ``pass``, optional ``next``). The sandbox
  account is :data:`ACCOUNT` (``analyst@sandbox.test`` / ``sandbox-pass``); success sets the cookies
  ``c_user`` and ``xs`` (``xs`` is an HMAC of ``c_user`` under the replica's secret) and 302s to ``next``.
  Without valid cookies every other page (and the GraphQL endpoint) 302s to ``/login/?next=…``.
- ``GET /marketplace/search/?query=…``: the first :data:`PAGE_SIZE` results rendered as cards, the same
  data embedded as ``<script type="application/json" data-sjs>{"data": {"marketplace_search": …}}``, and a
  script that loads the next page when the user scrolls near the end of the feed.
- ``POST /api/graphql/`` (form fields ``variables`` = JSON ``{"query", "cursor", "count"}`` and ``doc_id`` =
  :data:`SEARCH_DOC_ID`, which the search page embeds) → ``{"data": {"marketplace_search": {"feed_units":
  {"edges": [{"node": {"listing": …}}], "page_info": {"has_next_page", "end_cursor"}}}}}``.
- ``GET /marketplace/item/{id}/``: OG tags plus ``<script type="application/json" data-sjs>`` holding
  ``{"data": {"marketplace_product_details_page": {"target": <listing object>}}}``. Removed, hidden or
  unknown → HTTP 200 with "This listing isn't available anymore" and no listing JSON.
- Faults: ``block_page`` → 302 to the login page (Facebook's checkpoint), ``rate_limit_429`` → 429 with
  ``Retry-After``, ``server_error`` → 500, ``malformed`` → a truncated body, ``slow`` → delayed answer.
- ``GET /img/{seed}.jpg`` (:func:`sandbox.images.image_route`).

Knobs: :class:`FacebookReplica` arguments (``secret``, ``page_size``). To add a page, add a method and a
``Route`` in :meth:`FacebookReplica.routes` and start it with ``await self._gate(request)``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import html
import json
import re
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.catalog import slugify
from sandbox.images import image_route
from sandbox.platforms.shopee import EPOCH, rupiah
from sandbox.spec import Policy, ReplicaSpec, Shop

if TYPE_CHECKING:  # pragma: no cover - typing only
    from sandbox.catalog import CatalogListing, IdGen
    from sandbox.state import SandboxState

PLATFORM = "facebook"
PAGE_SIZE = 24
SEARCH_DOC_ID = "7111939778879383"
ACCOUNT = ("analyst@sandbox.test", "sandbox-pass")
ANALYST_USER_ID = "100090000000001"
UNAVAILABLE_TEXT = "This listing isn't available anymore"


def _prefix(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _json_script(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """Offset from an ``end_cursor``; a missing or unreadable cursor starts at 0."""
    if not cursor:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return max(0, int(data["offset"]))
    except (ValueError, KeyError, TypeError):
        return 0


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as a flat dict (last value wins)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


class FacebookReplica:
    """Routes for the Facebook Marketplace replica over one :class:`SandboxState`."""

    def __init__(
        self, state: SandboxState, *, secret: bytes | None = None, page_size: int = PAGE_SIZE
    ) -> None:
        self.state = state
        self.secret = secret or secrets.token_bytes(32)
        self.page_size = page_size

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/login/", self.login_form, methods=["GET"]),
            Route("/login/", self.login_submit, methods=["POST"]),
            Route("/marketplace/", self.marketplace_home, methods=["GET"]),
            Route("/marketplace/search/", self.search_page, methods=["GET"]),
            Route("/marketplace/item/{listing_id}/", self.listing_page, methods=["GET"]),
            Route("/api/graphql/", self.graphql, methods=["POST"]),
            image_route(self.state),
        ]

    # -- session -------------------------------------------------------------------------------------
    def xs_for(self, user_id: str) -> str:
        return "38%3A" + hmac.new(self.secret, user_id.encode(), hashlib.sha256).hexdigest()[:32]

    def logged_in(self, request: Request) -> bool:
        user = request.cookies.get("c_user", "")
        xs = request.cookies.get("xs", "")
        return bool(user) and hmac.compare_digest(self.xs_for(user), xs)

    def login_redirect(self, request: Request) -> Response:
        prefix = _prefix(request)
        target = request.url.path[len(prefix) :] or "/"
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"{prefix}/login/?next={quote(target, safe='')}", status_code=302)

    async def _gate(self, request: Request, *, wall: bool = True) -> Response | None:
        """Record, apply faults, enforce the login wall; a Response means: answer with it instead."""
        self.state.record_request(request.url.path, request.headers.get("user-agent", ""))
        fault = self.state.fault(PLATFORM, request.url.path)
        if fault is not None:
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "rate_limit_429":
                return HTMLResponse(
                    "<html><body>You're Temporarily Blocked</body></html>",
                    status_code=429,
                    headers={"retry-after": str(fault.retry_after or 30)},
                )
            elif fault.kind == "block_page":
                return self.login_redirect(request)
            elif fault.kind == "server_error":
                return HTMLResponse("<html><body>Sorry, something went wrong.</body></html>", status_code=500)
            elif fault.kind == "malformed":
                return HTMLResponse('<html><head><script type="application/json" data-sjs>{"data":{"mark')
        if wall and not self.logged_in(request):
            return self.login_redirect(request)
        return None

    # -- data ----------------------------------------------------------------------------------------
    def listing_object(self, listing: CatalogListing, root: str) -> dict[str, Any]:
        created = EPOCH + timedelta(days=listing.created_day)
        return {
            "__typename": "GroupCommerceProductItem",
            "id": listing.listing_id,
            "marketplace_listing_title": listing.title,
            "listing_price": {
                "formatted_amount": rupiah(listing.price),
                "amount": f"{listing.price:.2f}",
                "currency": "IDR",
            },
            "marketplace_listing_seller": {
                "__typename": "User",
                "id": listing.seller_id,
                "name": listing.seller_name,
            },
            "location": {"reverse_geocode": {"city": listing.seller_city, "state": ""}},
            "primary_listing_photo": {"image": {"uri": f"{root}/img/{listing.image_seed}.jpg"}},
            "redacted_description": {"text": listing.description},
            "condition": "USED" if listing.condition == "USED" else "NEW",
            "creation_time": int(created.timestamp()),
            "is_sold": False,
            "is_live": True,
            "is_hidden": False,
        }

    def search_data(self, query: str, offset: int, count: int, root: str) -> dict[str, Any]:
        if self.state.blocked_query(PLATFORM, query):
            listings: list[CatalogListing] = []
            total = 0
        else:
            listings, total = self.state.search(PLATFORM, query, offset, count)
        end = offset + len(listings)
        edges = [
            {
                "node": {
                    "__typename": "MarketplaceFeedListingStoryObject",
                    "story_type": "POST",
                    "listing": self.listing_object(listing, root),
                },
                "cursor": encode_cursor(offset + i + 1),
            }
            for i, listing in enumerate(listings)
        ]
        has_next = end < total
        return {
            "marketplace_search": {
                "feed_units": {
                    "edges": edges,
                    "page_info": {
                        "has_next_page": has_next,
                        "end_cursor": encode_cursor(end) if has_next else None,
                    },
                }
            }
        }

    # -- endpoints -----------------------------------------------------------------------------------
    async def login_form(self, request: Request) -> Response:
        blocked = await self._gate(request, wall=False)
        if blocked is not None and blocked.status_code != 302:
            return blocked
        return HTMLResponse(self._login_html(request, request.query_params.get("next", "/marketplace/"), ""))

    def _login_html(self, request: Request, next_path: str, error: str) -> str:
        prefix = _prefix(request)
        err = f'<div id="error_box" role="alert">{html.escape(error)}</div>' if error else ""
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            "<title>Log in to Facebook</title></head>"
            f'<body><div id="login_form_container"><h2>Log in to Facebook</h2>{err}'
            f'<form id="login_form" method="post" action="{html.escape(prefix)}/login/">'
            f'<input type="hidden" name="next" value="{html.escape(next_path)}">'
            '<input type="text" name="email" id="email" placeholder="Email or phone number">'
            '<input type="password" name="pass" id="pass" placeholder="Password">'
            '<button type="submit" name="login" id="loginbutton">Log in</button>'
            "</form></div></body></html>"
        )

    async def login_submit(self, request: Request) -> Response:
        self.state.record_request(request.url.path, request.headers.get("user-agent", ""))
        form = await read_form(request)
        next_path = form.get("next") or "/marketplace/"
        if not next_path.startswith("/") or next_path.startswith("//"):
            next_path = "/marketplace/"
        if (form.get("email", "").strip().lower(), form.get("pass", "")) != ACCOUNT:
            text = self._login_html(request, next_path, "The password you've entered is incorrect.")
            return HTMLResponse(text, status_code=200)
        prefix = _prefix(request)
        response = RedirectResponse(prefix + next_path, status_code=302)
        cookie_path = prefix or "/"
        response.set_cookie("c_user", ANALYST_USER_ID, path=cookie_path, samesite="lax")
        response.set_cookie(
            "xs", self.xs_for(ANALYST_USER_ID), path=cookie_path, httponly=True, samesite="lax"
        )
        return response

    async def marketplace_home(self, request: Request) -> Response:
        blocked = await self._gate(request)
        if blocked is not None:
            return blocked
        prefix = html.escape(_prefix(request))
        return HTMLResponse(
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Marketplace | Facebook</title>'
            f'</head><body><form action="{prefix}/marketplace/search/" method="get">'
            '<input type="search" name="query" aria-label="Search Marketplace"></form></body></html>'
        )

    async def search_page(self, request: Request) -> Response:
        blocked = await self._gate(request)
        if blocked is not None:
            return blocked
        prefix = _prefix(request)
        root = _origin(request) + prefix
        query = request.query_params.get("query", "").strip()
        data = self.search_data(query, 0, self.page_size, root) if query else None
        cards = ""
        page_info: dict[str, Any] = {"has_next_page": False, "end_cursor": None}
        if data is not None:
            units = data["marketplace_search"]["feed_units"]
            page_info = units["page_info"]
            cards = "".join(self._card(edge["node"]["listing"], prefix) for edge in units["edges"])
        config = {
            "query": query,
            "doc_id": SEARCH_DOC_ID,
            "count": self.page_size,
            "prefix": prefix,
            **page_info,
        }
        embedded = (
            f'<script type="application/json" data-sjs>{_json_script({"data": data})}</script>'
            if data
            else ""
        )
        empty = "" if cards or not query else '<div class="mp-empty">No listings found</div>'
        body = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(query)} | Marketplace | Facebook</title><style>{_CSS}</style></head><body>"
            f'<div role="main"><h1>Search results for "{html.escape(query)}"</h1>{empty}'
            f'<div class="mp-feed" data-feed="marketplace_search">{cards}</div>'
            '<div id="mp-sentinel" data-state="idle"></div></div>'
            f"{embedded}"
            f'<script type="application/json" id="__MP_CONFIG__">{_json_script(config)}</script>'
            f"<script>{_SCROLL_JS}</script></body></html>"
        )
        return HTMLResponse(body)

    @staticmethod
    def _card(listing: dict[str, Any], prefix: str) -> str:
        lid = html.escape(listing["id"])
        return (
            f'<div class="mp-card" data-listing-id="{lid}">'
            f'<a href="{html.escape(prefix)}/marketplace/item/{lid}/">'
            f'<img src="{html.escape(listing["primary_listing_photo"]["image"]["uri"])}" alt="">'
            f'<span class="mp-price">{html.escape(listing["listing_price"]["formatted_amount"])}</span>'
            f'<span class="mp-title">{html.escape(listing["marketplace_listing_title"])}</span>'
            f'<span class="mp-city">{html.escape(listing["location"]["reverse_geocode"]["city"])}</span>'
            "</a></div>"
        )

    async def graphql(self, request: Request) -> Response:
        blocked = await self._gate(request)
        if blocked is not None:
            return blocked
        form = await read_form(request)
        if form.get("doc_id") != SEARCH_DOC_ID:
            return JSONResponse(
                {"errors": [{"message": "A server error missing_doc_id occured.", "code": 1675002}]}
            )
        try:
            variables = json.loads(form.get("variables", ""))
            query = str(variables["query"]).strip()
            count = min(48, max(1, int(variables.get("count", self.page_size))))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"errors": [{"message": "Invalid variables", "code": 1675030}]})
        offset = decode_cursor(variables.get("cursor"))
        root = _origin(request) + _prefix(request)
        return JSONResponse(
            {"data": self.search_data(query, offset, count, root), "extensions": {"is_final": True}}
        )

    async def listing_page(self, request: Request) -> Response:
        blocked = await self._gate(request)
        if blocked is not None:
            return blocked
        listing_id = str(request.path_params["listing_id"])
        listing = self.state.get(PLATFORM, listing_id)
        live = listing is not None and self.state.status(PLATFORM, listing_id) == "LIVE"
        if listing is None or not live:
            return HTMLResponse(
                '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                "<title>Marketplace | Facebook</title>"
                f'</head><body><div role="main"><span>{UNAVAILABLE_TEXT}</span>'
                "<p>It may have been sold or removed by the seller.</p></div></body></html>"
            )
        root = _origin(request) + _prefix(request)
        obj = self.listing_object(listing, root)
        url = f"{root}/marketplace/item/{listing.listing_id}/"
        embedded = {"data": {"marketplace_product_details_page": {"target": obj}}}
        meta = "".join(
            f'<meta property="{name}" content="{html.escape(value)}">'
            for name, value in (
                ("og:title", listing.title),
                ("og:description", listing.description),
                ("og:image", obj["primary_listing_photo"]["image"]["uri"]),
                ("og:url", url),
                ("og:type", "product"),
                ("product:price:amount", str(listing.price)),
                ("product:price:currency", "IDR"),
            )
        )
        return HTMLResponse(
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(listing.title)} | Facebook Marketplace</title>{meta}</head><body>"
            f'<div role="main"><h1>{html.escape(listing.title)}</h1>'
            f'<span class="mp-price">{html.escape(obj["listing_price"]["formatted_amount"])}</span>'
            f'<div class="mp-seller">{html.escape(listing.seller_name)}</div>'
            f'<div class="mp-description">{html.escape(listing.description)}</div></div>'
            f'<script type="application/json" data-sjs>{_json_script(embedded)}</script></body></html>'
        )


def routes(state: SandboxState) -> list[BaseRoute]:
    """The Facebook replica's routes (mounted by ``sandbox/app.py`` under ``/facebook``)."""
    return FacebookReplica(state).routes()


_CSS = (
    ".mp-feed{display:grid;grid-template-columns:repeat(4,1fr);gap:8px}"
    ".mp-card{height:320px;overflow:hidden}.mp-card img{width:100%;height:220px;object-fit:cover}"
    ".mp-card span{display:block}#mp-sentinel{height:40px}"
)

_SCROLL_JS = r"""
(function () {
  const cfg = JSON.parse(document.getElementById('__MP_CONFIG__').textContent);
  const feed = document.querySelector('[data-feed]');
  const sentinel = document.getElementById('mp-sentinel');
  let cursor = cfg.end_cursor, hasNext = cfg.has_next_page, loading = false;
  if (!hasNext) sentinel.dataset.state = 'done';
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function card(l) {
    const d = el('div', 'mp-card'); d.dataset.listingId = l.id;
    const a = el('a'); a.href = cfg.prefix + '/marketplace/item/' + l.id + '/';
    const img = el('img'); img.src = l.primary_listing_photo.image.uri; img.alt = ''; a.appendChild(img);
    a.appendChild(el('span', 'mp-price', l.listing_price.formatted_amount));
    a.appendChild(el('span', 'mp-title', l.marketplace_listing_title));
    a.appendChild(el('span', 'mp-city', l.location.reverse_geocode.city));
    d.appendChild(a);
    return d;
  }
  async function more() {
    if (loading || !hasNext) return;
    loading = true; sentinel.dataset.state = 'loading';
    const variables = JSON.stringify({query: cfg.query, cursor: cursor, count: cfg.count});
    const body = new URLSearchParams({variables: variables, doc_id: cfg.doc_id});
    try {
      const init = {method: 'POST', body: body, credentials: 'same-origin'};
      const r = await fetch(cfg.prefix + '/api/graphql/', init);
      const data = await r.json();
      const units = data.data.marketplace_search.feed_units;
      for (const e of units.edges) feed.appendChild(card(e.node.listing));
      hasNext = units.page_info.has_next_page; cursor = units.page_info.end_cursor;
      sentinel.dataset.state = hasNext ? 'idle' : 'done';
    } catch (err) {
      sentinel.dataset.state = 'error';
    }
    loading = false;
  }
  function check() {
    if (sentinel.getBoundingClientRect().top < window.innerHeight + 300) more();
  }
  window.addEventListener('scroll', check, {passive: true});
})();
"""


# -- the replica's spec (sandbox.spec) ------------------------------------------------------------------


def page_path(listing: CatalogListing) -> tuple[str, str]:
    return "facebook", f"/marketplace/item/{listing.listing_id}/"


def new_ids(gen: IdGen, shop: Shop, title: str) -> tuple[str, dict[str, str]]:
    return gen.unique(lambda: gen.digits(16)), {"slug": slugify(title)}


SPEC = ReplicaSpec(
    platform=PLATFORM,
    share=0.12,
    mounts={PLATFORM: routes},
    page_path=page_path,
    new_ids=new_ids,
    shop_id=lambda gen: gen.unique(lambda: "1000" + gen.digits(11)),
    # Meta shows no public "hidden" state: a restricted listing looks removed to a visitor, so the replica
    # never hides; a HIDDEN verdict there could not be observed anyway.
    takedown=Policy(0.50, 3, 10, 0.00, 0.40, (1, 4)),
    url_patterns=(re.compile(r"^/marketplace/item/(\d+)$"),),
    relist_destination=True,
)
