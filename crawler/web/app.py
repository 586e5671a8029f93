"""The web console: a FastAPI app of server-rendered pages (Jinja2 + HTMX) over the core services.

:func:`create_app` builds one app for one installation (``Settings`` + ``Database``). Pages call the same
service functions the CLI calls — ``crawler.review`` (queue, approve, reject, card),
``crawler.exports.service`` (batches, mark sent), ``crawler.audit.report`` (verdict tables),
``crawler.evidence`` (verify, WACZ),
``crawler.terms.store`` (terms), ``scheduler.definitions``/``scheduler.jobs`` (schedules, run now) and
``crawler.exports.offenders`` (sellers) — imported lazily so a missing area only breaks its page.
Every change names the logged-in user as the actor (custody log).

Security (see :mod:`crawler.web.auth`): signed HttpOnly SameSite=Strict session cookie; a session-bound CSRF
token on every POST (form field ``csrf`` or header ``X-CSRF-Token``, which ``static/console.js`` adds to
HTMX requests); auditors are read-only (write buttons are not rendered and write routes answer 403); login
throttled per user+IP; CSP without inline script, ``frame-ancestors 'none'``, nosniff, no referrer.

Settings: ``timezone`` (WIB display), ``blob_dir`` (screenshots), ``exports_dir`` (batch output),
``keys_dir`` (signing key, console secret), ``recheck_days`` (audit rounds). ``secure_cookies`` (argument)
adds the ``Secure`` flag when the console sits behind HTTPS.

To add a page: write a handler that takes ``user: Principal = Depends(page_user)`` (or
``Depends(writer)`` for POSTs), call the service function, and render ``templates/<page>.html.j2`` with
:func:`render`; add its key to the nav in ``base.html.j2`` and its words to :mod:`crawler.web.i18n`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from sqlalchemy import String, func, select
from starlette.exceptions import HTTPException as StarletteHTTPException

from crawler.config import Settings
from crawler.errors import NotFound, TertibError
from crawler.web import auth, i18n
from crawler.web.auth import Principal
from storage import custody
from storage.db import Database
from storage.evidence_store import open_store
from storage.models import (
    BatchSend,
    Capture,
    JobRun,
    Listing,
    Recheck,
    ReviewDecision,
    Seller,
    SweepRun,
    TakedownBatch,
    TakedownItem,
)

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
BULK_LIMIT = 200
DB_INT_MAX = 2**63 - 1  # ids beyond a bigint are refused by validation, not by the database
Id = Annotated[int, PathParam(ge=1, le=DB_INT_MAX)]
Offset = Annotated[int, Query(ge=0, le=10**9)]
# batch number (TTB-2026-0001) or id, ASCII only (str.isdigit() accepts "¹", which int() refuses)
BatchRef = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9-]{1,40}$")]


class LoginRequired(Exception):
    """Raised by :func:`page_user` when no valid session exists; answered with a redirect to /login."""


class Refused(Exception):
    """A write the caller may not make (read-only role or a bad CSRF token): 403."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass
class Console:
    """Everything a request handler needs, kept on ``app.state.console`` (no module-level singletons)."""

    settings: Settings
    db: Database
    codec: auth.SessionCodec
    throttle: auth.LoginThrottle
    templates: Jinja2Templates
    tz: ZoneInfo
    secure_cookies: bool
    # waiting-candidate counts keyed by (platform, newest decision id, newest score id): counting 100,000
    # candidates costs ~50 ms, and the key changes whenever a decision or a sweep could change the count
    counts: dict[tuple[str | None, int, int], int] = field(default_factory=dict)


def console_of(request: Request) -> Console:
    return request.app.state.console


# -- request helpers ---------------------------------------------------------------------------


def session_data(request: Request) -> dict[str, Any] | None:
    if "tertib_session_data" not in request.scope:
        request.scope["tertib_session_data"] = console_of(request).codec.load(
            request.cookies.get(auth.SESSION_COOKIE)
        )
    return request.scope["tertib_session_data"]


def current_user(request: Request) -> Principal | None:
    if "tertib_user" not in request.scope:
        c = console_of(request)
        with c.db.session() as s:
            request.scope["tertib_user"] = auth.principal_for_session(s, session_data(request))
    return request.scope["tertib_user"]


def page_user(request: Request) -> Principal:
    user = current_user(request)
    if user is None:
        raise LoginRequired
    return user


