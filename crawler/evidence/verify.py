"""Re-check stored evidence: WARC bytes, record digests, screenshot blobs, custody chain, batch manifests.

:func:`verify` checks, for the captures in scope (``capture_ids``, a batch's items, or ``all``):

1. the capture's WARC byte range exists and hashes to ``Capture.warc_sha256`` and to the custody entry's
   object digest (so changing both the file and the row is still caught by the hash-chained log);
2. every record in the range, re-read with warcio's digest checking, matches its ``WARC-Block-Digest`` and
   ``WARC-Payload-Digest`` and the ids/digests listed in ``Capture.records``; a revisit's original exists;
3. the screenshot blob exists, hashes to its key, and equals the screenshot record's payload digest;
4. the whole custody chain (``storage.custody.verify``);
5. takedown batches in scope: ``manifest.json`` in ``TakedownBatch.out_dir`` hashes to
   ``manifest_sha256`` and its Ed25519 signature (``manifest.sig`` and/or ``TakedownBatch.signature``)
   verifies with the installation's public key.

Every problem names the object (capture id + record id, blob key, custody sequence, batch number) and
what differs. Finally a ``verify`` custody entry records the scope, counts and result (pass
``record=False`` to skip, e.g. for read-only checks). Bytes after the last committed capture of an
unclosed WARC file (a crashed writer's torn tail) are not evidence and are not checked; the next
recorder truncates them.

Settings: ``Settings.data_dir`` (WARC paths are relative to it), ``blob_dir``, ``keys_dir``
(``tertib-signing.pub``). To check a new kind of object, add a ``_check_*`` function that appends
:class:`Problem` entries and call it from :func:`verify`.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import logging
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from crawler.config import Settings
from crawler.errors import NotFound, UsageError
from crawler.evidence import signing, warc
from storage import custody
from storage.db import Database
from storage.evidence_store import EvidenceStore, open_store
from storage.models import Capture, CustodyEntry, TakedownBatch, TakedownItem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    kind: str  # warc / record / screenshot / custody / manifest
    obj: str  # what it is about, e.g. "capture 12", "custody entry 7", "batch TTB-2026-0001"
    message: str

    def __str__(self) -> str:
        return f"{self.obj}: {self.message}"


@dataclass
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)
    captures: int = 0
    records: int = 0
    screenshots: int = 0
    custody_entries: int = 0
    batches: int = 0
    scope: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, kind: str, obj: str, message: str) -> None:
        self.problems.append(Problem(kind, obj, message))

    def summary(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "captures": self.captures,
            "records": self.records,
            "screenshots": self.screenshots,
            "custody_entries": self.custody_entries,
            "batches": self.batches,
            "problems": len(self.problems),
        }


def resolve_warc(settings: Settings, rel: str) -> Path:
    path = Path(rel)
    return path if path.is_absolute() else settings.data_dir / path


def read_range(settings: Settings, capture: Capture, store: EvidenceStore | None = None) -> bytes:
    """The capture's recorded byte range, from local disk or the evidence store (S3)."""
    assert (
        capture.warc_file is not None and capture.warc_offset is not None and capture.warc_length is not None
    )
    store = store or open_store(settings, check=False)
    return store.read_range(capture.warc_file, capture.warc_offset, capture.warc_length)


def _b32_hex(digest: str) -> str:
    algo, _, value = digest.partition(":")
    if algo != "sha256":
        return ""
    try:
        return base64.b32decode(value).hex()
    except ValueError:
        return ""


def _check_record(
    raw: bytes, info: dict[str, Any], label: str, capture: Capture, report: VerifyReport
) -> None:
    try:
        records = list(_iter_checked(raw))
    except (ArchiveLoadFailed, ValueError, EOFError) as exc:
        report.add("record", label, f"not a readable WARC record: {str(exc)[:120]!r}")
        return
    if len(records) != 1:
        report.add("record", label, f"member holds {len(records)} records, expected 1")
        return
    headers, rtype, payload, problems = records[0]
    report.records += 1
    for problem in problems:
        report.add("record", label, problem)
    if headers.get("WARC-Record-ID") != info.get("record_id"):
        report.add("record", label, f"record id in the WARC is {headers.get('WARC-Record-ID')}")
    if headers.get("WARC-Payload-Digest") != info.get("payload_digest"):
        report.add("record", label, "payload digest differs from the capture row")
    if (
        rtype == "resource"
        and info.get("screenshot")
        and capture.screenshot_sha256
        and hashlib.sha256(payload).hexdigest() != capture.screenshot_sha256
    ):
        report.add("screenshot", label, "screenshot record differs from the blob key")


