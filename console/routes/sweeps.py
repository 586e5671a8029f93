"""Sweeps and schedules: definitions with their next run, job-run history and sweep runs (both paged by
id); create a schedule (errors beside the fields, input kept), pause/resume, run now.

Schedule changes are custody-logged by :mod:`scheduler.definitions` itself (as for ``tertib schedule``).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from console import i18n
from console.auth import Principal
from console.deps import DB_INT_MAX, Console, allowed, back_to, console_of, lang_of, page_user, render
from console.paging import link
from crawler.errors import NotFound, TertibError
from scheduler import definitions as defs
from scheduler.config import scheduler_settings
from scheduler.jobs import JobRunner
from storage import repositories as repo
from storage.models import Sweep

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
RowId = Annotated[int | None, Query(ge=1, le=DB_INT_MAX)]
PAGE = 30
MAX_PAGES = 50


def _run_job_in_background(c: Console, name: str) -> None:
    def work() -> None:
        try:
            JobRunner(c.db, c.settings, scheduler_settings(c.settings)).run(name)
        except Exception:  # the JobRun row records failures; this is only the thread's last word
            log.exception("run-now of %s failed", name)

    threading.Thread(target=work, name=f"run-now-{name}", daemon=True).start()


def _describe(row: Sweep, tz: str) -> dict[str, Any]:
    kind = defs.kind_of(row)
    try:
        trigger = defs.trigger_for(row, tz)
    except TertibError:
        trigger = None
    upcoming = defs.next_runs(trigger, datetime.now(UTC), 1) if trigger is not None else []
    return {
        "row": row,
        "kind": kind,
        "platforms": list(row.platforms or []),
        "command": " ".join(defs.command_for(row, sweep_run_id=0)) if kind == defs.KIND_COMMAND else "",
        "next": upcoming[0] if upcoming else None,
    }


def _page(
    request: Request,
    *,
    jobs_before: int | None = None,
    runs_before: int | None = None,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        schedules = [_describe(row, c.settings.timezone) for row in defs.all_definitions(s)]
        jobs = repo.recent_job_runs(s, limit=PAGE + 1, before_id=jobs_before)
        runs = repo.recent_sweep_runs(s, limit=PAGE + 1, before_id=runs_before)
    return render(
        request,
        "sweeps.html.j2",
        status_code=status_code,
        schedules=schedules,
        jobs=jobs[:PAGE],
        runs=runs[:PAGE],
        jobs_older=link("/sweeps", jobs_before=jobs[PAGE - 1].id, runs_before=runs_before) + "#job-runs"
        if len(jobs) > PAGE
        else "",
        jobs_newest=link("/sweeps", runs_before=runs_before) + "#job-runs" if jobs_before else "",
        runs_older=link("/sweeps", runs_before=runs[PAGE - 1].id, jobs_before=jobs_before) + "#sweep-runs"
        if len(runs) > PAGE
        else "",
        runs_newest=link("/sweeps", jobs_before=jobs_before) + "#sweep-runs" if runs_before else "",
        search_platforms=c.settings.registry.search_names,
        errors=errors or {},
        form=form or {"name": "", "cron": "", "max_pages": "2", "platforms": []},
    )


@router.get("/sweeps", response_class=HTMLResponse)
def sweeps_page(
    request: Request,
    jobs_before: RowId = None,
    runs_before: RowId = None,
    user: Principal = Depends(page_user),
) -> Response:
    return _page(request, jobs_before=jobs_before, runs_before=runs_before)


@router.post("/sweeps")
async def create_schedule(request: Request, user: Principal = Depends(allowed("schedules"))) -> Response:
    form = await request.form()
    c = console_of(request)
    lang = lang_of(request)
    t = i18n.translator(lang)
    name = str(form.get("name") or "").strip()[:120]
    cron = " ".join(str(form.get("cron") or "").split())[:120]
    pages = str(form.get("max_pages") or "2").strip()
    platforms = [str(p) for p in form.getlist("platforms") if p]
    typed = {"name": name, "cron": cron, "max_pages": pages[:4], "platforms": platforms}
    errors: dict[str, str] = {}
    if not defs.NAME_RE.match(name):
        errors["name"] = t("name_invalid")
    elif name in defs.BUILTIN_BY_NAME:
        errors["name"] = t("name_builtin")
    try:
        defs.build_trigger(cron, c.settings.timezone)
    except TertibError:
        errors["cron"] = t("cron_invalid")
    if not (pages.isascii() and pages.isdigit() and 1 <= int(pages) <= MAX_PAGES):
        errors["max_pages"] = t("max_pages_invalid")
    if any(p not in c.settings.registry.search_names for p in platforms):
        errors["platforms"] = t("platform_invalid")
    if not errors:
        try:
            with c.db.session() as s:
                defs.add(
                    s,
                    name=name,
                    cron=cron,
                    tz=c.settings.timezone,
                    default_tz=c.settings.timezone,
                    platforms=platforms,
                    max_pages=int(pages),
                    actor=user.name,
                    registry=c.settings.registry,
                )
        except defs.ScheduleExists:
            errors["name"] = t("name_taken")
        except TertibError as exc:
            errors["form"] = i18n.error_text(str(exc), lang)
        else:
            return back_to("/sweeps")
    return _page(request, errors=errors, form=typed, status_code=400)


@router.post("/sweeps/{name}/{action}")
def schedule_action(
    request: Request, name: str, action: str, user: Principal = Depends(allowed("schedules"))
) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        if action in ("pause", "resume"):
            defs.set_paused(s, name, action == "pause", actor=user.name)
        elif action == "run":
            defs.request_run(s, name, actor=user.name)
        else:
            defs.get(s, name)
            raise NotFound(f"no schedule action {action}")
    if action == "run":
        _run_job_in_background(c, name)
    return back_to("/sweeps")
