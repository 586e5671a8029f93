"""Downloader middlewares (wired in ``crawler/settings.py``).

- :class:`SandboxGuardMiddleware` (``SANDBOX_GUARD_ENABLED``): no spider request may reach a replica's
  control plane (``/_sandbox/*``: clock, truth, takedown intake). The guard raises ``IgnoreRequest`` and
  counts ``tertib/sandbox_guard/refused``; the sandbox also counts such hits per User-Agent, and the
  integration tests check both.
- :class:`RetryAfterMiddleware` (``RETRY_AFTER_MAX_DELAY``): a 429/503 with ``Retry-After`` pauses that
  request's download slot (one slot per platform) for the time asked, then retries — instead of
  Scrapy's immediate retry, which would only earn another 429. A wait longer than the maximum gives up
  and passes the response on, where the spider records the attempt as UNOBSERVABLE (``rate_limited``).
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
