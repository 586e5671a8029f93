"""The dashboard: last sweep runs with per-platform health, waiting candidates, batches awaiting rechecks
and removals over time."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from console.auth import Principal
from console.deps import console_of, page_user, render
from console.views import chart_svg
from crawler.audit import overview
from storage import repositories as repo

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, user: Principal = Depends(page_user)) -> Response:
    c = console_of(request)
    with c.db.session() as s:
        runs = repo.recent_sweep_runs(s, kind="sweep", limit=5)
        waiting = c.counter.size(s)
        awaiting = overview.batches_awaiting_rechecks(s, last_round=max(c.settings.recheck_days))
        series = overview.removal_series(s)
    return render(
        request,
        "dashboard.html.j2",
        runs=runs,
        waiting=waiting,
        awaiting=awaiting,
        chart=chart_svg(series),
    )
