"""The evidence recorder: one capture = WARC records + screenshot blob + a ``Capture`` row + a custody entry.

What one :meth:`EvidenceRecorder.record_capture` writes, in one WARC byte range:

1. for each HTTP exchange (the search response that surfaced the listing, then its listing/detail page):
   a ``response`` record then a ``request`` record with ``WARC-Concurrent-To`` → the response. An exchange
   whose URL and payload digest were already written in the same WARC file (a search response shared by
   many candidates) becomes one ``revisit`` record (identical-payload-digest profile, ``WARC-Refers-To`` the
   original) and the capture's ``records`` entry names the capture that holds the original;
2. a ``resource`` record (``image/png``, URI ``urn:tertib:screenshot:{page url}``) with the full-page
   screenshot, concurrent to the page response — or a ``revisit`` when the same PNG is already in the file;
   the PNG is also put in the content-addressed blob store (:mod:`storage.blobs`), once per distinct image;
3. a ``metadata`` record (``application/json``, URI ``urn:tertib:metadata:{page url}``) with the extracted
   fields, score and explanation, query, rank, sweep run, tool version and capture time.

Then (the commit protocol, per batch — :meth:`EvidenceRecorder.record_batch` takes N captures and
UNOBSERVABLE attempts, ``record_capture`` is a batch of one): all members are appended with one write and
one fsync; the ``Capture`` rows (file, offset, length, SHA-256 of each capture's byte range, per-record
offsets and digests), their ``capture`` custody entries (object digest = that SHA-256) and the caller's
ledger rows (``ledger`` callback: e.g. recheck verdicts, with their own custody entries) are committed in
one transaction, the custody entries chained from one head read (:func:`storage.custody.append_many`);
only then is the range indexed (CDXJ). Each batch is committed or absent: if the transaction fails the
bytes are truncated away; if the process dies, the next recorder truncates them
(:func:`crawler.evidence.warc.recover`).

Exchanges are :class:`crawler.evidence.exchange.Exchange` (bodies as received, or ``decoded`` with the
encoding headers renamed in the WARC). Block pages are not evidence: a capture whose page exchange looks
like a block, captcha or login wall (:func:`crawler.evidence.exchange.detect_block`; the spiders' site
profiles decide first and queue UNOBSERVABLE attempts themselves) is stored as an UNOBSERVABLE attempt
(``observable=False``).

Settings: ``Settings.warc_dir``, ``blob_dir``, ``warc_max_bytes`` (rotation), ``actor``. Constructor
arguments ``clock`` and ``id_factory`` make output byte-identical for fixed inputs; ``gzip_level`` trades CPU
for size. Heavy work can leave the reactor thread: ``await recorder.arecord_batch(...)`` (or
``arecord_capture``) runs on the recorder's single writer thread (zlib and hashlib release the GIL), so
batches commit in call order. Batch sizes are the callers' settings (``RECHECK_BATCH_SIZE``,
``EVIDENCE_BATCH_SIZE``; docs/evidence.md "Batches"). To add a record kind, build it in
:meth:`EvidenceRecorder._build` and give it a ``records`` entry; verify and bundles follow ``records``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crawler import __version__
from crawler.config import Settings
from crawler.evidence import warc
from crawler.evidence.exchange import Exchange, http_request_block
from crawler.items import Listing
from storage import custody
from storage.bulk import insert_ids, table_of
from storage.db import Database
from storage.evidence_store import open_store
from storage.models import Capture

logger = logging.getLogger(__name__)

SOFTWARE = f"tertib/{__version__} (warc writer: crawler.evidence)"
# The egress that fetched an exchange (crawler.proxies: a proxy URL without credentials, or "direct"): an
# extension header on the exchange's request/response/revisit records (WARC 1.1 allows named extensions).
EGRESS_HEADER = "Tertib-Egress"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _uuid() -> str:
    return str(uuid.uuid4())


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode(
        "utf-8"
    )


@dataclass(frozen=True)
class _Seen:
    """A record later captures in the same file may revisit (``pending``: its entry index in the batch)."""

    record_id: str
    uri: str
    date: str
    capture_id: int | None
    pending: int | None = None


class _Overlay:
    """The file's dedup map plus what earlier entries of the current batch added (committed together)."""

    def __init__(self, base: Mapping[tuple[str, str], _Seen], added: dict[tuple[str, str], _Seen]) -> None:
        self.base, self.added = base, added

    def get(self, key: tuple[str, str]) -> _Seen | None:
        found = self.added.get(key)
        return found if found is not None else self.base.get(key)

    def add(self, key: tuple[str, str], seen: _Seen) -> None:
        self.added[key] = seen


