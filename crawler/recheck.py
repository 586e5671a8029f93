"""Run a recheck crawl: fetch reported listings again, capture fresh evidence, write the verdict ledger.

Steps (numbered the same in :func:`run_recheck`):

1. Open a SweepRun of kind ``recheck`` (targets per platform).
2. Crawl with :class:`spiders.recheck.RecheckSpider` and the recheck pipelines declared in
   ``crawler/settings.py`` (``RECHECK_ITEM_PIPELINES``); the :class:`RecheckPipeline` captures evidence for
   every observation (a WARC of the detail response and a screenshot, or an UNOBSERVABLE attempt) and writes
   one :class:`storage.models.Recheck` row per target with the rule that fired, updates
   ``Listing.last_status`` and appends custody entries — in batches of ``RECHECK_BATCH_SIZE`` observations,
   each one WARC append and one transaction on the evidence writer thread.
3. Close the run with verdict counts per platform (SweepHealth).

Which items are due, retries of UNOBSERVABLE rounds, relisting detection and reports live in
``crawler/audit/``. Like every crawl, this runs once per process (Twisted cannot restart).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Self

from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.settings import Settings as ScrapySettings

from crawler import settings as crawl_settings
from crawler.config import Settings
from crawler.errors import UsageError
from crawler.items import RecheckObservation, RecheckTarget, Verdict
from crawler.logs import quiet_libraries
from crawler.pipelines import run_context
from crawler.proxies import ProxyPool
from crawler.run_context import PendingRecheck
from spiders.recheck import RecheckSpider
from storage import repositories as repo
from storage.db import Database
from storage.models import SweepRun

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 100  # RECHECK_BATCH_SIZE


class RecheckPipeline:
    """Evidence + ledger for each :class:`crawler.items.RecheckObservation`, committed in batches.

    Settings: ``EVIDENCE_SCREENSHOT``, ``EVIDENCE_SCREENSHOT_TABS``, ``RECHECK_BATCH_SIZE`` (observations per
    batch, default 100), ``TERTIB_NOW`` (the recorded check time, for rechecks against a simulated clock).
    Each observation becomes a recorder entry at once (its screenshot taken before queuing); every
    ``RECHECK_BATCH_SIZE`` observations, and at close, the queue is committed as one recorder batch on the
    writer thread (:meth:`crawler.run_context.RunEvidence.record_recheck_batch`): no database writes on the
    reactor thread. A crash loses at most the uncommitted queue — each batch is committed or absent.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.evidence = run_context(crawler).evidence
        self.screenshots = crawler.settings.getbool("EVIDENCE_SCREENSHOT", True)
        self.batch_size = max(1, crawler.settings.getint("RECHECK_BATCH_SIZE", DEFAULT_BATCH_SIZE))
        now = crawler.settings.get("TERTIB_NOW")
        self.now: datetime | None = datetime.fromisoformat(now) if now else None
        self.pending: list[PendingRecheck] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def open_spider(self) -> None:
        await self.evidence.open(
            screenshots=self.screenshots, tabs=self.crawler.settings.getint("EVIDENCE_SCREENSHOT_TABS", 1)
        )

    async def close_spider(self) -> None:
        try:
            await self.flush()
        finally:
            await self.evidence.close()

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, RecheckObservation):
            return item
        checked_at = self.now or datetime.now(UTC)
        entry = await self.evidence.recheck_entry(item) if self.evidence.recorder is not None else None
        self.pending.append((item, entry, checked_at))
        if len(self.pending) >= self.batch_size:
            await self.flush()
        return item

    async def flush(self) -> None:
        """Commit the queued observations (evidence, ledger rows, custody) as one batch."""
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        await self.evidence.record_recheck_batch(batch)
        logger.debug("recheck batch of %d committed", len(batch))


def run_recheck(
    settings: Settings,
    db: Database,
    targets: Sequence[RecheckTarget],
    *,
    now: datetime | None = None,
    screenshots: bool = True,
    progress: bool = True,
    trigger: str = "manual",
) -> int:
    """Recheck ``targets`` in this process; returns the SweepRun id (kind ``recheck``)."""
    platforms = sorted({t.platform for t in targets})
    check_hosts(settings, targets)
    # unreachable proxies: one error line before the run exists
    proxies = ProxyPool.for_run(settings, platforms if targets else [])
    # 1. Open the run.
    with db.session() as session:
        run_id = repo.start_run(
            session,
            platforms=platforms,
            kind="recheck",
            trigger=trigger,
            queries=[t.listing_key for t in targets],
        )
    if not targets:
        with db.session() as session:
            repo.finish_run(session, run_id, status="completed", stats={"platforms": {}, "targets": 0})
        return run_id
    # 2. Crawl.
    values = crawl_settings.build(
        settings,
        crawl="recheck",
        run_id=run_id,
        platforms=tuple(platforms),
        progress=progress,
        screenshots=screenshots,
        proxies=proxies,
    )
    values["TERTIB_NOW"] = now.isoformat() if now else None
    process = CrawlerProcess(ScrapySettings(values))
    quiet_libraries()  # after Scrapy's own logging setup
    process.crawl(RecheckSpider, targets=list(targets), run_id=run_id)
    try:
        process.start()
    finally:
        proxies.close()
    # 3. SweepHealth closed the run; make sure a crash still leaves it closed.
    with db.session() as session:
        run = session.get(SweepRun, run_id)
        if run is not None and run.status == "running":
            repo.finish_run(session, run_id, status="failed", stats={"reason": "crawl ended abnormally"})
    return run_id


def check_hosts(settings: Settings, targets: Sequence[RecheckTarget]) -> None:
    """Refuse to recheck listings that belong to other hosts than the ones configured.

    A listing found on the sandbox must be rechecked on the sandbox (and a real one on the real site): the
    detail request is built from the configured base URL, so a mismatch would send a request somewhere the
    user did not ask for.
    """
    registry = settings.registry
    foreign = []
    for target in targets:
        profile = registry.find(target.platform)
        if profile is None:
            continue
        bases = [settings.base_url(host) for host in profile.hosts]
        if not any(target.url.startswith(base) for base in bases):
            foreign.append(target)
    if foreign:
        example = foreign[0]
        hint = " (pass --sandbox with the sandbox's URL)" if "127.0.0.1" in example.url else ""
        raise UsageError(
            f"{len(foreign)} listing(s) are not on the configured {example.platform} hosts, "
            f"e.g. {example.url}; "
            f"configured: {settings.base_url(registry.get(example.platform).main_host)}{hint}"
        )


__all__ = ["RecheckPipeline", "RecheckTarget", "Verdict", "check_hosts", "run_recheck"]
