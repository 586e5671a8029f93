"""Instagram replica (host key ``instagram``): login, hashtag pages with infinite scroll, post pages.

Paths below the ``/instagram`` prefix (details in ``docs/sandbox-browser.md``):

- ``GET /accounts/login/`` (a form whose script posts to the ajax endpoint) and ``POST
  /accounts/login/ajax/`` (fields ``username``, ``password``; account :data:`ACCOUNT` =
  ``analyst.sandbox`` / ``sandbox-pass``) → JSON ``{"authenticated": true, …}`` and the cookies
  ``sessionid`` (HMAC-checked), ``ds_user_id`` and ``csrftoken``; wrong password → ``authenticated: false``.
- ``GET /explore/tags/{tag}/`` (login required, else 302 to ``/accounts/login/?next=…``): the first page
  rendered and embedded as ``<script type="application/json" id="tag-sections-initial">`` (same JSON as the
  API), plus a script that loads more on scroll.
- ``GET /api/v1/tags/{tag}/sections/?max_id=…`` (login required) → ``{"sections": [{"layout_type":
  "media_grid", "layout_content": {"medias": [{"media": {code, pk, caption: {text}, user: {pk, username,
  full_name}, image_versions2: {candidates: [{url}]}}}]}}], "more_available", "next_max_id", "status"}``.
- ``GET /p/{shortcode}/`` (public, as for a link-preview client): ``og:title`` and ``og:description`` (the
  caption). Removed, hidden or unknown → HTTP 404 with "Sorry, this page isn't available."
- ``GET /img/{seed}.jpg`` (:func:`sandbox.images.image_route`).

Hashtag matching (:func:`matches_tag`): a post (caption = title + description) matches tag ``T`` when the
caption contains ``#T`` or, with spaces removed and lowercased, contains ``T`` ("bal korea" matches
``#balkorea``). Newest posts first. Faults: ``block_page`` → 302 to the login page, ``rate_limit_429`` →
429 JSON ``{"message": "Please wait a few minutes before you try again.", "status": "fail"}``,
``server_error`` → 500, ``malformed`` → truncated body, ``slow`` → delayed answer.

Knobs: :class:`InstagramReplica` arguments (``secret``, ``page_size``, rows of :data:`ROW` medias). To add a
page, add a method and a ``Route`` in :meth:`InstagramReplica.routes` starting with ``await self._gate()``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import re
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.catalog import slugify
from sandbox.images import image_route
from sandbox.platforms.facebook import decode_cursor, encode_cursor, read_form
from sandbox.platforms.shopee import EPOCH
from sandbox.spec import Policy, ReplicaSpec, Shop

if TYPE_CHECKING:  # pragma: no cover - typing only
    from sandbox.catalog import CatalogListing, IdGen
    from sandbox.state import SandboxState

PLATFORM = "instagram"
PAGE_SIZE = 12
ROW = 3
ACCOUNT = ("analyst.sandbox", "sandbox-pass")
ANALYST_USER_ID = "58000000001"
NOT_AVAILABLE = "Sorry, this page isn't available."
_SPACES = re.compile(r"\s+")


def _prefix(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _json_script(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/")


def normalise_tag(tag: str) -> str:
    return _SPACES.sub("", unquote(tag)).lstrip("#").lower()


def caption(listing: CatalogListing) -> str:
    return f"{listing.title}\n{listing.description}" if listing.description else listing.title


def matches_tag(text: str, tag: str) -> bool:
    """True when ``text`` carries ``#tag`` or the words of ``tag`` (spaces stripped, case-insensitive)."""
    low = text.lower()
    return bool(tag) and (f"#{tag}" in low or tag in _SPACES.sub("", low))


def full_name(username: str) -> str:
    words = [w for w in re.split(r"[._\d]+", username) if w]
    return " ".join(w.capitalize() for w in words) or username


