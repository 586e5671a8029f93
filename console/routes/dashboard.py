"""The dashboard: the last sweep runs with health per platform (blocks, errors and "needs attention"
beside each platform), waiting candidates, batches awaiting rechecks and removals over time."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from console.auth import Principal
from console.deps import console_of, page_user, render
from console.views import HEALTH_COLUMNS, chart_svg, run_health
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
    shown = [(run, *run_health(run.stats, run.needs_attention)) for run in runs]
    latest = shown[0] if shown else None
    attention = (sum(1 for h in latest[1] if h.problems) + len(latest[2])) if latest else 0
    return render(
        request,
        "dashboard.html.j2",
        runs=shown,
        columns=HEALTH_COLUMNS,
        attention_count=attention,
        waiting=waiting,
        awaiting=awaiting,
        chart=chart_svg(series),
    )
