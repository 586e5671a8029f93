"""Downloader middlewares (wired in ``crawler/settings.py``).

- :class:`SandboxGuardMiddleware` (``SANDBOX_GUARD_ENABLED``): no spider request may reach a replica's
  control plane (``/_sandbox/*``: clock, truth, takedown intake). The guard raises ``IgnoreRequest`` and
  counts ``tertib/sandbox_guard/refused``; the sandbox also counts such hits per User-Agent, and the
  integration tests check both.
- :class:`RetryAfterMiddleware` (``RETRY_AFTER_MAX_DELAY``): a 429/503 with ``Retry-After`` pauses that
  request's download slot (one slot per platform) for the time asked, then retries — instead of
  Scrapy's immediate retry, which would only earn another 429. A wait longer than the maximum gives up
  and passes the response on, where the spider records the attempt as UNOBSERVABLE (``rate_limited``).
- :class:`ProxyMiddleware` (``TERTIB_PROXY_POOL``, built from the proxy settings; none → direct): gives every
  platform request its egress from :mod:`crawler.proxies` — ``meta["proxy"]`` for Scrapy's own downloader
  (``HttpProxyMiddleware`` at 750 turns credentials into ``Proxy-Authorization``), a sticky Playwright context
  with that proxy for browser pages — and names it in ``meta["tertib_egress"]`` for the evidence. Connection
  errors and HTTP-level refusals count against the proxy; the spider reports block pages it parses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import parsedate_to_datetime
from typing import Any, Self

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached

from crawler.proxies import ProxyError

logger = logging.getLogger(__name__)

SANDBOX_CONTROL_PREFIX = "/_sandbox/"


class SandboxGuardMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("SANDBOX_GUARD_ENABLED", True):
            raise NotConfigured
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        path = urlparse_cached(request).path or "/"
        if path.startswith(SANDBOX_CONTROL_PREFIX) or path == SANDBOX_CONTROL_PREFIX.rstrip("/"):
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("tertib/sandbox_guard/refused")
            logger.error("refused a request to the sandbox control plane: %s", request.url)
            raise IgnoreRequest(f"sandbox control plane is off limits for spiders: {request.url}")


def retry_after_seconds(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent/unreadable."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


class RetryAfterMiddleware:
    STATUSES = (429, 503)

    def __init__(self, crawler: Crawler, max_delay: float, max_times: int) -> None:
        self.crawler = crawler
        self.max_delay = max_delay
        self.max_times = max_times
        self._saved_delay: dict[str, float] = {}  # slot key -> its delay before a Retry-After pause

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(
            crawler,
            crawler.settings.getfloat("RETRY_AFTER_MAX_DELAY", 300.0),
            crawler.settings.getint("RETRY_TIMES", 3),
        )

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status not in self.STATUSES:
            return response
        wait = retry_after_seconds(response.headers.get(b"Retry-After"))
        if wait is None:
            return response  # Scrapy's RetryMiddleware retries plain 429/503 with its own backoff
        stats = self.crawler.stats
        assert stats is not None
        platform = request.meta.get("platform", "unknown")
        stats.inc_value(f"tertib/{platform}/retry_after")
        tries = request.meta.get("retry_after_times", 0) + 1
        if wait > self.max_delay or tries > self.max_times:
            logger.info("giving up %s after Retry-After %.1fs (try %d)", request.url, wait, tries)
            request.meta["dont_retry"] = True  # Scrapy's retry must not hammer on
            return response
        await self._pause_slot(request, wait)
        retry = request.replace(dont_filter=True, priority=request.priority - 1)
        retry.meta["retry_after_times"] = tries
        return retry

    async def _pause_slot(self, request: Request, wait: float) -> None:
        """Pace the platform's slot at one request per ``wait`` seconds until the wait is over."""
        engine: Any = self.crawler.engine
        downloader: Any = getattr(engine, "downloader", None)
        key = downloader.get_slot_key(request) if downloader is not None else None
        slot = downloader.slots.get(key) if downloader is not None and key is not None else None
        if slot is not None and key is not None:
            self._saved_delay.setdefault(key, slot.delay)  # Scrapy's Slot is a slotted dataclass
            slot.delay = max(slot.delay, wait)
            slot.lastseen = time.monotonic()
        await asyncio.sleep(wait)
        if slot is not None and key in self._saved_delay:
            slot.delay = self._saved_delay.pop(key)


