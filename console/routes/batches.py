"""Takedown batches: list, create from approved items, one batch with its files, mark sent.

A form that cannot be accepted comes back with the message beside the field and what was typed kept.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from console import i18n
from console.auth import Principal
from console.deps import (
    BatchRef,
    Offset,
    allowed,
    back_to,
    console_of,
    lang_of,
    page_user,
    record_access,
    render,
)
from console.paging import page_of
from crawler.errors import TertibError
from crawler.exports import service
from crawler.exports.common import sha256_file

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20


def _batches_page(
    request: Request,
    page: int,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        summaries = list(reversed(service.list_batches(s)))
        ready = service.ready_count(s)
    return render(
        request,
        "batches.html.j2",
        status_code=status_code,
        batches=page_of(summaries, page, PAGE_SIZE),
        ready=ready,
        errors=errors or {},
        form=form or {"name": "", "platforms": []},
    )


@router.get("/batches", response_class=HTMLResponse)
def batches(request: Request, page: Offset = 1, user: Principal = Depends(page_user)) -> Response:
    return _batches_page(request, page)


@router.post("/batches")
async def create(request: Request, user: Principal = Depends(allowed("batches"))) -> Response:
    form = await request.form()
    c = console_of(request)
    t = i18n.translator(lang_of(request))
    name = str(form.get("name") or "").strip()[:200]
    platforms = [str(p) for p in form.getlist("platforms") if p]
    registry = c.settings.registry
    typed = {"name": name, "platforms": [p for p in platforms if p in registry]}
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = t("required")
    if any(p not in registry for p in platforms):
        errors["platforms"] = t("platform_invalid")
    if not errors:
        try:
            result = service.create_batch(c.db, c.settings, name=name, platforms=platforms, actor=user.name)
        except TertibError as exc:
            errors["form"] = i18n.error_text(str(exc), lang_of(request))
        else:
            return back_to(f"/batches/{result.number}")
    return _batches_page(request, 1, errors=errors, form=typed, status_code=400)


def _batch_page(
    request: Request,
    number: str,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        batch = service.get_batch(s, number)
        summary = service.summarize(s, batch)
        files = service.batch_files(batch)
    return render(
        request,
        "batch.html.j2",
        status_code=status_code,
        batch=summary,
        files=files,
        channels=service.CHANNELS,
        errors=errors or {},
        form=form or {},
    )


@router.get("/batches/{number}", response_class=HTMLResponse)
def batch_page(request: Request, number: BatchRef, user: Principal = Depends(page_user)) -> Response:
    return _batch_page(request, number)


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
async def mark_sent(
    request: Request, number: BatchRef, user: Principal = Depends(allowed("send"))
) -> Response:
    form = await request.form()
    c = console_of(request)
    lang = lang_of(request)
    t = i18n.translator(lang)
    platform = str(form.get("platform") or "")
    channel = str(form.get("channel") or "")
    sent_at = str(form.get("sent_at") or "").strip()
    typed = {"platform": platform, "channel": channel, "sent_at": sent_at}
    errors: dict[str, str] = {}
    when = datetime.now(UTC)
    if channel not in service.CHANNELS:
        errors["channel"] = t("channel_invalid")
    if sent_at:
        try:
            when = datetime.fromisoformat(sent_at).replace(tzinfo=c.tz).astimezone(UTC)
        except ValueError:
            errors["sent_at"] = t("sent_at_invalid")
    if not errors:
        try:
            with c.db.session() as s:
                service.mark_sent(s, number, platform=platform, channel=channel, sent_at=when, by=user.name)
        except TertibError as exc:
            errors["sent_at"] = i18n.error_text(str(exc), lang)
        else:
            return back_to(f"/batches/{number}")
    keyed = {f"{platform}:{k}": v for k, v in errors.items()}  # beside the right platform's form
    return _batch_page(request, number, errors=keyed, form=typed, status_code=400)
