"""The web console: a FastAPI app of server-rendered pages (Jinja2 + HTMX) over the core services.

:func:`create_app` builds one app for one installation (``Settings`` + ``Database``) from one router per
area (:mod:`console.routes`): sign-in, dashboard, review, batches, audit, evidence, terms, sweeps and
schedules, sellers, and the JSON API. Routes hold no SQL: they call the same service functions the CLI
calls — ``crawler.review``, ``crawler.exports.service``, ``crawler.audit``, ``crawler.evidence``,
``crawler.terms.store``, ``scheduler.definitions``/``scheduler.jobs``, ``crawler.exports.offenders`` and
``storage.repositories`` — and those services write the custody log, with the logged-in user as actor.

Security (the checklist is in ``docs/console.md``): server-side sessions (:mod:`console.auth`) behind an
HttpOnly SameSite=Strict cookie; a session-bound CSRF token on every POST (form field ``csrf`` or header
``X-CSRF-Token``, which ``static/console.js`` adds to HTMX requests); permissions per role (pages render
only the actions a user may take; routes answer 403 otherwise); sign-in limits that hold under
concurrency (:mod:`console.limiter`); every template autoescaped; CSP without inline script,
``frame-ancestors 'none'``, nosniff, no referrer (:mod:`console.middleware`, which also writes the HTTP
access log).

Settings: ``timezone`` (WIB display), ``blob_dir`` (screenshots), ``exports_dir`` (batch output),
``keys_dir`` (signing key, console secret), ``recheck_days`` (audit rounds). ``secure_cookies`` (argument)
adds the ``Secure`` flag when the console sits behind HTTPS.

To add a page: add a router module under ``console/routes/`` whose handlers take
``user: Principal = Depends(page_user)`` (or ``Depends(writer)`` for POSTs), call the service function and
render ``templates/<page>.html.j2`` with :func:`console.deps.render`; include the router below, add its key
to the nav in ``base.html.j2`` and its words to :mod:`console.i18n`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import URLSafeTimedSerializer
from starlette.exceptions import HTTPException as StarletteHTTPException

from console import auth, i18n
from console.auth import SessionPolicy
from console.deps import Console, LoginRequired, Refused, back_to, lang_of, render
from console.limiter import LoginLimiter, Policy, parse_networks
from console.middleware import ConsoleMiddleware
from console.routes import api, audit, batches, dashboard, evidence, model, review, sellers, sweeps, terms
from console.routes import auth as auth_routes
from console.views import highlight, json_text
from crawler.config import ConfigError, Settings
from crawler.errors import NotFound, TertibError, UsageError
from crawler.hostile import html_environment
from storage.db import Database

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
ROUTERS = (
    auth_routes.router,
    dashboard.router,
    review.router,
    batches.router,
    audit.router,
    evidence.router,
    terms.router,
    sweeps.router,
    sellers.router,
    model.router,
    api.router,
)


def create_app(
    settings: Settings,
    db: Database,
    *,
    secure_cookies: bool = False,
    trusted_proxies: Sequence[str] = (),
    analyze: bool = True,
) -> FastAPI:
    """The console app for one installation; ``db`` must be migrated (``Database.migrate``).

    ``trusted_proxies``: addresses or CIDR blocks of reverse proxies whose ``X-Forwarded-For`` names the
    client (``tertib serve --trusted-proxy``); ``secure_cookies`` marks cookies ``Secure`` (behind HTTPS).
    """
    for name in (
        "console_idle_minutes",
        "console_session_hours",
        "console_login_free",
        "console_client_free",
    ):
        if getattr(settings, name) < 1:
            raise ConfigError(f"setting {name!r} must be at least 1")
    try:
        trusted = parse_networks(trusted_proxies)
    except ValueError as exc:
        raise UsageError(f"--trusted-proxy: {exc}") from None
    app = FastAPI(
        title="tertib console API",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    # autoescape on for every template whatever its name (crawler.hostile.html_environment)
    env = html_environment(HERE / "templates")
    # tojson returns Markup that is safe only inside single-quoted attributes; json_text is plain text
    del env.filters["tojson"]
    env.filters["json_text"] = json_text
    env.globals["highlight"] = highlight
    templates = Jinja2Templates(env=env)
    app.state.console = Console(
        settings=settings,
        db=db,
        templates=templates,
        tz=ZoneInfo(settings.timezone),
        secure_cookies=secure_cookies,
        limiter=LoginLimiter(db),
        sessions=SessionPolicy(
            idle=timedelta(minutes=settings.console_idle_minutes),
            absolute=timedelta(hours=settings.console_session_hours),
        ),
        account_policy=Policy(
            free=settings.console_login_free,
            base=settings.console_login_backoff,
            cap=settings.console_login_backoff_max,
        ),
        client_policy=Policy(
            free=settings.console_client_free,
            base=settings.console_login_backoff,
            cap=settings.console_login_backoff_max,
        ),
        devices=URLSafeTimedSerializer(auth.secret_key(settings.keys_dir), salt="tertib-console-device"),
        trusted_proxies=trusted,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    if analyze:
        db.analyze()  # planner statistics: the review queue at 1M listings goes from ~450 ms to ~13 ms

    app.add_middleware(ConsoleMiddleware, trusted=lambda: app.state.console.trusted_proxies)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if request.headers.get("hx-request") == "true":
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return back_to(f"/login?next={quote(target)}")

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> Response:
        return render(request, "error.html.j2", status_code=403, message_key=exc.key)

    @app.exception_handler(TertibError)
    async def _user_error(request: Request, exc: TertibError) -> Response:
        status = 404 if isinstance(exc, NotFound) else 400
        if request.url.path.startswith("/api/"):
            # the body passed the schema, so what the service refused is the state of the data (nothing
            # to export, a term that is not proposed …): 409 Conflict
            return JSONResponse({"detail": str(exc)}, status_code=404 if status == 404 else 409)
        return render(
            request,
            "error.html.j2",
            status_code=status,
            heading_key="not_found" if status == 404 else "error",
            message=i18n.error_text(str(exc), lang_of(request)),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        if request.url.path.startswith("/api/"):
            return await request_validation_exception_handler(request, exc)
        # a page: a friendly message naming the fields, never the raw validation dump (which echoes input)
        fields = sorted({str(e["loc"][-1]) for e in exc.errors() if e.get("loc")})
        return render(request, "error.html.j2", status_code=422, message_key="invalid_input", fields=fields)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> Response:
        # a numeric reference beyond the database's integer range (services resolve "123" as an id)
        return await _user_error(request, TertibError("number out of range"))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        key = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return render(request, "error.html.j2", status_code=exc.status_code, heading_key=key)

    for router in ROUTERS:
        app.include_router(router)
    app.openapi = api.platform_openapi(app, settings.registry.names)  # type: ignore[method-assign]
    return app
