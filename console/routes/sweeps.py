"""Sweeps and schedules: definitions, job-run history, sweep runs; create, pause/resume, run now.

Schedule changes are custody-logged by :mod:`scheduler.definitions` itself (as for ``tertib schedule``).
"""

from __future__ import annotations

import logging
import threading

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from console.auth import Principal
from console.deps import Console, allowed, back_to, console_of, page_user, render
from crawler.errors import NotFound
from scheduler import definitions as defs
from scheduler.config import scheduler_settings
from scheduler.jobs import JobRunner
from storage import repositories as repo

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def _run_job_in_background(c: Console, name: str) -> None:
    def work() -> None:
        try:
            JobRunner(c.db, c.settings, scheduler_settings(c.settings)).run(name)
        except Exception:  # the JobRun row records failures; this is only the thread's last word
            log.exception("run-now of %s failed", name)

    threading.Thread(target=work, name=f"run-now-{name}", daemon=True).start()


@router.get("/sweeps", response_class=HTMLResponse)
def sweeps_page(request: Request, user: Principal = Depends(page_user)) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        described = [(row, defs.summary(row)) for row in defs.all_definitions(s)]
        jobs = repo.recent_job_runs(s, limit=30)
        runs = repo.recent_sweep_runs(s, limit=30)
    return render(request, "sweeps.html.j2", schedules=described, jobs=jobs, runs=runs)


@router.post("/sweeps")
async def create_schedule(request: Request, user: Principal = Depends(allowed("schedules"))) -> Response:
    form = await request.form()
    c = console_of(request)
    max_pages = str(form.get("max_pages") or "2")
    with c.db.session() as s:
        defs.add(
            s,
            name=str(form.get("name") or "").strip(),
            cron=str(form.get("cron") or "").strip(),
            tz=c.settings.timezone,
            default_tz=c.settings.timezone,
            platforms=[str(p) for p in form.getlist("platforms") if p],
            max_pages=int(max_pages) if max_pages.isdigit() else 0,
            actor=user.name,
        )
    return back_to("/sweeps")


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
