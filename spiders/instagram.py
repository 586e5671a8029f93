"""Instagram: hashtag browsing (``/explore/tags/{tag}/`` then ``/api/v1/tags/{tag}/sections/``) with an
analyst-provided logged-in profile, and post rechecks (``/p/{shortcode}/``).

Host: ``instagram`` from ``Settings.base_url``. Listing id: the post shortcode. Needs a logged-in browser
(``needs_browser``, ``needs_login``); a redirect to ``/accounts/login`` is a block (``login_wall``).

Search paths: ``sections[].layout_content.medias[].media.{code, pk, caption.text, user.{pk, username,
full_name}, image_versions2.candidates[0].url}``, ``more_available``, ``next_max_id`` (see
:func:`next_max_id`; ``SearchPage`` has no cursor field). The hashtag is the query without ``#``/spaces.
A price in the caption ("Rp 150rb", "harga 1,2jt") becomes ``Listing.price``.

Profile paths (a seller's account, the shape an analyst following a seller needs): the profile page's
``/api/v1/users/web_profile_info/?username=…`` answer and the profile-posts GraphQL answer share
``data.user.edge_owner_to_timeline_media.{count, page_info.{has_next_page, end_cursor}, edges[].node}``
with ``node.{shortcode, id, edge_media_to_caption.edges[0].node.text, display_url, owner.{id, username},
taken_at_timestamp}``; the account (``data.user.{id, username, full_name}``) is the seller of every post.
:func:`parse_search` reads either shape; :func:`parse_profile` only the profile one. A search query
``@username`` opens that profile (:func:`profile_url`) instead of a hashtag.

Detail verdicts: HTTP 404 → REMOVED (``instagram.http_404``; the page says "Sorry, this page isn't
available."); that text on a 200 page is not enough (UNOBSERVABLE); ``og:description``/``og:title`` →
LIVE; login redirects → UNOBSERVABLE.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from crawler.config import Settings
from crawler.errors import UsageError
from crawler.items import Block, CheckResult, Listing, SearchPage, Verdict
from spiders.base import (
    AnswerRule,
    Body,
    BodyError,
    BrowserLogin,
    RequestSpec,
    SiteProfile,
    block_result,
    blocked_page,
    body_text,
    find_deep,
    finish_listings,
    get_path,
    header,
    http_block,
    id_text,
    load_json,
    looks_like_html,
    malformed,
    meta_tags,
    missing_item_paths,
    parse_price,
    script_json,
    text_or_none,
    unobservable,
)

PLATFORM = "instagram"
PAGE_SIZE = 30
MAX_PAGES = 10
NOT_AVAILABLE_TEXT = "sorry, this page isn't available"
_ID_IN_URL = re.compile(r"/(?:p|reel)/([A-Za-z0-9_-]+)")
_CAPTION_PRICE = re.compile(r"(?:rp\.?|idr|harga)\s*:?\s*(\d[\d.,]*\s*(?:jt|juta|rb|ribu|k)?)", re.I)


def hashtag(query: str) -> str:
    return re.sub(r"[\s#]+", "", query).lower()


_USERNAME = re.compile(r"@([A-Za-z0-9._]{1,30})")


def profile_username(query: str) -> str | None:
    """``@thrift.batam`` → ``thrift.batam``: a query naming an account follows that seller's profile."""
    match = _USERNAME.fullmatch(query.strip())
    return match.group(1).lower() if match else None


def profile_url(settings: Settings, username: str) -> str:
    return f"{settings.base_url('instagram')}/{quote(username)}/"


def web_profile_info_url(settings: Settings, username: str) -> str:
    """The JSON the profile page requests (with the ``x-ig-app-id`` header of the web app)."""
    return f"{settings.base_url('instagram')}/api/v1/users/web_profile_info/?username={quote(username)}"


def search_request(settings: Settings, query: str, page: int = 1) -> RequestSpec:
    """The hashtag page (browser), or the profile page for an ``@username`` query; later batches come
    from :func:`sections_url` with ``max_id`` (hashtags) or by scrolling (profiles)."""
    username = profile_username(query)
    if username:
        return RequestSpec(profile_url(settings, username), "GET", {"accept": "text/html"})
    return RequestSpec(
        f"{settings.base_url('instagram')}/explore/tags/{quote(hashtag(query))}/",
        "GET",
        {"accept": "text/html"},
    )


