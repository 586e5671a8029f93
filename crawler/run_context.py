"""What one crawl shares across its pipelines: settings, database, scorer, evidence recorder.

The pipelines stay thin; this object owns the connections to the rest of the system:

- ``score(text)`` — the run's scorer (lexicon version fixed at start, recorded on the SweepRun).
- ``capture(listing)`` / ``record_unobservable(attempt)`` — evidence through ``crawler.evidence``
  (WARC records, screenshot, custody entry), off the reactor thread where the work is heavy.
- ``persist(items)`` — one transaction per batch through ``storage.repositories``.

Spiders never see this object (they only yield items), so they never touch storage.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from crawler import __version__
from crawler.config import Settings
from crawler.items import BlockedAttempt, Listing, QueryFinding

logger = logging.getLogger(__name__)


def exchange_from_response(response: Any) -> Any:
    """A Scrapy response (and its request), or a browser page's own exchange, as an ``HttpExchange``."""
    from crawler.evidence.capture import HttpExchange

    if not hasattr(response, "meta"):  # spiders.browser.BrowserExchange: already the exchange's fields
        return HttpExchange(
            url=response.url,
            method=response.method,
            request_headers=response.request_headers,
            request_body=response.request_body,
            status=response.status,
            reason=response.reason,
            response_headers=response.response_headers,
            body=response.body,
            fetched_at=response.fetched_at,
            protocol=response.protocol,
        )
    request = response.request

    def pairs(headers: Any) -> list[tuple[str, str]]:
        out = []
        for key, values in headers.items():
            for value in values:
                out.append((key.decode("latin-1"), value.decode("latin-1")))
        return out

    return HttpExchange(
        url=response.url,
        method=request.method if request is not None else "GET",
        request_headers=pairs(request.headers) if request is not None else [],
        request_body=(request.body or b"") if request is not None else b"",
        status=response.status,
        reason="",
        response_headers=pairs(response.headers),
        body=response.body,
        fetched_at=response.meta.get("tertib_fetched_at") or datetime.now(UTC),
        protocol=str(getattr(response, "protocol", None) or "HTTP/1.1"),
    )


