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

Bodies: ``HttpExchange.body`` is the entity body as received. When the caller could only get a decoded
body (Playwright's ``response.body()`` removes content- and transfer-encoding) it sets ``decoded=True``;
the recorder then renames ``Content-Encoding``/``Transfer-Encoding``/``Content-Length`` to
``X-Archive-Orig-*`` (pywb's convention) so the stored headers describe the stored bytes truthfully.

Block pages are not evidence: a page exchange that looks like a block, captcha or login wall
(:func:`detect_block`, generic markers from docs/contracts.md; the spiders' site profiles decide first and
call :meth:`record_unobservable` themselves) is stored as an UNOBSERVABLE attempt (``observable=False``).

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
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crawler import __version__
from crawler.config import Settings
from crawler.evidence import warc
from storage import custody
from storage.bulk import insert_ids, table_of
from storage.db import Database
from storage.evidence_store import open_store
from storage.models import Capture
from storage.models import Listing as ListingRow

logger = logging.getLogger(__name__)

SOFTWARE = f"tertib/{__version__} (warc writer: crawler.evidence)"
# The egress that fetched an exchange (crawler.proxies: a proxy URL without credentials, or "direct"): an
# extension header on the exchange's request/response/revisit records (WARC 1.1 allows named extensions).
EGRESS_HEADER = "Tertib-Egress"
_DECODED_HEADERS = ("content-encoding", "transfer-encoding", "content-length")


@dataclass(frozen=True)
class HttpExchange:
    """One HTTP request and its response as received (see the module docstring for ``decoded``)."""

    url: str
    method: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    status: int
    reason: str
    response_headers: list[tuple[str, str]]
    body: bytes
    fetched_at: datetime
    protocol: str = "HTTP/1.1"
    decoded: bool = False
    egress: str = ""  # which proxy fetched it ("http://host:port", never credentials), "direct", or unknown

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.response_headers if k.lower() == lname), None)

    # Derived once per exchange: a search response shared by many candidates is one HttpExchange object
    # (``RunContext`` reuses it), so its digest, block check and HTTP blocks are computed once, not per
    # candidate.
    @cached_property
    def payload_digest(self) -> str:
        return warc.warc_digest(self.body)

    @cached_property
    def block_reason(self) -> str | None:
        return detect_block(self)

    @cached_property
    def response_block(self) -> tuple[bytes, int]:
        return http_response_block(self)


# Generic block markers (docs/contracts.md "Block markers"); site profiles in spiders/ are more precise.
# Each marker has literals that must occur for its pattern to match (checked first with a plain substring
# search — case-folded for the re.I patterns — so a normal page costs no regex scan of its 200 KB head).
_BLOCK_TEXT: list[tuple[tuple[bytes, ...], bool, re.Pattern[bytes], str]] = [
    ((b"verify you are human",), True, re.compile(rb"verify you are human", re.I), "captcha"),
    ((b"access denied",), True, re.compile(rb"<title>\s*Access Denied", re.I), "akamai"),
    ((b"security check",), True, re.compile(rb"<title>\s*Security Check", re.I), "captcha"),
    (
        (b"captcha_container", b"g-recaptcha", b"h-captcha"),
        True,
        re.compile(rb"captcha_container|g-recaptcha|h-captcha", re.I),
        "captcha",
    ),
    ((b"slide to verify", b"x5secdata"), True, re.compile(rb"slide to verify|x5secdata", re.I), "slider"),
    ((b'"rgv587_flag"',), False, re.compile(rb'"rgv587_flag"'), "slider"),
    ((b"90309999",), False, re.compile(rb'"error"\s*:\s*90309999'), "signature"),
]
_BLOCK_PATHS = [
    (re.compile(r"/verify/(captcha|traffic)"), "captcha"),
    (re.compile(r"/buyer/login|/login/|/accounts/login"), "login_wall"),
]


def detect_block(exchange: HttpExchange) -> str | None:
    """A short reason when the exchange is a block/captcha/login page rather than content, else None."""
    if exchange.status == 429:
        return "rate_limited"
    if exchange.status >= 500:
        return f"http_{exchange.status}"
    if exchange.status in (401, 403, 407):
        return f"http_{exchange.status}"
    location = exchange.header("location") or ""
    path = urlsplit(exchange.url).path
    for pattern, reason in _BLOCK_PATHS:
        if pattern.search(path) or (300 <= exchange.status < 400 and pattern.search(location)):
            return reason
    head = exchange.body[:200_000]
    folded = head.lower()
    for literals, fold, text_pattern, reason in _BLOCK_TEXT:
        haystack = folded if fold else head
        if any(literal in haystack for literal in literals) and text_pattern.search(head):
            return reason
    return None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _uuid() -> str:
    return str(uuid.uuid4())


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode(
        "utf-8"
    )


