"""Audit: verdict tables per batch and platform, the per-item ledger, report downloads."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from console.auth import Principal
from console.deps import console_of, page_user, record_access, render
from crawler.audit import report as audit_report
from crawler.errors import NotFound
from crawler.exports import service

router = APIRouter(include_in_schema=False)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    batch: Annotated[str, Query(pattern=r"^[A-Za-z0-9-]{0,40}$")] = "",
    platform: str = "",
    user: Principal = Depends(page_user),
) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        numbers = service.batch_numbers(s)
        try:
            rep = audit_report.build_report(
                s, batch=batch or None, platform=platform or None, recheck_days=c.settings.recheck_days
            )
        except NotFound:
            rep = None
    return render(request, "audit.html.j2", report=rep, numbers=numbers, batch=batch, platform=platform)


@router.get("/audit/report.{fmt}")
def audit_download(
    request: Request, fmt: str, batch: str = "", platform: str = "", user: Principal = Depends(page_user)
) -> Response:
    if fmt not in audit_report.FORMATS:
        raise NotFound(f"no report format {fmt}")
    c = console_of(request)
    with c.db.session() as s:
        rep = audit_report.build_report(
            s, batch=batch or None, platform=platform or None, recheck_days=c.settings.recheck_days
        )
        body = audit_report.render(rep, fmt, c.tz)
    data = body.encode("utf-8")
    record_access(
        request,
        user,
        object_type="audit_report",
        object_id=f"{batch or 'all'}/{platform or 'all'}.{fmt}",
        digest=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
    kinds = {"md": "text/markdown", "html": "text/html", "json": "application/json"}
    name = f"audit-{batch or 'all'}{'-' + platform if platform else ''}.{fmt}"
    return Response(
        data,
        media_type=f"{kinds[fmt]}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