def sections_url(settings: Settings, query: str, max_id: str | None = None) -> str:
    url = f"{settings.base_url('instagram')}/api/v1/tags/{quote(hashtag(query))}/sections/"
    return url + (f"?max_id={quote(max_id)}" if max_id else "")


def listing_id_from_url(url: str) -> str | None:
    match = _ID_IN_URL.search(urlsplit(url).path)
    return match.group(1) if match else None


def post_url(base: str, shortcode: str) -> str:
    return f"{base.rstrip('/')}/p/{shortcode}/"


def detail_request(settings: Settings, ref: str) -> RequestSpec:
    code = listing_id_from_url(ref) if "/" in ref else ref.strip()
    if not code or not re.fullmatch(r"[A-Za-z0-9_-]+", code):
        raise UsageError(f"not an Instagram post shortcode or URL: {ref}")
    return RequestSpec(post_url(settings.base_url("instagram"), code), "GET", {"accept": "text/html"})


def _base_of(url: str) -> str:
    if not url:
        return "https://www.instagram.com"
    parts = urlsplit(url)
    path = parts.path
    for marker in ("/explore/", "/api/", "/p/", "/reel/", "/accounts/"):
        if marker in path:
            path = path[: path.index(marker)]
            break
    return f"{parts.scheme}://{parts.netloc}{path.rstrip('/')}"


def caption_price(caption: str) -> int | None:
    match = _CAPTION_PRICE.search(caption)
    return parse_price(match.group(1)) if match else None


def _login_block(url: str, status: int, headers: Mapping[str, Any] | None) -> Block | None:
    location = header(headers, "Location") if status in (301, 302, 303, 307, 308) else ""
    for target in (location, url):
        if target and "/accounts/login" in target:
            return Block(PLATFORM, "login_wall", "redirect to /accounts/login")
    return None


def _post(
    code: str, caption: str, *, seller_id: Any, username: Any, image: Any, raw: dict[str, Any], base: str
) -> Listing:
    """A post as a listing: the caption's first line is the title, a price in it the price."""
    username = text_or_none(username)
    return Listing(
        platform=PLATFORM,
        listing_id=code,
        url=post_url(base, code),
        title=(caption.splitlines()[0] if caption else "")[:200],
        description=caption,
        price=caption_price(caption),
        seller_id=id_text(seller_id),
        seller_name=username,
        shop_url=f"{base}/{username}/" if username else None,
        image_url=text_or_none(image),
        raw=raw,
    )


def _listing(media: Mapping[str, Any], base: str) -> Listing | None:
    code = text_or_none(media.get("code"))
    if not code:
        return None
    user = media.get("user") or {}
    return _post(
        code,
        str(get_path(media, "caption.text") or "").strip(),
        seller_id=user.get("pk"),
        username=user.get("username"),
        image=get_path(media, "image_versions2.candidates.0.url"),
        raw={"pk": media.get("pk"), "full_name": user.get("full_name"), "taken_at": media.get("taken_at")},
        base=base,
    )


def _caption(node: Mapping[str, Any]) -> str:
    edges = get_path(node, "edge_media_to_caption.edges") or []
    texts = [get_path(e, "node.text") for e in edges if isinstance(e, dict)]
    return "\n".join(t.strip() for t in texts if isinstance(t, str) and t.strip())


def _profile_listing(node: Mapping[str, Any], user: Mapping[str, Any], base: str) -> Listing | None:
    """One post of a profile feed as a listing of the account's seller."""
    code = text_or_none(node.get("shortcode"))
    if not code:
        return None
    owner = node.get("owner") or {}
    return _post(
        code,
        _caption(node),
        seller_id=id_text(user.get("id")) or id_text(owner.get("id")),
        username=text_or_none(user.get("username")) or text_or_none(owner.get("username")),
        image=node.get("display_url") or node.get("thumbnail_src"),
        base=base,
        raw={
            "pk": node.get("id"),
            "full_name": user.get("full_name"),
            "taken_at": node.get("taken_at_timestamp"),
            "is_video": node.get("is_video"),
            "product_type": node.get("product_type"),
        },
    )


def _profile_user(body: Body) -> Mapping[str, Any] | None:
    """``data.user`` of a profile answer (JSON, or a profile page embedding it), when it has the feed."""
    if isinstance(body, bytes | str) and looks_like_html(body_text(body)):
        for doc in script_json(body_text(body), type="application/json"):
            for user in find_deep(doc, "user"):
                if isinstance(user, dict) and isinstance(user.get("edge_owner_to_timeline_media"), dict):
                    return user
        return None
    user = get_path(load_json(body), "data.user")
    if isinstance(user, dict) and "edge_owner_to_timeline_media" in user:
        return user
    return None