def _iter_checked(raw: bytes) -> Iterator[tuple[dict[str, str], str, bytes, list[str]]]:
    for record in ArchiveIterator(io.BytesIO(raw), check_digests=True):
        payload = record.content_stream().read()
        headers = dict(record.rec_headers.headers)
        problems = list(record.digest_checker.problems) if record.digest_checker.passed is False else []
        yield headers, record.rec_type, payload, problems


def _check_capture(
    settings: Settings,
    store: EvidenceStore,
    capture: Capture,
    custody_digest: str | None,
    report: VerifyReport,
) -> None:
    name = f"capture {capture.id}"
    report.captures += 1
    # 1. the byte range against the row and the custody entry
    if capture.warc_file is None or capture.warc_offset is None or capture.warc_length is None:
        return
    offset = capture.warc_offset
    try:
        data = read_range(settings, capture, store)
    except NotFound:
        report.add("warc", name, f"WARC file {capture.warc_file} is missing")
        return
    if len(data) != capture.warc_length:
        report.add("warc", name, f"{capture.warc_file} is shorter than the recorded range (truncated)")
        return
    actual = hashlib.sha256(data).hexdigest()
    if actual != capture.warc_sha256:
        report.add(
            "warc",
            name,
            f"bytes {offset}..{offset + len(data)} of {capture.warc_file} changed "
            f"(sha256 {actual[:16]}…, recorded {str(capture.warc_sha256)[:16]}…)",
        )
    if custody_digest is None:
        report.add("custody", name, "no capture entry in the custody log")
    elif custody_digest != capture.warc_sha256:
        report.add("custody", name, "recorded WARC sha256 differs from the custody log's object digest")
    # 2. every record, member by member, with warcio's digest checks
    covered = 0
    for info in capture.records or []:
        record_id = info.get("record_id", "?")
        label = f"{name} record {record_id} ({info.get('type')} {info.get('uri')})"
        start = int(info.get("offset", -1)) - offset
        length = int(info.get("length", 0))
        member = data[start : start + length] if start >= 0 else b""
        covered += length
        if len(member) != length or length == 0:
            report.add("record", label, "lies outside the capture's byte range")
            continue
        try:
            raw = gzip.decompress(member)
        except (OSError, EOFError, zlib.error):
            report.add("record", label, f"gzip member at offset {info.get('offset')} is corrupt")
            continue
        _check_record(raw, info, label, capture, report)
    if covered != len(data):
        report.add("warc", name, f"records cover {covered} of {len(data)} bytes in the range")
    # 3. the screenshot blob
    if capture.screenshot_sha256:
        report.screenshots += 1
        problem = store.blobs.check(capture.screenshot_sha256)
        if problem:
            report.add("screenshot", name, problem)
        shot = next((r for r in capture.records or [] if r.get("screenshot")), None)
        if shot is not None and _b32_hex(shot.get("payload_digest", "")) != capture.screenshot_sha256:
            report.add("screenshot", name, "screenshot record digest differs from the blob key")


def _check_revisits(session: Session, captures: Sequence[Capture], report: VerifyReport) -> None:
    wanted = {
        r["refers_to_capture"]: r["refers_to"]
        for c in captures
        for r in c.records or []
        if r.get("type") == "revisit" and r.get("refers_to_capture") is not None
    }
    for capture_id, record_id in wanted.items():
        original = session.get(Capture, capture_id)
        if original is None or not any(r.get("record_id") == record_id for r in original.records or []):
            report.add("record", f"capture {capture_id}", f"revisited original record {record_id} is missing")


