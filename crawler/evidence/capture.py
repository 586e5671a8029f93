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

Then (the commit protocol): the members are appended and fsynced; the ``Capture`` row (file, offset,
length, SHA-256 of the byte range, per-record offsets and digests) and a ``capture`` custody entry (object
digest = that SHA-256) are committed in one transaction; only then is the range indexed (CDXJ). If the
transaction fails the bytes are truncated away; if the process dies, the next recorder truncates them
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
for size. Heavy work can leave the reactor thread: ``await recorder.arecord_capture(...)`` runs on the
recorder's single writer thread (zlib and hashlib release the GIL). To add a record kind, build it in
:meth:`EvidenceRecorder._build` and give it a ``records`` entry; verify and bundles follow ``records``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from crawler import __version__
from crawler.config import Settings
from crawler.evidence import warc
from storage import custody
from storage.blobs import BlobStore
from storage.db import Database
from storage.models import Capture
from storage.models import Listing as ListingRow

logger = logging.getLogger(__name__)

SOFTWARE = f"tertib/{__version__} (warc writer: crawler.evidence)"
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

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.response_headers if k.lower() == lname), None)


# Generic block markers (docs/contracts.md "Block markers"); site profiles in spiders/ are more precise.
_BLOCK_TEXT = [
    (re.compile(rb"verify you are human", re.I), "captcha"),
    (re.compile(rb"<title>\s*Access Denied", re.I), "akamai"),
    (re.compile(rb"<title>\s*Security Check", re.I), "captcha"),
    (re.compile(rb"captcha_container|g-recaptcha|h-captcha", re.I), "captcha"),
    (re.compile(rb"slide to verify|x5secdata", re.I), "slider"),
    (re.compile(rb'"rgv587_flag"'), "slider"),
    (re.compile(rb'"error"\s*:\s*90309999'), "signature"),
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
    for text_pattern, reason in _BLOCK_TEXT:
        if text_pattern.search(head):
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


@dataclass
class _Seen:
    record_id: str
    uri: str
    date: str
    capture_id: int | None
    generation: int


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
        self.blobs = BlobStore(settings.blob_dir)
        self.writer = warc.WarcFileWriter(
            settings.warc_dir,
            settings.data_dir,
            max_bytes=settings.warc_max_bytes,
            clock=self.clock,
            id_factory=self.id_factory,
            software=SOFTWARE,
            gzip_level=gzip_level,
        )
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._executor: ThreadPoolExecutor | None = None
        self.recovered = warc.recover(settings.warc_dir, self._db_end)

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
        if not exchanges:
            raise ValueError("a capture needs at least the listing page exchange")
        page = self._page_exchange(listing, exchanges)
        reason = detect_block(page)
        if reason is not None:
            logger.info("not evidence (%s): %s", reason, page.url)
            return self.record_unobservable(
                url=page.url,
                reason=reason,
                exchange=page,
                listing_key=listing.get("listing_key"),
                purpose=purpose,
                sweep_run_id=sweep_run_id,
                actor=actor,
            )
        return self._record(
            url=str(listing.get("url") or page.url),
            listing=listing,
            exchanges=exchanges,
            page=page,
            screenshot_png=screenshot_png,
            metadata=metadata,
            purpose=purpose,
            sweep_run_id=sweep_run_id,
            actor=actor,
            unobservable_reason=None,
        )

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
        return self._record(
            url=url,
            listing={"listing_key": listing_key, "url": url} if listing_key else {"url": url},
            exchanges=[exchange] if exchange else [],
            page=exchange,
            screenshot_png=None,
            metadata={"unobservable_reason": reason},
            purpose=purpose,
            sweep_run_id=sweep_run_id,
            actor=actor,
            unobservable_reason=reason,
        )

    async def arecord_capture(self, **kwargs: Any) -> int:
        """:meth:`record_capture` on the writer thread, so gzip/hashing/fsync leave the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), lambda: self.record_capture(**kwargs))

    async def arecord_unobservable(self, **kwargs: Any) -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), lambda: self.record_unobservable(**kwargs))

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
        generation: int,
    ) -> tuple[list[warc.BuiltRecord], list[dict[str, Any]], list[tuple[tuple[str, str], warc.BuiltRecord]]]:
        """Build the capture's records; returns (records, extra info per record, new dedup keys)."""
        records: list[warc.BuiltRecord] = []
        extras: list[dict[str, Any]] = []
        new_keys: list[tuple[tuple[str, str], warc.BuiltRecord]] = []
        page_response_id: str | None = None
        for ex in exchanges:
            block, offset = http_response_block(ex)
            payload_digest = warc.warc_digest(ex.body)
            key = (ex.url, payload_digest)
            seen = self._seen.get(key)
            mime = (ex.header("content-type") or "").split(";")[0].strip() or None
            date = warc.warc_date(ex.fetched_at)
            if seen is not None and seen.generation == generation:
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
                        ("WARC-Refers-To", seen.record_id),
                        ("WARC-Refers-To-Target-URI", seen.uri),
                        ("WARC-Refers-To-Date", seen.date),
                    ],
                    http_status=ex.status,
                    mime=mime,
                    refers_to=seen.record_id,
                )
                records.append(rec)
                extras.append({"refers_to_capture": seen.capture_id})
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
                headers=[("WARC-Concurrent-To", response.record_id)],
            )
            records += [response, request]
            extras += [{}, {}]
            new_keys.append((key, response))
            if ex is page:
                page_response_id = response.record_id
        concurrent = [("WARC-Concurrent-To", page_response_id)] if page_response_id else []
        date = warc.warc_date(captured_at)
        if screenshot_png is not None:
            digest = warc.warc_digest(screenshot_png)
            key = ("urn:tertib:screenshot", digest)
            seen = self._seen.get(key)
            uri = f"urn:tertib:screenshot:{url}"
            if seen is not None and seen.generation == generation:
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
                        ("WARC-Refers-To", seen.record_id),
                        ("WARC-Refers-To-Target-URI", seen.uri),
                        ("WARC-Refers-To-Date", seen.date),
                        *concurrent,
                    ],
                    mime="image/png",
                    refers_to=seen.record_id,
                )
                records.append(rec)
                extras.append({"refers_to_capture": seen.capture_id, "screenshot": True})
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
                new_keys.append((key, rec))
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
        return records, extras, new_keys

    def _record(
        self,
        *,
        url: str,
        listing: Mapping[str, Any],
        exchanges: Sequence[HttpExchange],
        page: HttpExchange | None,
        screenshot_png: bytes | None,
        metadata: Mapping[str, Any],
        purpose: str,
        sweep_run_id: int | None,
        actor: str,
        unobservable_reason: str | None,
    ) -> int:
        with self._lock:
            captured_at = self.clock()
            # 1. screenshot blob first: content-addressed, so an orphan after a crash is harmless
            shot_key: str | None = None
            if screenshot_png is not None:
                shot_key, _ = self.blobs.put(screenshot_png)
            # 2. build the records (dedup against this file; a rotation starts a new dedup map)
            generation = self.writer.generation
            records, extras, new_keys = self._build(
                url=url,
                listing=listing,
                exchanges=exchanges,
                page=page,
                screenshot_png=screenshot_png,
                metadata=metadata,
                captured_at=captured_at,
                sweep_run_id=sweep_run_id,
                unobservable_reason=unobservable_reason,
                generation=generation,
            )
            levels = [1 if r.content_type == "image/png" else self.gzip_level for r in records]
            members = [warc.gzip_member(r.raw, lvl) for r, lvl in zip(records, levels, strict=True)]
            if self.writer.will_rotate(sum(len(m) for m in members)) and any(
                r.rec_type == "revisit" for r in records
            ):
                # the originals would be in the previous file: rebuild without deduplication
                generation = -1
                records, extras, new_keys = self._build(
                    url=url,
                    listing=listing,
                    exchanges=exchanges,
                    page=page,
                    screenshot_png=screenshot_png,
                    metadata=metadata,
                    captured_at=captured_at,
                    sweep_run_id=sweep_run_id,
                    unobservable_reason=unobservable_reason,
                    generation=generation,
                )
                levels = [1 if r.content_type == "image/png" else self.gzip_level for r in records]
                members = [warc.gzip_member(r.raw, lvl) for r, lvl in zip(records, levels, strict=True)]
            # 3. append + fsync (uncommitted until the row below is in)
            appended = self.writer.append(members)
            infos = []
            for rec, extra, (offset, length) in zip(records, extras, appended.member_offsets, strict=True):
                infos.append({**rec.info(), **extra, "offset": offset, "length": length})
            # 4. one transaction: Capture row + custody entry; on failure drop the appended bytes
            try:
                with self.db.session() as session:
                    listing_key = listing.get("listing_key")
                    listing_id = (
                        session.scalar(select(ListingRow.id).where(ListingRow.listing_key == listing_key))
                        if listing_key
                        else None
                    )
                    capture = Capture(
                        listing_id=listing_id,
                        sweep_run_id=sweep_run_id,
                        purpose=purpose,
                        url=url,
                        observable=unobservable_reason is None,
                        unobservable_reason=unobservable_reason,
                        warc_file=appended.rel_path,
                        warc_offset=appended.offset,
                        warc_length=appended.length,
                        warc_sha256=appended.sha256,
                        records=infos,
                        screenshot_sha256=shot_key,
                        screenshot_bytes=len(screenshot_png) if screenshot_png is not None else None,
                        metadata_json={
                            "listing_key": listing_key,
                            "title": listing.get("title"),
                            "platform": listing.get("platform"),
                            **{k: v for k, v in metadata.items() if k in ("query", "rank", "page", "score")},
                        },
                        captured_at=captured_at,
                    )
                    session.add(capture)
                    session.flush()
                    capture_id = capture.id
                    custody.append(
                        session,
                        actor=actor,
                        action="capture",
                        object_type="capture",
                        object_id=capture_id,
                        object_digest=appended.sha256,
                        details={
                            "warc_file": appended.rel_path,
                            "offset": appended.offset,
                            "length": appended.length,
                            "screenshot_sha256": shot_key,
                            "listing_key": listing_key,
                            "url": url,
                            "observable": unobservable_reason is None,
                            "purpose": purpose,
                        },
                        at=captured_at,
                    )
            except BaseException:
                self.writer.rollback()
                raise
            # 5. committed: index it and remember what later captures in this file may revisit
            lines = [
                warc.cdxj_line(
                    info, filename=appended.path.name, offset=info["offset"], length=info["length"]
                )
                for info in infos
                if info["type"] != "request"
            ]
            self.writer.commit(appended, lines)
            if generation == self.writer.generation:
                for key, rec in new_keys:
                    self._seen[key] = _Seen(rec.record_id, rec.uri, rec.date, capture_id, generation)
            else:
                self._seen = {
                    key: _Seen(rec.record_id, rec.uri, rec.date, capture_id, self.writer.generation)
                    for key, rec in new_keys
                }
            logger.debug("capture %s: %s (%d bytes)", capture_id, url, appended.length)
            return capture_id
