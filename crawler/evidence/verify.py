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
from collections import Counter
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
from crawler.exports.manifest import read_anchor, verify_batch_dir
from storage import custody
from storage.db import Database
from storage.evidence_store import EvidenceStore, open_store
from storage.models import (
    BatchSend,
    Capture,
    CustodyEntry,
    Recheck,
    ReviewDecision,
    TakedownBatch,
    TakedownItem,
)

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
    decisions: int = 0
    warc_files: int = 0
    file_records: int = 0
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
            "decisions": self.decisions,
            "warc_files": self.warc_files,
            "file_records": self.file_records,
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


def _check_batch(
    settings: Settings, batch: TakedownBatch, report: VerifyReport, trusted_key: Path | None
) -> tuple[int, str] | None:
    """The batch directory exactly as ``tertib export verify`` checks it, plus the row's digest and
    signature; returns the manifest's custody anchor (checked against the chain by the caller)."""
    name = f"batch {batch.number}"
    report.batches += 1
    if not batch.out_dir:
        if batch.manifest_sha256:
            report.add("manifest", name, "manifest digest recorded but the batch has no output directory")
        return None
    directory = Path(batch.out_dir)
    manifest = directory / "manifest.json"
    if not manifest.is_file():
        report.add("manifest", name, f"{manifest} is missing")
        return None
    data = manifest.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if batch.manifest_sha256 and digest != batch.manifest_sha256:
        report.add(
            "manifest",
            name,
            f"{manifest} changed (sha256 {digest[:16]}…, recorded {batch.manifest_sha256[:16]}…)",
        )
    # the files, the signature (with the installation's key only: a key beside the files is not trust),
    # the evidence bundle inside: the same code as `tertib export verify`
    for problem in verify_batch_dir(directory, installation_key=trusted_key):
        report.add("batch file", name, problem)
    if batch.signature and trusted_key is not None and trusted_key.is_file():
        try:
            key = signing.load_public_key(trusted_key)
        except signing.KeyError_ as exc:
            report.add("manifest", name, str(exc))
        else:
            if not signing.verify_signature(key, data, batch.signature.strip()):
                report.add("manifest", name, "TakedownBatch.signature does not verify for manifest.json")
    return read_anchor(data)


# -- whole WARC files ------------------------------------------------------------------------------


def _read_sidecar(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    sidecar = warc.sidecar_path(path)
    if not sidecar.is_file():
        return None, f"sidecar {sidecar.name} is missing"
    try:
        state = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return None, f"sidecar {sidecar.name} is unreadable ({type(exc).__name__})"
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("warcinfo_length"), int)
        or isinstance(state.get("warcinfo_length"), bool)
        or not isinstance(state.get("closed"), bool)
    ):
        return None, f"sidecar {sidecar.name} does not hold warcinfo_length and closed"
    return state, None


def _check_warcinfo(path: Path, rel: str, state: dict[str, Any] | None, report: VerifyReport) -> None:
    """The file's first record: it inflates, it is the warcinfo, its digests hold, the sidecar agrees."""
    name = f"WARC file {rel}"
    first = next(warc.scan_members(path, min(path.stat().st_size, 1 << 20)), None)
    if first is None:
        report.add("warc", name, "is empty (no warcinfo record)")
        return
    if first.error:
        report.add("warc", f"{name} warcinfo record", f"{first.error} at offset 0")
        return
    _check_warcinfo_member(first, name, state, report)


def _check_warcinfo_member(
    member: warc.ScannedMember, name: str, state: dict[str, Any] | None, report: VerifyReport
) -> None:
    _check_raw_record(member.raw, f"{name} warcinfo record (offset 0)", report, want_type="warcinfo")
    if state is not None and state["warcinfo_length"] != member.length:
        report.add(
            "sidecar",
            name,
            f"sidecar says the warcinfo record is {state['warcinfo_length']} bytes, "
            f"the file has {member.length}",
        )


