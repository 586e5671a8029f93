"""What one crawl shares across its pipelines, in three focused parts.

- :class:`RunScoring` — the run's scorer (lexicon version and learned model fixed at start, recorded on the
  SweepRun and the scores), memoised per text; ``score(text)`` gives a typed :class:`crawler.items.Score`.
- :class:`RunEvidence` — the evidence recorder and the screenshotter (through the run's proxies, when any):
  ``capture_entry(listing)`` / ``unobservable_entry(attempt)`` / ``recheck_entry(observation)`` build recorder
  :class:`~crawler.evidence.capture.BatchEntry` objects (screenshots are taken here, before queuing);
  ``record_sweep_batch(entries)`` and ``record_recheck_batch(pending)`` commit a queue of them as ONE
  recorder batch on the recorder's writer thread (one WARC append + fsync, one transaction with the
  captures, the recheck ledger rows — :func:`storage.repositories.record_rechecks` — ``Listing.last_status``
  and every custody entry). The pipelines own the queues and their sizes (``EVIDENCE_BATCH_SIZE``,
  ``RECHECK_BATCH_SIZE``).
- :class:`RunPersistence` — ``persist(items)``: one transaction per batch through ``storage.repositories``.
  Captures carry their listing's key (``Capture.listing_key``), so evidence and persistence commit
  independently, in either order.

:class:`RunContext` holds the three for one crawl (``crawler.pipelines.run_context(crawler)``). Spiders never
see it (they only yield items), so they never touch storage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from crawler import __version__
from crawler.config import Settings
from crawler.evidence.capture import BatchEntry, EvidenceRecorder, Recorded
from crawler.evidence.exchange import Exchange
from crawler.evidence.screenshot import Screenshotter
from crawler.items import BlockedAttempt, Listing, QueryFinding, RecheckObservation, Score, Verdict
from crawler.proxies import ProxyPool
from crawler.terms.model import load_for_settings
from crawler.terms.scorer import SCORER_VERSION, Scorer, Thresholds
from crawler.terms.store import current_version, load_lexicon
from storage import custody
from storage import repositories as repo
from storage.db import Database

logger = logging.getLogger(__name__)

SCORE_CACHE_SIZE = 50_000  # distinct texts remembered per run (~1 kB each)

# (observation, its recorder entry or None without a recorder, when it was checked)
PendingRecheck = tuple[RecheckObservation, BatchEntry | None, datetime]


class RunScoring:
    """The run's scorer, loaded on first use with the lexicon version current then."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._scorer: Scorer | None = None
        self._scores: dict[str, Score] = {}  # text -> score (see score())
        self.scorer_version = ""
        self.model_version = ""
        self.lexicon_version_id: int | None = None

    def _load(self) -> Scorer:
        with self.db.session() as session:
            lexicon = load_lexicon(session)
            self.lexicon_version_id = current_version(session).id
        self.scorer_version = SCORER_VERSION
        model = load_for_settings(self.settings)  # a broken model file stops the run (one clear line)
        self.model_version = model.version if model is not None else ""
        return Scorer(lexicon, Thresholds.from_settings(self.settings), model)

    def score(self, text: str) -> Score:
        """The run's scorer on ``text`` (memoised: the scorer is a pure function of the text under the
        run's fixed lexicon, and overlapping queries show the same listings: ~60% repeats in a sweep)."""
        cached = self._scores.get(text)
        if cached is None:
            if self._scorer is None:
                self._scorer = self._load()
            if len(self._scores) >= SCORE_CACHE_SIZE:
                self._scores.clear()
            cached = self._scores[text] = self._scorer.score(text).to_score()
        return cached


