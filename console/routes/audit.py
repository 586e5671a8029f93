"""Audit, one batch at a time: the summary per platform first, then the items (filtered by status and
platform, 50 a page), and the report downloads. ``/audit`` opens the newest batch; ``?batch=all`` is the
report over every batch."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from console.auth import Principal
from console.deps import Offset, back_to, console_of, page_user, record_access, render
from console.paging import page_of
from crawler.audit import report as audit_report
from crawler.errors import NotFound
from crawler.exports import service

router = APIRouter(include_in_schema=False)
BatchFilter = Annotated[str, Query(pattern=r"^[A-Za-z0-9-]{0,40}$")]
STATUSES = ("REMOVED", "HIDDEN", "LIVE", "UNOBSERVABLE", "UNCHECKED")


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    batch: BatchFilter = "",
    platform: str = "",
    status: str = "",
    page: Offset = 1,
    user: Principal = Depends(page_user),
) -> Response:
    c = console_of(request)
    platform = platform if platform in c.settings.registry else ""
    status = status if status in STATUSES else ""
    with c.db.session() as s:
        numbers = service.batch_numbers(s)
        if not batch and numbers:
            return back_to(f"/audit?batch={numbers[0]}")
        try:
            rep = audit_report.build_report(
                s,
                batch=None if batch == "all" else batch or None,
                platform=platform or None,
                recheck_days=c.settings.recheck_days,
            )
        except NotFound:
            rep = None
    items = [i for i in rep.items if not status or i.status == status] if rep else []
    return render(
        request,
        "audit.html.j2",
        report=rep,
        numbers=numbers,
        batch=batch,
        platform=platform,
        status=status,
        statuses=STATUSES,
        items=page_of(items, page),
    )


@router.get("/audit/report.{fmt}")
def audit_download(
    request: Request,
    fmt: str,
    batch: BatchFilter = "",
    platform: str = "",
    user: Principal = Depends(page_user),
) -> Response:
    if fmt not in audit_report.FORMATS:
        raise NotFound(f"no report format {fmt}")
    c = console_of(request)
    scope = None if batch in ("", "all") else batch
    with c.db.session() as s:
        rep = audit_report.build_report(
            s, batch=scope, platform=platform or None, recheck_days=c.settings.recheck_days
        )
        body = audit_report.render(rep, fmt, c.tz, c.settings.registry)
    data = body.encode("utf-8")
    record_access(
        request,
        user,
        object_type="audit_report",
        object_id=f"{scope or 'all'}/{platform or 'all'}.{fmt}",
        digest=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
    kinds = {"md": "text/markdown", "html": "text/html", "json": "application/json"}
    name = f"audit-{scope or 'all'}{'-' + platform if platform else ''}.{fmt}"
    return Response(
        data,
        media_type=f"{kinds[fmt]}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
