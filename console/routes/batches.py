"""Takedown batches: list, create from approved items, one batch with its files, mark sent."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from console.auth import Principal
from console.deps import BatchRef, allowed, back_to, console_of, page_user, record_access, render
from crawler.errors import TertibError
from crawler.exports import service
from crawler.exports.common import sha256_file

router = APIRouter(include_in_schema=False)


@router.get("/batches", response_class=HTMLResponse)
def batches(request: Request, user: Principal = Depends(page_user)) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        summaries = list(reversed(service.list_batches(s)))
        ready = service.ready_count(s)
    return render(request, "batches.html.j2", batches=summaries, ready=ready)


@router.post("/batches")
async def create(request: Request, user: Principal = Depends(allowed("batches"))) -> Response:
    form = await request.form()
    c = console_of(request)
    platforms = [str(p) for p in form.getlist("platforms") if p]
    result = service.create_batch(
        c.db, c.settings, name=str(form.get("name") or ""), platforms=platforms, actor=user.name
    )
    return back_to(f"/batches/{result.number}")


@router.get("/batches/{number}", response_class=HTMLResponse)
def batch_page(request: Request, number: BatchRef, user: Principal = Depends(page_user)) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        batch = service.get_batch(s, number)
        summary = service.summarize(s, batch)
        files = service.batch_files(batch)
    return render(
        request,
        "batch.html.j2",
        batch=summary,
        files=files,
        channels=service.CHANNELS,
        now=datetime.now(UTC),
    )


@router.get("/batches/{number}/files/{name:path}")
def batch_file(
    request: Request, number: BatchRef, name: str, user: Principal = Depends(page_user)
) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        batch = service.get_batch(s, number)
        path = service.batch_file(batch, name)
        stored = f"{batch.number}/{path.relative_to(Path(batch.out_dir or '').resolve()).as_posix()}"
    record_access(
        request,
        user,
        object_type="batch_file",
        object_id=stored,
        digest=sha256_file(path),
        size=path.stat().st_size,
    )
    return FileResponse(path, filename=path.name)


@router.post("/batches/{number}/sent")
def mark_sent(
    request: Request,
    number: BatchRef,
    platform: str = Form(...),
    channel: str = Form(...),
    sent_at: str = Form(""),
    user: Principal = Depends(allowed("send")),
) -> Response:
    c = console_of(request)
    when = datetime.now(UTC)
    if sent_at:
        try:
            when = datetime.fromisoformat(sent_at).replace(tzinfo=c.tz).astimezone(UTC)
        except ValueError:
            raise TertibError(f"not a date and time: {sent_at!r}") from None
    with c.db.session() as s:
        service.mark_sent(s, number, platform=platform, channel=channel, sent_at=when, by=user.name)
    return back_to(f"/batches/{number}")
