"""Evidence: captures (newest first, paged by id), one capture with its WARC records and screenshot,
verify now (analysts and auditors), WACZ download (a read: the access log has it, custody does not)."""

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
from console.paging import PAGE_SIZE, link
from crawler.errors import NotFound
from crawler.evidence import bundle, verify
from crawler.exports.common import sha256_file
from storage import repositories as repo

router = APIRouter(include_in_schema=False)
RowId = Annotated[int | None, Query(ge=1, le=DB_INT_MAX)]


@router.get("/evidence", response_class=HTMLResponse)
def evidence_list(
    request: Request,
    listing: RowId = None,
    before: RowId = None,
    after: RowId = None,
    user: Principal = Depends(page_user),
) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        rows = repo.list_captures(s, listing_id=listing, limit=PAGE_SIZE, before_id=before, after_id=after)
        newest, oldest = (rows[0][0].id, rows[-1][0].id) if rows else (None, None)
        more_older = bool(oldest and repo.list_captures(s, listing_id=listing, limit=1, before_id=oldest))
        more_newer = bool(newest and repo.list_captures(s, listing_id=listing, limit=1, after_id=newest))
    return render(
        request,
        "evidence_list.html.j2",
        rows=rows,
        listing=listing,
        older_url=link("/evidence", listing=listing, before=oldest) if more_older else "",
        newer_url=link("/evidence", listing=listing, after=newest) if more_newer else "",
    )


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
    try:
        out = bundle.write_wacz(
            c.db,
            c.settings,
            capture_ids=[capture_id],
            out=tmp / f"capture-{capture_id}.wacz",
            title=f"capture {capture_id}",
            actor=user.name,
            record=False,  # a download is a read: the access log has it, the custody log does not
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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
