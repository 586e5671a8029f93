"""The background corpus of emerging-term discovery: ordinary clothing listings to contrast candidates with.

A phrase is only news if sellers of illegal bales use it more than ordinary sellers do. What a lexicon search
happens to drag in besides candidates is small and skewed, so discovery compares candidates with listings
found by a few generic clothing queries (``kemeja``, ``kaos``, ``jaket`` …; setting
``discovery_background_queries``), crawled on the platforms with a plain-HTTP search
(``discovery_background_platforms``) and cached in ``background_docs``.

Steps of :func:`refresh_background` (numbered the same in the body):

1. Resolve the platforms (HTTP keyword search only) and the queries from the settings.
2. Open a ``SweepRun`` of kind ``background``.
3. Crawl: the sweep spider over every platform and query (``discovery_background_pages`` pages); the
   :class:`BackgroundPipeline` keeps each listing's text and opens the first ``discovery_background_details``
   listing pages per query and platform for their descriptions. ``SweepHealth`` closes the run with
   per-platform counts (blocked, errors …) as for any sweep.
4. Store the documents; a platform that answered replaces its older documents, one that was blocked keeps
   them (an old background beats none).

:func:`ensure_background` refreshes in a subprocess (a Twisted reactor cannot restart) when the stored
background is missing or older than ``discovery_background_max_age_days``; the sweep's discovery follow-up
calls it, and the scheduler's built-in ``background`` job refreshes it weekly. :func:`load_background` reads
the documents with a one-line status (which platforms, how old, what was blocked) that discovery shows
when it cannot use the background.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from crawler.config import Settings

log = logging.getLogger(__name__)

KIND = "background"


def csv_setting(value: str) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]`` (order kept, duplicates dropped)."""
    return list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))


def background_queries(settings: Settings) -> list[str]:
    return csv_setting(settings.discovery_background_queries)


def plain_http_search(settings: Settings, names: list[str]) -> list[str]:
    """The registered platforms among ``names`` (every one when empty) with a plain-HTTP keyword search."""
    registry = settings.registry
    wanted = names or list(registry.search_names)
    return [
        p
        for p in wanted
        if (profile := registry.find(p)) is not None and profile.sweepable and not profile.needs_browser
    ]


def background_platforms(settings: Settings, wanted: list[str] | None = None) -> list[str]:
    """Background platforms (``wanted``, else ``discovery_background_platforms``, else every registered one)
    that have a plain-HTTP keyword search (browser platforms are slow and sign their own calls: a background
    from them is not worth the cost)."""
    return plain_http_search(settings, wanted or csv_setting(settings.discovery_background_platforms))


# -- the crawl ---------------------------------------------------------------------------------------------