class RunEvidence:
    """The run's evidence recorder and screenshotter, and the batch entries they commit."""

    def __init__(self, settings: Settings, db: Database, *, run_id: int | None, scoring: RunScoring) -> None:
        self.settings = settings
        self.db = db
        self.run_id = run_id
        self.scoring = scoring
        self.recorder: EvidenceRecorder | None = None
        self.screenshotter: Screenshotter | None = None
        self.proxies: ProxyPool | None = None  # the run's pool: screenshots go out through it
        self.counts: Counter[str] = Counter()
        self.actor = settings.actor_name()

    async def open(self, *, screenshots: bool, tabs: int = 2) -> None:
        self.recorder = EvidenceRecorder(self.settings, self.db)
        if screenshots:
            self.screenshotter = Screenshotter(self.settings, pages=tabs, proxies=self.proxies)
            await self.screenshotter.__aenter__()

    async def close(self) -> None:
        if self.screenshotter is not None:
            await self.screenshotter.__aexit__(None, None, None)
            self.screenshotter = None
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    async def _screenshot(self, url: str, platform: str, exchanges: list[Exchange]) -> bytes | None:
        """A screenshot of ``url`` (its page exchange joins ``exchanges``); None when it fails — the WARC of
        the responses is still evidence."""
        if self.screenshotter is None:
            return None
        try:
            png, page_exchange = await self.screenshotter.capture(url, platform=platform)
        except Exception as exc:
            logger.warning("screenshot failed for %s: %s", url, exc)
            self.counts["screenshot_failures"] += 1
            return None
        exchanges.append(page_exchange)
        return png

    async def capture_entry(self, listing: Listing, *, screenshot_png: bytes | None = None) -> BatchEntry:
        """A sweep candidate as a recorder entry (the screenshot is taken now, before queuing)."""
        exchanges = list(listing.exchanges)
        png = (
            screenshot_png
            if screenshot_png is not None
            else await self._screenshot(listing.url, listing.platform, exchanges)
        )
        metadata = {
            "score": listing.score.to_dict() if listing.score is not None else None,
            "query": listing.query,
            "page": listing.page,
            "rank": listing.rank,
            "sweep_run_id": self.run_id,
            "tool": f"tertib/{__version__}",
            "scorer_version": self.scoring.scorer_version,
            "model_version": self.scoring.model_version,
            "lexicon_version_id": self.scoring.lexicon_version_id,
        }
        return BatchEntry(
            listing=listing,
            exchanges=exchanges,
            screenshot_png=png,
            metadata=metadata,
            purpose="sweep",
            sweep_run_id=self.run_id,
            actor=self.actor,
        )

    def unobservable_entry(self, attempt: BlockedAttempt) -> BatchEntry:
        """A final blocked attempt as a recorder entry (counted per platform)."""
        self.counts[f"unobservable:{attempt.platform}"] += 1
        return BatchEntry.unobservable(
            url=attempt.url,
            reason=attempt.reason,
            exchange=attempt.exchange,
            listing_key=attempt.listing_key,
            purpose="sweep",
            sweep_run_id=self.run_id,
            actor=self.actor,
        )

    async def record_sweep_batch(self, entries: Sequence[BatchEntry]) -> list[Recorded]:
        """Commit queued sweep captures and attempts as one recorder batch (writer thread)."""
        if self.recorder is None or not entries:
            return []
        return await self.recorder.arecord_batch(entries)

    async def recheck_entry(self, observation: RecheckObservation) -> BatchEntry:
        """Fresh evidence for one recheck observation (an UNOBSERVABLE one: an attempt).

        The screenshot (when on) is taken here, before the entry is queued.
        """
        target, result = observation.target, observation.result
        if result.verdict is Verdict.UNOBSERVABLE:
            return BatchEntry.unobservable(
                url=target.url,
                reason=result.rule,
                exchange=observation.exchange,
                listing_key=target.listing_key,
                purpose="recheck",
                sweep_run_id=self.run_id,
                actor=self.actor,
            )
        exchanges: list[Exchange] = [observation.exchange] if observation.exchange is not None else []
        png = observation.screenshot_png
        if png is None:
            png = await self._screenshot(target.url, target.platform, exchanges)
        return BatchEntry(
            listing=_recheck_listing(observation),
            listing_key=target.listing_key,
            exchanges=exchanges,
            screenshot_png=png,
            metadata={
                "recheck": {
                    "verdict": str(result.verdict),
                    "rule": result.rule,
                    "signal": result.signal,
                    "round_days": target.round_days,
                    "takedown_item_id": target.takedown_item_id,
                },
                "run_id": self.run_id,
                "tool": f"tertib/{__version__}",
            },
            purpose="recheck",
            sweep_run_id=self.run_id,
            actor=self.actor,
        )

    async def record_recheck_batch(self, pending: Sequence[PendingRecheck]) -> list[int]:
        """Evidence + ledger for queued ``(observation, entry, checked_at)``: one recorder batch.

        The captures, one :class:`storage.models.Recheck` row per observation (verdict, rule, signal,
        capture), ``Listing.last_status`` and every custody entry commit in one transaction on the
        recorder's writer thread; nothing is written on the reactor thread. Returns the Recheck ids.
        """
        if not pending:
            return []
        rows = [_ledger_row(obs, checked_at) for obs, _entry, checked_at in pending]
        entries = [entry for _obs, entry, _at in pending]
        ids: list[int] = []

        def ledger(session: Any, recorded: list[Recorded]) -> list[custody.EntrySpec]:
            linked = [
                dataclasses.replace(row, capture_id=rec.capture_id)
                for row, rec in zip(rows, recorded, strict=True)
            ]
            written, specs = repo.record_rechecks(session, linked, actor=self.actor)
            ids.extend(written)
            return specs

        recorder = self.recorder
        evidence = [entry for entry in entries if entry is not None]
        if recorder is not None and len(evidence) == len(entries):
            await recorder.arecord_batch(evidence, ledger)
        else:  # no evidence recorder: the ledger alone, still off the reactor thread

            def write() -> None:
                with self.db.session() as session:
                    written, specs = repo.record_rechecks(session, rows, actor=self.actor)
                    ids.extend(written)
                    custody.append_many(session, specs)

            await asyncio.get_running_loop().run_in_executor(None, write)
        return ids


