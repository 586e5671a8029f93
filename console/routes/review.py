"""The review queue: one card at a time (keyboard, HTMX), the bulk list, decisions and screenshots.

Positions in the queue are keys, not offsets: the card's "next" link asks for the candidate *after* this
one's (score, id), "previous" for the one *before* it, and a decision shows the candidate after the decided
one — so moving through the queue costs the same at candidate 1 and candidate 50,000. ``pos`` is carried
along as the label ("Kandidat 12 dari 340"); a bare ``?pos=N`` still jumps by offset.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from console.auth import Principal
from console.deps import DB_INT_MAX, Offset, allowed, back_to, console_of, is_htmx, page_user, render
from console.deps import Id as ListingId
from console.paging import PAGE_SIZE, cursor, link, parse_cursor
from console.views import group_signals, relist_rows
from crawler import review
from crawler.errors import NotFound, TertibError
from storage import repositories as repo
from storage.evidence_store import open_store

router = APIRouter(include_in_schema=False)
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
BULK_LIMIT = 200
CURSOR_RE = r"^[0-9eE.+-]{0,32}:[0-9]{1,19}$"


def _platform(request: Request, value: str) -> str | None:
    """The platform filter when the installation's registry knows it, else no filter."""
    return value if value in console_of(request).settings.registry else None


def _order(value: str) -> str:
    return value if value in review.ORDERS else "score"


def _card_context(
    request: Request,
    *,
    pos: int,
    platform: str | None,
    after: str = "",
    before: str = "",
    at: str = "",
    order: str = "score",
) -> dict[str, Any]:
    c = console_of(request)
    uncertain = order == "uncertain"
    with c.db.session() as s:
        # the score order pages by key (exact under concurrent decisions); the uncertain order, a
        # distance from the model's midpoint, by position
        total = c.counter.size(s, platform, order)
        items: list[review.QueueItem] = []
        key_after, key_before, key_at = parse_cursor(after), parse_cursor(before), parse_cursor(at)
        if uncertain:
            pass
        elif key_at is not None:  # this candidate itself (a link from the list), if it still waits
            items = review.review_queue_from(s, (key_at[0], key_at[1] - 1), platform=platform, limit=1)
        elif key_after is not None:
            items = review.review_queue_from(s, key_after, platform=platform, limit=1)
        elif key_before is not None:
            items = review.review_queue_from(s, key_before, platform=platform, backwards=True, limit=1)
        if not items:  # no key, or nothing beyond it (the end of the queue): by offset
            pos = max(0, min(pos, max(total - 1, 0)))
            items = review.review_queue(s, platform=platform, limit=1, offset=pos, order=order)
        pos = max(0, min(pos, max(total - 1, 0)))
        if not items:
            return {"card": None, "pos": 0, "total": total, "platform": platform or "", "order": order}
        item = items[0]
        card = review.review_card(s, item.listing_id, c.settings.blob_dir)
        listing = review.get_listing(s, card.listing_id)
        history = review.seller_history(s, listing)
        parent, children = review.relisting(s, listing)
    # the blob's name is its SHA-256; the evidence store says whether it holds it (local disk or S3)
    blobs = open_store(c.settings, check=False).blobs
    shot = card.screenshot.name if card.screenshot and blobs.exists(card.screenshot.name) else None
    here = cursor(item.score, item.listing_id)
    return {
        "card": card,
        "listing": listing,
        "groups": group_signals(card.signals),
        "relist_rows": relist_rows(listing.relist_evidence),
        "history": history,
        "parent": parent,
        "children": children,
        "shot": shot,
        "pos": pos,
        "total": total,
        "platform": platform or "",
        "here": here,
        "order": order,
        "next_url": link("/review", after=None if uncertain else here, pos=pos + 1, platform=platform,
                         order=order if uncertain else None) if pos + 1 < total else "",
        "prev_url": link("/review", before=None if uncertain else here, pos=pos - 1, platform=platform,
                         order=order if uncertain else None) if pos > 0 else "",
        "reasons": review.REJECT_REASONS,
    }  # fmt: skip


@router.get("/review", response_class=HTMLResponse)
def review_page(
    request: Request,
    pos: Offset = 0,
    platform: str = "",
    after: str = "",
    before: str = "",
    at: str = "",
    order: str = "score",
    user: Principal = Depends(page_user),
) -> Response:
    ctx = _card_context(
        request,
        pos=pos,
        platform=_platform(request, platform),
        after=after,
        before=before,
        at=at,
        order=_order(order),
    )
    return render(request, "review_card.html.j2" if is_htmx(request) else "review.html.j2", **ctx)


