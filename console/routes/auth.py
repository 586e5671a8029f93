"""Sign in, sign out and the language toggle.

Sign-in counts the attempt first (:mod:`console.limiter`: per account and client address, or per device
for a browser that signed in to this account before), then checks the password, then opens a server-side
session (:func:`console.auth.start_session`). A refused attempt answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
import secrets

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from console import auth, i18n
from console.auth import Principal
from console.deps import (
    DEVICE_COOKIE,
    DEVICE_MAX_AGE,
    back_to,
    client_of,
    console_of,
    csrf_checked,
    device_id,
    lang_of,
    page_user,
    render,
    safe_next,
    signed_in,
)
from console.limiter import Policy

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
MAX_NAME = 120
MAX_PASSWORD = 1024  # argon2 hashes anything, but nobody types a megabyte


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    return render(request, "login.html.j2", next=safe_next(next), error_key="", username="")


def _refused(request: Request, next: str, username: str, wait: float) -> Response:
    seconds = max(1, math.ceil(wait))
    t = i18n.translator(lang_of(request))
    response = render(
        request,
        "login.html.j2",
        status_code=429,
        next=safe_next(next),
        username=username,
        error_key="",
        error=t("login_wait", wait=i18n.duration(seconds, lang_of(request))),
    )
    response.headers["Retry-After"] = str(seconds)
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/")
) -> Response:
    c = console_of(request)
    name = username.strip()[:MAX_NAME]
    client = client_of(request)
    with c.db.session() as s:
        user_id = auth.user_id_for(s, name)
    device = device_id(request, user_id)
    # 1. count the attempt before looking at the password (atomic: parallel guesses cannot overtake it)
    keys: list[tuple[str, Policy]]
    if device is not None:
        keys = [(f"device:{device}", c.account_policy)]
    else:
        keys = [(f"account:{name.lower()}", c.account_policy), (f"client:{client}", c.client_policy)]
    wait = c.limiter.reserve(keys)
    if wait is not None:
        log.warning("sign-in for %r from %s refused for %.0f s (too many attempts)", name, client, wait)
        return _refused(request, next, name, wait)
    # 2. the password
    with c.db.session() as s:
        principal = auth.authenticate(s, name, password[:MAX_PASSWORD])
        if principal is None:
            return render(
                request,
                "login.html.j2",
                status_code=401,
                next=safe_next(next),
                username=name,
                error_key="login_failed",
            )
        # 3. the session
        token, _ = auth.start_session(
            s,
            principal,
            c.sessions,
            client=client,
            user_agent=request.headers.get("user-agent", ""),
        )
    c.limiter.clear(keys[0][0])
    response = back_to(safe_next(next))
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        max_age=int(c.sessions.absolute.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=c.secure_cookies,
        path="/",
    )
    response.set_cookie(
        DEVICE_COOKIE,
        c.devices.dumps({"u": principal.id, "d": device or secrets.token_urlsafe(16)}),
        max_age=DEVICE_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=c.secure_cookies,
        path="/login",
    )
    return response


@router.post("/logout")
async def logout(request: Request, user: Principal = Depends(page_user)) -> Response:
    await csrf_checked(request)
    found = signed_in(request)
    if found is not None:
        with console_of(request).db.session() as s:
            auth.end_session(s, found.id, "logout")
    response = back_to("/login")
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}")
def set_language(code: str, request: Request) -> Response:
    response = back_to(safe_next(request.query_params.get("next", "/")))
    response.set_cookie("lang", i18n.pick_language(code), max_age=365 * 86400, samesite="strict")
    return response
