"""Item pipelines, in the order wired in ``crawler/settings.py``: normalise → score → evidence → persist.

1. :class:`NormalisePipeline` — tidy text fields (HTML entities, whitespace), extract contact handles
   (WhatsApp numbers, Instagram handles) from title and description.
2. :class:`ScorePipeline` (``SCORE_ENABLED``) — score with the run's lexicon; the explanation travels on the
   item. Title only at first: search results rarely carry descriptions.
3. :class:`EvidencePipeline` (``EVIDENCE_ENABLED``, ``EVIDENCE_SCREENSHOT``, ``EVIDENCE_ENRICH_MIN_VERDICT``
   = weak | candidate | none, ``EVIDENCE_MAX_CONCURRENT`` browser pages/screenshots at once,
   ``EVIDENCE_DETAIL_CONCURRENCY`` HTTP detail fetches at once, ``EVIDENCE_BATCH_SIZE``) — for listings
   scoring at least the enrich verdict, open the listing's page with the platform's own method
   (:mod:`spiders.pages`, as rechecks do), merge the description and seller, rescore; for candidates
   (verdict candidate or strong) capture evidence: the search response that surfaced it, the detail
   response, a full-page screenshot, and a metadata record,
   through ``crawler.evidence``. Block pages are recorded as UNOBSERVABLE attempts, never as evidence.
   Captures and attempts are queued (the screenshot already taken) and committed every
   ``EVIDENCE_BATCH_SIZE`` entries (default 50) and at close as one recorder batch on the evidence writer
   thread (one WARC append, one transaction).
4. :class:`PersistPipeline` (``PERSIST_BATCH_SIZE``) — upsert seller and listing, add the sighting with its
   provenance, the score, and findings, in batched transactions (captures carry their listing's key, so
   evidence and listings commit independently, in either order).

To add a stage: write a class with ``from_crawler`` and ``process_item``, give it a prefixed setting that
can switch it off (raise ``NotConfigured``), and list it in ``ITEM_PIPELINES`` with an order number.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from typing import Any, Self

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawler.config import Settings
from crawler.evidence.capture import BatchEntry
from crawler.items import BlockedAttempt, Listing, QueryFinding, Verdict
from crawler.run_context import RunContext
from spiders.pages import listing_request, read_listing_page

logger = logging.getLogger(__name__)

DEFAULT_EVIDENCE_BATCH_SIZE = 50  # EVIDENCE_BATCH_SIZE
VERDICT_ORDER = {"clear": 0, "weak": 1, "candidate": 2, "strong": 3}
ENRICH_NEVER = 99  # EVIDENCE_ENRICH_MIN_VERDICT = "none"
_SPACE = re.compile(r"\s+")
_WA = re.compile(r"(?:\+?62[\s.-]?|0)8\d{1,3}[\s.-]?\d{3,4}[\s.-]?\d{3,5}")
# Contact handles are seller wording, not platform knowledge: sellers on every marketplace point buyers to a
# WhatsApp number or an Instagram account ("IG: @x"), so "wa:"/"ig:" are contact channels that link accounts
# across platforms whether or not Instagram is a registered platform (the registry is not consulted here).
# "@handle" only where it starts a word: "toko.bal@gmail.com" is an e-mail address, not an Instagram handle
_IG = re.compile(
    r"(?:\big\s*[:@]?\s*|instagram\s*[:@]?\s*)@?([A-Za-z0-9_.]{3,30})|(?<![\w.])@([A-Za-z0-9_.]{3,30})", re.I
)


def clean_text(text: str | None) -> str:
    if not text:
        return ""
    return _SPACE.sub(" ", html.unescape(text)).strip()


def contact_handles(text: str) -> list[str]:
    """WhatsApp numbers (normalised to 62…) and Instagram handles mentioned in listing text."""
    handles: set[str] = set()
    for match in _WA.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        if digits.startswith("0"):
            digits = "62" + digits[1:]
        if 10 <= len(digits) <= 15:
            handles.add(f"wa:{digits}")
    for match in _IG.finditer(text):
        handle = (match.group(1) or match.group(2) or "").strip(".").lower()
        if handle and not handle.isdigit() and handle != ".":
            handles.add(f"ig:@{handle}")
    return sorted(handles)


def run_context(crawler: Crawler) -> RunContext:
    """The per-crawl context (database, scorer, evidence recorder) shared by the pipelines."""
    ctx = getattr(crawler, "_tertib_context", None)
    if ctx is None:
        settings: Settings = crawler.settings["TERTIB_SETTINGS"]
        ctx = RunContext(settings, run_id=crawler.settings.get("TERTIB_RUN_ID"))
        ctx.evidence.proxies = crawler.settings.get("TERTIB_PROXY_POOL")  # screenshots go out through it
        crawler._tertib_context = ctx  # type: ignore[attr-defined]
    return ctx


class NormalisePipeline:
    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls()

    def process_item(self, item: Any) -> Any:
        if isinstance(item, Listing):
            item.title = clean_text(item.title)
            item.description = clean_text(item.description)
            item.seller_name = clean_text(item.seller_name) or None
            item.contact_handles = sorted(set(item.contact_handles) | set(contact_handles(item.text())))
        return item


class ScorePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.ctx = run_context(crawler)
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("SCORE_ENABLED", True):
            raise NotConfigured
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, Listing):
            item.score = self.ctx.scoring.score(item.text())
        return item


class EvidencePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.ctx = run_context(crawler)
        settings = crawler.settings
        self.screenshots = settings.getbool("EVIDENCE_SCREENSHOT", True)
        # "none": no detail fetches; candidates' evidence is the search response that surfaced them
        enrich = settings.get("EVIDENCE_ENRICH_MIN_VERDICT", "weak")
        self.enrich_from = ENRICH_NEVER if enrich == "none" else VERDICT_ORDER[enrich]
        self.concurrency = settings.getint("EVIDENCE_MAX_CONCURRENT", 2)
        self.semaphore = asyncio.Semaphore(self.concurrency)
        self.detail_semaphore = asyncio.Semaphore(settings.getint("EVIDENCE_DETAIL_CONCURRENCY", 16))
        self.seen: set[str] = set()
        self.batch_size = max(1, settings.getint("EVIDENCE_BATCH_SIZE", DEFAULT_EVIDENCE_BATCH_SIZE))
        self.pending: list[tuple[BatchEntry, Listing | None]] = []  # (entry, its candidate or None)
        self.tail: asyncio.Future[None] | None = None  # the last batch commit in the chain

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("EVIDENCE_ENABLED", True):
            raise NotConfigured
        return cls(crawler)

    def stat(self, platform: str, key: str) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"tertib/{platform}/{key}")

    async def open_spider(self) -> None:
        tabs = self.crawler.settings.getint("EVIDENCE_SCREENSHOT_TABS", 1)
        await self.ctx.evidence.open(screenshots=self.screenshots, tabs=tabs)

    async def close_spider(self) -> None:
        try:
            await self.flush()
        finally:
            await self.ctx.evidence.close()

    async def queue(self, entry: BatchEntry, item: Listing | None) -> None:
        if self.ctx.evidence.recorder is None:
            return
        self.pending.append((entry, item))
        if len(self.pending) >= self.batch_size:
            self._start_flush()

    def _start_flush(self) -> None:
        """Chain the queued captures' commit after the previous one without holding up the items: the crawl
        goes on while the writer thread works (captures carry their listing's key: no linking afterwards)."""
        if self.pending:
            batch, self.pending = self.pending, []
            self.tail = asyncio.ensure_future(self._commit_after(self.tail, batch))

    async def _commit_after(
        self, previous: asyncio.Future[None] | None, batch: list[tuple[BatchEntry, Listing | None]]
    ) -> None:
        if previous is not None:
            await previous  # never raises: failures are handled below
        try:
            recorded = await self.ctx.evidence.record_sweep_batch([entry for entry, _ in batch])
        except Exception:
            logger.exception("committing a batch of %d captures failed", len(batch))
            assert self.crawler.stats is not None
            for entry, item in batch:
                platform = item.platform if item is not None else _platform_of(entry)
                self.crawler.stats.inc_value(f"tertib/{platform}/item_errors")
                self.crawler.stats.inc_value("tertib/item_errors")
            return
        for (_, item), rec in zip(batch, recorded, strict=True):
            if item is not None:
                self.stat(item.platform, "captures")
                if not rec.observable:  # the candidate's page was a block page: no proof (health flags it)
                    self.stat(item.platform, "evidence_unobservable")

    async def flush(self) -> None:
        """Commit everything queued and wait for the chain to finish."""
        self._start_flush()
        if self.tail is not None:
            await self.tail

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, BlockedAttempt):
            if item.final:
                await self.queue(self.ctx.evidence.unobservable_entry(item), None)
            return item
        if not isinstance(item, Listing) or item.score is None:
            return item
        # a browser page visit costs ~1 s of a core: browser platforms open only candidates' pages
        enrich_from = (
            max(self.enrich_from, VERDICT_ORDER["candidate"])
            if self._needs_browser(item)
            else self.enrich_from
        )
        verdict = VERDICT_ORDER.get(item.score.verdict, 0)
        if verdict < min(enrich_from, VERDICT_ORDER["candidate"]):
            return item
        if item.listing_key in self.seen:  # the same listing from another query/page: one capture per run
            return item
        self.seen.add(item.listing_key)
        entry = None
        browser = self._needs_browser(item) or self.ctx.evidence.screenshotter is not None
        # Browser work (a listing page in a tab, a screenshot) is bounded by EVIDENCE_MAX_CONCURRENT; plain
        # HTTP detail fetches by EVIDENCE_DETAIL_CONCURRENCY (their platform's detail slot paces them; the
        # bound keeps items waiting for a detail, and the search responses they hold, few)
        async with self.semaphore if browser else self.detail_semaphore:
            png = await self._enrich(item) if verdict >= enrich_from else None
            if VERDICT_ORDER.get(item.score.verdict, 0) >= VERDICT_ORDER["candidate"]:
                self.stat(item.platform, "candidates")
                if self.ctx.evidence.recorder is not None:
                    entry = await self.ctx.evidence.capture_entry(item, screenshot_png=png)
        if entry is not None:
            await self.queue(entry, item)
        return item

    def _needs_browser(self, item: Listing) -> bool:
        profile = self.ctx.settings.registry.find(item.platform)
        return bool(profile and profile.needs_browser)

    async def _enrich(self, item: Listing) -> bytes | None:
        """Open the listing's page with the platform's method (:mod:`spiders.pages`); merge what its detail
        adds; rescore. Returns the page's screenshot (browser platforms: taken in the platform's own,
        logged-in context) for the evidence.
        """
        profile = self.ctx.settings.registry.find(item.platform)
        if profile is None:
            return None
        settings = self.ctx.settings
        self.stat(item.platform, "requests")
        try:
            assert self.crawler.engine is not None
            response = await self.crawler.engine.download_async(listing_request(profile, settings, item.url))
            page = await read_listing_page(response, profile, settings, item.url, screenshot=self.screenshots)
            if page.error is not None:
                raise RuntimeError(page.error)
        except Exception as exc:  # network/browser errors: the listing keeps its title-only score
            self.stat(item.platform, "errors")
            self.stat(item.platform, "detail_unobservable")
            logger.info("detail fetch failed for %s: %s", item.url, exc)
            return None
        result = page.check(profile)
        if result.verdict is Verdict.UNOBSERVABLE:
            self.stat(item.platform, "blocked")
            self.stat(item.platform, "detail_unobservable")
            await self.queue(
                self.ctx.evidence.unobservable_entry(
                    BlockedAttempt(
                        platform=item.platform,
                        url=response.url,
                        reason=result.rule,
                        listing_key=item.listing_key,
                        exchange=page.exchange,
                    )
                ),
                None,
            )
            return None
        item.exchanges.append(page.exchange)
        detail = result.listing
        if detail is not None:
            item.description = clean_text(detail.description) or item.description
            item.seller_id = item.seller_id or detail.seller_id
            item.seller_name = item.seller_name or detail.seller_name
            item.seller_city = item.seller_city or detail.seller_city
            item.condition = detail.condition or item.condition
            item.status = detail.status or item.status
            # where it ships from: "abroad" on either page wins; otherwise the detail fills what search left
            if (detail.ships_from_abroad and not item.ships_from_abroad) or (
                item.ships_from_abroad is None and detail.ships_from_abroad is not None
            ):
                item.ships_from_abroad = detail.ships_from_abroad
                item.origin_facts = list(detail.origin_facts)
            item.contact_handles = sorted(set(item.contact_handles) | set(contact_handles(item.text())))
            item.score = self.ctx.scoring.score(item.text())
        item.raw["detail_verdict"] = result.verdict.value
        return page.screenshot_png


