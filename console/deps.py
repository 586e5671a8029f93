"""What every route shares: the installation's state, the signed-in user, permissions, CSRF and rendering.

:class:`Console` lives on ``app.state.console`` (no module-level singletons); routes reach it with
:func:`console_of`. Pages depend on :func:`page_user` (any signed-in user) or on ``allowed(ACTION)`` (a
role that may take that action, see :data:`console.auth.PERMISSIONS`, plus the session's CSRF token);
:func:`render` fills a template with the words, the user, the CSRF token and the helpers every page uses.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, cast
from zoneinfo import ZoneInfo

from fastapi import Path as PathParam
from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer

from console import auth, i18n
from console.auth import Principal, SessionPolicy, SignedIn
from console.limiter import LoginLimiter, Network, Policy
from console.middleware import scope_client
from crawler.config import Settings
from crawler.review import QueueCounter, format_price
from storage.db import Database
from storage.models import AccessLogEntry

log = logging.getLogger(__name__)

DB_INT_MAX = 2**63 - 1  # ids beyond a bigint are refused by validation, not by the database
# the API's bound: the largest integer a JSON number (a double) carries exactly; 2**63 - 1 is not one, so a
# schema saying "maximum 9223372036854775807" lets clients send 2**63 + 1 as "valid" (schemathesis found it)
JSON_INT_MAX = 2**53 - 1
Id = Annotated[int, PathParam(ge=1, le=DB_INT_MAX)]
Offset = Annotated[int, Query(ge=0, le=10**9)]
# batch number (TTB-2026-0001) or id, ASCII only (str.isdigit() accepts "¹", which int() refuses)
BATCH_REF = r"^[A-Za-z0-9-]{1,40}$"
BatchRef = Annotated[str, PathParam(pattern=BATCH_REF)]
DEVICE_COOKIE = "tertib_device"
DEVICE_MAX_AGE = 365 * 86400


class LoginRequired(Exception):
    """Raised by :func:`page_user` when no valid session exists; answered with a redirect to /login."""


class Refused(Exception):
    """A write the caller may not make (role without the permission, or a bad CSRF token): 403."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass
class Console:
    """Everything a request handler needs, kept on ``app.state.console``."""

    settings: Settings
    db: Database
    templates: Jinja2Templates
    tz: ZoneInfo
    secure_cookies: bool
    limiter: LoginLimiter
    sessions: SessionPolicy
    account_policy: Policy
    client_policy: Policy
    devices: URLSafeTimedSerializer
    trusted_proxies: Sequence[Network] = ()
    counter: QueueCounter = field(default_factory=QueueCounter)


def console_of(request: Request) -> Console:
    return cast(Console, request.app.state.console)


def client_of(request: Request) -> str:
    """The client's address (the middleware worked it out, honouring only trusted proxies)."""
    known = request.scope.get("tertib_client")
    return str(known) if known else scope_client(request.scope, console_of(request).trusted_proxies)


def signed_in(request: Request) -> SignedIn | None:
    if "tertib_signed_in" not in request.scope:
        c = console_of(request)
        with c.db.session() as s:
            found = auth.resume_session(s, request.cookies.get(auth.SESSION_COOKIE), c.sessions)
        request.scope["tertib_signed_in"] = found
        request.scope["tertib_user"] = found.user if found else None
    return cast("SignedIn | None", request.scope["tertib_signed_in"])


def current_user(request: Request) -> Principal | None:
    found = signed_in(request)
    return found.user if found else None


def page_user(request: Request) -> Principal:
    user = current_user(request)
    if user is None:
        raise LoginRequired
    return user


async def csrf_checked(request: Request) -> None:
    """The request carries the session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf``)."""
    found = signed_in(request)
    given = request.headers.get("x-csrf-token")
    if not given:
        form = await request.form()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    if not auth.csrf_ok(found.csrf if found else None, given):
        raise Refused("csrf_failed")


def allowed(action: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: a signed-in user whose role may take ``action``, with the session's CSRF token."""
    if action not in auth.ACTIONS:
        raise ValueError(f"unknown action {action!r}")

    async def dependency(request: Request) -> Principal:
        user = page_user(request)
        await csrf_checked(request)
        if not user.may(action):
            raise Refused("forbidden")
        return user

    return dependency


def device_id(request: Request, user_id: int | None) -> str | None:
    """The device id of a browser that signed in to this account before (signed cookie), else None."""
    cookie = request.cookies.get(DEVICE_COOKIE)
    if not cookie or user_id is None:
        return None
    try:
        data = console_of(request).devices.loads(cookie, max_age=DEVICE_MAX_AGE)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != user_id or not isinstance(data.get("d"), str):
        return None
    return str(data["d"])


def record_access(
    request: Request,
    user: Principal,
    *,
    object_type: str,
    object_id: str,
    digest: str = "",
    size: int | None = None,
) -> None:
    """One access-log row for a download (reads are not custody events)."""
    c = console_of(request)
    with c.db.session() as s:
        s.add(
            AccessLogEntry(
                actor=user.name,
                action="download",
                object_type=object_type,
                object_id=object_id[:500],
                object_digest=digest,
                client=client_of(request)[:64],
                bytes=size,
            )
        )


def lang_of(request: Request) -> str:
    return i18n.pick_language(request.cookies.get("lang"))


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    c = console_of(request)
    lang = lang_of(request)
    found = signed_in(request)  # resolved already on pages; error pages resolve it here (for the header)
    base = {
        "request": request,
        "t": i18n.translator(lang),
        "v": i18n.value_translator(lang),
        "attention": lambda message: i18n.attention_text(str(message), lang),
        "lang": lang,
        "here_url": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "user": found.user if found else None,
        "csrf": found.csrf if found else "",
        "wib": lambda v: i18n.wib(v, c.tz),
        "rupiah": format_price,
        "partial": is_htmx(request),
        "platforms": c.settings.registry.names,
        "registry": c.settings.registry,
    }
    base.update(context)
    return c.templates.TemplateResponse(request, template, base, status_code=status_code)


def back_to(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def safe_next(target: str) -> str:
    """Only local paths: no scheme, no host, no protocol-relative ``//``."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and "hx-history-restore-request" not in request.headers
