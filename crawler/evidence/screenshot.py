"""Full-page PNG screenshots with Debian's Chromium through Playwright, plus the page's main response.

``async with Screenshotter(settings, pages=2) as shots: png, exchange = await shots.capture(url)``

- The browser is ``Settings.chromium_path()`` (``TERTIB_CHROMIUM``, else auto-detected ``/usr/bin/chromium``),
  launched headless with the flags from stack-notes.md (no sandbox, no GPU, no QUIC, no background
  networking, no component updates, no sync) — never Playwright's downloaded browser.
- One browser context (locale ``id-ID``, time zone ``Settings.timezone``, service workers blocked) and a
  pool of ``pages`` reusable tabs: reusing a tab costs ~160 ms against ~400 ms for a new one. A tab is
  replaced after ``recycle_after`` captures so long runs do not grow memory.
- The returned :class:`~crawler.evidence.exchange.Exchange` is the main document's final response as
  Chromium received it: status, reason, the header list (``headers_array``), the request headers, and
  the body from ``response.body()`` — which Chromium has already decoded, so ``decoded=True`` and the
  recorder renames the encoding headers (see :mod:`crawler.evidence.capture`). Redirect hops are listed in
  ``redirects`` of :meth:`Screenshotter.capture_page` (the request URL chain).
- ``cookies`` (Playwright cookie dicts) are added to the context first: logged-in
  profiles pass their session cookies here.

- ``proxies`` (the run's :class:`crawler.proxies.ProxyPool`): a page of a platform with proxies is opened
  in a browser context going out through that platform's (sticky) proxy, one context per proxy, so the
  screenshot sees what the crawl saw from the same address; the exchange records the egress.

Settings: ``TERTIB_CHROMIUM``, ``TERTIB_TIMEZONE``; constructor: ``viewport``, ``pages``, ``timeout_ms``,
``max_height`` (very long pages are clipped to this many CSS pixels so one PNG stays bounded),
``recycle_after``. To capture something other than the main document (e.g. an XHR the page makes), wrap
:meth:`capture_page` and listen to ``page.on("response")``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from crawler.config import CHROMIUM_ARGS, Settings
from crawler.errors import TertibError
from crawler.evidence.exchange import Exchange

logger = logging.getLogger(__name__)


class BrowserUnavailable(TertibError):
    """Chromium is missing or would not start."""


class CaptureFailed(TertibError):
    """The page could not be loaded (network error, timeout, no document response)."""


@dataclass
class PageCapture:
    png: bytes
    exchange: Exchange
    redirects: list[str] = field(default_factory=list)
    title: str = ""


class Screenshotter:
    """Async context manager around one Chromium with a small pool of reusable tabs."""

    def __init__(
        self,
        settings: Settings,
        *,
        viewport: tuple[int, int] = (1280, 900),
        pages: int = 2,
        timeout_ms: int = 30_000,
        max_height: int = 12_000,
        recycle_after: int = 100,
        user_agent: str | None = None,
        proxies: Any = None,
    ) -> None:
        self.settings = settings
        self.viewport = viewport
        self.pages = max(1, pages)
        self.timeout_ms = timeout_ms
        self.max_height = max_height
        self.recycle_after = recycle_after
        self.user_agent = user_agent
        self._pw: Any = None
        self._browser: Any = None
        self._context: Any = None
        self._pool: asyncio.Queue[tuple[Any, int]] | None = None
        self.proxies = proxies if proxies is not None and proxies.configured else None
        # proxy label -> (its context, its tab pool): contexts through a proxy, made when first needed
        self._proxied: dict[str, tuple[Any, asyncio.Queue[tuple[Any, int]]]] = {}

    async def __aenter__(self) -> Screenshotter:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import async_playwright

        path = self.settings.chromium_path()
        if path is None:
            raise BrowserUnavailable("no Chromium found; install Debian's chromium or set TERTIB_CHROMIUM")
        self._pw = await async_playwright().start()
        try:
            self._browser = await self._pw.chromium.launch(
                executable_path=path, args=list(CHROMIUM_ARGS), headless=True
            )
        except PlaywrightError as exc:
            await self._pw.stop()
            raise BrowserUnavailable(
                f"Chromium at {path} did not start: {str(exc).splitlines()[0]}"
            ) from None
        self._context, self._pool = await self._new_context()
        return self

    async def _new_context(self, proxy: dict[str, str] | None = None) -> tuple[Any, asyncio.Queue[Any]]:
        context = await self._browser.new_context(
            viewport={"width": self.viewport[0], "height": self.viewport[1]},
            locale="id-ID",
            timezone_id=self.settings.timezone,
            service_workers="block",
            user_agent=self.user_agent,
            **({"proxy": proxy} if proxy else {}),
        )
        pool: asyncio.Queue[tuple[Any, int]] = asyncio.Queue()
        for _ in range(self.pages):
            pool.put_nowait((await context.new_page(), 0))
        return context, pool

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for context, _pool in self._proxied.values():
            await context.close()
        self._proxied.clear()
        if self._context is not None:
            await self._context.close()
        if self._browser is not None:
            await self._browser.close()
        if self._pw is not None:
            await self._pw.stop()
        self._context = self._browser = self._pw = self._pool = None

    async def capture(
        self, url: str, *, cookies: list[dict[str, Any]] | None = None, platform: str | None = None
    ) -> tuple[bytes, Exchange]:
        """Full-page PNG and the main document's response (the interface the pipeline uses)."""
        result = await self.capture_page(url, cookies=cookies, platform=platform)
        return result.png, result.exchange

    async def _context_for(self, platform: str | None) -> tuple[Any, asyncio.Queue[Any], str]:
        """The context (and tabs) a page of ``platform`` is opened in, and its egress label."""
        assert self._context is not None and self._pool is not None
        if self.proxies is None or not platform or not self.proxies.enabled(platform):
            return self._context, self._pool, "direct" if self.proxies is not None else ""
        choice = self.proxies.choose(platform, sticky="screenshot")
        if choice.label not in self._proxied:
            self._proxied[choice.label] = await self._new_context(choice.playwright)
        context, pool = self._proxied[choice.label]
        return context, pool, choice.label

    async def capture_page(
        self, url: str, *, cookies: list[dict[str, Any]] | None = None, platform: str | None = None
    ) -> PageCapture:
        from playwright.async_api import Error as PlaywrightError

        if self._pool is None or self._context is None:
            raise RuntimeError("use `async with Screenshotter(...)` before capture()")
        context, tabs, egress = await self._context_for(platform)
        if cookies:
            await context.add_cookies(cookies)
        page, uses = await tabs.get()
        try:
            if uses >= self.recycle_after:
                await page.close()
                page, uses = await context.new_page(), 0
            try:
                response = await page.goto(url, wait_until="load", timeout=self.timeout_ms)
                fetched_at = datetime.now(UTC)
                if response is None:
                    raise CaptureFailed(f"no document response for {url}")
                exchange = await Exchange.from_playwright(response, fetched_at=fetched_at, egress=egress)
                png = await self._screenshot(page)
                title = await page.title()
            except PlaywrightError as exc:
                if self.proxies is not None and platform and egress not in ("", "direct"):
                    self.proxies.report(platform, egress, "error", str(exc).splitlines()[0][:160])
                raise CaptureFailed(f"could not capture {url}: {str(exc).splitlines()[0]}") from None
            redirects: list[str] = []
            hop = response.request.redirected_from
            while hop is not None:
                redirects.insert(0, hop.url)
                hop = hop.redirected_from
            return PageCapture(png=png, exchange=exchange, redirects=redirects, title=title)
        finally:
            tabs.put_nowait((page, uses + 1))

    async def _screenshot(self, page: Any) -> bytes:
        height = await page.evaluate("() => document.documentElement.scrollHeight")
        if isinstance(height, int | float) and height > self.max_height:
            clip = {"x": 0, "y": 0, "width": self.viewport[0], "height": self.max_height}
            return bytes(await page.screenshot(type="png", full_page=True, clip=clip, animations="disabled"))
        return bytes(await page.screenshot(type="png", full_page=True, animations="disabled"))
