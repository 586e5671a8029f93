"""Opening one listing's page, the same way for the sweep's detail fetches and for rechecks.

1. :func:`listing_request` — the request: the profile's own detail request (an API call or the product page),
   or, for platforms that need a browser, the listing page itself in the platform's browser context (one
   context per platform: a saved login carries over). Redirects are not followed for HTTP platforms (a
   redirect *is* the removal signal on some); the browser follows them (login walls redirect). Every
   request uses the platform's detail download slot (``<platform>:detail``), so detail fetches never queue
   behind searches.
2. :func:`read_listing_page` — what came back, as a :class:`ListingPage`: for a browser page, past the login
   wall (sandbox test account only, :func:`spiders.browser.browser_login`), the rendered page as the body,
   a full-page screenshot when asked, and the page closed whatever happens. A failing browser step is kept
   in ``error`` next to what was read before it, so each caller decides whether that still counts.

:meth:`ListingPage.check` classifies it with the profile's rules (:class:`crawler.items.CheckResult`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import scrapy
from scrapy.http import Response

from crawler.config import Settings
from crawler.evidence.exchange import Exchange
from crawler.items import CheckResult
from spiders.base import SiteProfile
from spiders.browser import browser_login, on_login_wall, playwright_meta

logger = logging.getLogger(__name__)

DETAIL_SLOT = ":detail"  # listing/detail fetches use the download slot "<platform>:detail"


def listing_request(
    profile: SiteProfile,
    settings: Settings,
    url: str,
    *,
    meta: dict[str, Any] | None = None,
    callback: Callable[..., Any] | None = None,
    errback: Callable[..., Any] | None = None,
    cb_kwargs: dict[str, Any] | None = None,
) -> scrapy.Request:
    """The request that opens the listing at ``url`` with its platform's own method (``meta`` is added)."""
    request_meta: dict[str, Any] = {
        "platform": profile.platform,
        "download_slot": profile.platform + DETAIL_SLOT,
        "handle_httpstatus_all": True,
        **(meta or {}),
    }
    if profile.needs_browser:
        request_meta.update(playwright_meta(profile))
        method, headers, body = "GET", None, None
    else:
        request_meta["dont_redirect"] = True
        spec = profile.detail_request(settings, url)
        url, method, headers, body = spec.url, spec.method, spec.headers or None, spec.body
    return scrapy.Request(
        url,
        method=method,
        headers=headers,
        body=body,
        meta=request_meta,
        callback=callback,
        errback=errback,
        cb_kwargs=cb_kwargs,
        dont_filter=True,
    )


@dataclass(slots=True)
class ListingPage:
    """One opened listing: the body the profile parses, where it ended up, and its evidence."""

    body: bytes | str
    url: str
    status: int
    headers: dict[str, str]
    exchange: Exchange  # the response as received (for a browser page: the document the page loaded)
    screenshot_png: bytes | None = None
    error: str | None = None  # a browser step (login, rendering, screenshot) that failed

    def check(self, profile: SiteProfile) -> CheckResult:
        """The profile's verdict on this page (LIVE / REMOVED / HIDDEN / UNOBSERVABLE, with its rule)."""
        return profile.parse_detail(self.body, url=self.url, status=self.status, headers=self.headers)


async def read_listing_page(
    response: Response, profile: SiteProfile, settings: Settings, target: str, *, screenshot: bool
) -> ListingPage:
    """Read the answer to :func:`listing_request` (``target``: the listing URL, to return to after a login).

    A browser page is always closed here.
    """
    exchange = Exchange.from_scrapy(response)
    page = ListingPage(
        body=response.body,
        url=response.url,
        status=response.status,
        headers=exchange.header_map(),
        exchange=exchange,
    )
    browser_page = response.meta.get("playwright_page")
    if browser_page is None:
        return page
    try:
        if on_login_wall(profile, browser_page.url) and await browser_login(
            browser_page, profile, settings, target
        ):
            page.body = await browser_page.content()
        page.url = browser_page.url
        if screenshot:
            page.screenshot_png = await browser_page.screenshot(full_page=True, type="png")
    except Exception as exc:  # the caller decides whether what was read before still counts
        page.error = f"{type(exc).__name__}: {exc}"
    finally:
        await browser_page.close()
    return page


__all__ = ["DETAIL_SLOT", "ListingPage", "listing_request", "read_listing_page"]