@router.post("/review/{listing_id}/decide")
def decide(
    request: Request,
    listing_id: ListingId,
    decision: str = Form(...),
    reason: str = Form(""),
    note: str = Form("", max_length=2000),
    pos: int = Form(0, ge=0, le=10**9),
    platform: str = Form(""),
    here: str = Form(""),
    order: str = Form("score"),
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
    # the next candidate is the one after the decided one (which has left the queue); pos stays
    order = _order(order)
    after = here if parse_cursor(here) is not None and order == "score" else ""
    if is_htmx(request):
        ctx = _card_context(request, pos=pos, platform=_platform(request, platform), after=after, order=order)
        return render(request, "review_card.html.j2", **ctx)
    return back_to(
        link(
            "/review",
            after=after,
            pos=pos,
            platform=_platform(request, platform),
            order=order if after == "" else None,
        )
    )


def _list_context(
    request: Request, *, platform: str | None, after: str, before: str, start: int, order: str = "score"
) -> dict[str, Any]:
    c = console_of(request)
    if order == "uncertain":
        return _uncertain_list_context(request, platform=platform, start=start)
    with c.db.session() as s:
        total = c.counter.size(s, platform)
        key_after, key_before = parse_cursor(after), parse_cursor(before)
        if key_after is not None:
            items = review.review_queue_from(s, key_after, platform=platform, limit=PAGE_SIZE)
        elif key_before is not None:
            items = review.review_queue_from(
                s, key_before, platform=platform, backwards=True, limit=PAGE_SIZE
            )
        else:
            items, start = review.review_queue(s, platform=platform, limit=PAGE_SIZE), 0
    start = max(0, min(start, max(total - len(items), 0)))
    first = items[0] if items else None
    last = items[-1] if items else None
    return {
        "items": [(item, cursor(item.score, item.listing_id)) for item in items],
        "total": total,
        "start": start,
        "platform": platform or "",
        "reasons": review.REJECT_REASONS,
        "next_url": link(
            "/review/list",
            after=cursor(last.score, last.listing_id),
            start=start + len(items),
            platform=platform,
        )
        if last is not None and start + len(items) < total
        else "",
        "prev_url": link(
            "/review/list",
            before=cursor(first.score, first.listing_id),
            start=max(0, start - PAGE_SIZE),
            platform=platform,
        )
        if first is not None and start > 0
        else "",
        "after": after,
        "before": before,
        "order": "score",
    }


def _uncertain_list_context(request: Request, *, platform: str | None, start: int) -> dict[str, Any]:
    """The list in the model's uncertain order (weak listings included, least certain first), by position."""
    c = console_of(request)
    with c.db.session() as s:
        total = c.counter.size(s, platform, "uncertain")
        start = max(0, min(start, max(total - 1, 0)))
        items = review.review_queue(s, platform=platform, limit=PAGE_SIZE, offset=start, order="uncertain")
    more = start + len(items) < total
    return {
        "items": [(item, "") for item in items],
        "total": total,
        "start": start,
        "platform": platform or "",
        "reasons": review.REJECT_REASONS,
        "next_url": link("/review/list", start=start + len(items), platform=platform, order="uncertain")
        if more
        else "",
        "prev_url": link(
            "/review/list", start=max(0, start - PAGE_SIZE), platform=platform, order="uncertain"
        )
        if start > 0
        else "",
        "after": "",
        "before": "",
        "order": "uncertain",
    }


@router.get("/review/list", response_class=HTMLResponse)
def review_list(
    request: Request,
    platform: str = "",
    after: str = "",
    before: str = "",
    start: Offset = 0,
    order: str = "score",
    user: Principal = Depends(page_user),
) -> Response:
    ctx = _list_context(
        request,
        platform=_platform(request, platform),
        after=after,
        before=before,
        start=start,
        order=_order(order),
    )
    return render(request, "review_list.html.j2", **ctx)


@router.post("/review/bulk")
async def review_bulk(request: Request, user: Principal = Depends(allowed("review"))) -> Response:
    form = await request.form()
    ids = [
        int(v) for v in form.getlist("ids") if isinstance(v, str) and v.isdigit() and 0 < int(v) <= DB_INT_MAX
    ][:BULK_LIMIT]
    decision = str(form.get("decision") or "")
    reason = str(form.get("reason") or "other")
    platform = _platform(request, str(form.get("platform") or ""))
    problem = "bulk_unconfirmed" if form.get("confirm") != "yes" else "bulk_none" if not ids else ""
    if problem:
        ctx = _list_context(
            request,
            platform=platform,
            after=str(form.get("after") or ""),
            before=str(form.get("before") or ""),
            start=int(str(form.get("start") or "0")) if str(form.get("start") or "0").isdigit() else 0,
            order=_order(str(form.get("order") or "")),
        )
        return render(
            request, "review_list.html.j2", status_code=400, error_key=problem, ticked=set(ids), **ctx
        )
    c = console_of(request)
    with c.db.session() as s:
        if decision == "approve":
            review.approve(s, ids, by=user.name, note="bulk")
        elif decision == "reject":
            review.reject(s, ids, by=user.name, reason=reason, note="bulk")
        else:
            raise TertibError(f"unknown decision {decision!r}")
    uncertain = form.get("order") == "uncertain"
    return back_to(link("/review/list", platform=platform, order="uncertain" if uncertain else None))


@router.get("/blob/{sha}")
def blob(request: Request, sha: str, user: Principal = Depends(page_user)) -> Response:
    """A screenshot blob, only when a capture names it (the store holds nothing else we serve); from
    local disk or S3 (``storage.evidence_store``)."""
    if not SHA_RE.match(sha):
        raise NotFound("no such screenshot")
    c = console_of(request)
    with c.db.session() as s:
        known = repo.screenshot_is_evidence(s, sha)
    if not known:
        raise NotFound("no such screenshot")
    data = open_store(c.settings, check=False).blobs.get(sha)  # NotFound when the store lacks it
    kind = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
    return Response(data, media_type=kind, headers={"Cache-Control": "private, max-age=86400, immutable"})