def _check_raw_record(raw: bytes, label: str, report: VerifyReport, *, want_type: str | None = None) -> None:
    try:
        records = list(_iter_checked(raw))
    except Exception as exc:  # warcio raises many kinds on damaged bytes: each is a finding, not a crash
        report.add("record", label, f"not a readable WARC record ({type(exc).__name__})")
        return
    if len(records) != 1:
        report.add("record", label, f"member holds {len(records)} records, expected 1")
        return
    _headers, rtype, _payload, problems = records[0]
    for problem in problems:
        report.add("record", label, problem)
    if want_type is not None and rtype != want_type:
        report.add("record", label, f"is a {rtype} record, expected {want_type}")


def _check_warc_file(
    path: Path,
    rel: str,
    named: dict[int, tuple[int, int]],
    report: VerifyReport,
) -> None:
    """Read a whole WARC file member by member: every member inflates, every record's digests hold, every
    byte belongs to a committed capture, and its CDXJ index and sidecar describe exactly these records.

    ``named`` maps a committed member's offset to (length, capture id). Bytes after the last committed
    capture of an unclosed file (a live writer's batch in flight, or a crashed writer's torn tail that
    the next recorder truncates) are not evidence and are not read.
    """
    name = f"WARC file {rel}"
    report.warc_files += 1
    state, problem = _read_sidecar(path)
    if problem:
        report.add("sidecar", name, problem)
    closed = bool(state and state["closed"])
    size = path.stat().st_size
    committed = max([o + length for o, (length, _c) in named.items()], default=0)
    end = size if closed or state is None else max(committed, min(state["warcinfo_length"], size))
    expected_lines: list[str] = []
    for member in warc.scan_members(path, end):
        where = f"{name} " + (
            "warcinfo record (offset 0)" if member.offset == 0 else f"offset {member.offset}"
        )
        if member.error:
            report.add("warc", where, member.error)
            break
        if member.offset == 0:
            _check_warcinfo_member(member, name, state, report)
            continue
        owner = named.get(member.offset)
        if owner is None:
            report.add("warc", where, "record is not part of any committed capture (inserted or moved bytes)")
        elif owner[0] != member.length:
            report.add("warc", where, f"member is {member.length} bytes, capture {owner[1]} says {owner[0]}")
        _check_raw_record(member.raw, where, report)
        report.file_records += 1
        try:
            info = warc.record_info_from_raw(member.raw)
            if info["type"] not in ("warcinfo", "request", ""):
                expected_lines.append(
                    warc.cdxj_line(info, filename=path.name, offset=member.offset, length=member.length)
                )
        except (UnicodeDecodeError, ValueError, KeyError) as exc:
            report.add("record", where, f"record head unreadable for the index ({type(exc).__name__})")
    _check_index(path, rel, expected_lines, closed, report)


