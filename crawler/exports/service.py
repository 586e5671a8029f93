"""Takedown batches: make one from approved items, record how it was sent, list and show batches.

:func:`create_batch` is the export flow (the CLI, the web console, the demo and the audit's re-request use
it). Steps, numbered the same in the body:

1. Select the eligible rows in a read transaction (:func:`crawler.exports.rows.select_rows`): latest
   decision ``approve``, not yet in any batch — or exactly ``listing_ids`` for a re-request.
2. Write the evidence bundle for their captures into a temporary directory beside the output
   (``crawler.evidence.bundle.write_wacz``, through :func:`bundle_writer`; when it fails, the manifest says
   the bundle is missing — nothing is faked).
3. In one write transaction: check nobody exported the same items meanwhile, allocate the batch number
   (``TTB-<year>-<seq>``, year in WIB, sequential per year), insert the batch and its items with each row's
   snapshot, and count repeat offenders including this batch.
4. Write per platform CSV, XLSX, JSON, letter HTML and PDF, plus the batch-wide repeat-offender JSON and
   the public key.
5. Write ``manifest.json`` (every file's SHA-256, custody anchor) and sign it (``manifest.sig``).
6. Append the ``export`` custody entry, rename the temporary directory to ``<out>/<number>``, commit.
   A failure before the commit removes the directory again: no batch row without its files, and no
   half-written directory under its final name.

Settings: ``timezone`` (WIB in files), ``keys_dir`` (signing key), ``exports_dir`` (default output),
``export_contact``/``export_unit`` when present (see :mod:`crawler.exports.letters`).
:func:`mark_sent` records a :class:`storage.models.BatchSend` (the send time starts the audit clock).
To add an output format, write it in :mod:`crawler.exports.writers` and call it in step 4.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from crawler.config import Settings
from crawler.errors import NotFound, TertibError, UsageError
from crawler.evidence import bundle as evidence_bundle
from crawler.evidence.signing import PUBLIC_NAME, public_key_pem, sign
from crawler.exports import gate, letters, writers
from crawler.exports.common import iso_local, sha256_file, zone
from crawler.exports.manifest import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    SIGNATURE_NAME,
    file_entries,
    manifest_bytes,
)
from crawler.exports.offenders import OffenderGroup, confirmed_counts, offender_groups
from crawler.exports.rows import REQUESTED_ACTION, ExportRow, select_rows
from crawler.registry import Registry
from storage import custody
from storage.db import Database
from storage.models import BatchSend, TakedownBatch, TakedownItem
from storage.processes import alive, this_process

log = logging.getLogger(__name__)

BATCH_PREFIX = "TTB"
CHANNELS: tuple[str, ...] = ("idea", "portal", "letter", "meta_reporting", "sandbox")
_NUMBER_RE = re.compile(rf"^{BATCH_PREFIX}-(\d{{4}})-(\d{{4,}})$")
_INSERT_CHUNK = 2000
_ITEMS_TABLE = cast(Table, TakedownItem.__table__)

BundleWriter = Callable[..., Path]


class NothingToExport(TertibError):
    """No approved item is waiting for a batch."""


@dataclass(slots=True)
class BatchResult:
    batch_id: int
    number: str
    out_dir: Path
    counts: dict[str, int]
    files: list[Path]
    manifest_sha256: str
    bundle: dict[str, Any]
    offenders: list[OffenderGroup] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)
    missing_evidence: int = 0

    @property
    def item_count(self) -> int:
        return sum(self.counts.values())


def _utcnow() -> datetime:
    return datetime.now(UTC)


def bundle_writer() -> BundleWriter | None:
    """The WACZ writer a batch uses (:func:`crawler.evidence.bundle.write_wacz`). A seam: a deployment or a
    test can swap it, and None makes batches without a bundle (the manifest says it is missing)."""
    return evidence_bundle.write_wacz


def next_batch_number(session: Session, created_at: datetime, tz_name: str) -> str:
    year = created_at.astimezone(zone(tz_name)).year
    prefix = f"{BATCH_PREFIX}-{year}-"
    numbers = session.scalars(select(TakedownBatch.number).where(TakedownBatch.number.like(prefix + "%")))
    highest = 0
    for number in numbers:
        match = _NUMBER_RE.match(number)
        if match:
            highest = max(highest, int(match.group(2)))
    return f"{prefix}{highest + 1:04d}"


def _setting(settings: Settings, name: str) -> str:
    value = getattr(settings, name, "") or os.environ.get(f"TERTIB_{name.upper()}", "")
    return str(value)


def _write_bundle(
    db: Database,
    settings: Settings,
    capture_ids: list[int],
    out: Path,
    title: str,
    actor: str,
    created_at: datetime,
) -> dict[str, Any]:
    writer = bundle_writer()
    if writer is None:
        return {"status": "missing", "reason": "no evidence bundle writer is configured"}
    if not capture_ids:
        return {"status": "missing", "reason": "no evidence capture is linked to these items"}
    try:
        path = Path(
            writer(
                db,
                settings,
                capture_ids=capture_ids,
                out=out,
                title=title,
                actor=actor,
                clock=lambda: created_at,
            )
        )
    except (TertibError, OSError) as exc:
        log.warning("evidence bundle not written: %s", exc)
        return {"status": "missing", "reason": f"bundle failed: {exc}"}
    return {"status": "ok", "path": path.name, "captures": len(capture_ids)}


def create_batch(
    db: Database,
    settings: Settings,
    *,
    name: str,
    out: Path | None = None,
    platforms: Sequence[str] = (),
    since: datetime | None = None,
    listing_ids: Sequence[int] | None = None,
    actor: str | None = None,
    contact: str | None = None,
    unit: str | None = None,
    now: datetime | None = None,
    number: str | None = None,
    with_bundle: bool = True,
    allow_missing_evidence: bool = False,
    check_evidence: bool = True,
) -> BatchResult:
    """Export approved, not-yet-requested items (or exactly ``listing_ids``: a re-request) as one batch."""
    name = name.strip()
    if not name:
        raise UsageError("a batch needs a name (--batch-name)")
    registry = settings.registry
    unknown = sorted(set(platforms) - set(registry.names))
    if unknown:
        raise UsageError(f"unknown platform {', '.join(unknown)}; known: {', '.join(registry.names)}")
    created_at = (now or _utcnow()).astimezone(UTC)
    zone(settings.timezone)  # fail early on an unknown zone
    out_root = Path(out or settings.exports_dir)
    actor = actor or settings.actor_name()
    rerequest = listing_ids is not None
    contact = contact or _setting(settings, "export_contact") or letters.DEFAULT_CONTACT
    unit = unit or _setting(settings, "export_unit") or letters.DEFAULT_UNIT
    sign(settings.keys_dir, b"")  # fail early (one line) when the signing key is missing

    # 1. eligible rows
    with db.session() as session:
        rows = select_rows(session, platforms=platforms, since=since, listing_ids=listing_ids)
    if rerequest:
        found = {r.db_listing_id for r in rows}
        missing = [i for i in listing_ids or () if i not in found]
        if missing:
            raise UsageError(
                f"cannot re-request listing(s) {', '.join(map(str, missing))}: not currently approved"
            )
    if not rows:
        raise NothingToExport("no approved items are waiting for export (nothing to put in a batch)")
    # nothing is signed unverified: forged approvals, damaged or absent evidence leave the batch, loudly
    screened = gate.screen(
        db, settings, rows, allow_missing_evidence=allow_missing_evidence, check_evidence=check_evidence
    )
    for excluded in screened.excluded:
        log.info("not exported: %s: %s", excluded["listing_key"], excluded["reason"])  # callers show it
    rows = screened.rows
    if not rows:
        reasons = "; ".join(f"{e['listing_key']}: {e['reason']}" for e in screened.excluded[:3])
        raise NothingToExport(
            f"none of the {len(screened.excluded)} approved item(s) can be signed ({reasons}"
            + (" …" if len(screened.excluded) > 3 else "")
            + ")"
        )

    out_root.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(out_root)
    me = this_process()
    tmp = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{me.host}@{me.pid}@{me.start_token}@", dir=out_root))
    published: Path | None = None
    try:
        # 2. evidence bundle (before the write transaction: the bundle reads the database itself)
        capture_ids = sorted({r.evidence_id for r in rows if r.evidence_id is not None})
        (tmp / "evidence").mkdir()
        if with_bundle:
            bundle = _write_bundle(
                db, settings, capture_ids, tmp / "evidence" / "evidence.wacz", name, actor, created_at
            )
        else:
            bundle = {"status": "missing", "reason": "bundle not requested"}
        with db.session() as session:
            result = _create_in_session(
                session,
                settings,
                rows=rows,
                tmp=tmp,
                out_root=out_root,
                name=name,
                created_at=created_at,
                number=number,
                actor=actor,
                contact=contact,
                unit=unit,
                bundle=bundle,
                rerequest=rerequest,
                since=since,
                platforms=platforms,
                screened=screened,
            )
            published = result.out_dir
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if published is not None:
            shutil.rmtree(published, ignore_errors=True)
        raise
    log.info("batch %s: %d items in %s", result.number, result.item_count, result.out_dir)
    return result


def _create_in_session(
    session: Session,
    settings: Settings,
    *,
    rows: list[ExportRow],
    tmp: Path,
    out_root: Path,
    name: str,
    created_at: datetime,
    number: str | None,
    actor: str,
    contact: str,
    unit: str,
    bundle: dict[str, Any],
    rerequest: bool,
    since: datetime | None,
    platforms: Sequence[str],
    screened: gate.Screened,
) -> BatchResult:
    tz = zone(settings.timezone)
    registry = settings.registry
    # 3. re-check, number, rows
    already = _already_in_a_batch(session, [r.db_listing_id for r in rows])
    if not rerequest:
        taken = already
        if taken:
            raise TertibError(f"{len(taken)} item(s) were exported by another run meanwhile; run again")
    if number is None:
        number = next_batch_number(session, created_at, settings.timezone)
    elif session.scalar(select(TakedownBatch.id).where(TakedownBatch.number == number)) is not None:
        raise UsageError(f"batch number {number} already exists")
    final_dir = out_root / number
    if final_dir.exists():
        raise UsageError(f"output directory {final_dir} already exists")

    by_platform: dict[str, list[ExportRow]] = {}
    for row in rows:
        by_platform.setdefault(row.platform, []).append(row)
    for platform_rows in by_platform.values():
        for index, row in enumerate(platform_rows, start=1):
            row.no = index

    batch = TakedownBatch(
        number=number,
        name=name,
        created_at=created_at,
        created_by=actor,
        out_dir=str(final_dir.resolve()),
        details={
            "rerequest": rerequest,
            "since": since.isoformat() if since else None,
            "platform_filter": list(platforms),
        },
    )
    session.add(batch)
    session.flush()
    # repeat-offender counts including this batch (re-requested items were counted when first exported)
    counts_by_seller = confirmed_counts(session)
    for row in rows:
        if row.db_seller_id and row.db_listing_id not in already:
            counts_by_seller[row.db_seller_id] = counts_by_seller.get(row.db_seller_id, 0) + 1
    for row in rows:
        row.repeat_offender_count = counts_by_seller.get(row.db_seller_id, 0) if row.db_seller_id else 0
    # each row converted once: the snapshot, the CSV and the JSON all use these values
    values = [writers.row_values(row, tz) for row in rows]
    values_by_platform: dict[str, list[list[Any]]] = {}
    for row, row_values in zip(rows, values, strict=True):
        values_by_platform.setdefault(row.platform, []).append(row_values)
    keys = writers.KEYS
    item_rows: list[dict[str, Any]] = []
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = [
            {
                "batch_id": batch.id,
                "listing_id": row.db_listing_id,
                "platform": row.platform,
                "row_no": row.no,
                "decision_id": row.decision_id,
                "capture_id": row.evidence_id,
                "url": row.listing_url,
                "snapshot": dict(zip(keys, row_values, strict=True)),
            }
            for row, row_values in zip(
                rows[start : start + _INSERT_CHUNK], values[start : start + _INSERT_CHUNK], strict=True
            )
        ]
        session.execute(insert(_ITEMS_TABLE), chunk)  # Core executemany: the ORM bulk path costs per row
        item_rows.extend({k: item[k] for k in custody.ITEM_FIELDS} for item in chunk)
    groups = offender_groups(session, counts_by_seller)
    batch_sellers = {r.db_seller_id for r in rows if r.db_seller_id}
    groups = [g for g in groups if any(a.seller_db_id in batch_sellers for a in g.accounts)]

    # 4. files per platform
    bundle_name = f"evidence/{bundle['path']}" if bundle.get("status") == "ok" else None
    files: list[Path] = []
    counts = {platform: len(platform_rows) for platform, platform_rows in sorted(by_platform.items())}
    for platform, platform_rows in sorted(by_platform.items()):
        platform_groups = [g for g in groups if platform in g.platforms]
        base = tmp / f"{number}-{platform}"
        meta = {
            "batch": number,
            "batch_name": name,
            "platform": platform,
            "platform_name": registry.display_name(platform),
            "created_at": iso_local(created_at, tz),
            "created_by": actor,
            "rerequest": rerequest,
            "requested_action": REQUESTED_ACTION,
            "deadline_hours": letters.DEADLINE_HOURS,
            "legal_basis": list(letters.LEGAL_BASIS),
            "item_count": len(platform_rows),
            "evidence_bundle": bundle_name,
            "repeat_offenders": [g.to_dict() for g in platform_groups],
        }
        platform_values = values_by_platform[platform]
        files.append(writers.write_csv(base.with_suffix(".csv"), platform_values))
        files.append(writers.write_json(base.with_suffix(".json"), platform_values, meta))
        files.append(
            writers.write_xlsx(
                base.with_suffix(".xlsx"),
                platform_rows,
                tz,
                info=[
                    ("Batch", number),
                    ("Nama batch", name),
                    ("Platform", registry.display_name(platform)),
                    ("Dibuat (WIB)", iso_local(created_at, tz)),
                    ("Dibuat oleh", actor),
                    ("Jumlah tautan", str(len(platform_rows))),
                    ("Tindakan yang diminta", "takedown (penurunan tautan) dalam 1×24 jam"),
                    ("Paket bukti", bundle_name or "tidak tersedia"),
                    *[(f"Dasar hukum {i}", text) for i, text in enumerate(letters.LEGAL_BASIS, 1)],
                ],
                offenders=_offender_sheet_rows(platform_groups, registry),
            )
        )
        letter = letters.letter_context(
            batch_number=number,
            batch_name=name,
            platform=platform,
            registry=registry,
            rows=platform_rows,
            offenders=platform_groups,
            created_at=created_at,
            tz=tz,
            unit=unit,
            contact=contact,
            bundle_name=bundle_name,
            rerequest=rerequest,
        )
        files.append(letters.write_html(tmp / f"{number}-{platform}-surat.html", letter))
        files.append(letters.write_pdf(tmp / f"{number}-{platform}-surat.pdf", letter, created_at))
    offenders_path = tmp / f"{number}-repeat-offenders.json"
    offenders_path.write_text(
        json.dumps([g.to_dict() for g in groups], ensure_ascii=False, indent=2, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    files.append(offenders_path)
    pub = tmp / PUBLIC_NAME
    pub.write_text(public_key_pem(settings.keys_dir), encoding="ascii")
    files.append(pub)
    if bundle_name:
        files.append(tmp / bundle_name)
    else:
        (tmp / "evidence").rmdir()

    # 5. manifest + signature
    anchor_seq, anchor_hash = custody.head(session)
    bundle_entry: dict[str, Any] = dict(bundle)
    if bundle_name:
        bundle_entry.update(path=bundle_name, sha256=sha256_file(tmp / bundle_name))
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "batch": number,
        "batch_name": name,
        "created_at": iso_local(created_at, tz),
        "created_at_utc": created_at.isoformat(),
        "created_by": actor,
        "rerequest": rerequest,
        "item_count": len(rows),
        "platforms": counts,
        "files": file_entries(tmp, files),
        "custody_anchor": {"seq": anchor_seq, "entry_hash": anchor_hash},
        "evidence_bundle": bundle_entry,
        "repeat_offender_groups": len(groups),
        # items held back before signing (forged approval, damaged or missing evidence), with the reason
        "excluded": screened.excluded,
        "missing_evidence": screened.missing_evidence,
    }
    data = manifest_bytes(manifest)
    (tmp / MANIFEST_NAME).write_bytes(data)
    signature = sign(settings.keys_dir, data)
    (tmp / SIGNATURE_NAME).write_text(signature + "\n", encoding="ascii")
    manifest_sha = sha256_file(tmp / MANIFEST_NAME)
    batch.manifest_sha256 = manifest_sha
    batch.signature = signature
    batch.details = {
        **batch.details,
        "platforms": counts,
        "evidence_bundle": bundle_entry,
        "excluded": screened.excluded,
        "missing_evidence": screened.missing_evidence,
    }

    # 6. custody entry and the directory under its final name; create_batch commits (or removes it)
    custody.append(
        session,
        actor=actor,
        action="export",
        object_type="takedown_batch",
        object_id=number,
        object_digest=manifest_sha,
        details={
            "batch_id": batch.id,
            "name": name,
            "items": len(rows),
            "platforms": counts,
            "rerequest": rerequest,
            "out_dir": str(final_dir.resolve()),
            "custody_anchor": anchor_seq,
            "items_digest": custody.items_digest(item_rows),
        },
        at=created_at,
    )
    session.flush()
    os.replace(tmp, final_dir)
    return BatchResult(
        batch_id=batch.id,
        number=number,
        out_dir=final_dir,
        counts=counts,
        files=[final_dir / p.relative_to(tmp) for p in files]
        + [final_dir / MANIFEST_NAME, final_dir / SIGNATURE_NAME],
        manifest_sha256=manifest_sha,
        bundle=bundle_entry,
        offenders=groups,
        excluded=screened.excluded,
        missing_evidence=screened.missing_evidence,
    )


STAGING_PREFIX = ".batch@"  # .batch@<host>@<pid>@<start token>@<random>: the export building it
LEGACY_STAGING_MAX_AGE = 86_400.0  # seconds; ".batch-*" folders from before carry no owner


def clean_stale_staging(out_root: Path) -> list[Path]:
    """Remove staging folders of exports whose process is gone (killed during an export); returns them.

    A folder names the process that builds it; one of a live export, or of another host, is left alone.
    """
    import time

    removed: list[Path] = []
    for path in sorted(out_root.glob(".batch*")):
        if not path.is_dir():
            continue
        stale = False
        if path.name.startswith(STAGING_PREFIX):
            parts = path.name[len(STAGING_PREFIX) :].split("@")
            if len(parts) >= 3 and parts[1].isdigit():
                stale = alive(int(parts[1]), parts[0], parts[2] or None) is False
        elif path.name.startswith(".batch-"):
            try:
                stale = time.time() - path.stat().st_mtime > LEGACY_STAGING_MAX_AGE
            except OSError:
                stale = False
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            log.warning("removed the staging folder of an interrupted export: %s", path)
    return removed


def _already_in_a_batch(session: Session, listing_ids: list[int]) -> set[int]:
    """Which of these listings are in some batch (chunked: SQLite caps bound parameters)."""
    found: set[int] = set()
    for start in range(0, len(listing_ids), _INSERT_CHUNK):
        chunk = listing_ids[start : start + _INSERT_CHUNK]
        found.update(
            session.scalars(select(TakedownItem.listing_id).where(TakedownItem.listing_id.in_(chunk)))
        )
    return found


def _offender_sheet_rows(groups: list[OffenderGroup], registry: Registry) -> list[list[Any]]:
    out: list[list[Any]] = []
    for index, group in enumerate(groups, start=1):
        for account in group.accounts:
            out.append(
                [
                    index,
                    registry.display_name(account.platform),
                    account.seller_id,
                    account.name,
                    account.city,
                    account.shop_url,
                    account.confirmed,
                    ", ".join(group.shared_handles),
                ]
            )
    return out


# -- sends, listing, showing ---------------------------------------------------------------------


def get_batch(session: Session, ref: str) -> TakedownBatch:
    """A batch by number (``TTB-2026-0001``) or database id."""
    ref = ref.strip()
    batch = session.scalars(select(TakedownBatch).where(TakedownBatch.number == ref)).first()
    if batch is None and ref.isdigit():
        batch = session.get(TakedownBatch, int(ref))
    if batch is None:
        raise NotFound(f"no such batch: {ref}")
    return batch


def mark_sent(
    session: Session,
    ref: str,
    *,
    platform: str,
    channel: str,
    sent_at: datetime,
    by: str,
) -> BatchSend:
    """Record how and when a batch went to one platform; custody-logged. Re-marking is refused."""
    if channel not in CHANNELS:
        raise UsageError(f"unknown channel {channel!r}; use one of: {', '.join(CHANNELS)}")
    if sent_at.tzinfo is None:
        raise UsageError("send time needs a time zone")
    batch = get_batch(session, ref)
    has_items = session.scalar(
        select(func.count())
        .select_from(TakedownItem)
        .where(TakedownItem.batch_id == batch.id, TakedownItem.platform == platform)
    )
    if not has_items:
        raise UsageError(f"batch {batch.number} has no items for platform {platform!r}")
    existing = session.scalars(
        select(BatchSend).where(BatchSend.batch_id == batch.id, BatchSend.platform == platform)
    ).first()
    if existing is not None:
        raise UsageError(
            f"batch {batch.number} was already marked sent to {platform} "
            f"({existing.channel}, {existing.sent_at.isoformat()})"
        )
    if sent_at < batch.created_at:
        raise UsageError(f"send time is before the batch was created ({batch.created_at.isoformat()})")
    send = BatchSend(batch_id=batch.id, platform=platform, channel=channel, sent_at=sent_at, recorded_by=by)
    session.add(send)
    session.flush()
    custody.append(
        session,
        actor=by,
        action="send",
        object_type="takedown_batch",
        object_id=batch.number,
        object_digest=batch.manifest_sha256 or "",
        details={
            "platform": platform,
            "channel": channel,
            "sent_at": sent_at.isoformat(),
            "send_id": send.id,
        },
    )
    return send


@dataclass(slots=True)
class BatchSummary:
    number: str
    name: str
    created_at: datetime
    created_by: str
    counts: dict[str, int]
    sends: dict[str, tuple[str, datetime]]
    out_dir: str | None
    manifest_sha256: str | None
    details: dict[str, Any]


def summarize(session: Session, batch: TakedownBatch) -> BatchSummary:
    counts = Counter(
        dict(
            session.execute(
                select(TakedownItem.platform, func.count())
                .where(TakedownItem.batch_id == batch.id)
                .group_by(TakedownItem.platform)
            ).all()
        )
    )
    sends = {
        s.platform: (s.channel, s.sent_at)
        for s in session.scalars(select(BatchSend).where(BatchSend.batch_id == batch.id))
    }
    return BatchSummary(
        number=batch.number,
        name=batch.name,
        created_at=batch.created_at,
        created_by=batch.created_by,
        counts=dict(sorted(counts.items())),
        sends=sends,
        out_dir=batch.out_dir,
        manifest_sha256=batch.manifest_sha256,
        details=batch.details or {},
    )


def list_batches(session: Session) -> list[BatchSummary]:
    batches = session.scalars(select(TakedownBatch).order_by(TakedownBatch.created_at, TakedownBatch.id))
    return [summarize(session, b) for b in batches]