class InstagramReplica:
    """Routes for the Instagram replica over one :class:`SandboxState`."""

    def __init__(
        self, state: SandboxState, *, secret: bytes | None = None, page_size: int = PAGE_SIZE
    ) -> None:
        self.state = state
        self.secret = secret or secrets.token_bytes(32)
        self.page_size = page_size

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/accounts/login/", self.login_page, methods=["GET"]),
            Route("/accounts/login/ajax/", self.login_ajax, methods=["POST"]),
            Route("/explore/tags/{tag}/", self.tag_page, methods=["GET"]),
            Route("/api/v1/tags/{tag}/sections/", self.sections_api, methods=["GET"]),
            Route("/p/{shortcode}/", self.post_page, methods=["GET"]),
            image_route(self.state),
        ]

    # -- session -------------------------------------------------------------------------------------
    def session_for(self, user_id: str) -> str:
        mac = hmac.new(self.secret, user_id.encode(), hashlib.sha256).hexdigest()[:28]
        return f"{user_id}%3A{mac}"

    def logged_in(self, request: Request) -> bool:
        session = request.cookies.get("sessionid", "")
        user_id = session.split("%3A", 1)[0]
        return bool(user_id) and hmac.compare_digest(self.session_for(user_id), session)

    def login_redirect(self, request: Request) -> Response:
        prefix = _prefix(request)
        target = request.url.path[len(prefix) :] or "/"
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"{prefix}/accounts/login/?next={quote(target, safe='')}", status_code=302)

    async def _gate(self, request: Request, *, wall: bool) -> Response | None:
        self.state.record_request(request.url.path, request.headers.get("user-agent", ""))
        fault = self.state.fault(PLATFORM, request.url.path)
        if fault is not None:
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "rate_limit_429":
                body = {"message": "Please wait a few minutes before you try again.", "status": "fail"}
                return JSONResponse(
                    body, status_code=429, headers={"retry-after": str(fault.retry_after or 30)}
                )
            elif fault.kind == "block_page":
                return self.login_redirect(request)
            elif fault.kind == "server_error":
                return HTMLResponse("<html><body>Oops, an error occurred.</body></html>", status_code=500)
            elif fault.kind == "malformed":
                return Response('{"sections":[{"layout_con', media_type="application/json")
        if wall and not self.logged_in(request):
            return self.login_redirect(request)
        return None

    # -- data ----------------------------------------------------------------------------------------
    def tag_matches(self, tag: str) -> list[CatalogListing]:
        with self.state.lock:
            found = [
                listing
                for listing in self.state.catalog
                if listing.platform == PLATFORM
                and self.state.visible(listing)
                and matches_tag(caption(listing), tag)
            ]
        found.sort(key=lambda x: (-x.created_day, x.listing_id))
        return found

    def media(self, listing: CatalogListing, root: str) -> dict[str, Any]:
        pk = str(int(hashlib.sha256(listing.listing_id.encode()).hexdigest()[:15], 16))
        taken = EPOCH + timedelta(days=listing.created_day)
        return {
            "pk": pk,
            "id": f"{pk}_{listing.seller_id}",
            "code": listing.listing_id,
            "taken_at": int(taken.timestamp()),
            "media_type": 1,
            "caption": {"text": caption(listing), "pk": str(int(pk) + 1)},
            "user": {
                "pk": listing.seller_id,
                "username": listing.seller_name,
                "full_name": full_name(listing.seller_name),
                "is_private": False,
            },
            "image_versions2": {
                "candidates": [{"url": f"{root}/img/{listing.image_seed}.jpg", "width": 600, "height": 600}]
            },
            "like_count": int(pk[-3:]) % 400,
            "comment_count": int(pk[-5:-3]) % 40,
        }

    def sections(self, tag: str, offset: int, root: str) -> dict[str, Any]:
        found = self.tag_matches(tag)
        page = found[offset : offset + self.page_size]
        medias = [{"media": self.media(listing, root)} for listing in page]
        sections = [
            {
                "layout_type": "media_grid",
                "feed_type": "media",
                "layout_content": {"medias": medias[i : i + ROW]},
            }
            for i in range(0, len(medias), ROW)
        ]
        more = offset + len(page) < len(found)
        return {
            "sections": sections,
            "more_available": more,
            "next_max_id": encode_cursor(offset + len(page)) if more else None,
            "next_page": (offset // self.page_size) + 1 if more else None,
            "status": "ok",
        }

    # -- endpoints -----------------------------------------------------------------------------------
    async def login_page(self, request: Request) -> Response:
        await self._gate(request, wall=False)
        prefix = _prefix(request)
        config = {"prefix": prefix, "next": request.query_params.get("next", "/")}
        return HTMLResponse(
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            "<title>Login • Instagram</title></head>"
            '<body><form id="loginForm"><input name="username" aria-label="Phone number, username, or email">'
            '<input name="password" type="password" aria-label="Password">'
            '<button type="submit">Log in</button>'
            '<p id="slfErrorAlert" hidden>Sorry, your password was incorrect.</p></form>'
            f'<script type="application/json" id="__LOGIN_CONFIG__">{_json_script(config)}</script>'
            f"<script>{_LOGIN_JS}</script></body></html>"
        )

    async def login_ajax(self, request: Request) -> Response:
        self.state.record_request(request.url.path, request.headers.get("user-agent", ""))
        form = await read_form(request)
        if (form.get("username", "").strip().lower(), form.get("password", "")) != ACCOUNT:
            return JSONResponse(
                {"user": form.get("username", "") == ACCOUNT[0], "authenticated": False, "status": "ok"}
            )
        response = JSONResponse(
            {
                "user": True,
                "userId": ANALYST_USER_ID,
                "authenticated": True,
                "oneTapPrompt": False,
                "status": "ok",
            }
        )
        path = _prefix(request) or "/"
        response.set_cookie(
            "sessionid", self.session_for(ANALYST_USER_ID), path=path, httponly=True, samesite="lax"
        )
        response.set_cookie("ds_user_id", ANALYST_USER_ID, path=path, samesite="lax")
        response.set_cookie("csrftoken", secrets.token_hex(16), path=path, samesite="lax")
        return response

    async def sections_api(self, request: Request) -> Response:
        blocked = await self._gate(request, wall=True)
        if blocked is not None:
            return blocked
        tag = normalise_tag(str(request.path_params["tag"]))
        offset = decode_cursor(request.query_params.get("max_id"))
        return JSONResponse(self.sections(tag, offset, _origin(request) + _prefix(request)))

    async def tag_page(self, request: Request) -> Response:
        blocked = await self._gate(request, wall=True)
        if blocked is not None:
            return blocked
        tag = normalise_tag(str(request.path_params["tag"]))
        prefix = _prefix(request)
        data = self.sections(tag, 0, _origin(request) + prefix)
        tiles = "".join(
            _tile(m["media"], prefix)
            for section in data["sections"]
            for m in section["layout_content"]["medias"]
        )
        config = {
            "tag": tag,
            "prefix": prefix,
            "more_available": data["more_available"],
            "max_id": data["next_max_id"],
        }
        return HTMLResponse(
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>#{html.escape(tag)} hashtag on Instagram</title><style>{_CSS}</style></head><body>"
            f"<main><h1>#{html.escape(tag)}</h1>"
            f'<div class="ig-grid" data-tag="{html.escape(tag)}">{tiles}</div>'
            '<div id="ig-sentinel" data-state="idle"></div></main>'
            f'<script type="application/json" id="tag-sections-initial">{_json_script(data)}</script>'
            f'<script type="application/json" id="__TAG_CONFIG__">{_json_script(config)}</script>'
            f"<script>{_SCROLL_JS}</script></body></html>"
        )

    async def post_page(self, request: Request) -> Response:
        blocked = await self._gate(request, wall=False)
        if blocked is not None:
            return blocked
        code = str(request.path_params["shortcode"])
        listing = self.state.get(PLATFORM, code)
        if listing is None or self.state.status(PLATFORM, code) != "LIVE":
            return HTMLResponse(
                '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                "<title>Page not found • Instagram</title>"
                f"</head><body><main><h2>{NOT_AVAILABLE}</h2>"
                "<p>The link you followed may be broken, or the page "
                "may have been removed.</p></main></body></html>",
                status_code=404,
            )
        root = _origin(request) + _prefix(request)
        media = self.media(listing, root)
        text = caption(listing)
        name = media["user"]["full_name"]
        title = f'{name} (@{listing.seller_name}) on Instagram: "{listing.title}"'
        meta = "".join(
            f'<meta property="{prop}" content="{html.escape(value)}">'
            for prop, value in (
                ("og:title", title),
                ("og:description", text),
                ("og:image", media["image_versions2"]["candidates"][0]["url"]),
                ("og:url", f"{root}/p/{code}/"),
                ("og:type", "article"),
            )
        )
        return HTMLResponse(
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>{meta}</head><body><main><article>"
            f'<header><a href="{html.escape(_prefix(request))}/{html.escape(listing.seller_name)}/">'
            f"{html.escape(listing.seller_name)}</a></header>"
            f'<img src="{html.escape(media["image_versions2"]["candidates"][0]["url"])}" alt="">'
            f'<div class="caption">{html.escape(text)}</div></article></main></body></html>'
        )


def _tile(media: dict[str, Any], prefix: str) -> str:
    code = html.escape(media["code"])
    url = html.escape(media["image_versions2"]["candidates"][0]["url"])
    href = f"{html.escape(prefix)}/p/{code}/"
    return f'<a class="ig-tile" data-code="{code}" href="{href}"><img src="{url}" alt=""></a>'


def routes(state: SandboxState) -> list[BaseRoute]:
    """The Instagram replica's routes (mounted by ``sandbox/app.py`` under ``/instagram``)."""
    return InstagramReplica(state).routes()


_CSS = (
    ".ig-grid{display:grid;grid-template-columns:repeat(3,1fr);gap:4px}.ig-tile img{width:100%;height:300px}"
)

_LOGIN_JS = r"""
(function () {
  const cfg = JSON.parse(document.getElementById('__LOGIN_CONFIG__').textContent);
  const form = document.getElementById('loginForm');
  form.addEventListener('submit', async function (ev) {
    ev.preventDefault();
    const body = new URLSearchParams(new FormData(form));
    const r = await fetch(cfg.prefix + '/accounts/login/ajax/', {method: 'POST', body: body});
    const data = await r.json();
    if (data.authenticated) { window.location.href = cfg.prefix + cfg.next; return; }
    document.getElementById('slfErrorAlert').hidden = false;
  });
})();
"""

_SCROLL_JS = r"""
(function () {
  const cfg = JSON.parse(document.getElementById('__TAG_CONFIG__').textContent);
  const grid = document.querySelector('.ig-grid');
  const sentinel = document.getElementById('ig-sentinel');
  let maxId = cfg.max_id, more = cfg.more_available, loading = false;
  if (!more) sentinel.dataset.state = 'done';
  async function load() {
    if (loading || !more) return;
    loading = true; sentinel.dataset.state = 'loading';
    try {
      const url = cfg.prefix + '/api/v1/tags/' + encodeURIComponent(cfg.tag) + '/sections/?max_id=' +
        encodeURIComponent(maxId);
      const data = await (await fetch(url, {credentials: 'same-origin'})).json();
      for (const s of data.sections) {
        for (const m of s.layout_content.medias) {
          const a = document.createElement('a');
          a.className = 'ig-tile'; a.dataset.code = m.media.code;
          a.href = cfg.prefix + '/p/' + m.media.code + '/';
          const img = document.createElement('img'); img.src = m.media.image_versions2.candidates[0].url;
          a.appendChild(img); grid.appendChild(a);
        }
      }
      more = data.more_available; maxId = data.next_max_id;
      sentinel.dataset.state = more ? 'idle' : 'done';
    } catch (err) {
      sentinel.dataset.state = 'error';
    }
    loading = false;
  }
  window.addEventListener('scroll', function () {
    if (sentinel.getBoundingClientRect().top < window.innerHeight + 300) load();
  }, {passive: true});
})();
"""


# -- the replica's spec (sandbox.spec) ------------------------------------------------------------------


def page_path(listing: CatalogListing) -> tuple[str, str]:
    return "instagram", f"/p/{listing.listing_id}/"


def shortcode(gen: IdGen) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "C" + "".join(gen.rng.choice(alphabet) for _ in range(10))


def new_ids(gen: IdGen, shop: Shop, title: str) -> tuple[str, dict[str, str]]:
    return gen.unique(lambda: shortcode(gen)), {"slug": slugify(title)}


def shop_name(handles: Sequence[str], name: str, fresh: bool) -> str:
    """An account is named by its handle (the seller's ``ig:@…`` contact, else one made from the name)."""
    if fresh:
        return slugify(name).replace("-", ".")
    return next((h[4:] for h in handles if h.startswith("ig:@")), slugify(name).replace("-", "."))


SPEC = ReplicaSpec(
    platform=PLATFORM,
    share=0.10,
    mounts={PLATFORM: routes},
    page_path=page_path,
    new_ids=new_ids,
    shop_id=lambda gen: gen.unique(lambda: gen.digits(11)),
    shop_name=shop_name,
    takedown=Policy(0.40, 3, 14, 0.00, 0.40, (1, 4)),  # no public "hidden" state either
    url_patterns=(re.compile(r"^/(?:p|reel)/([\w\-]+)$"),),
    relist_destination=True,
)