def _check_index(path: Path, rel: str, expected: list[str], closed: bool, report: VerifyReport) -> None:
    index = warc.index_path(path)
    name = f"CDXJ index {Path(rel).name}.cdxj"
    if not index.is_file():
        if expected:
            report.add("index", name, "is missing")
        return
    try:
        lines = [line for line in index.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        report.add("index", name, f"is unreadable ({type(exc).__name__})")
        return
    want = Counter(expected)
    for lineno, line in enumerate(lines, 1):
        if want[line] > 0:
            want[line] -= 1
        else:
            report.add("index", f"{name} line {lineno}", "does not match any record of the WARC file")
    if closed:  # an open file's newest batch may be committed but not indexed yet
        for line in want.elements():
            offset = line.rsplit('"offset": "', 1)[-1].split('"', 1)[0]
            report.add("index", name, f"has no line for the record at offset {offset}")


def _check_scoped_index(path: Path, rel: str, capture: Capture, report: VerifyReport) -> None:
    """The index lines of one capture's records (scoped verification; ``--all`` checks whole files)."""
    index = warc.index_path(path)
    try:
        lines = set(index.read_text(encoding="utf-8").splitlines()) if index.is_file() else set()
    except (OSError, UnicodeDecodeError):
        report.add("index", f"CDXJ index {path.name}.cdxj", "is unreadable")
        return
    for info in capture.records or []:
        if info.get("type") in ("warcinfo", "request"):
            continue
        try:
            line = warc.cdxj_line(
                info, filename=path.name, offset=int(info["offset"]), length=int(info["length"])
            )
        except (KeyError, ValueError, TypeError):
            continue
        if line not in lines:
            report.add(
                "index",
                f"CDXJ index {path.name}.cdxj",
                f"no matching line for capture {capture.id} record {info.get('record_id')}",
            )


# -- custody cross-checks --------------------------------------------------------------------------


@dataclass
class _CustodyIndex:
    """The entries that vouch for rows, found in one pass over the chain."""

    captures: dict[str, CustodyEntry] = field(default_factory=dict)
    reviews: dict[int, CustodyEntry] = field(default_factory=dict)
    exports: dict[str, CustodyEntry] = field(default_factory=dict)
    sends: dict[int, CustodyEntry] = field(default_factory=dict)
    rechecks: dict[str, CustodyEntry] = field(default_factory=dict)
    head: tuple[int, str] = (0, custody.GENESIS)


def _index_custody(session: Session, report: VerifyReport) -> _CustodyIndex:
    """Walk the chain once: check every hash and link, and index the entries that vouch for rows."""
    index = _CustodyIndex()
    expected_seq, prev = 1, custody.GENESIS
    for entry in custody.iter_entries(session):
        if entry.seq != expected_seq:
            report.add("custody", f"custody entry {expected_seq}", f"missing (next entry is {entry.seq})")
        if entry.prev_hash != prev:
            report.add("custody", f"custody entry {entry.seq}", "prev_hash does not match the previous entry")
        if custody.entry_hash_of(entry) != entry.entry_hash:
            report.add("custody", f"custody entry {entry.seq}", "content does not match its hash (modified)")
        expected_seq, prev = entry.seq + 1, entry.entry_hash
        details = entry.details or {}
        if entry.action == "capture" and entry.object_type == "capture":
            index.captures[entry.object_id] = entry
        elif entry.action == "review" and isinstance(details.get("decision_id"), int):
            index.reviews[details["decision_id"]] = entry
        elif entry.action == "export" and entry.object_type == "takedown_batch":
            index.exports[entry.object_id] = entry
        elif entry.action == "send" and isinstance(details.get("send_id"), int):
            index.sends[details["send_id"]] = entry
        elif entry.action == "recheck" and entry.object_type == "recheck":
            index.rechecks[entry.object_id] = entry
        index.head = (entry.seq, entry.entry_hash)
    report.custody_entries = index.head[0]
    return index


def _check_decision(decision: ReviewDecision, entry: CustodyEntry | None, report: VerifyReport) -> None:
    name = f"decision {decision.id}"
    report.decisions += 1
    if entry is None:
        report.add(
            "custody",
            name,
            f"{decision.decision} of listing {decision.listing_id} has no review custody entry",
        )
        return
    d = entry.details or {}
    fields = custody.decision_fields(decision)
    differs = [
        label
        for label, ok in (
            ("reviewer", entry.actor == decision.reviewer),
            ("decision", d.get("decision") == decision.decision),
            ("reason", d.get("reason") == decision.reason),
            ("note", (d.get("note") or "") == (decision.note or "")),
            ("listing", d.get("listing_id") == decision.listing_id),
            ("score", d.get("score_id") == decision.score_id),
            ("simulated", bool(d.get("simulated")) == bool(decision.simulated)),
            ("time", custody.iso(entry.at) == fields["decided_at"]),
            ("digest", not entry.object_digest or entry.object_digest == custody.row_digest(fields)),
        )
        if not ok
    ]
    if differs:
        report.add(
            "custody",
            name,
            f"row differs from its custody entry {entry.seq} ({', '.join(differs)}): edited in the database",
        )


def _check_batch_row(
    session: Session, batch: TakedownBatch, entry: CustodyEntry | None, report: VerifyReport
) -> None:
    name = f"batch {batch.number}"
    if entry is None:
        report.add("custody", name, "has no export custody entry")
        return
    items = [
        {k: getattr(item, k) for k in custody.ITEM_FIELDS}
        for item in session.scalars(select(TakedownItem).where(TakedownItem.batch_id == batch.id))
    ]
    d = entry.details or {}
    if entry.object_digest != (batch.manifest_sha256 or ""):
        report.add("custody", name, f"manifest digest differs from its custody entry {entry.seq}")
    if d.get("items") is not None and d.get("items") != len(items):
        report.add(
            "custody", name, f"has {len(items)} items, its custody entry {entry.seq} says {d['items']}"
        )
    digest = d.get("items_digest")
    if digest and digest != custody.items_digest(items):
        report.add(
            "custody", name, f"items differ from its custody entry {entry.seq}: edited in the database"
        )


def _check_rows(
    session: Session,
    index: _CustodyIndex,
    report: VerifyReport,
    *,
    batches: Sequence[TakedownBatch],
    everything: bool,
) -> None:
    """Every decision, batch, send and recheck in scope has its chained custody entry, and agrees with it."""
    if everything:
        decisions = session.scalars(select(ReviewDecision).order_by(ReviewDecision.id))
    else:
        ids = [
            i
            for b in batches
            for i in session.scalars(select(TakedownItem.decision_id).where(TakedownItem.batch_id == b.id))
            if i is not None
        ]
        decisions = session.scalars(select(ReviewDecision).where(ReviewDecision.id.in_(ids)))
    for decision in decisions:
        _check_decision(decision, index.reviews.get(decision.id), report)
    for batch in batches:
        _check_batch_row(session, batch, index.exports.get(batch.number), report)
    if not everything:
        return
    for send in session.scalars(select(BatchSend).order_by(BatchSend.id)):
        entry = index.sends.get(send.id)
        if entry is None or (entry.details or {}).get("platform") != send.platform:
            report.add("custody", f"send {send.id}", "has no matching send custody entry")
    for recheck in session.scalars(select(Recheck).order_by(Recheck.id)):
        entry = index.rechecks.get(str(recheck.id))
        if entry is None:
            report.add("custody", f"recheck {recheck.id}", "has no recheck custody entry")
        elif (entry.details or {}).get("verdict") != recheck.verdict:
            report.add(
                "custody", f"recheck {recheck.id}", f"verdict differs from its custody entry {entry.seq}"
            )


def _check_anchor(session: Session, anchor: tuple[int, str], label: str, report: VerifyReport) -> None:
    seq, digest = anchor
    if seq <= 0:
        return
    entry = session.get(CustodyEntry, seq)
    if entry is None:
        report.add(
            "custody",
            label,
            f"the custody entry {seq} its signed manifest is anchored to is missing (log truncated)",
        )
    elif entry.entry_hash != digest:
        report.add("custody", label, f"custody entry {seq} differs from its signed anchor (log rewritten)")


def _installation_key(settings: Settings) -> Path | None:
    path = settings.keys_dir / signing.PUBLIC_NAME
    return path if path.is_file() else None


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
    trusted_key = _installation_key(settings)
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
        # 4. the custody chain, whole, indexed for the cross-checks below
        index = _index_custody(session, report)
        # 1.–3. each capture: its byte range, records, screenshot, custody entry
        for capture in captures:
            entry = index.captures.get(str(capture.id))
            _check_capture(settings, store, capture, entry.object_digest if entry else None, report)
            if entry is not None:
                _check_capture_entry(capture, entry, report)
        _check_revisits(session, captures, report)
        # whole WARC files (--all), or the warcinfo and index lines of the files in scope
        _check_files(settings, session, captures, report, everything=all)
        # 5. batches: files exactly as `export verify` checks them, and their signed custody anchors
        for batch in batches:
            anchor = _check_batch(settings, batch, report, trusted_key)
            if anchor is not None:
                _check_anchor(session, anchor, f"batch {batch.number}", report)
        # every decision, batch, send and recheck has its chained custody entry and agrees with it
        _check_rows(session, index, report, batches=batches, everything=all)
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
                    "head": {"seq": index.head[0], "entry_hash": index.head[1]},
                },
            )
    logger.info("verify %s: %s", report.scope, report.summary())
    return report


