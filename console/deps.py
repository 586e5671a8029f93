"""What every route shares: the installation's state, the logged-in user, CSRF checks and page rendering.

:class:`Console` lives on ``app.state.console`` (no module-level singletons); routes reach it with
:func:`console_of`. Pages depend on :func:`page_user` (any logged-in user) or :func:`writer` (a write
role plus the session's CSRF token); :func:`render` fills a template with the words, the user, the CSRF
token and the helpers every page uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, cast
from zoneinfo import ZoneInfo

from fastapi import Path as PathParam
from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from console import auth, i18n
from console.auth import Principal
from crawler.config import PLATFORMS, Settings
from crawler.review import QueueCounter, format_price
from storage.db import Database

DB_INT_MAX = 2**63 - 1  # ids beyond a bigint are refused by validation, not by the database
Id = Annotated[int, PathParam(ge=1, le=DB_INT_MAX)]
Offset = Annotated[int, Query(ge=0, le=10**9)]
# batch number (TTB-2026-0001) or id, ASCII only (str.isdigit() accepts "¹", which int() refuses)
BATCH_REF = r"^[A-Za-z0-9-]{1,40}$"
BatchRef = Annotated[str, PathParam(pattern=BATCH_REF)]


class LoginRequired(Exception):
    """Raised by :func:`page_user` when no valid session exists; answered with a redirect to /login."""


class Refused(Exception):
    """A write the caller may not make (read-only role or a bad CSRF token): 403."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass
class Console:
    """Everything a request handler needs, kept on ``app.state.console``."""

    settings: Settings
    db: Database
    codec: auth.SessionCodec
    throttle: auth.LoginThrottle
    templates: Jinja2Templates
    tz: ZoneInfo
    secure_cookies: bool
    counter: QueueCounter = field(default_factory=QueueCounter)


def console_of(request: Request) -> Console:
    return cast(Console, request.app.state.console)


def session_data(request: Request) -> dict[str, Any] | None:
    if "tertib_session_data" not in request.scope:
        request.scope["tertib_session_data"] = console_of(request).codec.load(
            request.cookies.get(auth.SESSION_COOKIE)
        )
    return cast("dict[str, Any] | None", request.scope["tertib_session_data"])


def current_user(request: Request) -> Principal | None:
    if "tertib_user" not in request.scope:
        c = console_of(request)
        with c.db.session() as s:
            request.scope["tertib_user"] = auth.principal_for_session(s, session_data(request))
    return cast("Principal | None", request.scope["tertib_user"])


def page_user(request: Request) -> Principal:
    user = current_user(request)
    if user is None:
        raise LoginRequired
    return user


async def csrf_checked(request: Request) -> None:
    """The request carries the session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf``)."""
    data = session_data(request) or {}
    given = request.headers.get("x-csrf-token")
    if not given:
        form = await request.form()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    if not auth.csrf_ok(data.get("csrf"), given):
        raise Refused("csrf_failed")


async def writer(request: Request) -> Principal:
    """A logged-in user with a write role whose request carries the session's CSRF token."""
    user = page_user(request)
    await csrf_checked(request)
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
        "rupiah": format_price,
        "partial": request.headers.get("hx-request") == "true",
        "platforms": PLATFORMS,
    }
    base.update(context)
    return c.templates.TemplateResponse(request, template, base, status_code=status_code)


def back_to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def safe_next(target: str) -> str:
    """Only local paths: no scheme, no host, no protocol-relative ``//``."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
