"""Sellers: repeat offenders linked across platforms by contact handles; sellers by confirmed items."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from console.auth import Principal
from console.deps import console_of, page_user, render
from crawler.exports import offenders

router = APIRouter(include_in_schema=False)


@router.get("/sellers", response_class=HTMLResponse)
def sellers_page(request: Request, user: Principal = Depends(page_user)) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        counts = offenders.confirmed_counts(s)
        groups = offenders.offender_groups(s, counts, threshold=2)
        top = offenders.top_sellers(s, counts, limit=50)
    return render(request, "sellers.html.j2", groups=groups, top=top, counts=counts)