def _request_target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def http_request_block(ex: HttpExchange) -> tuple[bytes, int]:
    headers = list(ex.request_headers)
    if not any(k.lower() == "host" for k, _ in headers):
        headers.insert(0, ("Host", urlsplit(ex.url).netloc))
    head = f"{ex.method.upper()} {_request_target(ex.url)} {ex.protocol}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers if not k.startswith(":")) + "\r\n"
    raw = head.encode("iso-8859-1", "replace")
    return raw + ex.request_body, len(raw)


def http_response_block(ex: HttpExchange) -> tuple[bytes, int]:
    headers: list[tuple[str, str]] = []
    for name, value in ex.response_headers:
        if name.startswith(":"):
            continue  # HTTP/2 pseudo-headers are not HTTP/1 header lines
        if ex.decoded and name.lower() in _DECODED_HEADERS:
            name = f"X-Archive-Orig-{name}"
        headers.append((name, value.replace("\r", " ").replace("\n", " ")))
    if ex.decoded:
        headers.append(("Content-Length", str(len(ex.body))))
    protocol = ex.protocol if ex.protocol.upper().startswith("HTTP/") else "HTTP/1.1"
    head = f"{protocol} {ex.status} {ex.reason or ''}".rstrip() + "\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    raw = head.encode("iso-8859-1", "replace")
    return raw + ex.body, len(raw)


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

    ``listing_id``: the ``Listing`` row when the caller knows it (a recheck); otherwise it is looked up by
    ``listing["listing_key"]`` in the batch's transaction (and may be None for a listing not stored yet).
    """

    listing: Mapping[str, Any]
    exchanges: Sequence[HttpExchange]
    screenshot_png: bytes | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    purpose: str = "sweep"
    sweep_run_id: int | None = None
    actor: str = "tertib"
    unobservable_reason: str | None = None
    url: str | None = None
    listing_id: int | None = None

    @classmethod
    def unobservable(
        cls,
        *,
        url: str,
        reason: str,
        exchange: HttpExchange | None,
        listing_key: str | None,
        purpose: str = "sweep",
        sweep_run_id: int | None = None,
        actor: str = "tertib",
        listing_id: int | None = None,
    ) -> BatchEntry:
        return cls(
            listing={"listing_key": listing_key, "url": url} if listing_key else {"url": url},
            exchanges=[exchange] if exchange else [],
            metadata={"unobservable_reason": reason},
            purpose=purpose,
            sweep_run_id=sweep_run_id,
            actor=actor,
            unobservable_reason=reason,
            url=url,
            listing_id=listing_id,
        )


@dataclass(frozen=True)
class Recorded:
    """What a batch committed for one entry (same order as the entries)."""

    capture_id: int
    listing_id: int | None
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
    page: HttpExchange | None
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
        listing: Mapping[str, Any],
        exchanges: Sequence[HttpExchange],
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
        exchange: HttpExchange | None,
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
    def _page_exchange(listing: Mapping[str, Any], exchanges: Sequence[HttpExchange]) -> HttpExchange:
        url = listing.get("url")
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
        exchanges: Sequence[HttpExchange],
        page: HttpExchange | None,
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
            url = entry.url or str(entry.listing.get("url") or "")
            return _Resolved(entry, url, entry.listing, page, entry.metadata, entry.unobservable_reason)
        if not entry.exchanges:
            raise ValueError("a capture needs at least the listing page exchange")
        page = self._page_exchange(entry.listing, entry.exchanges)
        reason = page.block_reason
        if reason is not None:
            logger.info("not evidence (%s): %s", reason, page.url)
            key = entry.listing.get("listing_key")
            return _Resolved(
                BatchEntry.unobservable(
                    url=page.url,
                    reason=reason,
                    exchange=page,
                    listing_key=key,
                    purpose=entry.purpose,
                    sweep_run_id=entry.sweep_run_id,
                    actor=entry.actor,
                    listing_id=entry.listing_id,
                ),
                page.url,
                {"listing_key": key, "url": page.url} if key else {"url": page.url},
                page,
                {"unobservable_reason": reason},
                reason,
            )
        url = str(entry.listing.get("url") or page.url)
        return _Resolved(entry, url, entry.listing, page, entry.metadata, None)

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
        keys = {
            str(item.listing.get("listing_key"))
            for item in resolved
            if item.entry.listing_id is None and item.listing.get("listing_key")
        }
        known: dict[str, int] = (
            {
                key: lid
                for key, lid in session.execute(
                    select(ListingRow.listing_key, ListingRow.id).where(ListingRow.listing_key.in_(keys))
                )
            }
            if keys
            else {}
        )
        rows: list[dict[str, Any]] = []
        for item, b, captured_at, shot in zip(resolved, built, times, shots, strict=True):
            key = item.listing.get("listing_key")
            listing_id = item.entry.listing_id if item.entry.listing_id is not None else known.get(str(key))
            png = item.entry.screenshot_png if item.reason is None else None
            rows.append(
                {
                    "listing_id": listing_id,
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
                listing_id=row["listing_id"],
                listing_key=item.listing.get("listing_key"),
                observable=item.reason is None,
            )
            for capture_id, row, item in zip(ids, rows, resolved, strict=True)
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
