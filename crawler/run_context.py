"""What one crawl shares across its pipelines: settings, database, scorer, evidence recorder.

The pipelines stay thin; this object owns the connections to the rest of the system:

- ``score(text)`` — the run's scorer (lexicon version fixed at start, recorded on the SweepRun).
- ``capture_entry(listing)`` / ``unobservable_entry(attempt)`` / ``recheck_entry(observation)`` — evidence
  as ``crawler.evidence.capture.BatchEntry`` (screenshots are taken here, before queuing);
  ``record_sweep_batch(entries)`` and ``record_recheck_batch(pending)`` commit a queue of them as ONE
  recorder batch on the recorder's writer thread (one WARC append + fsync, one transaction with the
  captures, the recheck ledger rows, ``Listing.last_status`` and every custody entry). The pipelines own
  the queues and their sizes (``EVIDENCE_BATCH_SIZE``, ``RECHECK_BATCH_SIZE``).
- ``persist(items)`` — one transaction per batch through ``storage.repositories``. A sweep capture whose
  listing row did not exist when its batch committed is remembered in ``unlinked`` (listing_key → capture
  id) and linked by the next persist batch or by ``link_captures()`` at the end of the crawl.

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

SCORE_CACHE_SIZE = 50_000  # distinct texts remembered per run (~1 kB each)


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
            egress=getattr(response, "egress", ""),
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
        # never the proxy's credentials (HttpProxyMiddleware put them in the request's headers)
        request_headers=[(k, v) for k, v in pairs(request.headers) if k.lower() != "proxy-authorization"]
        if request is not None
        else [],
        request_body=(request.body or b"") if request is not None else b"",
        status=response.status,
        reason="",
        response_headers=pairs(response.headers),
        body=response.body,
        fetched_at=response.meta.get("tertib_fetched_at") or datetime.now(UTC),
        protocol=str(getattr(response, "protocol", None) or "HTTP/1.1"),
        egress=str(response.meta.get("tertib_egress") or ""),
    )


class RunContext:
    def __init__(self, settings: Settings, *, run_id: int | None) -> None:
        from storage.db import Database

        self.settings = settings
        self.run_id = run_id
        self.db = Database(settings.db_url)
        self._scorer: Any = None
        self._scores: dict[str, dict[str, Any]] = {}  # text -> explanation (see score())
        # listing_key -> (value, verdict) of the Score row this run stored last (persist_batch skips
        # a repeat sighting's identical score)
        self.stored_scores: dict[str, tuple[float, str]] = {}
        self.scorer_version = ""
        self.model_version = ""
        self.lexicon_version_id: int | None = None
        self.recorder: Any = None
        self.screenshotter: Any = None
        self.proxies: Any = None  # the run's crawler.proxies.ProxyPool (screenshots go out through it)
        self.counts: Counter[str] = Counter()
        # committed sweep captures whose listing row did not exist yet: listing_key -> capture id
        self.unlinked: dict[str, int] = {}
        # id(response) -> (response, its HttpExchange): the candidates of one search page share one
        # exchange object, so the recorder digests and block-checks that page once (bounded; the tuple
        # keeps the response alive so its id cannot be reused while it is cached)
        self._exchanges: dict[int, tuple[Any, Any]] = {}

    # -- scoring ---------------------------------------------------------------------------------

    def _load_scorer(self) -> Any:
        from crawler.terms import scorer as scorer_mod
        from crawler.terms.store import current_version, load_lexicon

        with self.db.session() as session:
            lexicon = load_lexicon(session)
            self.lexicon_version_id = current_version(session).id
        from crawler.terms.model import load_for_settings

        self.scorer_version = scorer_mod.SCORER_VERSION
        model = load_for_settings(self.settings)  # a broken model file stops the run (one clear line)
        self.model_version = model.version if model is not None else ""
        return scorer_mod.Scorer(lexicon, scorer_mod.Thresholds.from_settings(self.settings), model)

    def score(self, text: str) -> dict[str, Any]:
        """The run's scorer on ``text`` (memoised: the scorer is a pure function of the text under the
        run's fixed lexicon, and overlapping queries show the same listings: ~60% repeats in a sweep)."""
        cached = self._scores.get(text)
        if cached is None:
            if self._scorer is None:
                self._scorer = self._load_scorer()
            if len(self._scores) >= SCORE_CACHE_SIZE:
                self._scores.clear()
            cached = self._scores[text] = self._scorer.score(text).to_dict()
        return dict(cached)

    # -- evidence --------------------------------------------------------------------------------

    async def open_evidence(self, *, screenshots: bool, tabs: int = 2) -> None:
        from crawler.evidence.capture import EvidenceRecorder

        self.recorder = EvidenceRecorder(self.settings, self.db)
        if screenshots:
            from crawler.evidence.screenshot import Screenshotter

            self.screenshotter = Screenshotter(self.settings, pages=tabs, proxies=self.proxies)
            await self.screenshotter.__aenter__()

    async def close_evidence(self) -> None:
        if self.screenshotter is not None:
            await self.screenshotter.__aexit__(None, None, None)
            self.screenshotter = None
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    def _actor(self) -> str:
        return self.settings.actor_name()

    def exchange(self, response: Any) -> Any:
        """``exchange_from_response``, memoised per response object (see ``_exchanges``)."""
        hit = self._exchanges.get(id(response))
        if hit is not None and hit[0] is response:
            return hit[1]
        if len(self._exchanges) >= 256:
            self._exchanges.clear()
        exchange = exchange_from_response(response)
        self._exchanges[id(response)] = (response, exchange)
        return exchange

    async def capture_entry(self, listing: Listing, *, screenshot_png: bytes | None = None) -> Any:
        """A sweep candidate as a recorder ``BatchEntry`` (the screenshot is taken now, before queuing)."""
        from crawler.evidence.capture import BatchEntry

        exchanges = [self.exchange(r) for r in listing.exchanges]
        png = screenshot_png
        if png is None and self.screenshotter is not None:
            try:
                png, page_exchange = await self.screenshotter.capture(listing.url, platform=listing.platform)
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
            "model_version": self.model_version,
            "lexicon_version_id": self.lexicon_version_id,
        }
        return BatchEntry(
            listing=listing.to_dict(),
            exchanges=exchanges,
            screenshot_png=png,
            metadata=metadata,
            purpose="sweep",
            sweep_run_id=self.run_id,
            actor=self._actor(),
        )

    def unobservable_entry(self, attempt: BlockedAttempt) -> Any:
        """A final blocked attempt as a recorder ``BatchEntry`` (counted per platform)."""
        from crawler.evidence.capture import BatchEntry

        self.counts[f"unobservable:{attempt.platform}"] += 1
        exchange = exchange_from_response(attempt.exchange) if attempt.exchange is not None else None
        return BatchEntry.unobservable(
            url=attempt.url,
            reason=attempt.reason,
            exchange=exchange,
            listing_key=attempt.listing_key,
            purpose="sweep",
            sweep_run_id=self.run_id,
            actor=self._actor(),
        )

    async def record_sweep_batch(self, entries: list[Any]) -> list[Any]:
        """Commit queued sweep captures/attempts as one recorder batch (writer thread); returns ``Recorded``s.

        Captures whose listing row did not exist yet are remembered by listing key; :meth:`persist` and
        :meth:`link_captures` attach them once the listing is stored.
        """
        if self.recorder is None or not entries:
            return []
        recorded: list[Any] = await self.recorder.arecord_batch(entries)
        for rec in recorded:
            if rec.observable and rec.listing_id is None and rec.listing_key:
                self.unlinked[rec.listing_key] = rec.capture_id
        return recorded

    def link_captures(self) -> int:
        """Attach remembered captures to listings stored since (run at the end of the crawl)."""
        if not self.unlinked:
            return 0
        with self.db.session() as session:
            return self._link_unlinked(session)

    def _link_unlinked(self, session: Any) -> int:
        from sqlalchemy import select

        from storage import repositories as repo
        from storage.models import Listing as ListingRow

        keys = list(self.unlinked)
        linked = 0
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = session.execute(
                select(ListingRow.listing_key, ListingRow.id).where(ListingRow.listing_key.in_(chunk))
            ).all()
            repo.link_captures(session, [(self.unlinked.pop(key), listing_id) for key, listing_id in rows])
            linked += len(rows)
        return linked

    async def recheck_entry(self, observation: Any) -> Any:
        """Fresh evidence for one recheck observation as a ``BatchEntry`` (an UNOBSERVABLE one: an attempt).

        The screenshot (when on) is taken here, before the entry is queued.
        """
        from crawler.evidence.capture import BatchEntry

        target, result = observation.target, observation.result
        exchange = exchange_from_response(observation.response) if observation.response is not None else None
        listing_id = int(target["listing_id"])
        if result.verdict == "UNOBSERVABLE":
            return BatchEntry.unobservable(
                url=target["url"],
                reason=result.rule,
                exchange=exchange,
                listing_key=target["listing_key"],
                purpose="recheck",
                sweep_run_id=self.run_id,
                actor=self._actor(),
                listing_id=listing_id,
            )
        exchanges = [exchange] if exchange is not None else []
        png = observation.screenshot_png
        if png is None and self.screenshotter is not None:
            try:
                png, page_exchange = await self.screenshotter.capture(
                    target["url"], platform=target["platform"]
                )
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
        return BatchEntry(
            listing=listing,
            exchanges=exchanges,
            screenshot_png=png,
            metadata=metadata,
            purpose="recheck",
            sweep_run_id=self.run_id,
            actor=self._actor(),
            listing_id=listing_id,
        )

    async def record_recheck_batch(self, pending: list[tuple[Any, Any, datetime]]) -> list[int]:
        """Evidence + ledger for queued ``(observation, entry, checked_at)``: one recorder batch.

        The captures, one :class:`storage.models.Recheck` row per observation (verdict, rule, signal,
        capture), ``Listing.last_status`` and every custody entry commit in one transaction on the
        recorder's writer thread; nothing is written on the reactor thread. Returns the Recheck ids.
        """
        if not pending:
            return []
        observations = [(obs, checked_at) for obs, _entry, checked_at in pending]
        entries = [entry for _obs, entry, _at in pending]
        ids: list[int] = []

        def ledger(session: Any, recorded: list[Any]) -> list[Any]:
            capture_ids = [rec.capture_id for rec in recorded] or [None] * len(observations)
            ids.extend(self._recheck_rows(session, observations, capture_ids))
            return self._recheck_custody(observations, capture_ids, ids)

        if self.recorder is not None and all(entry is not None for entry in entries):
            await self.recorder.arecord_batch(entries, ledger)
        else:  # no evidence recorder: the ledger alone, still off the reactor thread
            import asyncio

            from storage import custody

            def write() -> None:
                with self.db.session() as session:
                    capture_ids: list[int | None] = [None] * len(observations)
                    ids.extend(self._recheck_rows(session, observations, capture_ids))
                    custody.append_many(session, self._recheck_custody(observations, capture_ids, ids))

            await asyncio.get_running_loop().run_in_executor(None, write)
        return ids

    @staticmethod
    def _recheck_rows(
        session: Any, observations: list[tuple[Any, datetime]], capture_ids: list[int | None]
    ) -> list[int]:
        from storage.bulk import insert_ids, table_of, update_many
        from storage.models import Listing as ListingRow
        from storage.models import Recheck

        rows: list[dict[str, Any]] = []
        status: list[dict[str, Any]] = []
        for (obs, checked_at), capture_id in zip(observations, capture_ids, strict=True):
            target, result = obs.target, obs.result
            due_at = target.get("due_at")
            rows.append(
                {
                    "takedown_item_id": target.get("takedown_item_id"),
                    "listing_id": int(target["listing_id"]),
                    "round_days": target.get("round_days"),
                    "due_at": datetime.fromisoformat(due_at) if isinstance(due_at, str) else due_at,
                    "checked_at": checked_at,
                    "verdict": str(result.verdict),
                    "rule": result.rule,
                    "signal": str(result.signal or "")[:2000],
                    "capture_id": capture_id,
                    "attempt": int(target.get("attempt") or 1),
                }
            )
            if result.verdict != "UNOBSERVABLE":
                status.append({"b_id": int(target["listing_id"]), "b_last_status": str(result.verdict)})
        ids = insert_ids(session, table_of(Recheck), rows)
        update_many(session, table_of(ListingRow), status)
        return ids

    def _recheck_custody(
        self, observations: list[tuple[Any, datetime]], capture_ids: list[int | None], ids: list[int]
    ) -> list[Any]:
        from storage import custody

        actor = self._actor()
        return [
            custody.EntrySpec(
                actor=actor,
                action="recheck",
                object_type="recheck",
                object_id=row_id,
                details={
                    "listing_key": obs.target["listing_key"],
                    "verdict": str(obs.result.verdict),
                    "rule": obs.result.rule,
                    "capture_id": capture_id,
                    "round_days": obs.target.get("round_days"),
                    "checked_at": checked_at.isoformat(),
                },
            )
            for (obs, checked_at), capture_id, row_id in zip(observations, capture_ids, ids, strict=True)
        ]

    # -- persistence -----------------------------------------------------------------------------

    def persist(self, items: list[Listing | QueryFinding]) -> None:
        """One transaction per batch (``storage.repositories.persist_batch``); runs on a worker thread."""
        from storage import repositories as repo

        now = datetime.now(UTC)
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
            ids, scored = repo.persist_batch(
                session,
                [item.to_dict() for item in listings],
                sweep_run_id=self.run_id,
                scorer_version=self.scorer_version,
                lexicon_version_id=self.lexicon_version_id,
                seen_at=now,
                scored=self.stored_scores,
            )
            links = []
            for item in listings:
                capture_id = item.capture_id or self.unlinked.pop(item.listing_key, None)
                if capture_id is not None:
                    links.append((capture_id, ids[item.listing_key]))
            repo.link_captures(session, links)
            if self.unlinked:  # captures committed after their listing's batch: link by key
                self._link_unlinked(session)
        self.stored_scores.update(scored)  # committed

    def close(self) -> None:
        self.db.dispose()