# Answers that say "refused" whatever the body: counted against the proxy that carried them.
PROXY_REFUSALS = frozenset({403, 407, 429, 502, 503, 504})
# ... of which these are retried at once through another proxy (429 waits for Retry-After, 5xx go through
# Scrapy's retry, which also leaves through another proxy)
PROXY_RETRY_STATUSES = frozenset({403, 407})
PROXY_MAX_RETRIES = 2


class ProxyMiddleware:
    """Egress for platform requests (see :mod:`crawler.proxies`); order 740, before HttpProxyMiddleware.

    A request already carrying a ``proxy`` it did not get from here is left alone. A retried request
    (Scrapy's retry, the spider's polite block retries) gets a proxy again, so it leaves through another one
    when its first proxy failed. ``meta["tertib_judge"]`` says the spider judges the answer itself (search
    pages: a 200 captcha is a block only a parser sees), so only errors are reported here for those.
    """

    def __init__(self, crawler: Crawler, pool: Any) -> None:
        self.crawler = crawler
        self.pool = pool
        contexts = crawler.settings.getdict("PLAYWRIGHT_CONTEXTS")
        # logged-in profiles (tertib browser login): their context keeps its directory and its proxy
        self.profiles = {name: kw["user_data_dir"] for name, kw in contexts.items() if "user_data_dir" in kw}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        pool = crawler.settings.get("TERTIB_PROXY_POOL")
        if pool is None or not pool.configured:
            raise NotConfigured
        return cls(crawler, pool)

    def _stat(self, platform: str, key: str) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"tertib/{platform}/{key}")

    def process_request(self, request: Request) -> None:
        platform = request.meta.get("platform")
        if not platform or not self.pool.enabled(platform):
            request.meta.setdefault("tertib_egress", "direct")
            return
        if request.meta.get("proxy") and not request.meta.get("tertib_proxy"):
            return  # someone chose a proxy on purpose
        try:
            if request.meta.get("playwright"):
                keep = platform in self.profiles
                choice = self.pool.choose(platform, sticky="browser", keep=keep)
                kwargs: dict[str, Any] = {"proxy": dict(choice.playwright)}
                if keep:
                    kwargs["user_data_dir"] = self.profiles[platform]
                request.meta["playwright_context"] = f"{platform}@{choice.state.number}"
                request.meta["playwright_context_kwargs"] = kwargs
            else:
                previous = request.meta.get("tertib_proxy")
                choice = self.pool.choose(platform, avoid=previous[1] if previous else "")
                request.meta["proxy"] = choice.endpoint
        except ProxyError as exc:
            self._stat(platform, "proxy_unavailable")
            raise IgnoreRequest(str(exc)) from None
        request.meta["tertib_proxy"] = (platform, choice.label)
        request.meta["tertib_egress"] = choice.label

    def process_response(self, request: Request, response: Response) -> Request | Response:
        used = request.meta.get("tertib_proxy")
        if used and response.status in PROXY_REFUSALS:
            outcome = "error" if response.status == 407 else "block"
            self.pool.report(*used, outcome, f"HTTP {response.status}")
            retries = int(request.meta.get("tertib_proxy_retries", 0))
            if (
                response.status in PROXY_RETRY_STATUSES
                and not request.meta.get("playwright")  # a browser context moves on when its proxy rests
                and retries < min(PROXY_MAX_RETRIES, len(self.pool.pools.get(used[0], ())) - 1)
            ):
                self._stat(used[0], "proxy_retries")
                retry = request.replace(dont_filter=True)
                retry.meta["tertib_proxy_retries"] = retries + 1
                return retry
        elif used and not request.meta.get("tertib_judge") and response.status < 400:
            self.pool.report(*used, "ok")
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        used = request.meta.get("tertib_proxy")
        if used:
            self.pool.report(*used, "error", f"{type(exception).__name__}: {str(exception)[:120]}")
            self._stat(used[0], "proxy_errors")