async def writer(request: Request) -> Principal:
    """A logged-in user with a write role whose request carries the session's CSRF token."""
    user = page_user(request)
    data = session_data(request) or {}
    given = request.headers.get("x-csrf-token")
    if not given:
        form = await request.form()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    if not auth.csrf_ok(data.get("csrf"), given):
        raise Refused("csrf_failed")
    if not user.can_write:
        raise Refused("forbidden")
    return user


def lang_of(request: Request) -> str:
    return i18n.pick_language(request.cookies.get("lang"))


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    c = console_of(request)
    lang = lang_of(request)
    data = session_data(request) or {}
    user = request.scope.get("tertib_user")
    base = {
        "request": request,
        "t": i18n.translator(lang),
        "lang": lang,
        "user": user,
        "csrf": data.get("csrf", ""),
        "wib": lambda v: i18n.wib(v, c.tz),
        "rupiah": rupiah,
        "partial": request.headers.get("hx-request") == "true",
        "platforms": c.settings.registry.names,
    }
    base.update(context)
    return c.templates.TemplateResponse(request, template, base, status_code=status_code)


def back_to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def rupiah(price: int | None) -> str:
    return "-" if price is None else "Rp" + f"{price:,}".replace(",", ".")


def highlight(text: str, signals: list[dict[str, Any]]) -> Markup:
    """``text`` as HTML with each signal's span wrapped in ``<mark>`` (positive weight red, negative green).

    Spans index the flattened text (newlines as spaces), as the scorer's explanation does; a signal without
    a usable span is located by its matched words. Overlapping spans keep the first.
    """
    flat = text.replace("\n", " ")
    ranges: list[tuple[int, int, float, str]] = []
    for sig in signals:
        span = sig.get("span") or []
        weight = float(sig.get("weight", 0) or 0)
        term = str(sig.get("term", ""))
        if len(span) == 2 and 0 <= int(span[0]) < int(span[1]) <= len(flat):
            a, b = int(span[0]), int(span[1])
        else:
            needle = str(sig.get("matched") or term)
            a = flat.lower().find(needle.lower()) if needle else -1
            if a < 0:
                continue
            b = a + len(needle)
        ranges.append((a, b, weight, term))
    ranges.sort()
    out: list[str] = []
    pos = 0
    for a, b, weight, term in ranges:
        if a < pos:
            continue
        out.append(str(escape(text[pos:a])))
        cls = "sig-pos" if weight > 0 else "sig-neg"
        out.append(f'<mark class="{cls}" title="{escape(term)} {weight:+.2f}">{escape(text[a:b])}</mark>')
        pos = b
    out.append(str(escape(text[pos:])))
    return Markup("".join(out))


# -- the app -----------------------------------------------------------------------------------