class BackgroundPipeline:
    """Keeps the text of every listing a background query returns; opens a few listing pages per query and
    platform for their descriptions (through the platform's detail slot, so politeness holds)."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.settings: Settings = crawler.settings["TERTIB_SETTINGS"]
        self.run_id: int = int(crawler.settings["TERTIB_RUN_ID"])
        self.details = max(0, int(crawler.settings.getint("BACKGROUND_DETAILS", 0)))
        self.docs: dict[str, dict[str, Any]] = {}
        self.opened: dict[tuple[str, str], int] = defaultdict(int)

    @classmethod
    def from_crawler(cls, crawler: Any) -> Self:
        return cls(crawler)

    async def process_item(self, item: Any) -> Any:
        from crawler.items import Listing

        if not isinstance(item, Listing):
            return item  # blocks and findings: SweepHealth counts them from the spider's stats
        key = item.listing_key
        if key in self.docs:
            return item
        doc = {
            "platform": item.platform,
            "listing_key": key,
            "query": (item.query or "")[:300],
            "title": item.title[:2000],
            "description": (item.description or "")[:8000],
            "seller_key": f"{item.platform}:{item.seller_id}" if item.seller_id else None,
        }
        self.docs[key] = doc
        slot = (item.platform, item.query or "")
        if not doc["description"] and self.opened[slot] < self.details:
            self.opened[slot] += 1
            doc["description"] = (await self._description(item))[:8000]
        return item

    async def _description(self, item: Any) -> str:
        from crawler.items import Verdict
        from crawler.pipelines import clean_text
        from spiders.pages import listing_request, read_listing_page

        profile = self.settings.registry.get(item.platform)
        # opened the way the sweep's detail fetches open a listing (its detail slot, so politeness holds)
        request = listing_request(profile, self.settings, item.url)
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"tertib/{item.platform}/requests")
        try:
            assert self.crawler.engine is not None
            response = await self.crawler.engine.download_async(request)
            page = await read_listing_page(response, profile, self.settings, item.url, screenshot=False)
        except Exception as exc:  # a failed detail only costs this document its description
            self.crawler.stats.inc_value(f"tertib/{item.platform}/errors")
            log.info("background detail failed for %s: %s", item.url, exc)
            return ""
        result = page.check(profile)
        if result.verdict is Verdict.UNOBSERVABLE or result.listing is None:
            return ""
        return clean_text(result.listing.description)

    def close_spider(self, spider: Any = None) -> None:
        store_docs(self.settings, self.run_id, list(self.docs.values()))


def store_docs(settings: Settings, run_id: int, docs: list[dict[str, Any]]) -> None:
    """Write a crawl's documents; platforms that yielded documents drop their older ones."""
    from sqlalchemy import delete, insert, select

    from storage.db import Database
    from storage.models import BackgroundDoc, SweepRun

    db = Database(settings.db_url)
    now = datetime.now(UTC)
    try:
        with db.session() as session:
            answered = sorted({d["platform"] for d in docs})
            if answered:
                older = select(SweepRun.id).where(SweepRun.kind == KIND, SweepRun.id != run_id)
                session.execute(
                    delete(BackgroundDoc).where(
                        BackgroundDoc.platform.in_(answered), BackgroundDoc.sweep_run_id.in_(older)
                    )
                )
            for start in range(0, len(docs), 500):
                session.execute(
                    insert(BackgroundDoc),
                    [{**d, "sweep_run_id": run_id, "fetched_at": now} for d in docs[start : start + 500]],
                )
    finally:
        db.dispose()


def refresh_background(
    *, platforms: list[str] | None = None, progress: bool = True, trigger: str = "manual"
) -> int:
    """Crawl the background in this process; returns the SweepRun id (kind ``background``)."""
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings as ScrapySettings

    from crawler import cli_common as common
    from crawler import settings as crawl_settings
    from crawler.errors import UsageError
    from crawler.logs import quiet_libraries
    from crawler.work import SweepWork
    from spiders.sweep import SweepSpider
    from storage import repositories as repo

    settings = common.settings()
    db = common.database()
    # 1. Platforms and queries.
    chosen = background_platforms(settings, platforms)
    queries = background_queries(settings)
    if not chosen:
        raise UsageError(
            "no background platform with a plain-HTTP search among "
            f"{', '.join(platforms or csv_setting(settings.discovery_background_platforms)) or 'none'} "
            f"({', '.join(plain_http_search(settings, [])) or 'no registered platform'} have one)"
        )
    if not queries:
        raise UsageError("discovery_background_queries is empty: name a few generic clothing queries")
    # 2. The run record.
    with db.session() as session:
        run_id = repo.start_run(session, platforms=chosen, kind=KIND, trigger=trigger, queries=queries)
    # 3. Crawl.
    values = crawl_settings.build(settings, run_id=run_id, platforms=tuple(chosen), progress=progress)
    values["ITEM_PIPELINES"] = {
        "crawler.pipelines.NormalisePipeline": 100,
        "crawler.terms.background.BackgroundPipeline": 300,
    }
    values["BACKGROUND_DETAILS"] = max(0, settings.discovery_background_details)
    process = CrawlerProcess(ScrapySettings(values))
    quiet_libraries()
    work = SweepWork.of(chosen, queries, last_page=max(1, settings.discovery_background_pages))
    process.crawl(SweepSpider, work=work, run_id=run_id)
    process.start()
    # 4. The documents were stored when the crawl closed; make sure a crash still leaves the run closed.
    with db.session() as session:
        repo.fail_if_running(session, run_id)
    return run_id