def parse_profile(
    body: Body, *, url: str = "", query: str = "", page: int = 1, status: int = 200
) -> SearchPage:
    """A profile answer (``web_profile_info`` or the profile-posts GraphQL) → the account's posts as
    listings of one seller; ``has_more`` from ``page_info.has_next_page``, ``total`` from ``count``."""
    block = _login_block(url, status, None) or http_block(PLATFORM, status)
    if block:
        return blocked_page(PLATFORM, block)
    try:
        user = _profile_user(body)
    except BodyError as exc:
        return blocked_page(PLATFORM, malformed(PLATFORM, exc))
    media_path = "data.user.edge_owner_to_timeline_media.edges"
    if user is None:
        return SearchPage(platform=PLATFORM, shape_ok=False, missing_paths=[media_path], shape="profile")
    feed = user.get("edge_owner_to_timeline_media") or {}
    edges = feed.get("edges")
    if not isinstance(edges, list):
        return SearchPage(platform=PLATFORM, shape_ok=False, missing_paths=[media_path], shape="profile")
    base = _base_of(url)
    listings: list[Listing] = []
    seen: set[str] = set()
    for edge in edges:
        node = edge.get("node") if isinstance(edge, dict) else None
        listing = _profile_listing(node, user, base) if isinstance(node, dict) else None
        if listing and listing.listing_id not in seen:
            seen.add(listing.listing_id)
            listings.append(listing)
    missing = missing_item_paths(edges, ("node.shortcode",), "data.user.edge_owner_to_timeline_media.edges")
    result = SearchPage(platform=PLATFORM, shape="profile", shape_ok=not missing, missing_paths=missing)
    result.listings = finish_listings(listings, url=url, query=query, page=page)
    count = feed.get("count")
    result.total = count if isinstance(count, int) else None
    result.has_more = bool(get_path(feed, "page_info.has_next_page")) and page < MAX_PAGES
    return result


def _sections_doc(body: Body) -> Any:
    """The sections JSON itself, or the first ``application/json`` script of a hashtag page holding it."""
    if isinstance(body, bytes | str) and looks_like_html(body_text(body)):
        for doc in script_json(body_text(body), type="application/json"):
            for sections in find_deep(doc, "sections"):
                if isinstance(sections, list):
                    more = find_deep(doc, "more_available")
                    cursor = find_deep(doc, "next_max_id")
                    return {
                        "sections": sections,
                        "more_available": bool(more and more[0]),
                        "next_max_id": cursor[0] if cursor else None,
                    }
        return None
    return load_json(body)


def next_max_id(body: Body) -> str | None:
    try:
        doc = _sections_doc(body)
    except BodyError:
        return None
    return (
        text_or_none(doc.get("next_max_id")) if isinstance(doc, dict) and doc.get("more_available") else None
    )


def parse_search(
    body: Body, *, url: str = "", query: str = "", page: int = 1, status: int = 200
) -> SearchPage:
    """A ``tags/{tag}/sections`` JSON (or a hashtag page embedding it) → posts as listings; a profile
    answer (``web_profile_info``) → the account's posts (:func:`parse_profile`)."""
    block = _login_block(url, status, None) or http_block(PLATFORM, status)
    if block:
        return blocked_page(PLATFORM, block)
    try:
        if _profile_user(body) is not None:
            return parse_profile(body, url=url, query=query, page=page, status=status)
        doc = _sections_doc(body)
    except BodyError as exc:
        return blocked_page(PLATFORM, malformed(PLATFORM, exc))
    if doc is None:
        text = body_text(body)
        if "/accounts/login" in text and 'name="password"' in text:
            return blocked_page(PLATFORM, Block(PLATFORM, "login_wall", "login form"))
        return SearchPage(platform=PLATFORM, shape_ok=False, missing_paths=["sections"])
    sections = doc.get("sections") if isinstance(doc, dict) else None
    if not isinstance(sections, list):
        return SearchPage(platform=PLATFORM, shape_ok=False, missing_paths=["sections"])
    base = _base_of(url)
    listings: list[Listing] = []
    seen: set[str] = set()
    for section in sections:
        for entry in get_path(section, "layout_content.medias") or []:
            media = entry.get("media") if isinstance(entry, dict) else None
            listing = _listing(media, base) if isinstance(media, dict) else None
            if listing and listing.listing_id not in seen:
                seen.add(listing.listing_id)
                listings.append(listing)
    medias = [m for s in sections for m in get_path(s, "layout_content.medias") or [] if isinstance(s, dict)]
    missing = missing_item_paths(
        medias, ("media.code", "media.user.pk|media.user.username"), "sections[].layout_content.medias"
    )
    result = SearchPage(platform=PLATFORM, shape="tag_sections", shape_ok=not missing, missing_paths=missing)
    result.listings = finish_listings(listings, url=url, query=query, page=page)
    result.has_more = bool(doc.get("more_available")) and page < MAX_PAGES
    return result


