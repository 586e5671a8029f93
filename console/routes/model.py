"""The detection model scoring now: its card (what it learned from, how it did on rows it never saw), and
the way into the review queue in its least-certain order."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from console.auth import Principal
from console.deps import console_of, page_user, render
from crawler.errors import TertibError
from crawler.terms.model import active_card

router = APIRouter(include_in_schema=False)
LEVELS = ("strong", "candidate", "weak")  # the verdict thresholds a card reports, strictest first


def _figures(section: dict[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    by_threshold = (section or {}).get("by_threshold") or {}
    return [(level, by_threshold[level]) for level in LEVELS if isinstance(by_threshold.get(level), dict)]


@router.get("/model", response_class=HTMLResponse)
def model_page(request: Request, user: Principal = Depends(page_user)) -> Response:
    settings = console_of(request).settings
    error = ""
    try:
        card = active_card(settings)
    except TertibError as exc:  # an unreadable or tampered model file: say so, do not fail the page
        card, error = None, str(exc)
    data = (card or {}).get("data") or {}
    return render(
        request,
        "model.html.j2",
        card=card,
        error=error,
        splits=[(key, data[key]) for key in ("train", "heldout") if isinstance(data.get(key), dict)],
        decisions=data.get("decisions") or {},
        heldout=_figures((card or {}).get("heldout")),
        cv=_figures((card or {}).get("cross_validation")),
    )