def _check_capture_entry(capture: Capture, entry: CustodyEntry, report: VerifyReport) -> None:
    """The capture row's location fields against what its custody entry recorded."""
    d = entry.details or {}
    differs = [
        label
        for label, value, key in (
            ("file", capture.warc_file, "warc_file"),
            ("offset", capture.warc_offset, "offset"),
            ("length", capture.warc_length, "length"),
            ("screenshot", capture.screenshot_sha256, "screenshot_sha256"),
            ("url", capture.url, "url"),
        )
        if key in d and value != d[key]
    ]
    if differs:
        report.add(
            "custody", f"capture {capture.id}", f"row differs from its custody entry ({', '.join(differs)})"
        )


def _check_files(
    settings: Settings,
    session: Session,
    captures: Sequence[Capture],
    report: VerifyReport,
    *,
    everything: bool,
) -> None:
    if everything:
        named: dict[str, dict[int, tuple[int, int]]] = {}
        for capture_id, records, rel in session.execute(
            select(Capture.id, Capture.records, Capture.warc_file).where(Capture.warc_file.is_not(None))
        ):
            members = named.setdefault(str(rel), {})
            for info in records or []:
                try:
                    members[int(info["offset"])] = (int(info["length"]), capture_id)
                except (KeyError, TypeError, ValueError):
                    continue
        paths: dict[str, Path] = {rel: resolve_warc(settings, rel) for rel in named}
        if settings.warc_dir.is_dir():
            for path in sorted(settings.warc_dir.glob("*.warc.gz")):
                rel = _rel(settings, path)
                paths.setdefault(rel, path)
        for rel, path in sorted(paths.items()):
            if path.is_file():
                _check_warc_file(path, rel, named.get(rel, {}), report)
        return
    seen: set[str] = set()
    for capture in captures:
        if not capture.warc_file:
            continue
        path = resolve_warc(settings, capture.warc_file)
        if not path.is_file():
            continue
        if capture.warc_file not in seen:
            seen.add(capture.warc_file)
            report.warc_files += 1
            state, problem = _read_sidecar(path)
            if problem:
                report.add("sidecar", f"WARC file {capture.warc_file}", problem)
            _check_warcinfo(path, capture.warc_file, state, report)
        _check_scoped_index(path, capture.warc_file, capture, report)