def _check_batch(settings: Settings, batch: TakedownBatch, report: VerifyReport) -> None:
    name = f"batch {batch.number}"
    report.batches += 1
    if not batch.out_dir:
        if batch.manifest_sha256:
            report.add("manifest", name, "manifest digest recorded but the batch has no output directory")
        return
    manifest = Path(batch.out_dir) / "manifest.json"
    if not manifest.is_file():
        if batch.manifest_sha256:
            report.add("manifest", name, f"{manifest} is missing")
        return
    data = manifest.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if batch.manifest_sha256 and digest != batch.manifest_sha256:
        report.add(
            "manifest",
            name,
            f"{manifest} changed (sha256 {digest[:16]}…, recorded {batch.manifest_sha256[:16]}…)",
        )
    signatures: list[tuple[str, str]] = []
    sig_file = manifest.with_name("manifest.sig")
    if sig_file.is_file():
        signatures.append((str(sig_file), _signature_hex(sig_file.read_bytes())))
    if batch.signature:
        signatures.append(("TakedownBatch.signature", batch.signature.strip()))
    if not signatures:
        return
    public = settings.keys_dir / signing.PUBLIC_NAME
    try:
        key = signing.load_public_key(public)
    except signing.KeyError_ as exc:
        report.add("manifest", name, str(exc))
        return
    for where, sig in signatures:
        if not signing.verify_signature(key, data, sig):
            report.add("manifest", name, f"signature in {where} does not verify for {manifest.name}")


def _signature_hex(raw: bytes) -> str:
    """``manifest.sig`` may hold hex (our convention), base64, or the raw 64 signature bytes."""
    text = raw.strip()
    if len(raw) == 64 and not all(32 <= b < 127 for b in raw):
        return raw.hex()
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        return raw.hex()
    if len(decoded) == 128 and all(c in "0123456789abcdefABCDEF" for c in decoded):
        return decoded.lower()
    try:
        return base64.b64decode(decoded, validate=True).hex()
    except ValueError:
        return decoded


def verify(
    db: Database,
    settings: Settings,
    *,
    capture_ids: Sequence[int] | None = None,
    batch_id: int | None = None,
    all: bool = False,
    actor: str = "tertib",
    record: bool = True,
) -> VerifyReport:
    """Check the evidence in scope; returns the report (``.ok``, ``.problems``)."""
    if not all and batch_id is None and not capture_ids:
        raise UsageError("say what to verify: --all, --batch ID or --capture ID")
    report = VerifyReport()
    store = open_store(settings)
    with db.session() as session:
        batches: list[TakedownBatch] = []
        if all:
            report.scope = "all"
            captures = list(session.scalars(select(Capture).order_by(Capture.id)))
            batches = list(session.scalars(select(TakedownBatch).order_by(TakedownBatch.id)))
        else:
            ids = list(capture_ids or [])
            scope = []
            if batch_id is not None:
                batch = session.get(TakedownBatch, batch_id)
                if batch is None:
                    raise NotFound(f"no takedown batch with id {batch_id}")
                batches.append(batch)
                ids += [
                    cid
                    for cid in session.scalars(
                        select(TakedownItem.capture_id).where(TakedownItem.batch_id == batch_id)
                    )
                    if cid is not None
                ]
                scope.append(f"batch {batch.number}")
            if capture_ids:
                scope.append("captures " + ",".join(str(c) for c in capture_ids))
            report.scope = "; ".join(scope)
            captures = list(session.scalars(select(Capture).where(Capture.id.in_(ids)).order_by(Capture.id)))
            missing = sorted(set(ids) - {c.id for c in captures})
            for cid in missing:
                report.add("warc", f"capture {cid}", "no such capture row")
        digests = {
            entry.object_id: entry.object_digest
            for entry in session.scalars(
                select(CustodyEntry).where(
                    CustodyEntry.action == "capture", CustodyEntry.object_type == "capture"
                )
            )
        }
        for capture in captures:
            _check_capture(settings, store, capture, digests.get(str(capture.id)), report)
        _check_revisits(session, captures, report)
        # 4. the custody chain, whole
        for chain_problem in custody.verify(session):
            report.add("custody", f"custody entry {chain_problem.seq}", chain_problem.problem)
        report.custody_entries = custody.head(session)[0]
        for batch in batches:
            _check_batch(settings, batch, report)
    # 6. record that a verification ran (after the checks, so it never verifies itself)
    if record:
        with db.session() as session:
            summary = report.summary()
            custody.append(
                session,
                actor=actor,
                action="verify",
                object_type="verification",
                object_id=report.scope or "-",
                object_digest=hashlib.sha256(
                    json.dumps([str(p) for p in report.problems], ensure_ascii=False).encode("utf-8")
                ).hexdigest(),
                details={
                    **summary,
                    "ok": report.ok,
                    "first_problems": [str(p) for p in report.problems[:20]],
                },
            )
    logger.info("verify %s: %s", report.scope, report.summary())
    return report


# Re-exported for readers of a bundle's records.
digest_to_hex = warc.digest_to_hex
