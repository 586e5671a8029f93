"""Browser helpers shared by the sweep and recheck spiders (pages driven through scrapy-playwright).

:func:`browser_login` handles a login wall. Real platforms are never logged into automatically: an analyst
logs in once by hand with ``tertib browser login PLATFORM`` and the saved profile carries the session (a
login wall there means it expired, and the request is recorded as UNOBSERVABLE). Only the sandbox's
published test account (``SiteProfile.login``) is filled in automatically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crawler.config import Settings
from spiders.base import SiteProfile


def on_login_wall(profile: SiteProfile, url: str) -> bool:
    return profile.login is not None and profile.login.url_marker in url


async def browser_login(page: Any, profile: SiteProfile, settings: Settings, target: str) -> bool:
    """Log in on the sandbox's login page, then go back to ``target``; True when past the wall."""
    login = profile.login
    if login is None or not settings.sandbox_url:
        return False
    if login.url_marker not in page.url:
        await page.goto(settings.base_url(profile.hosts[0]) + login.login_path)
    await page.fill(login.user_field, login.sandbox_user)
    await page.fill(login.password_field, login.sandbox_password)
    await page.click(login.submit)
    await page.wait_for_url(lambda url: login.url_marker not in url, timeout=15_000)
    if target:
        await page.goto(target)
    return login.url_marker not in page.url


def playwright_meta(profile: SiteProfile, **extra: Any) -> dict[str, Any]:
    """Request meta for a page that needs the browser: one context per platform (shared cookies)."""
    return {
        "playwright": True,
        "playwright_include_page": True,
        "playwright_context": profile.platform,
        **extra,
    }


@dataclass(slots=True)
class BrowserExchange:
    """An HTTP exchange a browser page made itself (e.g. the signed search API call), as received.

    The page's own API responses are the wire-level evidence for browser platforms; the rendered DOM is
    not. The evidence pipeline turns this into a WARC request/response pair.
    """

    url: str
    method: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    status: int
    reason: str
    response_headers: list[tuple[str, str]]
    body: bytes
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    protocol: str = "HTTP/1.1"
    egress: str = ""  # the proxy the page's context went out through (crawler.proxies), or "direct"

    @classmethod
    async def from_playwright(cls, response: Any) -> BrowserExchange:
        request = response.request
        status = int(response.status)
        body = b"" if 300 <= status < 400 else await response.body()
        request_headers = [
            h for h in await request.headers_array() if h["name"].lower() != "proxy-authorization"
        ]
        response_headers = await response.headers_array()
        return cls(
            url=response.url,
            method=request.method,
            request_headers=[(h["name"], h["value"]) for h in request_headers],
            request_body=request.post_data_buffer or b"",
            status=status,
            reason=response.status_text or "",
            response_headers=[(h["name"], h["value"]) for h in response_headers],
            body=body,
        )
