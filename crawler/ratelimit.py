"""A per-platform request rate that holds across every worker of a distributed sweep.

Each worker's crawl paces its own requests (download slots, AutoThrottle), but N workers would be N times
as fast against a platform: politeness must not multiply with machines. The database is the coordinator:
``rate_slots`` keeps each platform's next free request time, and :class:`SharedRateLimitMiddleware` reserves
one slot per request with one ``UPDATE … RETURNING`` (the row lock serialises concurrent reservations; the
database clock is the only clock, so machines' clock skew does not matter), then waits until its slot.

``SHARED_RATE_INTERVALS`` (platform → seconds between two requests, all workers together) switches it on;
``tertib sweep --distributed`` sets it for its jobs (``crawler.distributed.rate_intervals``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Self

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from sqlalchemy import text

from storage.db import Database

_RESERVE = {
    "postgresql": text(
        "INSERT INTO rate_slots (platform, next_at) "
        "VALUES (:p, clock_timestamp() + make_interval(secs => :i)) "
        "ON CONFLICT (platform) DO UPDATE SET next_at = "
        "GREATEST(rate_slots.next_at, clock_timestamp()) + make_interval(secs => :i) "
        "RETURNING EXTRACT(EPOCH FROM (next_at - make_interval(secs => :i) - clock_timestamp()))"
    ),
}


def reserve(db: Database, platform: str, interval: float) -> float:
    """Reserve the platform's next request slot; seconds to wait until it (0 when it is free now)."""
    statement = _RESERVE.get(db.engine.dialect.name)
    if statement is None:  # SQLite: one machine, one process; its download slots already pace it
        return 0.0
    with db.engine.begin() as conn:  # Core, not a Session: reserving a slot commits nothing of the crawl
        wait = conn.execute(statement, {"p": platform, "i": float(interval)}).scalar()
    return max(0.0, float(wait or 0.0))


class SharedRateLimitMiddleware:
    def __init__(self, db: Database, intervals: dict[str, float]) -> None:
        self.db = db
        self.intervals = intervals

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        intervals = {str(k): float(v) for k, v in crawler.settings.getdict("SHARED_RATE_INTERVALS").items()}
        intervals = {k: v for k, v in intervals.items() if v > 0}
        if not intervals:
            raise NotConfigured
        middleware = cls(Database(crawler.settings["TERTIB_SETTINGS"].db_url), intervals)
        crawler.signals.connect(middleware.spider_closed, signal="spider_closed")
        return middleware

    def spider_closed(self, spider: Any = None) -> None:
        self.db.dispose()

    async def process_request(self, request: Any, spider: Any = None) -> None:
        platform = request.meta.get("platform")
        interval = self.intervals.get(platform) if platform else None
        if interval:
            wait = await asyncio.to_thread(reserve, self.db, platform, interval)
            if wait > 0:
                await asyncio.sleep(wait)
        return None


__all__ = ["SharedRateLimitMiddleware", "reserve"]