def _recheck_listing(observation: RecheckObservation) -> Listing:
    """The listing a recheck saw: the target, with what the detail page says about it where it says it."""
    target, detail = observation.target, observation.result.listing
    listing = Listing(
        platform=target.platform,
        listing_id=target.listing_key.partition(":")[2],
        url=target.url,
        title="",
    )
    if detail is None:
        return listing
    seen = {
        name: value
        for name, value in detail.to_dict().items()
        if name not in ("listing_key", "score") and value not in (None, "", [], {})
    }
    return dataclasses.replace(listing, **seen)


def _ledger_row(observation: RecheckObservation, checked_at: datetime) -> repo.RecheckRow:
    target, result = observation.target, observation.result
    return repo.RecheckRow(
        listing_id=target.listing_id,
        listing_key=target.listing_key,
        verdict=str(result.verdict),
        rule=result.rule,
        signal=str(result.signal or ""),
        checked_at=checked_at,
        takedown_item_id=target.takedown_item_id,
        round_days=target.round_days,
        due_at=target.due_at,
        attempt=target.attempt,
    )


class RunPersistence:
    """Listings and findings into storage, one transaction per batch (on a worker thread)."""

    def __init__(self, db: Database, *, run_id: int | None, scoring: RunScoring) -> None:
        self.db = db
        self.run_id = run_id
        self.scoring = scoring
        # listing_key -> (value, verdict) of the Score row this run stored last (persist_batch skips a
        # repeat sighting's identical score)
        self.stored_scores: dict[str, tuple[float, str]] = {}

    def persist(self, items: Sequence[Listing | QueryFinding]) -> None:
        """One transaction per batch (``storage.repositories.persist_batch``); runs on a worker thread."""
        now = repo.now()
        listings = [item for item in items if isinstance(item, Listing)]
        with self.db.session() as session:
            for item in items:
                if isinstance(item, QueryFinding):
                    repo.record_finding(
                        session,
                        platform=item.platform,
                        kind=item.kind,
                        query=item.query,
                        detail={"text": item.detail},
                        sweep_run_id=self.run_id,
                    )
            _ids, scored = repo.persist_batch(
                session,
                [item.to_dict() for item in listings],
                sweep_run_id=self.run_id,
                scorer_version=self.scoring.scorer_version,
                lexicon_version_id=self.scoring.lexicon_version_id,
                seen_at=now,
                scored=self.stored_scores,
            )
        self.stored_scores.update(scored)  # committed


class RunContext:
    """One crawl's scoring, evidence and persistence, over one database connection pool."""

    def __init__(self, settings: Settings, *, run_id: int | None) -> None:
        self.settings = settings
        self.run_id = run_id
        self.db = Database(settings.db_url)
        self.scoring = RunScoring(settings, self.db)
        self.evidence = RunEvidence(settings, self.db, run_id=run_id, scoring=self.scoring)
        self.persistence = RunPersistence(self.db, run_id=run_id, scoring=self.scoring)

    def close(self) -> None:
        self.db.dispose()


__all__ = ["PendingRecheck", "RunContext", "RunEvidence", "RunPersistence", "RunScoring"]