@dataclass(frozen=True)
class BatchEntry:
    """One capture (``unobservable_reason`` None) or UNOBSERVABLE attempt for a recorder batch.

    ``listing`` is what the capture shows (None for an attempt that saw no listing); ``listing_key``, when
    given, names the listing the capture is evidence for if that differs from ``listing.listing_key`` (a
    recheck answers for its target). The key is written on the capture row: the capture carries its
    listing's identity, so it needs no listing row to exist (that row may commit before or after, on
    another thread). ``url`` defaults to the listing's.
    """

    listing: Listing | None
    exchanges: Sequence[Exchange]
    screenshot_png: bytes | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    purpose: str = "sweep"
    sweep_run_id: int | None = None
    actor: str = "tertib"
    unobservable_reason: str | None = None
    url: str | None = None
    listing_key: str | None = None

    @property
    def key(self) -> str | None:
        """The listing this entry is evidence for (or an attempt at), if any."""
        if self.listing_key is not None:
            return self.listing_key
        return self.listing.listing_key if self.listing is not None else None

    @property
    def page_url(self) -> str:
        return self.url or (self.listing.url if self.listing is not None else "")

    def record(self) -> dict[str, Any]:
        """The listing as the metadata record (and the capture row) describe it."""
        key = self.key
        if self.listing is None:
            return {"listing_key": key, "url": self.page_url} if key else {"url": self.page_url}
        return {**self.listing.to_dict(), "listing_key": key}

    @classmethod
    def unobservable(
        cls,
        *,
        url: str,
        reason: str,
        exchange: Exchange | None,
        listing_key: str | None,
        purpose: str = "sweep",
        sweep_run_id: int | None = None,
        actor: str = "tertib",
    ) -> BatchEntry:
        return cls(
            listing=None,
            listing_key=listing_key,
            exchanges=[exchange] if exchange else [],
            metadata={"unobservable_reason": reason},
            purpose=purpose,
            sweep_run_id=sweep_run_id,
            actor=actor,
            unobservable_reason=reason,
            url=url,
        )


@dataclass(frozen=True)
class Recorded:
    """What a batch committed for one entry (same order as the entries)."""

    capture_id: int
    listing_key: str | None
    observable: bool


# The caller's rows in the batch's transaction: gets the session and the committed-to-be captures, adds
# its rows, returns the custody entries to chain after the captures' own.
Ledger = Callable[[Session, list[Recorded]], list[custody.EntrySpec]]


@dataclass(frozen=True)
class _Resolved:
    entry: BatchEntry
    url: str
    listing: Mapping[str, Any]
    page: Exchange | None
    metadata: Mapping[str, Any]
    reason: str | None


@dataclass
class _Built:
    records: list[warc.BuiltRecord]
    extras: list[dict[str, Any]]
    members: list[bytes]
    offset: int = 0
    length: int = 0
    sha256: str = ""
    infos: list[dict[str, Any]] = field(default_factory=list)


def _sha256_hex(members: Sequence[bytes]) -> str:
    digest = hashlib.sha256()
    for member in members:
        digest.update(member)
    return digest.hexdigest()


