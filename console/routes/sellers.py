"""Sellers: repeat offenders linked across platforms by contact handles, and sellers by confirmed items;
both paged."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from console.auth import Principal
from console.deps import Offset, console_of, page_user, render
from console.paging import page_of
from crawler.exports import offenders

router = APIRouter(include_in_schema=False)
TOP = 500  # sellers ranked by confirmed items (paged 50 at a time)


@router.get("/sellers", response_class=HTMLResponse)
def sellers_page(
    request: Request, page: Offset = 1, group_page: Offset = 1, user: Principal = Depends(page_user)
) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        counts = offenders.confirmed_counts(s)
        groups = offenders.offender_groups(s, counts, threshold=2)
        top = offenders.top_sellers(s, counts, limit=TOP)
    return render(
        request,
        "sellers.html.j2",
        groups=page_of(groups, group_page, 20),
        top=page_of(top, page),
        counts=counts,
    )