def parse_detail(
    body: Body, *, url: str = "", status: int = 200, headers: Mapping[str, Any] | None = None
) -> CheckResult:
    """A post page → verdict."""
    guess_id = listing_id_from_url(url) or ""
    block = _login_block(url, status, headers)
    if block:
        return block_result(PLATFORM, guess_id, block)
    text = body_text(body)
    if status == 404:
        signal = "HTTP 404" + (f": {NOT_AVAILABLE_TEXT}" if NOT_AVAILABLE_TEXT in text.lower() else "")
        return CheckResult(PLATFORM, guess_id, Verdict.REMOVED, "instagram.http_404", signal)
    block = http_block(PLATFORM, status, headers)
    if block:
        return block_result(PLATFORM, guess_id, block)
    if not looks_like_html(text):
        return unobservable(PLATFORM, guess_id, "instagram.unexpected_shape", "not an HTML page")
    og = meta_tags(text)
    code = guess_id or listing_id_from_url(og.get("og:url", "")) or ""
    if og.get("og:description") or og.get("og:title"):
        if not code:
            return unobservable(PLATFORM, "", "instagram.unexpected_shape", "no shortcode")
        caption = og.get("og:description", "")
        listing = Listing(
            platform=PLATFORM,
            listing_id=code,
            url=post_url(_base_of(url or og.get("og:url", "")), code),
            title=og.get("og:title", "")[:200],
            description=caption,
            price=caption_price(caption),
            image_url=og.get("og:image"),
            source_url=url or None,
        )
        return CheckResult(PLATFORM, code, Verdict.LIVE, "instagram.og_tags", "", listing)
    if NOT_AVAILABLE_TEXT in text.lower():
        return unobservable(PLATFORM, code, "instagram.unavailable_text_without_404", NOT_AVAILABLE_TEXT)
    return unobservable(PLATFORM, code, "instagram.no_post_data", "no Open Graph tags")


PROFILE = SiteProfile(
    platform=PLATFORM,
    display_name="Instagram",
    operator="Meta Platforms, Inc. (Instagram)",
    base_urls={"instagram": "https://www.instagram.com"},
    colour=(193, 53, 132),
    id_scheme="the post shortcode",
    parse_search=parse_search,
    parse_detail=parse_detail,
    search_request=search_request,
    detail_request=detail_request,
    listing_id_from_url=listing_id_from_url,
    page_size=PAGE_SIZE,
    max_pages=MAX_PAGES,
    needs_browser=True,
    needs_login=True,
    concurrency=1,
    download_delay=10.0,
    block_markers=("/accounts/login",),
    removal_rules=("instagram.http_404",),
    notes="Hashtag browsing only with an analyst-provided logged-in profile. Cursor: next_max_id(body).",
    browser_api_markers=("/api/v1/tags/", "/api/v1/users/web_profile_info/"),
    scroll_pagination=True,
    login=BrowserLogin(
        login_path="/accounts/login/",
        url_marker="/accounts/login/",
        user_field="input[name=username]",
        password_field="input[name=password]",
        submit="button[type=submit]",
        sandbox_user="analyst.sandbox",
        sandbox_password="sandbox-pass",
    ),
    answers=(
        AnswerRule("search", r"^/api/v1/tags/[^/]+/sections/?$"),
        AnswerRule("search", r"^/api/v1/users/web_profile_info/?$"),
        AnswerRule("search", r"^/graphql/query/?$", contains="edge_owner_to_timeline_media"),
        AnswerRule("detail", r"^/(p|reel)/[A-Za-z0-9_-]+/?$"),
    ),
)