class EvidenceRecorder:
    """Writes captures; one instance owns one open WARC file at a time (rotating). Thread-safe."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        clock: Callable[[], datetime] | None = None,
        id_factory: Callable[[], str] | None = None,
        gzip_level: int = 6,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock or _utcnow
        self.id_factory = id_factory or _uuid
        self.gzip_level = gzip_level
        self.store = open_store(settings)
        self.blobs = self.store.blobs
        self.writer = warc.WarcFileWriter(
            settings.warc_dir,
            settings.data_dir,
            max_bytes=settings.warc_max_bytes,
            clock=self.clock,
            id_factory=self.id_factory,
            software=SOFTWARE,
            gzip_level=gzip_level,
            on_close=self._archive,
        )
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._seen_generation = -1  # the writer generation (file) the dedup map belongs to
        self._executor: ThreadPoolExecutor | None = None
        self.recovered = warc.recover(settings.warc_dir, self._db_end)
        self._archive_pending()

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> EvidenceRecorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._lock:
            self.writer.close()

    def _archive(self, path: Path) -> None:
        """A segment was closed: hand it to the evidence store (S3 keeps it; local disk: nothing to do).
        A failed upload leaves it on local disk, where the next recorder retries it."""
        try:
            with warc._try_lock(path) as free:
                if free and path.exists():
                    self.store.archive_segment(path)
        except Exception as exc:  # never lose the run over an upload: the segment is safe on disk
            logger.warning(
                "WARC %s stays on local disk until the next run (archiving failed: %s)", path.name, exc
            )

    def _archive_pending(self) -> None:
        try:
            self.store.archive_pending(self.settings.warc_dir)
        except Exception as exc:
            logger.warning("closed WARC segments stay on local disk (archiving failed: %s)", exc)

    def _db_end(self, path: Path) -> int | None:
        rel = self.writer.rel(path)
        with self.db.session() as session:
            value = session.scalar(
                select(func.max(Capture.warc_offset + Capture.warc_length)).where(Capture.warc_file == rel)
            )
        return int(value) if value is not None else None

    # -- public API -----------------------------------------------------------------------------
    def record_capture(
        self,
        *,
        listing: Listing,
        exchanges: Sequence[Exchange],
        screenshot_png: bytes | None,
        metadata: Mapping[str, Any],
        purpose: str = "sweep",
        sweep_run_id: int | None = None,
        actor: str = "tertib",
    ) -> int:
        """Store one listing's evidence; returns ``Capture.id``. A block page becomes UNOBSERVABLE."""
        entry = BatchEntry(
            listing=listing,
            exchanges=exchanges,
            screenshot_png=screenshot_png,
            metadata=metadata,
            purpose=purpose,
            sweep_run_id=sweep_run_id,
            actor=actor,
        )
        return self._record(entry=entry)

    def record_unobservable(
        self,
        *,
        url: str,
        reason: str,
        exchange: Exchange | None,
        listing_key: str | None,
        purpose: str,
        sweep_run_id: int | None,
        actor: str,
    ) -> int:
        """Store an attempt that saw no listing (block, captcha, login wall …): never evidence."""
        entry = BatchEntry.unobservable(
            url=url,
            reason=reason,
            exchange=exchange,
            listing_key=listing_key,
            purpose=purpose,
            sweep_run_id=sweep_run_id,
            actor=actor,
        )
        return self._record(entry=entry)

    def record_batch(self, entries: Sequence[BatchEntry], ledger: Ledger | None = None) -> list[Recorded]:
        """Store N captures/attempts with one WARC append (one fsync) and one transaction.

        The transaction holds the N ``Capture`` rows, their custody entries and whatever ``ledger`` adds
        (it receives the session and the :class:`Recorded` list, and returns custody entries chained
        after the captures' own). Committed or absent as a whole: on any failure the transaction rolls
        back and the appended bytes are truncated away. Returns one :class:`Recorded` per entry, in order.
        """
        return self._record_batch(entries, ledger)

    async def arecord_capture(self, **kwargs: Any) -> int:
        """:meth:`record_capture` on the writer thread, so gzip/hashing/fsync leave the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), lambda: self.record_capture(**kwargs))

    async def arecord_unobservable(self, **kwargs: Any) -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), lambda: self.record_unobservable(**kwargs))

    async def arecord_batch(
        self, entries: Sequence[BatchEntry], ledger: Ledger | None = None
    ) -> list[Recorded]:
        """:meth:`record_batch` on the recorder's single writer thread (batches commit in call order)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), lambda: self.record_batch(entries, ledger))

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tertib-warc")
        return self._executor

    # -- internals ------------------------------------------------------------------------------
    @staticmethod
    def _page_exchange(url: str, exchanges: Sequence[Exchange]) -> Exchange:
        for ex in exchanges:
            if url and ex.url == url:
                return ex
        return exchanges[-1]

    def _new_id(self) -> str:
        return f"<urn:uuid:{self.id_factory()}>"

    def _build(
        self,
        *,
        url: str,
        listing: Mapping[str, Any],
        exchanges: Sequence[Exchange],
        page: Exchange | None,
        screenshot_png: bytes | None,
        metadata: Mapping[str, Any],
        captured_at: datetime,
        sweep_run_id: int | None,
        unobservable_reason: str | None,
        seen: _Overlay,
        index: int,
    ) -> tuple[list[warc.BuiltRecord], list[dict[str, Any]]]:
        """Build one capture's records (entry ``index`` of a batch); returns (records, extra info per record).

        New originals are added to ``seen`` so later entries of the batch (and later batches) revisit them.
        """
        records: list[warc.BuiltRecord] = []
        extras: list[dict[str, Any]] = []
        page_response_id: str | None = None
        for ex in exchanges:
            block, offset = ex.response_block
            payload_digest = ex.payload_digest
            # which egress fetched it (crawler.proxies): a header of the exchange's own records
            egress = [(EGRESS_HEADER, ex.egress)] if ex.egress else []
            key = (ex.url, payload_digest)
            found = seen.get(key)
            mime = (ex.header("content-type") or "").split(";")[0].strip() or None
            date = warc.warc_date(ex.fetched_at)
            if found is not None:
                rec = warc.build_record(
                    rec_type="revisit",
                    uri=ex.url,
                    record_id=self._new_id(),
                    date=date,
                    content_type="application/http; msgtype=response",
                    block=block[:offset],
                    payload_digest=payload_digest,
                    headers=[
                        ("WARC-Profile", warc.REVISIT_PROFILE),
                        ("WARC-Refers-To", found.record_id),
                        ("WARC-Refers-To-Target-URI", found.uri),
                        ("WARC-Refers-To-Date", found.date),
                        *egress,
                    ],
                    http_status=ex.status,
                    mime=mime,
                    refers_to=found.record_id,
                )
                records.append(rec)
                extras.append(_refers(found))
                if ex is page:
                    page_response_id = rec.record_id
                continue
            response = warc.build_record(
                rec_type="response",
                uri=ex.url,
                record_id=self._new_id(),
                date=date,
                content_type="application/http; msgtype=response",
                block=block,
                payload_offset=offset,
                http_status=ex.status,
                mime=mime,
                headers=egress,
            )
            req_block, req_offset = http_request_block(ex)
            request = warc.build_record(
                rec_type="request",
                uri=ex.url,
                record_id=self._new_id(),
                date=date,
                content_type="application/http; msgtype=request",
                block=req_block,
                payload_offset=req_offset,
                headers=[("WARC-Concurrent-To", response.record_id), *egress],
            )
            records += [response, request]
            extras += [{}, {}]
            seen.add(key, _Seen(response.record_id, response.uri, response.date, None, index))
            if ex is page:
                page_response_id = response.record_id
        concurrent = [("WARC-Concurrent-To", page_response_id)] if page_response_id else []
        date = warc.warc_date(captured_at)
        if screenshot_png is not None:
            digest = warc.warc_digest(screenshot_png)
            key = ("urn:tertib:screenshot", digest)
            found = seen.get(key)
            uri = f"urn:tertib:screenshot:{url}"
            if found is not None:
                rec = warc.build_record(
                    rec_type="revisit",
                    uri=uri,
                    record_id=self._new_id(),
                    date=date,
                    content_type="image/png",
                    block=b"",
                    payload_digest=digest,
                    headers=[
                        ("WARC-Profile", warc.REVISIT_PROFILE),
                        ("WARC-Refers-To", found.record_id),
                        ("WARC-Refers-To-Target-URI", found.uri),
                        ("WARC-Refers-To-Date", found.date),
                        *concurrent,
                    ],
                    mime="image/png",
                    refers_to=found.record_id,
                )
                records.append(rec)
                extras.append({**_refers(found), "screenshot": True})
            else:
                rec = warc.build_record(
                    rec_type="resource",
                    uri=uri,
                    record_id=self._new_id(),
                    date=date,
                    content_type="image/png",
                    block=screenshot_png,
                    headers=concurrent,
                    mime="image/png",
                )
                records.append(rec)
                extras.append({"screenshot": True})
                seen.add(key, _Seen(rec.record_id, rec.uri, rec.date, None, index))
        meta = {
            "listing": dict(listing),
            "listing_key": listing.get("listing_key"),
            "url": url,
            "captured_at": captured_at.astimezone(UTC).isoformat(),
            "sweep_run_id": sweep_run_id,
            "tool": SOFTWARE,
            "observable": unobservable_reason is None,
            "unobservable_reason": unobservable_reason,
            "exchanges": [
                {
                    "url": ex.url,
                    "status": ex.status,
                    "fetched_at": ex.fetched_at.isoformat(),
                    "decoded": ex.decoded,
                    **({"egress": ex.egress} if ex.egress else {}),
                }
                for ex in exchanges
            ],
            **dict(metadata),
        }
        records.append(
            warc.build_record(
                rec_type="metadata",
                uri=f"urn:tertib:metadata:{url}",
                record_id=self._new_id(),
                date=date,
                content_type="application/json",
                block=_canonical(meta),
                headers=concurrent,
                mime="application/json",
            )
        )
        extras.append({})
        return records, extras

    def _record(self, *, entry: BatchEntry) -> int:
        """One capture or attempt: a batch of one."""
        return self._record_batch([entry], None)[0].capture_id

    def _resolve(self, entry: BatchEntry) -> _Resolved:
        """What the entry becomes: a capture, or an UNOBSERVABLE attempt when its page is a block page."""
        if entry.unobservable_reason is not None:
            page = entry.exchanges[0] if entry.exchanges else None
            return _Resolved(
                entry, entry.page_url, entry.record(), page, entry.metadata, entry.unobservable_reason
            )
        if not entry.exchanges:
            raise ValueError("a capture needs at least the listing page exchange")
        page = self._page_exchange(entry.page_url, entry.exchanges)
        reason = page.block_reason
        if reason is not None:
            logger.info("not evidence (%s): %s", reason, page.url)
            attempt = BatchEntry.unobservable(
                url=page.url,
                reason=reason,
                exchange=page,
                listing_key=entry.key,
                purpose=entry.purpose,
                sweep_run_id=entry.sweep_run_id,
                actor=entry.actor,
            )
            return _Resolved(attempt, page.url, attempt.record(), page, attempt.metadata, reason)
        return _Resolved(entry, entry.page_url or page.url, entry.record(), page, entry.metadata, None)

    def _build_all(
        self, resolved: Sequence[_Resolved], times: Sequence[datetime], base: Mapping[tuple[str, str], _Seen]
    ) -> tuple[list[_Built], dict[tuple[str, str], _Seen]]:
        added: dict[tuple[str, str], _Seen] = {}
        built: list[_Built] = []
        for index, (item, captured_at) in enumerate(zip(resolved, times, strict=True)):
            entry = item.entry
            records, extras = self._build(
                url=item.url,
                listing=item.listing,
                exchanges=entry.exchanges,
                page=item.page,
                screenshot_png=entry.screenshot_png if item.reason is None else None,
                metadata=item.metadata,
                captured_at=captured_at,
                sweep_run_id=entry.sweep_run_id,
                unobservable_reason=item.reason,
                seen=_Overlay(base, added),
                index=index,
            )
            levels = [1 if r.content_type == "image/png" else self.gzip_level for r in records]
            members = [warc.gzip_member(r.raw, lvl) for r, lvl in zip(records, levels, strict=True)]
            built.append(_Built(records, extras, members))
        return built, added

    def _record_batch(self, entries: Sequence[BatchEntry], ledger: Ledger | None) -> list[Recorded]:
        if not entries:
            if ledger is not None:
                with self.db.session() as session:
                    custody.append_many(session, ledger(session, []))
            return []
        with self._lock:
            resolved = [self._resolve(entry) for entry in entries]
            times = [self.clock() for _ in resolved]
            # 1. screenshot blobs first: content-addressed, so an orphan after a crash is harmless
            shots: list[str | None] = [
                self.blobs.put(item.entry.screenshot_png)[0]
                if item.reason is None and item.entry.screenshot_png is not None
                else None
                for item in resolved
            ]
            # 2. build every record (dedup against this file and earlier entries of the batch)
            base: Mapping[tuple[str, str], _Seen] = (
                self._seen if self._seen_generation == self.writer.generation else {}
            )
            built, added = self._build_all(resolved, times, base)
            total = sum(len(m) for b in built for m in b.members)
            own = {r.record_id for b in built for r in b.records if r.rec_type != "revisit"}
            if self.writer.will_rotate(total) and any(
                r.rec_type == "revisit" and r.refers_to not in own for b in built for r in b.records
            ):
                # the originals would be in the previous file: rebuild deduplicating within the batch only
                base = {}
                built, added = self._build_all(resolved, times, base)
            # 3. ONE append + fsync for the whole batch (uncommitted until the rows below are in)
            appended = self.writer.append([m for b in built for m in b.members])
            pos = 0
            for b in built:
                spans = appended.member_offsets[pos : pos + len(b.members)]
                pos += len(b.members)
                b.offset = spans[0][0]
                b.length = sum(length for _, length in spans)
                b.sha256 = _sha256_hex(b.members)
                b.infos = [
                    {**rec.info(), **extra, "offset": offset, "length": length}
                    for rec, extra, (offset, length) in zip(b.records, b.extras, spans, strict=True)
                ]
            # 4. one transaction: Capture rows + custody entries + the caller's ledger rows
            try:
                with self.db.session() as session:
                    recorded = self._insert(session, resolved, built, times, shots, appended)
                    specs = [
                        self._custody_spec(item, b, times[i], shots[i], appended, recorded[i].capture_id)
                        for i, (item, b) in enumerate(zip(resolved, built, strict=True))
                    ]
                    if ledger is not None:
                        specs += ledger(session, recorded)
                    _append_custody(session, specs)
            except BaseException:
                self.writer.rollback()
                raise
            # 5. committed: index it and remember what later captures in this file may revisit
            lines = [
                warc.cdxj_line(
                    info, filename=appended.path.name, offset=info["offset"], length=info["length"]
                )
                for b in built
                for info in b.infos
                if info["type"] != "request"
            ]
            self.writer.commit(appended, lines)
            resolved_added = {
                key: _Seen(
                    seen.record_id,
                    seen.uri,
                    seen.date,
                    recorded[seen.pending].capture_id if seen.pending is not None else seen.capture_id,
                )
                for key, seen in added.items()
            }
            if self._seen_generation == self.writer.generation and base is self._seen:
                self._seen.update(resolved_added)
            else:
                self._seen = resolved_added
                self._seen_generation = self.writer.generation
            logger.debug("batch of %d captures (%d bytes)", len(recorded), appended.length)
            return recorded

    def _insert(
        self,
        session: Session,
        resolved: Sequence[_Resolved],
        built: Sequence[_Built],
        times: Sequence[datetime],
        shots: Sequence[str | None],
        appended: warc.Appended,
    ) -> list[Recorded]:
        rows: list[dict[str, Any]] = []
        for item, b, captured_at, shot in zip(resolved, built, times, shots, strict=True):
            key = item.listing.get("listing_key")
            png = item.entry.screenshot_png if item.reason is None else None
            rows.append(
                {
                    "listing_key": str(key) if key else None,
                    "sweep_run_id": item.entry.sweep_run_id,
                    "purpose": item.entry.purpose,
                    "url": item.url,
                    "observable": item.reason is None,
                    "unobservable_reason": item.reason,
                    "warc_file": appended.rel_path,
                    "warc_offset": b.offset,
                    "warc_length": b.length,
                    "warc_sha256": b.sha256,
                    "records": b.infos,
                    "screenshot_sha256": shot,
                    "screenshot_bytes": len(png) if png is not None else None,
                    "metadata_json": {
                        "listing_key": key,
                        "title": item.listing.get("title"),
                        "platform": item.listing.get("platform"),
                        **{k: v for k, v in item.metadata.items() if k in ("query", "rank", "page", "score")},
                    },
                    "captured_at": captured_at,
                }
            )
        ids = insert_ids(session, table_of(Capture), rows)  # one executemany, ids in row order
        # revisits of originals written earlier in this batch name their capture now that it has an id
        patches = []
        for capture_id, b in zip(ids, built, strict=True):
            if any("refers_to_index" in info for info in b.infos):
                b.infos = [_resolve_ref(info, ids) for info in b.infos]
                patches.append({"id": capture_id, "records": b.infos})
        if patches:
            session.execute(update(Capture), patches)
        return [
            Recorded(
                capture_id=capture_id,
                listing_key=row["listing_key"],
                observable=row["observable"],
            )
            for capture_id, row in zip(ids, rows, strict=True)
        ]

    @staticmethod
    def _custody_spec(
        item: _Resolved,
        b: _Built,
        captured_at: datetime,
        shot: str | None,
        appended: warc.Appended,
        capture_id: int,
    ) -> custody.EntrySpec:
        return custody.EntrySpec(
            actor=item.entry.actor,
            action="capture",
            object_type="capture",
            object_id=capture_id,
            object_digest=b.sha256,
            details={
                "warc_file": appended.rel_path,
                "offset": b.offset,
                "length": b.length,
                "screenshot_sha256": shot,
                "listing_key": item.listing.get("listing_key"),
                "url": item.url,
                "observable": item.reason is None,
                "purpose": item.entry.purpose,
            },
            at=captured_at,
        )


def _append_custody(session: Session, specs: list[custody.EntrySpec]) -> None:
    """A batch's custody entries from one head read; a single entry goes through ``custody.append``."""
    if len(specs) == 1:
        spec = specs[0]
        custody.append(
            session,
            actor=spec.actor,
            action=spec.action,
            object_type=spec.object_type,
            object_id=spec.object_id,
            object_digest=spec.object_digest,
            details=spec.details,
            at=spec.at,
        )
    else:
        custody.append_many(session, specs)


def _refers(found: _Seen) -> dict[str, Any]:
    """The ``records`` entry naming the capture that holds a revisit's original (pending: by batch index)."""
    if found.pending is not None:
        return {"refers_to_index": found.pending}
    return {"refers_to_capture": found.capture_id}


def _resolve_ref(info: dict[str, Any], ids: Sequence[int]) -> dict[str, Any]:
    if "refers_to_index" not in info:
        return info
    return {
        ("refers_to_capture" if k == "refers_to_index" else k): (ids[v] if k == "refers_to_index" else v)
        for k, v in info.items()
    }