def _platform_of(entry: BatchEntry) -> str:
    """The platform an attempt without a candidate item belongs to (its listing key's prefix)."""
    key = entry.key
    return key.partition(":")[0] if key else "unknown"


class PersistPipeline:
    """Batched writes off the reactor thread. Each batch is chained after the previous one, so batches
    commit in order even though Scrapy processes several items at once (``CONCURRENT_ITEMS``); a failed batch
    is counted as item errors, which fails the run (SweepHealth)."""

    def __init__(self, crawler: Crawler, batch_size: int) -> None:
        self.crawler = crawler
        self.ctx = run_context(crawler)
        self.batch_size = batch_size
        self.pending: list[Listing | QueryFinding] = []
        self.tail: asyncio.Future[None] | None = None  # the last batch in the chain

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler, crawler.settings.getint("PERSIST_BATCH_SIZE", 200))

    def process_item(self, item: Any) -> Any:
        if isinstance(item, Listing | QueryFinding):
            self.pending.append(item)
            if len(self.pending) >= self.batch_size:
                batch, self.pending = self.pending, []
                self.tail = asyncio.ensure_future(self._write_after(self.tail, batch))
        return item

    async def _write_after(
        self, previous: asyncio.Future[None] | None, batch: list[Listing | QueryFinding]
    ) -> None:
        if previous is not None:
            await previous  # never raises: failures are handled below
        try:
            await asyncio.to_thread(self.ctx.persistence.persist, batch)
        except Exception:
            logger.exception("storing a batch of %d items failed", len(batch))
            stats = self.crawler.stats
            assert stats is not None
            for item in batch:
                stats.inc_value(f"tertib/{item.platform}/item_errors")
                stats.inc_value("tertib/item_errors")

    async def close_spider(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            self.tail = asyncio.ensure_future(self._write_after(self.tail, batch))
        if self.tail is not None:
            await self.tail


__all__ = [
    "EvidencePipeline",
    "NormalisePipeline",
    "PersistPipeline",
    "ScorePipeline",
    "clean_text",
    "contact_handles",
]
