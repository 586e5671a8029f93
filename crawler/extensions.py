"""Crawl extensions: sweep health checks and the Rich progress display.

:class:`SweepHealth` turns the per-platform counters (``tertib/<platform>/<counter>`` in the Scrapy stats)
into the run record, Spidermon-style: a platform that returned no listings for any query, whose responses
stopped matching the profile's JSON paths, or that was mostly blocked is flagged as *needs attention* in
the run summary instead of being reported as clean. A shape change is told apart from a block: a block page
(captcha, login wall, 403/429 …) never reaches the shape check, an empty result list is not a change, and
the message names the paths that went missing (``SearchPage.missing_paths``, collected by the spider in
``shape_changes`` and stored in ``SweepRun.stats["shape_changes"]``); ``tertib sweep --strict`` exits
non-zero on any of these. It also stores the platforms' related-keyword
suggestions for discovery. Thresholds: ``HEALTH_MAX_BLOCKED_SHARE`` (0.5).

:class:`SweepProgress` (``TERTIB_PROGRESS``) shows one Rich progress line per platform.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Self

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from storage import repositories as repo
from storage.db import Database

COUNTERS = (
    "requests",
    "responses",
    "listings",
    "candidates",
    "captures",
    "blocked",
    "unobservable",
    "errors",
    "query_blocked",
    "shape_mismatch",
    "empty_pages",
    "retry_after",
    "live",
    "removed",
    "hidden",
    "item_errors",
    "block_retries",
    "detail_unobservable",
    "evidence_unobservable",
)


def platform_stats(stats: dict[str, Any], platforms: list[str]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for platform in platforms:
        prefix = f"tertib/{platform}/"
        out[platform] = {name: int(stats.get(prefix + name, 0)) for name in COUNTERS}
    return out


SHAPE_CHANGED = "shape changed"  # the words health messages (and readers such as the console) use
MAX_PATHS_SHOWN = 4


def shape_message(platform: str, answers: int, responses: float, missing: dict[str, int] | None) -> str:
    """``PLATFORM: shape changed — 3 of 5 answers no longer match its profile; missing: a.b (3)``."""
    paths = sorted((missing or {}).items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{path} ({count})" for path, count in paths[:MAX_PATHS_SHOWN])
    more = f" and {len(paths) - MAX_PATHS_SHOWN} more" if len(paths) > MAX_PATHS_SHOWN else ""
    return f"{platform}: {SHAPE_CHANGED} — {answers} of {responses:g} answers no longer match its profile" + (
        f"; missing: {shown}{more}" if shown else ""
    )


def health_checks(
    per_platform: dict[str, dict[str, float]],
    queries: int,
    max_blocked_share: float = 0.5,
    shape_changes: dict[str, dict[str, int]] | None = None,
) -> list[str]:
    """Messages for platforms whose results cannot be trusted as "clean"."""
    problems: list[str] = []
    for platform, counts in per_platform.items():
        responses = counts["responses"]
        if counts["shape_mismatch"]:
            problems.append(
                shape_message(
                    platform,
                    int(counts["shape_mismatch"]),
                    responses,
                    (shape_changes or {}).get(platform),
                )
            )
        # blocks a polite retry got past are normal; only final UNOBSERVABLE attempts cost coverage
        searches = responses - counts.get("block_retries", 0)  # polite retries are not new searches
        if searches > 0 and counts["unobservable"] / searches > max_blocked_share:
            problems.append(
                f"{platform}: {counts['unobservable']} of {searches:g} searches stayed blocked after retries"
            )
        if queries and counts["listings"] == 0 and counts["query_blocked"] < queries:
            problems.append(f"{platform}: no listings for any query — blocked, broken, or changed; not clean")
        if counts["requests"] and not responses:
            problems.append(f"{platform}: {counts['errors']} errors and no readable response")
        gaps = evidence_gaps(counts)
        if gaps:
            problems.append(f"{platform}: evidence could not be taken for {gaps} candidate(s)")
        if counts.get("detail_unobservable"):
            problems.append(
                f"{platform}: {counts['detail_unobservable']:g} listing pages stayed blocked or failed; those"
                " listings are scored on their search result only (candidates may be missed)"
            )
    return problems


def evidence_gaps(counts: dict[str, float]) -> int:
    """Candidates without an observable capture: blocked pages, or captures never committed."""
    missing = max(0, int(counts.get("candidates", 0)) - int(counts.get("captures", 0)))
    return missing + int(counts.get("evidence_unobservable", 0))


class SweepHealth:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.started = time.monotonic()
        self.platform_started: dict[str, float] = {}
        self.platform_last: dict[str, float] = {}
        self.result: dict[str, Any] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.request_scheduled, signal=signals.request_scheduled)
        crawler.signals.connect(ext.response_received, signal=signals.response_received)
        crawler.signals.connect(ext.item_error, signal=signals.item_error)
        crawler._tertib_health = ext  # type: ignore[attr-defined]
        return ext

    def request_scheduled(self, request: Any, spider: Any = None) -> None:
        platform = request.meta.get("platform")
        if platform and platform not in self.platform_started:
            self.platform_started[platform] = time.monotonic()

    def response_received(self, response: Any, request: Any, spider: Any = None) -> None:
        platform = request.meta.get("platform")
        if platform:
            self.platform_last[platform] = time.monotonic()

    def item_error(self, item: Any, response: Any = None, spider: Any = None, failure: Any = None) -> None:
        """A pipeline failed on an item: its evidence or ledger row may be missing, so the run cannot pass."""
        platform = getattr(item, "platform", None)
        target: Any = getattr(item, "target", None)  # recheck observations carry their target dict
        if platform is None and hasattr(target, "get"):
            platform = target.get("platform")
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"tertib/{platform or 'unknown'}/item_errors")
        self.crawler.stats.inc_value("tertib/item_errors")

    def spider_closed(self, spider: Any, reason: str) -> None:
        assert self.crawler.stats is not None
        stats = self.crawler.stats.get_stats()
        platforms = list(getattr(spider, "platforms", []))
        per_platform = platform_stats(stats, platforms)
        now = time.monotonic()
        for platform, counts in per_platform.items():
            started = self.platform_started.get(platform, now)
            counts["duration_s"] = round(self.platform_last.get(platform, now) - started, 1)
        shape_changes = {p: dict(paths) for p, paths in getattr(spider, "shape_changes", {}).items() if paths}
        attention = health_checks(
            per_platform,
            len(getattr(spider, "queries", [])),
            self.crawler.settings.getfloat("HEALTH_MAX_BLOCKED_SHARE", 0.5),
            shape_changes,
        )
        if stats.get("tertib/sandbox_guard/refused"):
            attention.append(f"sandbox guard refused {stats['tertib/sandbox_guard/refused']} requests")
        # egress: each proxy's state (active, cooling, retired) and why a retired one was retired
        pool = self.crawler.settings.get("TERTIB_PROXY_POOL")
        proxies = pool.snapshot() if pool is not None else []
        if pool is not None:
            attention.extend(pool.health_messages())
        item_errors = int(stats.get("tertib/item_errors", 0))
        if item_errors:
            attention.append(f"{item_errors} items failed in the pipelines (not stored); see the log")
        requests = sum(int(c["requests"]) for c in per_platform.values())
        responses = sum(int(c["responses"]) for c in per_platform.values())
        if platforms and not responses:
            # a sweep that fetched nothing (site down, refused, no browser) is a failure, never a pass
            attention.append(
                f"nothing was fetched: {requests} requests, no readable response from any platform"
            )
        gaps = sum(evidence_gaps(c) for c in per_platform.values())
        status = "completed" if reason == "finished" and not item_errors else "failed"
        if reason == "shutdown":
            status = "interrupted"  # SIGTERM/SIGINT (crawler.sweep.StopOnSignal)
        elif platforms and not responses:
            status = "failed"
        if status == "completed" and attention:
            status = "partial"
        related = {p: sorted(t) for p, t in getattr(spider, "related_terms", {}).items() if t}
        self.result = {
            "status": status,
            "reason": reason,
            "duration_s": round(now - self.started, 1),
            "platforms": per_platform,
            "needs_attention": attention,
            "related_terms": related,
            "shape_changes": shape_changes,
            "proxies": proxies,
        }
        run_id = self.crawler.settings.get("TERTIB_RUN_ID")
        if run_id is not None:
            db = Database(self.crawler.settings["TERTIB_SETTINGS"].db_url)
            try:
                with db.session() as session:
                    repo.finish_run(
                        session,
                        int(run_id),
                        status=status,
                        stats={
                            "platforms": per_platform,
                            "related_terms": related,
                            "shape_changes": shape_changes,
                            "proxies": proxies,
                            "duration_s": self.result["duration_s"],
                            "reason": reason,
                            "evidence_gaps": gaps,
                        },
                        needs_attention=attention,
                    )
            finally:
                db.dispose()


class SweepProgress:
    """One Rich progress row per platform: responses, listings, candidates, blocked."""

    def __init__(self, crawler: Crawler) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.crawler = crawler
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[platform]:<9}"),
            TextColumn("{task.fields[line]}"),
            TimeElapsedColumn(),
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("TERTIB_PROGRESS", False):
            raise NotConfigured
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(ext.response_received, signal=signals.response_received)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        return ext

    def spider_opened(self, spider: Any) -> None:
        for platform in getattr(spider, "platforms", []):
            self.tasks[platform] = self.progress.add_task("", total=None, platform=platform, line="starting")
        self.progress.start()

    def spider_closed(self, spider: Any, reason: str) -> None:
        self._refresh_all()
        self.progress.stop()

    def response_received(self, response: Any, request: Any, spider: Any = None) -> None:
        platform = request.meta.get("platform")
        if platform in self.tasks:
            self.counts[platform]["responses"] += 1
            self._refresh(platform)

    def item_scraped(self, item: Any, response: Any = None, spider: Any = None) -> None:
        platform = getattr(item, "platform", None)
        if platform in self.tasks:
            kind = type(item).__name__
            self.counts[platform][kind] += 1
            self._refresh(platform)

    def _refresh_all(self) -> None:
        for platform in self.tasks:
            self._refresh(platform)

    def _refresh(self, platform: str) -> None:
        assert self.crawler.stats is not None
        stats = self.crawler.stats
        c = self.counts[platform]

        def s(name: str) -> int:
            return int(stats.get_value(f"tertib/{platform}/{name}", 0))

        line = (
            f"{s('responses'):>4} pages {c['Listing']:>5} listings {s('candidates'):>4} cand "
            f"{s('captures'):>4} ev {s('blocked'):>3} blk {s('errors'):>2} err"
        )
        self.progress.update(self.tasks[platform], line=line)