def _rel(settings: Settings, path: Path) -> str:
    try:
        return str(path.resolve().relative_to(settings.data_dir.resolve()))
    except ValueError:
        return str(path.resolve())


# Re-exported for readers of a bundle's records.
digest_to_hex = warc.digest_to_hex


def capture_problems(db: Database, settings: Settings, capture_ids: Sequence[int]) -> dict[int, list[str]]:
    """What is wrong with each capture (only damaged ones appear): the same checks ``verify`` makes for
    one capture — byte range, records, screenshot, custody entry, revisited originals, and its WARC
    file's warcinfo record and sidecar. Exports and bundles call this before they sign anything."""
    store = open_store(settings, check=False)
    wanted = list(dict.fromkeys(capture_ids))
    problems: dict[int, list[str]] = {}
    files_checked: dict[str, list[str]] = {}
    with db.session() as session:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            captures = list(session.scalars(select(Capture).where(Capture.id.in_(chunk))))
            entries = {
                entry.object_id: entry
                for entry in session.scalars(
                    select(CustodyEntry).where(
                        CustodyEntry.action == "capture",
                        CustodyEntry.object_type == "capture",
                        CustodyEntry.object_id.in_([str(c) for c in chunk]),
                    )
                )
            }
            for cid in sorted(set(chunk) - {c.id for c in captures}):
                problems[cid] = [f"capture {cid}: no such capture row"]
            for capture in captures:
                report = VerifyReport()
                entry = entries.get(str(capture.id))
                _check_capture(settings, store, capture, entry.object_digest if entry else None, report)
                if entry is not None:
                    _check_capture_entry(capture, entry, report)
                _check_revisits(session, [capture], report)
                own = [str(p) for p in report.problems]
                if capture.warc_file:
                    if capture.warc_file not in files_checked:
                        files_checked[capture.warc_file] = _file_head_problems(settings, capture.warc_file)
                    own += files_checked[capture.warc_file]
                if own:
                    problems[capture.id] = own
    return problems


def _file_head_problems(settings: Settings, rel: str) -> list[str]:
    report = VerifyReport()
    path = resolve_warc(settings, rel)
    if path.is_file():
        state, problem = _read_sidecar(path)
        if problem:
            report.add("sidecar", f"WARC file {rel}", problem)
        _check_warcinfo(path, rel, state, report)
    return [str(p) for p in report.problems]