# -- reading it --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class BackgroundDocText:
    platform: str
    listing_key: str
    title: str
    description: str
    seller_key: str | None


@dataclass(slots=True)
class Background:
    """The stored background: documents, the age of each platform's crawl, and what went wrong."""

    docs: list[BackgroundDocText] = field(default_factory=list)
    fetched: dict[str, datetime] = field(default_factory=dict)  # platform -> when its documents were crawled
    problems: list[str] = field(default_factory=list)  # needs-attention lines of the latest crawl

    def status(self) -> str:
        if not self.docs:
            why = "; ".join(self.problems) if self.problems else "never crawled"
            return f"no background corpus ({why})"
        parts = [
            f"{p} {sum(1 for d in self.docs if d.platform == p)} ({when:%Y-%m-%d %H:%M} UTC)"
            for p, when in sorted(self.fetched.items())
        ]
        return f"background: {len(self.docs)} ordinary listings — " + ", ".join(parts)

    def stale(self, platforms: list[str], max_age: timedelta, now: datetime | None = None) -> list[str]:
        """Platforms among ``platforms`` whose background is missing or older than ``max_age``."""
        now = now or datetime.now(UTC)
        return [p for p in platforms if p not in self.fetched or now - self.fetched[p] > max_age]


def load_background(session: Any, *, with_docs: bool = True) -> Background:
    from sqlalchemy import func, select

    from storage.models import BackgroundDoc, SweepRun

    out = Background()
    rows = session.execute(
        select(BackgroundDoc.platform, func.max(BackgroundDoc.fetched_at)).group_by(BackgroundDoc.platform)
    ).all()
    out.fetched = {platform: when for platform, when in rows}
    latest = session.scalars(
        select(SweepRun).where(SweepRun.kind == KIND).order_by(SweepRun.id.desc()).limit(1)
    ).first()
    if latest is not None:
        if latest.status == "running":
            out.problems.append(f"background crawl #{latest.id} is still running")
        out.problems.extend(str(m) for m in latest.needs_attention or [])
    if with_docs:
        out.docs = [
            BackgroundDocText(*row)
            for row in session.execute(
                select(
                    BackgroundDoc.platform,
                    BackgroundDoc.listing_key,
                    BackgroundDoc.title,
                    BackgroundDoc.description,
                    BackgroundDoc.seller_key,
                ).order_by(BackgroundDoc.id)
            )
        ]
    return out


def ensure_background(settings: Settings, db: Any, *, platforms: list[str] | None = None) -> str | None:
    """Refresh the background in a subprocess when it is missing or stale; returns a problem line or None.

    ``platforms``: the sweep's platforms (their HTTP-search ones are refreshed); default: the configured
    background platforms.
    """
    wanted = background_platforms(settings, platforms) or background_platforms(settings)
    if not wanted:
        return "no background platform with a plain-HTTP search is configured"
    with db.session() as session:
        current = load_background(session, with_docs=False)
    max_age = timedelta(days=max(0.0, settings.discovery_background_max_age_days))
    stale = current.stale(wanted, max_age)
    if not stale:
        return None
    log.info("background corpus missing or stale for %s: crawling it", ", ".join(stale))
    args = ["terms", "background", "refresh", "--no-progress", *[a for p in stale for a in ("--platform", p)]]
    return run_step(settings, args, "background crawl", timeout=3600)


def run_step(settings: Settings, args: list[str], what: str, *, timeout: float = 1800) -> str | None:
    """``tertib ARGS`` in a subprocess with this installation's data dir, database and sandbox (a Twisted
    reactor runs one crawl per process); returns a one-line problem or None."""
    argv = [sys.executable, "-m", "crawler.cli", "--data-dir", str(settings.data_dir), *args]
    env = dict(os.environ)
    if settings.sandbox_url:
        env["TERTIB_SANDBOX_URL"] = settings.sandbox_url
    if settings.database_url:
        env["TERTIB_DATABASE_URL"] = settings.database_url
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{what} did not run: {exc}"
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout or "").strip().splitlines()
        return f"{what} failed: {lines[-1] if lines else f'exit {proc.returncode}'}"
    return None
