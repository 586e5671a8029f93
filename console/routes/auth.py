"""Sign in, sign out and the language toggle."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from console import auth, i18n
from console.auth import Principal
from console.deps import Refused, back_to, console_of, page_user, render, safe_next, session_data
from storage.models import User

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    return render(request, "login.html.j2", next=safe_next(next), error_key="")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/")
) -> Response:
    c = console_of(request)
    ip = request.client.host if request.client else "?"
    if c.throttle.blocked(username, ip):
        log.warning("login throttled for %r from %s", username, ip)
        return render(
            request, "login.html.j2", status_code=429, next=safe_next(next), error_key="login_throttled"
        )
    with c.db.session() as s:
        principal = auth.authenticate(s, username, password)
        user = s.get(User, principal.id) if principal else None
        cookie = c.codec.dump(user) if user else None
    if cookie is None:
        c.throttle.failed(username, ip)
        return render(
            request, "login.html.j2", status_code=401, next=safe_next(next), error_key="login_failed"
        )
    c.throttle.succeeded(username, ip)
    response = back_to(safe_next(next))
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


@router.post("/logout")
async def logout(request: Request, user: Principal = Depends(page_user)) -> Response:
    data = session_data(request) or {}
    form = await request.form()
    if not auth.csrf_ok(data.get("csrf"), str(form.get("csrf") or "")):
        raise Refused("csrf_failed")
    response = back_to("/login")
    response.delete_cookie(auth.SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}")
def set_language(code: str, request: Request) -> Response:
    response = back_to(safe_next(request.query_params.get("next", "/")))
    response.set_cookie("lang", i18n.pick_language(code), max_age=365 * 86400, samesite="strict")
    return response
