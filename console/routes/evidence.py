"""Evidence: captures, one capture with its WARC records and screenshot, verify now, WACZ download."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.background import BackgroundTask

from console.auth import Principal
from console.deps import DB_INT_MAX, Id, allowed, console_of, page_user, record_access, render
from crawler.errors import NotFound
from crawler.evidence import bundle, verify
from crawler.exports.common import sha256_file
from storage import repositories as repo

router = APIRouter(include_in_schema=False)


@router.get("/evidence", response_class=HTMLResponse)
def evidence_list(
    request: Request,
    listing: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
    user: Principal = Depends(page_user),
) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        rows = repo.list_captures(s, listing_id=listing, limit=100)
    return render(request, "evidence_list.html.j2", rows=rows)


@router.get("/evidence/{capture_id}", response_class=HTMLResponse)
def evidence_page(request: Request, capture_id: Id, user: Principal = Depends(page_user)) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        found = repo.capture_with_listing(s, capture_id)
    if found is None:
        raise NotFound(f"no capture with id {capture_id}")
    capture, listing = found
    return render(request, "evidence.html.j2", capture=capture, listing=listing, result=None)


@router.post("/evidence/{capture_id}/verify")
def verify_now(request: Request, capture_id: Id, user: Principal = Depends(allowed("verify"))) -> Response:
    c = console_of(request)
    result = verify.verify(c.db, c.settings, capture_ids=[capture_id], actor=user.name)
    return render(request, "verify_result.html.j2", result=result)


@router.get("/evidence/{capture_id}/wacz")
def wacz(request: Request, capture_id: Id, user: Principal = Depends(page_user)) -> Response:
    c = console_of(request)
    tmp = Path(tempfile.mkdtemp(prefix="tertib-wacz-"))
    out = bundle.write_wacz(
        c.db,
        c.settings,
        capture_ids=[capture_id],
        out=tmp / f"capture-{capture_id}.wacz",
        title=f"capture {capture_id}",
        actor=user.name,
        record=False,  # a download is a read: the access log has it, the custody log does not
    )
    record_access(
        request,
        user,
        object_type="wacz",
        object_id=f"capture:{capture_id}",
        digest=sha256_file(out),
        size=out.stat().st_size,
    )
    return FileResponse(
        out,
        filename=out.name,
        media_type="application/wacz",
        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True),
    )