def create_app(
    settings: Settings,
    db: Database,
    *,
    throttle: auth.LoginThrottle | None = None,
    secure_cookies: bool = False,
) -> FastAPI:
    """The console app for one installation; ``db`` must be migrated (``Database.migrate``)."""
    app = FastAPI(
        title="tertib console API",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["highlight"] = highlight
    app.state.console = Console(
        settings=settings,
        db=db,
        codec=auth.SessionCodec(auth.secret_key(settings.keys_dir)),
        throttle=throttle or auth.LoginThrottle(),
        templates=templates,
        tz=ZoneInfo(settings.timezone),
        secure_cookies=secure_cookies,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    db.analyze()  # planner statistics: the review queue at 1M listings goes from ~450 ms to ~13 ms

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if request.headers.get("hx-request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return back_to(f"/login?next={quote(target)}")

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        return render(request, "error.html.j2", status_code=403, message_key=exc.key, message="")

    @app.exception_handler(TertibError)
    async def _user_error(request: Request, exc: TertibError) -> Response:
        status = 404 if isinstance(exc, NotFound) else 400
        if request.url.path.startswith("/api/"):
            from fastapi.responses import JSONResponse

            return JSONResponse({"detail": str(exc)}, status_code=status)
        return render(request, "error.html.j2", status_code=status, message=str(exc), message_key="")

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> Response:
        # a numeric reference beyond the database's integer range (services resolve "123" as an id)
        return await _user_error(request, TertibError("number out of range"))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            from fastapi.responses import JSONResponse

            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return render(
            request, "error.html.j2", status_code=exc.status_code, message=str(exc.detail), message_key=""
        )

    _auth_routes(app)
    _dashboard_routes(app)
    _review_routes(app)
    _batch_routes(app)
    _audit_routes(app)
    _evidence_routes(app)
    _terms_routes(app)
    _sweep_routes(app)
    _seller_routes(app)

    from crawler.web.api import router as api_router

    app.include_router(api_router)
    return app


# -- login, logout, language -------------------------------------------------------------------


def _auth_routes(app: FastAPI) -> None:
    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> Response:
        return render(request, "login.html.j2", next=_safe_next(next), error_key="")

    @app.post("/login", response_class=HTMLResponse, include_in_schema=False)
    def login(
        request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/")
    ) -> Response:
        c = console_of(request)
        ip = request.client.host if request.client else "?"
        if c.throttle.blocked(username, ip):
            log.warning("login throttled for %r from %s", username, ip)
            return render(
                request, "login.html.j2", status_code=429, next=_safe_next(next), error_key="login_throttled"
            )
        with c.db.session() as s:
            principal = auth.authenticate(s, username, password)
            user = s.get(auth.User, principal.id) if principal else None
            cookie = c.codec.dump(user) if user else None
        if cookie is None:
            c.throttle.failed(username, ip)
            return render(
                request, "login.html.j2", status_code=401, next=_safe_next(next), error_key="login_failed"
            )
        c.throttle.succeeded(username, ip)
        response = back_to(_safe_next(next))
        response.set_cookie(
            auth.SESSION_COOKIE,
            cookie,
            max_age=auth.SESSION_MAX_AGE,
            httponly=True,
            samesite="strict",
            secure=c.secure_cookies,
            path="/",
        )
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request, user: Principal = Depends(page_user)) -> Response:
        data = session_data(request) or {}
        form = await request.form()
        if not auth.csrf_ok(data.get("csrf"), str(form.get("csrf") or "")):
            raise Refused("csrf_failed")
        response = back_to("/login")
        response.delete_cookie(auth.SESSION_COOKIE, path="/")
        return response

    @app.get("/lang/{code}", include_in_schema=False)
    def set_language(code: str, request: Request) -> Response:
        response = back_to(_safe_next(request.query_params.get("next", "/")))
        response.set_cookie("lang", i18n.pick_language(code), max_age=365 * 86400, samesite="strict")
        return response


def _safe_next(target: str) -> str:
    """Only local paths: no scheme, no host, no protocol-relative ``//``."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


# -- dashboard ---------------------------------------------------------------------------------


def removal_series(session: Any) -> dict[str, list[tuple[datetime, int]]]:
    """Per platform, cumulative takedown items first seen REMOVED or HIDDEN, one point per (UTC) day.

    Aggregated in SQL (first removal per item, then items per platform and day), so the chart stays a few
    hundred points however many items were rechecked.
    """
    first = (
        select(TakedownItem.platform.label("platform"), func.min(Recheck.checked_at).label("at"))
        .join(Recheck, Recheck.takedown_item_id == TakedownItem.id)
        .where(Recheck.verdict.in_(("REMOVED", "HIDDEN")))
        .group_by(TakedownItem.id, TakedownItem.platform)
        .subquery()
    )
    day = func.substr(func.cast(first.c.at, String), 1, 10)
    rows = session.execute(
        select(first.c.platform, day, func.count()).group_by(first.c.platform, day).order_by(day)
    ).all()
    series: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for platform, text, count in rows:
        points = series[platform]
        at = datetime.fromisoformat(str(text)).replace(tzinfo=UTC)
        points.append((at, (points[-1][1] if points else 0) + int(count)))
    return dict(series)


def chart_svg(series: dict[str, list[tuple[datetime, int]]], width: int = 640, height: int = 220) -> Markup:
    """A small step chart (one polyline per platform) as inline SVG; presentation attributes only (CSP)."""
    if not series:
        return Markup("")
    colours = ["#b3261e", "#1f6feb", "#2e7d32", "#8e24aa", "#ef6c00", "#00838f", "#5d4037", "#455a64"]
    times = [at for pts in series.values() for at, _ in pts]
    t0, t1 = min(times), max(times)
    span = max((t1 - t0).total_seconds(), 3600.0)
    top = max(n for pts in series.values() for _, n in pts)
    pad_l, pad_b, pad_t, pad_r = 36, 22, 10, 120

    def x(at: datetime) -> float:
        return pad_l + (width - pad_l - pad_r) * (at - t0).total_seconds() / span

    def y(n: int) -> float:
        return height - pad_b - (height - pad_b - pad_t) * n / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="chart" role="img">',
        f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - pad_r}" y2="{height - pad_b}" '
        'stroke="#999"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{height - pad_b}" stroke="#999"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end" font-size="10">{top}</text>',
        f'<text x="{pad_l - 4}" y="{height - pad_b}" text-anchor="end" font-size="10">0</text>',
        f'<text x="{pad_l}" y="{height - 6}" font-size="10">{t0:%Y-%m-%d}</text>',
        f'<text x="{width - pad_r}" y="{height - 6}" text-anchor="end" font-size="10">{t1:%Y-%m-%d}</text>',
    ]
    for i, (platform, pts) in enumerate(sorted(series.items())):
        colour = colours[i % len(colours)]
        coords = [f"{x(t0):.1f},{y(0):.1f}"]
        prev = 0
        for at, n in pts:
            coords.append(f"{x(at):.1f},{y(prev):.1f}")
            coords.append(f"{x(at):.1f},{y(n):.1f}")
            prev = n
        coords.append(f"{x(t1):.1f},{y(prev):.1f}")
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(coords)}"/>'
        )
        ly = pad_t + 14 * i + 8
        parts.append(f'<rect x="{width - pad_r + 8}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>')
        parts.append(
            f'<text x="{width - pad_r + 22}" y="{ly + 1}" font-size="11">{escape(platform)} ({prev})</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _dashboard_routes(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard(request: Request, user: Principal = Depends(page_user)) -> Response:

        c = console_of(request)
        with c.db.session() as s:
            runs = list(
                s.scalars(
                    select(SweepRun)
                    .where(SweepRun.kind == "sweep")
                    .order_by(SweepRun.started_at.desc(), SweepRun.id.desc())
                    .limit(5)
                )
            )
            waiting = waiting_count(s)
            # batches sent to at least one platform whose items lack a recheck of the last round
            last_round = max(c.settings.recheck_days)
            totals = (
                select(TakedownItem.batch_id.label("batch_id"), func.count().label("total"))
                .group_by(TakedownItem.batch_id)
                .subquery()
            )
            done = (
                select(
                    TakedownItem.batch_id.label("batch_id"),
                    func.count(func.distinct(Recheck.takedown_item_id)).label("done"),
                )
                .join(Recheck, Recheck.takedown_item_id == TakedownItem.id)
                .where(Recheck.round_days == last_round)
                .group_by(TakedownItem.batch_id)
                .subquery()
            )
            sent = (
                select(BatchSend.batch_id.label("batch_id"), func.min(BatchSend.sent_at).label("first_sent"))
                .group_by(BatchSend.batch_id)
                .subquery()
            )
            done_n = func.coalesce(done.c.done, 0)
            awaiting = s.execute(
                select(TakedownBatch.number, sent.c.first_sent, done_n, totals.c.total)
                .join(sent, sent.c.batch_id == TakedownBatch.id)
                .join(totals, totals.c.batch_id == TakedownBatch.id)
                .outerjoin(done, done.c.batch_id == TakedownBatch.id)
                .where(done_n < totals.c.total)
                .order_by(TakedownBatch.id.desc())
                .limit(50)
            ).all()
            series = removal_series(s)
        return render(
            request,
            "dashboard.html.j2",
            runs=runs,
            waiting=waiting,
            awaiting=awaiting,
            chart=chart_svg(series),
        )


# -- review queue ------------------------------------------------------------------------------


def waiting_count(session: Any, platform: str | None = None, cache: dict[Any, int] | None = None) -> int:
    """Undecided candidates (``review.queue_size``), remembered in ``cache`` until a decision or a new score
    lands (both ids only grow, so the key is exact, not a time-to-live)."""
    from crawler import review
    from storage.models import Score

    if cache is None:
        return review.queue_size(session, platform)
    key = (
        platform,
        int(session.scalar(select(func.max(ReviewDecision.id))) or 0),
        int(session.scalar(select(func.max(Score.id))) or 0),
    )
    if key not in cache:
        if len(cache) > 64:
            cache.clear()
        cache[key] = review.queue_size(session, platform)
    return cache[key]


def _review_context(request: Request, pos: int, platform: str | None) -> dict[str, Any]:
    from crawler import review

    c = console_of(request)
    with c.db.session() as s:
        total = waiting_count(s, platform, c.counts)
        pos = max(0, min(pos, max(total - 1, 0)))
        items = review.review_queue(s, platform=platform, limit=1, offset=pos)
        if not items:
            return {"card": None, "pos": 0, "total": total, "platform": platform or ""}
        card = review.review_card(s, items[0].listing_id, c.settings.blob_dir)
        listing = s.get(Listing, card.listing_id)
        assert listing is not None
        history: list[tuple[Listing, str | None]] = []
        if listing.seller_id is not None:
            # the seller's other listings with each one's latest decision (a correlated lookup per row: a
            # window over every decision costs a full scan at scale)
            latest = (
                select(ReviewDecision.decision)
                .where(ReviewDecision.listing_id == Listing.id)
                .order_by(ReviewDecision.decided_at.desc(), ReviewDecision.id.desc())
                .limit(1)
                .correlate(Listing)
                .scalar_subquery()
            )
            history = [
                (row, decision)
                for row, decision in s.execute(
                    select(Listing, latest)
                    .where(Listing.seller_id == listing.seller_id, Listing.id != listing.id)
                    .order_by(Listing.last_seen.desc())
                    .limit(10)
                ).all()
            ]
        parent = s.get(Listing, listing.relist_of_id) if listing.relist_of_id else None
        children = list(s.scalars(select(Listing).where(Listing.relist_of_id == listing.id).limit(10)))
        # the blob's name is its SHA-256; the evidence store says whether it holds it (local disk or S3)
        blobs = open_store(c.settings, check=False).blobs
        shot = (
            card.screenshot.name
            if card.screenshot is not None and blobs.exists(card.screenshot.name)
            else None
        )
    return {
        "card": card,
        "listing": listing,
        "history": history,
        "parent": parent,
        "children": children,
        "shot": shot,
        "pos": pos,
        "total": total,
        "platform": platform or "",
        "reasons": review.REJECT_REASONS,
    }


def _review_routes(app: FastAPI) -> None:
    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_page(
        request: Request, pos: Offset = 0, platform: str = "", user: Principal = Depends(page_user)
    ) -> Response:
        ctx = _review_context(request, pos, platform or None)
        template = "review_card.html.j2" if request.headers.get("hx-request") == "true" else "review.html.j2"
        return render(request, template, **ctx)

    @app.post("/review/{listing_id}/decide", include_in_schema=False)
    def decide(
        request: Request,
        listing_id: Id,
        decision: str = Form(...),
        reason: str = Form(""),
        note: str = Form(""),
        pos: int = Form(0, ge=0, le=10**9),
        platform: str = Form(""),
        user: Principal = Depends(writer),
    ) -> Response:
        from crawler import review

        c = console_of(request)
        with c.db.session() as s:
            if decision == "approve":
                review.approve(s, [listing_id], by=user.name, note=note)
            elif decision == "reject":
                review.reject(s, [listing_id], by=user.name, reason=reason or "other", note=note)
            else:
                raise TertibError(f"unknown decision {decision!r}")
        if request.headers.get("hx-request") == "true":
            return render(request, "review_card.html.j2", **_review_context(request, pos, platform or None))
        return back_to(f"/review?pos={pos}&platform={quote(platform)}")

    @app.get("/review/list", response_class=HTMLResponse, include_in_schema=False)
    def review_list(
        request: Request, page: Offset = 0, platform: str = "", user: Principal = Depends(page_user)
    ) -> Response:
        from crawler import review

        c = console_of(request)
        size = 50
        with c.db.session() as s:
            items = review.review_queue(s, platform=platform or None, limit=size, offset=max(page, 0) * size)
            total = waiting_count(s, platform or None, c.counts)
        return render(
            request,
            "review_list.html.j2",
            items=items,
            total=total,
            page=max(page, 0),
            size=size,
            platform=platform,
            reasons=review.REJECT_REASONS,
        )

    @app.post("/review/bulk", include_in_schema=False)
    async def review_bulk(request: Request, user: Principal = Depends(writer)) -> Response:
        from crawler import review

        form = await request.form()
        ids = [
            int(v)
            for v in form.getlist("ids")
            if isinstance(v, str) and v.isdigit() and 0 < int(v) <= DB_INT_MAX
        ][:BULK_LIMIT]
        decision = str(form.get("decision") or "")
        reason = str(form.get("reason") or "other")
        if form.get("confirm") != "yes":
            raise TertibError("bulk action not confirmed")
        if not ids:
            raise TertibError("no rows ticked")
        c = console_of(request)
        with c.db.session() as s:
            if decision == "approve":
                review.approve(s, ids, by=user.name, note="bulk")
            elif decision == "reject":
                review.reject(s, ids, by=user.name, reason=reason, note="bulk")
            else:
                raise TertibError(f"unknown decision {decision!r}")
        return back_to("/review/list?platform=" + quote(str(form.get("platform") or "")))

    @app.get("/blob/{sha}", include_in_schema=False)
    def blob(request: Request, sha: str, user: Principal = Depends(page_user)) -> Response:
        """A screenshot blob, only when a capture names it (the store holds nothing else we serve); from
        local disk or S3 (``storage.evidence_store``)."""
        if not SHA_RE.match(sha):
            raise NotFound("no such screenshot")
        c = console_of(request)
        with c.db.session() as s:
            known = s.scalar(select(Capture.id).where(Capture.screenshot_sha256 == sha).limit(1))
        if known is None:
            raise NotFound("no such screenshot")
        data = open_store(c.settings, check=False).blobs.get(sha)  # NotFound when the store lacks it
        kind = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
        return Response(data, media_type=kind)


# -- batches -----------------------------------------------------------------------------------


def _batch_dir(batch: TakedownBatch) -> Path | None:
    return Path(batch.out_dir) if batch.out_dir and Path(batch.out_dir).is_dir() else None


def _batch_routes(app: FastAPI) -> None:
    @app.get("/batches", response_class=HTMLResponse, include_in_schema=False)
    def batches(request: Request, user: Principal = Depends(page_user)) -> Response:
        from crawler.exports import service
        from crawler.review import latest_decisions_subquery

        c = console_of(request)
        with c.db.session() as s:
            summaries = list(reversed(service.list_batches(s)))
            latest = latest_decisions_subquery()
            exported = select(TakedownItem.listing_id)
            ready = s.scalar(
                select(func.count())
                .select_from(latest)
                .where(latest.c.decision == "approve", latest.c.listing_id.not_in(exported))
            )
        return render(request, "batches.html.j2", batches=summaries, ready=ready or 0)

    @app.post("/batches", include_in_schema=False)
    async def create(request: Request, user: Principal = Depends(writer)) -> Response:
        from crawler.exports import service

        form = await request.form()
        c = console_of(request)
        platforms = [str(p) for p in form.getlist("platforms") if p]
        result = service.create_batch(
            c.db, c.settings, name=str(form.get("name") or ""), platforms=platforms, actor=user.name
        )
        return back_to(f"/batches/{result.number}")

    @app.get("/batches/{number}", response_class=HTMLResponse, include_in_schema=False)
    def batch_page(request: Request, number: BatchRef, user: Principal = Depends(page_user)) -> Response:
        from crawler.exports import service

        c = console_of(request)
        with c.db.session() as s:
            batch = service.get_batch(s, number)
            summary = service.summarize(s, batch)
            out = _batch_dir(batch)
        files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) if out else []
        return render(
            request,
            "batch.html.j2",
            batch=summary,
            files=files,
            channels=service.CHANNELS,
            now=datetime.now(UTC),
        )

    @app.get("/batches/{number}/files/{name:path}", include_in_schema=False)
    def batch_file(
        request: Request, number: BatchRef, name: str, user: Principal = Depends(page_user)
    ) -> Response:
        from crawler.exports import service

        c = console_of(request)
        with c.db.session() as s:
            out = _batch_dir(service.get_batch(s, number))
        if out is None:
            raise NotFound("the batch directory is gone")
        path = (out / name).resolve()
        if not path.is_file() or out.resolve() not in path.parents:
            raise NotFound(f"no file {name} in batch {number}")
        return FileResponse(path, filename=path.name)

    @app.post("/batches/{number}/sent", include_in_schema=False)
    def mark_sent(
        request: Request,
        number: BatchRef,
        platform: str = Form(...),
        channel: str = Form(...),
        sent_at: str = Form(""),
        user: Principal = Depends(writer),
    ) -> Response:
        from crawler.exports import service

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


# -- audit -------------------------------------------------------------------------------------


def _audit_routes(app: FastAPI) -> None:
    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit_page(
        request: Request,
        batch: Annotated[str, Query(pattern=r"^[A-Za-z0-9-]{0,40}$")] = "",
        platform: str = "",
        user: Principal = Depends(page_user),
    ) -> Response:
        from crawler.audit import report as audit_report

        c = console_of(request)
        with c.db.session() as s:
            numbers = list(s.scalars(select(TakedownBatch.number).order_by(TakedownBatch.id.desc())))
            try:
                rep = audit_report.build_report(
                    s, batch=batch or None, platform=platform or None, recheck_days=c.settings.recheck_days
                )
            except NotFound:
                rep = None
        return render(request, "audit.html.j2", report=rep, numbers=numbers, batch=batch, platform=platform)

    @app.get("/audit/report.{fmt}", include_in_schema=False)
    def audit_download(
        request: Request, fmt: str, batch: str = "", platform: str = "", user: Principal = Depends(page_user)
    ) -> Response:
        from crawler.audit import report as audit_report

        if fmt not in audit_report.FORMATS:
            raise NotFound(f"no report format {fmt}")
        c = console_of(request)
        with c.db.session() as s:
            rep = audit_report.build_report(
                s, batch=batch or None, platform=platform or None, recheck_days=c.settings.recheck_days
            )
            body = audit_report.render(rep, fmt, c.tz, c.settings.registry)
        kinds = {"md": "text/markdown", "html": "text/html", "json": "application/json"}
        name = f"audit-{batch or 'all'}{'-' + platform if platform else ''}.{fmt}"
        return Response(
            body,
            media_type=f"{kinds[fmt]}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


# -- evidence ----------------------------------------------------------------------------------


def _evidence_routes(app: FastAPI) -> None:
    @app.get("/evidence", response_class=HTMLResponse, include_in_schema=False)
    def evidence_list(
        request: Request,
        listing: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
        user: Principal = Depends(page_user),
    ) -> Response:
        c = console_of(request)
        with c.db.session() as s:
            query = select(Capture, Listing.listing_key).outerjoin(
                Listing, Listing.listing_key == Capture.listing_key
            )
            if listing is not None:
                query = query.where(Listing.id == listing)
            rows = s.execute(query.order_by(Capture.id.desc()).limit(100)).all()
        return render(request, "evidence_list.html.j2", rows=rows)

    @app.get("/evidence/{capture_id}", response_class=HTMLResponse, include_in_schema=False)
    def evidence_page(request: Request, capture_id: Id, user: Principal = Depends(page_user)) -> Response:
        c = console_of(request)
        with c.db.session() as s:
            capture = s.get(Capture, capture_id)
            if capture is None:
                raise NotFound(f"no capture with id {capture_id}")
            listing = (
                s.scalars(select(Listing).where(Listing.listing_key == capture.listing_key)).first()
                if capture.listing_key
                else None
            )
        return render(request, "evidence.html.j2", capture=capture, listing=listing, result=None)

    @app.post("/evidence/{capture_id}/verify", include_in_schema=False)
    def verify_now(request: Request, capture_id: Id, user: Principal = Depends(writer)) -> Response:
        from crawler.evidence import verify

        c = console_of(request)
        result = verify.verify(c.db, c.settings, capture_ids=[capture_id], actor=user.name)
        return render(request, "verify_result.html.j2", result=result)

    @app.get("/evidence/{capture_id}/wacz", include_in_schema=False)
    def wacz(request: Request, capture_id: Id, user: Principal = Depends(page_user)) -> Response:
        import tempfile

        from starlette.background import BackgroundTask

        from crawler.evidence import bundle

        c = console_of(request)
        tmp = Path(tempfile.mkdtemp(prefix="tertib-wacz-"))
        out = bundle.write_wacz(
            c.db,
            c.settings,
            capture_ids=[capture_id],
            out=tmp / f"capture-{capture_id}.wacz",
            title=f"capture {capture_id}",
            actor=user.name,
        )

        def cleanup() -> None:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)

        return FileResponse(
            out, filename=out.name, media_type="application/wacz", background=BackgroundTask(cleanup)
        )


# -- terms -------------------------------------------------------------------------------------


def _terms_routes(app: FastAPI) -> None:
    @app.get("/terms", response_class=HTMLResponse, include_in_schema=False)
    def terms_page(request: Request, user: Principal = Depends(page_user)) -> Response:
        from crawler.terms import store

        c = console_of(request)
        with c.db.session() as s:
            active = store.list_terms(s, "active")
            proposed = store.list_terms(s, "proposed")
            precision = store.term_precision(s)
            keys = {
                k for t in proposed for k in (t.discovery or {}).get("examples", []) if isinstance(k, str)
            }
            examples = (
                {
                    row.listing_key: row
                    for row in s.scalars(select(Listing).where(Listing.listing_key.in_(keys)))
                }
                if keys
                else {}
            )
        return render(
            request, "terms.html.j2", active=active, proposed=proposed, precision=precision, examples=examples
        )

    @app.post("/terms/{term_id}/{action}", include_in_schema=False)
    def term_action(
        request: Request, term_id: Id, action: str, user: Principal = Depends(writer)
    ) -> Response:
        from crawler.terms import store

        c = console_of(request)
        with c.db.session() as s:
            if action == "approve":
                store.approve_term(s, term_id, actor=user.name)
            elif action == "reject":
                store.reject_term(s, term_id, actor=user.name)
            elif action == "retire":
                store.retire_term(s, term_id, actor=user.name)
            else:
                raise NotFound(f"no term action {action}")
        return back_to("/terms")


# -- sweeps and schedules ----------------------------------------------------------------------


def _run_job_in_background(c: Console, name: str) -> None:
    from scheduler.config import scheduler_settings
    from scheduler.jobs import JobRunner

    def work() -> None:
        try:
            JobRunner(c.db, c.settings, scheduler_settings(c.settings)).run(name)
        except Exception:  # the JobRun row records failures; this is only the thread's last word
            log.exception("run-now of %s failed", name)

    threading.Thread(target=work, name=f"run-now-{name}", daemon=True).start()


def _sweep_routes(app: FastAPI) -> None:
    @app.get("/sweeps", response_class=HTMLResponse, include_in_schema=False)
    def sweeps_page(request: Request, user: Principal = Depends(page_user)) -> Response:
        from scheduler import definitions as defs

        c = console_of(request)
        with c.db.session() as s:
            rows = defs.all_definitions(s)
            described = [(row, defs.summary(row)) for row in rows]
            jobs = list(
                s.scalars(select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(30))
            )
            runs = list(
                s.scalars(select(SweepRun).order_by(SweepRun.started_at.desc(), SweepRun.id.desc()).limit(30))
            )
        return render(request, "sweeps.html.j2", schedules=described, jobs=jobs, runs=runs)

    @app.post("/sweeps", include_in_schema=False)
    async def create_schedule(request: Request, user: Principal = Depends(writer)) -> Response:
        from scheduler import definitions as defs

        form = await request.form()
        c = console_of(request)
        with c.db.session() as s:
            row = defs.add(
                s,
                name=str(form.get("name") or "").strip(),
                cron=str(form.get("cron") or "").strip(),
                tz=c.settings.timezone,
                default_tz=c.settings.timezone,
                platforms=[str(p) for p in form.getlist("platforms") if p],
                max_pages=int(str(form.get("max_pages") or "2"))
                if str(form.get("max_pages") or "2").isdigit()
                else 0,
                actor=user.name,
                registry=c.settings.registry,
            )
            custody.append(
                s,
                actor=user.name,
                action="schedule_add",
                object_type="schedule",
                object_id=row.name,
                details={"schedule": row.schedule, "platforms": row.platforms},
            )
        return back_to("/sweeps")

    @app.post("/sweeps/{name}/{action}", include_in_schema=False)
    def schedule_action(
        request: Request, name: str, action: str, user: Principal = Depends(writer)
    ) -> Response:
        from scheduler import definitions as defs

        c = console_of(request)
        with c.db.session() as s:
            defs.get(s, name)
            if action in ("pause", "resume"):
                defs.set_paused(s, name, action == "pause")
            elif action != "run":
                raise NotFound(f"no schedule action {action}")
            custody.append(
                s, actor=user.name, action=f"schedule_{action}", object_type="schedule", object_id=name
            )
        if action == "run":
            _run_job_in_background(c, name)
        return back_to("/sweeps")


# -- sellers -----------------------------------------------------------------------------------


def _seller_routes(app: FastAPI) -> None:
    @app.get("/sellers", response_class=HTMLResponse, include_in_schema=False)
    def sellers_page(request: Request, user: Principal = Depends(page_user)) -> Response:
        from crawler.exports import offenders

        c = console_of(request)
        with c.db.session() as s:
            groups = offenders.offender_groups(s, threshold=2)
            counts = offenders.confirmed_counts(s)
            top = (
                list(
                    s.scalars(
                        select(Seller).where(Seller.id.in_(sorted(counts, key=lambda k: -counts[k])[:50]))
                    )
                )
                if counts
                else []
            )
        top.sort(key=lambda seller: -counts.get(seller.id, 0))
        return render(request, "sellers.html.j2", groups=groups, top=top, counts=counts)
