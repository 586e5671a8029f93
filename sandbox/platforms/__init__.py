"""Replica marketplaces, one module per platform, plus the plumbing they share.

Each module exposes ``routes(state) -> list[BaseRoute]`` and a ``SPEC`` whose ``mounts`` map host keys to
routes factories; :mod:`sandbox.app` mounts them under ``/{host-key}`` (one platform may answer on several
hosts). Routes see paths *below* the prefix, exactly as on the real host.

Every content handler is wrapped by :func:`guarded`: it records the request
(``SandboxState.record_request``) and applies the fault the state picks (``SandboxState.fault``): 429 with
``Retry-After``, the platform's own block page (the module's ``block_page(request, fault)``), 503, a slow
answer, or a truncated (malformed) body.

Add a platform: write ``sandbox/platforms/<name>.py`` with ``routes(state)``, a ``block_page`` and one
``SPEC`` (:class:`sandbox.spec.ReplicaSpec`: share, id scheme, page paths, takedown policy, blocklist),
and add the module to :data:`sandbox.replicas.DEFAULT_REPLICA_MODULES`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from sandbox.catalog import CatalogListing, slugify
from sandbox.state import Fault, SandboxState

Handler = Callable[[Request], Awaitable[Response]]
BlockRenderer = Callable[[Request, Fault], Response]


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json_bytes(obj), status_code=status, media_type="application/json", headers=headers)


def html_response(html: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return HTMLResponse(html, status_code=status, headers=headers)


def script_json(obj: Any) -> str:
    """JSON safe to embed inside a <script> element."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def root_url(request: Request) -> str:
    """``scheme://host:port`` of the sandbox as the client addressed it (image URLs are absolute)."""
    return f"{request.url.scheme}://{request.url.netloc}"


def rupiah(value: int) -> str:
    return "Rp" + f"{value:,}".replace(",", ".")


def pick(key: str, salt: str, n: int) -> int:
    """Deterministic choice in ``range(n)`` from a listing key (stable across runs and processes)."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n


ABROAD_PLATFORMS = ("shopee", "lazada")  # replicas whose answers say where an item ships from


def ships_from_abroad(listing: CatalogListing) -> bool:
    """Whether the replica shows this listing as shipped from abroad (a cross-border seller): one in four
    illegal imports on the platforms whose answers carry it, chosen by key so the catalog is unchanged."""
    return (
        listing.platform in ABROAD_PLATFORMS
        and listing.label == "illegal_import"
        and pick(listing.key, "abroad", 4) == 0
    )


def sold_count(listing: CatalogListing) -> int:
    return pick(listing.key, "sold", 400) + (50 if listing.label == "illegal_import" else 0)


def image_url(request: Request, host_key: str, listing: CatalogListing) -> str:
    return f"{root_url(request)}/{host_key}/img/{listing.image_seed}.jpg"


def listing_slug(listing: CatalogListing) -> str:
    """The slug of a listing's page URL (kept in ``extra["slug"]`` when the id scheme adjusted it)."""
    return listing.extra.get("slug") or slugify(listing.title)


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# keys a "redesign" fault renames wherever they occur in a JSON answer (lists of results and item ids)
REDESIGN_RENAMES = {
    "products": "productCards",
    "listItems": "itemCards",
    "items": "itemCards",
    "sponsorProducts": "adCards",
    "edges": "nodes",
    "sections": "feed",
    "data": "payload",
}


def _renamed(value: Any) -> Any:
    if isinstance(value, dict):
        return {REDESIGN_RENAMES.get(k, k): _renamed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v) for v in value]
    return value


def redesigned(response: Response) -> Response:
    """The same answer after a (simulated) redesign: result lists under new names; non-JSON unchanged."""
    try:
        data = json.loads(bytes(response.body))
    except ValueError:
        return response
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(json.dumps(_renamed(data)).encode(), status_code=response.status_code, headers=headers)


def guarded(state: SandboxState, platform: str, block_page: BlockRenderer) -> Callable[[Handler], Handler]:
    """Decorator for a replica handler: request log + fault injection."""

    def wrap(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            state.record_request(request.url.path, request.headers.get("user-agent", ""))
            fault = state.fault(platform, request.url.path)
            if fault is None:
                return await handler(request)
            if fault.kind == "rate_limit_429":
                return Response(
                    b"Too Many Requests",
                    status_code=429,
                    media_type="text/plain",
                    headers={"retry-after": str(fault.retry_after)},
                )
            if fault.kind == "server_error":
                return html_response(
                    "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>", 503
                )
            if fault.kind == "block_page":
                return block_page(request, fault)
            if fault.kind == "slow":
                await asyncio.sleep(fault.delay)
                return await handler(request)
            response = await handler(request)
            if fault.kind == "redesign":
                return redesigned(response)
            # malformed: the real answer, cut short
            body = bytes(response.body)
            cut = body[: max(1, len(body) * 3 // 5)]
            headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
            return Response(cut, status_code=response.status_code, headers=headers)

        return run

    return wrap
