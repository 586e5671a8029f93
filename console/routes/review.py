"""The review queue: one card at a time (keyboard, HTMX), the bulk list, decisions and screenshots."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from console.auth import Principal
from console.deps import DB_INT_MAX, Id, Offset, allowed, back_to, console_of, page_user, render
from crawler import review
from crawler.errors import NotFound, TertibError
from storage import repositories as repo
from storage.blobs import BlobStore

router = APIRouter(include_in_schema=False)
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
BULK_LIMIT = 200
PAGE_SIZE = 50


def _review_context(request: Request, pos: int, platform: str | None) -> dict[str, Any]:
    c = console_of(request)
    with c.db.session() as s:
        total = c.counter.size(s, platform)
        pos = max(0, min(pos, max(total - 1, 0)))
        items = review.review_queue(s, platform=platform, limit=1, offset=pos)
        if not items:
            return {"card": None, "pos": 0, "total": total, "platform": platform or ""}
        card = review.review_card(s, items[0].listing_id, c.settings.blob_dir)
        listing = review.get_listing(s, card.listing_id)
        history = review.seller_history(s, listing)
        parent, children = review.relisting(s, listing)
        shot = card.screenshot.name if card.screenshot is not None and card.screenshot.is_file() else None
    return {
        "card": card,
        "listing": listing,
        "history": history,
        "parent": parent,
        "children": children,
        "shot": shot,
        "pos": pos,
        "total": total,
        "platform": platform or "",
        "reasons": review.REJECT_REASONS,
    }


@router.get("/review", response_class=HTMLResponse)
def review_page(
    request: Request, pos: Offset = 0, platform: str = "", user: Principal = Depends(page_user)
) -> Response:
    ctx = _review_context(request, pos, platform or None)
    template = "review_card.html.j2" if request.headers.get("hx-request") == "true" else "review.html.j2"
    return render(request, template, **ctx)


@router.post("/review/{listing_id}/decide")
def decide(
    request: Request,
    listing_id: Id,
    decision: str = Form(...),
    reason: str = Form(""),
    note: str = Form(""),
    pos: int = Form(0, ge=0, le=10**9),
    platform: str = Form(""),
    user: Principal = Depends(allowed("review")),
) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        if decision == "approve":
            review.approve(s, [listing_id], by=user.name, note=note)
        elif decision == "reject":
            review.reject(s, [listing_id], by=user.name, reason=reason or "other", note=note)
        else:
            raise TertibError(f"unknown decision {decision!r}")
    if request.headers.get("hx-request") == "true":
        return render(request, "review_card.html.j2", **_review_context(request, pos, platform or None))
    return back_to(f"/review?pos={pos}&platform={quote(platform)}")


@router.get("/review/list", response_class=HTMLResponse)
def review_list(
    request: Request, page: Offset = 0, platform: str = "", user: Principal = Depends(page_user)
) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        items = review.review_queue(
            s, platform=platform or None, limit=PAGE_SIZE, offset=max(page, 0) * PAGE_SIZE
        )
        total = c.counter.size(s, platform or None)
    return render(
        request,
        "review_list.html.j2",
        items=items,
        total=total,
        page=max(page, 0),
        size=PAGE_SIZE,
        platform=platform,
        reasons=review.REJECT_REASONS,
    )


@router.post("/review/bulk")
async def review_bulk(request: Request, user: Principal = Depends(allowed("review"))) -> Response:
    form = await request.form()
    ids = [
        int(v) for v in form.getlist("ids") if isinstance(v, str) and v.isdigit() and 0 < int(v) <= DB_INT_MAX
    ][:BULK_LIMIT]
    decision = str(form.get("decision") or "")
    reason = str(form.get("reason") or "other")
    if form.get("confirm") != "yes":
        raise TertibError("bulk action not confirmed")
    if not ids:
        raise TertibError("no rows ticked")
    c = console_of(request)
    with c.db.session() as s:
        if decision == "approve":
            review.approve(s, ids, by=user.name, note="bulk")
        elif decision == "reject":
            review.reject(s, ids, by=user.name, reason=reason, note="bulk")
        else:
            raise TertibError(f"unknown decision {decision!r}")
    return back_to("/review/list?platform=" + quote(str(form.get("platform") or "")))


@router.get("/blob/{sha}")
def blob(request: Request, sha: str, user: Principal = Depends(page_user)) -> Response:
    """A screenshot blob, only when a capture names it (the store holds nothing else we serve)."""
    if not SHA_RE.match(sha):
        raise NotFound("no such screenshot")
    c = console_of(request)
    with c.db.session() as s:
        known = repo.screenshot_is_evidence(s, sha)
    path = BlobStore(c.settings.blob_dir).path(sha)
    if not known or not path.is_file():
        raise NotFound("no such screenshot")
    with path.open("rb") as handle:
        kind = "image/png" if handle.read(4) == b"\x89PNG" else "image/jpeg"
    return FileResponse(path, media_type=kind)
