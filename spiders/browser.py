"""Browser helpers shared by the sweep and recheck spiders (pages driven through scrapy-playwright).

:func:`on_login_wall` / :func:`browser_login` handle a login wall (searches in :mod:`spiders.sweep`, listing
pages in :mod:`spiders.pages`); :func:`playwright_meta` puts a request in its platform's browser context. The
responses a page receives become :class:`crawler.evidence.exchange.Exchange` objects
(``Exchange.from_playwright``) like every other response.

Real platforms are never logged into automatically: an analyst logs in once by hand with ``tertib browser
login PLATFORM`` and the saved profile carries the session (a login wall there means it expired, and the
request is recorded as UNOBSERVABLE). Only the sandbox's published test account (``SiteProfile.login``) is
filled in automatically.
"""

from __future__ import annotations

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
        await page.goto(settings.base_url(profile.main_host) + login.login_path)
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