class RunContext:
    def __init__(self, settings: Settings, *, run_id: int | None) -> None:
        from storage.db import Database

        self.settings = settings
        self.run_id = run_id
        self.db = Database(settings.db_url)
        self._scorer: Any = None
        self.scorer_version = ""
        self.lexicon_version_id: int | None = None
        self.recorder: Any = None
        self.screenshotter: Any = None
        self.counts: Counter[str] = Counter()

    # -- scoring ---------------------------------------------------------------------------------

    def _load_scorer(self) -> Any:
        from crawler.terms import scorer as scorer_mod
        from crawler.terms.store import current_version, load_lexicon

        with self.db.session() as session:
            lexicon = load_lexicon(session)
            self.lexicon_version_id = current_version(session).id
        self.scorer_version = scorer_mod.SCORER_VERSION
        return scorer_mod.Scorer(lexicon, scorer_mod.Thresholds.from_settings(self.settings))

    def score(self, text: str) -> dict[str, Any]:
        if self._scorer is None:
            self._scorer = self._load_scorer()
        result: dict[str, Any] = self._scorer.score(text).to_dict()
        return result

    # -- evidence --------------------------------------------------------------------------------

    async def open_evidence(self, *, screenshots: bool, tabs: int = 2) -> None:
        from crawler.evidence.capture import EvidenceRecorder

        self.recorder = EvidenceRecorder(self.settings, self.db)
        if screenshots:
            from crawler.evidence.screenshot import Screenshotter

            self.screenshotter = Screenshotter(self.settings, pages=tabs)
            await self.screenshotter.__aenter__()

    async def close_evidence(self) -> None:
        if self.screenshotter is not None:
            await self.screenshotter.__aexit__(None, None, None)
            self.screenshotter = None
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    async def capture(self, listing: Listing, *, screenshot_png: bytes | None = None) -> int | None:
        if self.recorder is None:
            return None
        exchanges = [exchange_from_response(r) for r in listing.exchanges]
        png = screenshot_png
        if png is None and self.screenshotter is not None:
            try:
                png, page_exchange = await self.screenshotter.capture(listing.url)
                exchanges.append(page_exchange)
            except Exception as exc:  # a screenshot failure must not lose the WARC evidence
                logger.warning("screenshot failed for %s: %s", listing.url, exc)
                self.counts["screenshot_failures"] += 1
        metadata = {
            "listing": listing.to_dict(),
            "score": listing.score,
            "query": listing.query,
            "page": listing.page,
            "rank": listing.rank,
            "sweep_run_id": self.run_id,
            "tool": f"tertib/{__version__}",
            "scorer_version": self.scorer_version,
            "lexicon_version_id": self.lexicon_version_id,
        }
        record = getattr(self.recorder, "arecord_capture", None)
        kwargs = dict(
            listing=listing.to_dict(),
            exchanges=exchanges,
            screenshot_png=png,
            metadata=metadata,
            purpose="sweep",
            sweep_run_id=self.run_id,
            actor=self.settings.actor_name(),
        )
        if record is not None:
            return int(await record(**kwargs))
        return int(self.recorder.record_capture(**kwargs))

    async def record_unobservable(self, attempt: BlockedAttempt) -> None:
        self.counts[f"unobservable:{attempt.platform}"] += 1
        if self.recorder is None:
            return
        exchange = exchange_from_response(attempt.exchange) if attempt.exchange is not None else None
        self.recorder.record_unobservable(
            url=attempt.url,
            reason=attempt.reason,
            exchange=exchange,
            listing_key=attempt.listing_key,
            purpose="sweep",
            sweep_run_id=self.run_id,
            actor=self.settings.actor_name(),
        )

    async def capture_recheck(self, observation: Any) -> int | None:
        """Fresh evidence for one recheck observation; an UNOBSERVABLE one is stored as an attempt."""
        if self.recorder is None:
            return None
        target, result = observation.target, observation.result
        exchange = exchange_from_response(observation.response) if observation.response is not None else None
        if result.verdict == "UNOBSERVABLE":
            return int(
                self.recorder.record_unobservable(
                    url=target["url"],
                    reason=result.rule,
                    exchange=exchange,
                    listing_key=target["listing_key"],
                    purpose="recheck",
                    sweep_run_id=self.run_id,
                    actor=self.settings.actor_name(),
                )
            )
        exchanges = [exchange] if exchange is not None else []
        png = observation.screenshot_png
        if png is None and self.screenshotter is not None:
            try:
                png, page_exchange = await self.screenshotter.capture(target["url"])
                exchanges.append(page_exchange)
            except Exception as exc:  # the WARC of the detail response is still evidence
                logger.warning("screenshot failed for %s: %s", target["url"], exc)
        listing = {
            "listing_key": target["listing_key"],
            "platform": target["platform"],
            "listing_id": target["listing_key"].partition(":")[2],
            "url": target["url"],
        }
        if result.listing is not None:
            listing.update({k: v for k, v in result.listing.to_dict().items() if v not in (None, "", [], {})})
            listing["listing_key"] = target["listing_key"]
        metadata = {
            "recheck": {
                "verdict": str(result.verdict),
                "rule": result.rule,
                "signal": result.signal,
                "round_days": target.get("round_days"),
                "takedown_item_id": target.get("takedown_item_id"),
            },
            "run_id": self.run_id,
            "tool": f"tertib/{__version__}",
        }
        kwargs: dict[str, Any] = dict(
            listing=listing,
            exchanges=exchanges,
            screenshot_png=png,
            metadata=metadata,
            purpose="recheck",
            sweep_run_id=self.run_id,
            actor=self.settings.actor_name(),
        )
        record = getattr(self.recorder, "arecord_capture", None)
        if record is not None:
            return int(await record(**kwargs))
        return int(self.recorder.record_capture(**kwargs))

    def record_recheck(self, observation: Any, *, capture_id: int | None, now: datetime | None) -> int:
        """One ledger row: verdict, the rule that fired, its signal, the capture; custody-logged."""
        from storage import custody
        from storage.models import Capture, Listing, Recheck

        target, result = observation.target, observation.result
        checked_at = now or datetime.now(UTC)
        due_at = target.get("due_at")
        with self.db.session() as session:
            row = Recheck(
                takedown_item_id=target.get("takedown_item_id"),
                listing_id=int(target["listing_id"]),
                round_days=target.get("round_days"),
                due_at=datetime.fromisoformat(due_at) if isinstance(due_at, str) else due_at,
                checked_at=checked_at,
                verdict=str(result.verdict),
                rule=result.rule,
                signal=str(result.signal or "")[:2000],
                capture_id=capture_id,
                attempt=int(target.get("attempt") or 1),
            )
            session.add(row)
            listing = session.get(Listing, int(target["listing_id"]))
            if listing is not None and result.verdict != "UNOBSERVABLE":
                listing.last_status = str(result.verdict)
            if capture_id is not None:
                capture = session.get(Capture, capture_id)
                if capture is not None and capture.listing_id is None:
                    capture.listing_id = int(target["listing_id"])
            session.flush()
            custody.append(
                session,
                actor=self.settings.actor_name(),
                action="recheck",
                object_type="recheck",
                object_id=row.id,
                details={
                    "listing_key": target["listing_key"],
                    "verdict": str(result.verdict),
                    "rule": result.rule,
                    "capture_id": capture_id,
                    "round_days": target.get("round_days"),
                    "checked_at": checked_at.isoformat(),
                },
            )
            return row.id

    # -- persistence -----------------------------------------------------------------------------

    def persist(self, items: list[Listing | QueryFinding]) -> None:
        from storage import repositories as repo

        now = datetime.now(UTC)
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
                    continue
                data = item.to_dict()
                listing_id, _created = repo.upsert_listing(session, data, seen_at=now)
                sighting_id = repo.add_sighting(
                    session,
                    listing_id=listing_id,
                    sweep_run_id=self.run_id,
                    query=item.query,
                    page=item.page,
                    rank=item.rank,
                    sponsored=item.sponsored,
                    source_url=item.source_url,
                    raw=item.raw,
                    seen_at=now,
                )
                if item.score is not None:
                    repo.add_score(
                        session,
                        listing_id=listing_id,
                        sighting_id=sighting_id,
                        value=float(item.score["score"]),
                        verdict=str(item.score["verdict"]),
                        explanation=item.score,
                        scorer_version=self.scorer_version,
                        lexicon_version_id=self.lexicon_version_id,
                    )
                if item.capture_id is not None:
                    repo.link_capture(session, capture_id=item.capture_id, listing_id=listing_id)

    def close(self) -> None:
        self.db.dispose()
