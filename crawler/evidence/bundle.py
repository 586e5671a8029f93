"""Signed WACZ bundles of captures (for a takedown batch or ad hoc), and their offline check.

Layout (WACZ 1.1.1, as ReplayWeb.page, pywb and ``wacz validate`` read it):

- ``archive/data.warc.gz`` — the captures' gzip members copied byte for byte from the installation's WARC
  files (so each capture's range still hashes to its ``Capture.warc_sha256`` and custody digest), plus the
  original records that the captures' ``revisit`` records refer to; stored uncompressed in the ZIP;
- ``indexes/index.cdxj`` — sorted CDXJ over that file (response, revisit, resource and metadata records);
- ``pages/pages.jsonl`` — the listing pages (``format: json-pages-1.0``), one line per observable capture;
- ``datapackage.json`` — every file with ``sha256:<hex>`` and size, ``wacz_version`` 1.1.1, ``created``;
- ``datapackage-digest.json`` — the datapackage's hash and ``signedData``: ``{hash, created, software,
  algorithm: "ed25519", signature: hex Ed25519 over the UTF-8 bytes of the hash string, publicKey: PEM}``.
  (The WACZ signing recommendation uses ECDSA keys with certificates; ours is the installation's Ed25519
  key, verifiable with ``tertib-signing.pub`` alone — :func:`check_wacz` does it.)

The ZIP is written to a temporary name and renamed; a ``bundle`` custody entry records its SHA-256.

Settings: ``Settings.data_dir`` (WARC paths), ``keys_dir`` (signing key). To add a file to bundles, write it
in :func:`write_wacz` and list it in ``resources``; :func:`check_wacz` then covers it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from crawler import __version__
from crawler.config import Settings
from crawler.errors import NotFound, TertibError, UsageError
from crawler.evidence import signing, warc
from crawler.evidence.bundle_check import check_wacz
from crawler.evidence.bundle_check import sha as _sha
from crawler.evidence.verify import capture_problems
from storage import custody
from storage.db import Database
from storage.evidence_store import open_store
from storage.models import Capture, TakedownBatch, TakedownItem

logger = logging.getLogger(__name__)

__all__ = ["EvidenceDamaged", "batch_capture_ids", "check_wacz", "write_wacz"]

WACZ_VERSION = "1.1.1"
SOFTWARE = f"tertib {__version__}"
WARC_NAME = "data.warc.gz"


@dataclass
class _Member:
    info: dict[str, Any]
    data: bytes


def _read_member(settings: Settings, capture: Capture, info: dict[str, Any]) -> bytes:
    """One record's gzip member, from local disk or the evidence store (S3 range request)."""
    assert capture.warc_file is not None
    return open_store(settings, check=False).read_range(
        capture.warc_file, int(info["offset"]), int(info["length"])
    )


def _members(settings: Settings, session: Any, captures: Sequence[Capture]) -> list[_Member]:
    """The captures' members, preceded by any originals their revisits point at (each once)."""
    wanted_ids = {r["record_id"] for c in captures for r in c.records or []}
    originals: list[_Member] = []
    have: set[str] = set()
    for capture in captures:
        for info in capture.records or []:
            ref_capture, ref_id = info.get("refers_to_capture"), info.get("refers_to")
            if info.get("type") != "revisit" or ref_capture is None or ref_id in wanted_ids | have:
                continue
            original = session.get(Capture, ref_capture)
            if original is None:
                raise NotFound(f"capture {capture.id} revisits capture {ref_capture}, which does not exist")
            records = original.records or []
            for pos, candidate in enumerate(records):
                if candidate.get("record_id") != ref_id:
                    continue
                picked = [candidate]
                if pos + 1 < len(records) and records[pos + 1].get("type") == "request":
                    picked.append(records[pos + 1])  # the request that belongs to the revisited response
                for item in picked:
                    originals.append(_Member(item, _read_member(settings, original, item)))
                    have.add(item["record_id"])
    members = list(originals)
    for capture in captures:
        for info in capture.records or []:
            members.append(_Member(info, _read_member(settings, capture, info)))
    return members


def _select_captures(session: Any, capture_ids: Sequence[int]) -> list[Capture]:
    if not capture_ids:
        raise UsageError("a bundle needs at least one capture")
    rows = {c.id: c for c in session.scalars(select(Capture).where(Capture.id.in_(list(capture_ids))))}
    missing = [cid for cid in capture_ids if cid not in rows]
    if missing:
        raise NotFound(f"no capture with id {', '.join(map(str, missing))}")
    return [rows[cid] for cid in dict.fromkeys(capture_ids)]


def batch_capture_ids(db: Database, batch_id: int) -> tuple[str, list[int]]:
    """(batch number, capture ids of its items in row order); items without a capture are skipped."""
    with db.session() as session:
        batch = session.get(TakedownBatch, batch_id)
        if batch is None:
            raise NotFound(f"no takedown batch with id {batch_id}")
        ids = [
            cid
            for cid in session.scalars(
                select(TakedownItem.capture_id)
                .where(TakedownItem.batch_id == batch_id)
                .order_by(TakedownItem.row_no)
            )
            if cid is not None
        ]
        if not ids:
            raise NotFound(f"batch {batch.number} has no items with evidence captures")
        return batch.number, ids


class EvidenceDamaged(TertibError):
    """A capture (or the bundle made of it) fails verification: nothing is signed."""


def write_wacz(
    db: Database,
    settings: Settings,
    *,
    capture_ids: Sequence[int],
    out: Path,
    title: str,
    actor: str = "tertib",
    clock: Callable[[], datetime] | None = None,
) -> Path:
    """Write a signed WACZ of ``capture_ids`` to ``out`` (atomically); returns ``out``."""
    created = (clock or (lambda: datetime.now(UTC)))().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    # 0. nothing is signed unverified: every capture passes verify's checks first
    with db.session() as session:
        _select_captures(session, capture_ids)  # unknown ids: NotFound, one line
    damaged = capture_problems(db, settings, capture_ids)
    if damaged:
        named = "; ".join(f"{p[0]}" for _cid, p in sorted(damaged.items())[:3])
        raise EvidenceDamaged(
            f"refusing to sign a bundle: {len(damaged)} capture(s) fail verification "
            f"({', '.join(map(str, sorted(damaged)))}): {named}"
        )
    with db.session() as session:
        captures = _select_captures(session, capture_ids)
        members = _members(settings, session, captures)
        # 1. the WARC: members verbatim, new offsets
        warc_buf = io.BytesIO()
        index_lines: list[str] = []
        page_dates: dict[str, str] = {}
        for member in members:
            offset = warc_buf.tell()
            warc_buf.write(member.data)
            info = member.info
            if info.get("type") in ("response", "revisit", "resource", "metadata"):
                index_lines.append(
                    warc.cdxj_line(info, filename=WARC_NAME, offset=offset, length=len(member.data))
                )
            if info.get("type") in ("response", "revisit") and info.get("uri"):
                page_dates.setdefault(info["uri"], info["date"])
        warc_bytes = warc_buf.getvalue()
        # 2. pages: one per observable capture, dated by its page response
        pages = [json.dumps({"format": "json-pages-1.0", "id": "pages", "title": title})]
        for capture in captures:
            if not capture.observable:
                continue
            meta = capture.metadata_json or {}
            page: dict[str, Any] = {
                "id": f"capture-{capture.id}",
                "url": capture.url,
                "ts": page_dates.get(capture.url, capture.captured_at.strftime("%Y-%m-%dT%H:%M:%SZ")),
                "title": meta.get("title") or capture.url,
            }
            pages.append(json.dumps(page, ensure_ascii=False, sort_keys=True))
        summary = [
            {
                "capture_id": c.id,
                "url": c.url,
                "observable": c.observable,
                "listing_key": (c.metadata_json or {}).get("listing_key"),
                "warc_sha256": c.warc_sha256,
                "screenshot_sha256": c.screenshot_sha256,
                "captured_at": c.captured_at.isoformat(),
            }
            for c in captures
        ]
    files: dict[str, bytes] = {
        f"archive/{WARC_NAME}": warc_bytes,
        "indexes/index.cdxj": ("\n".join(sorted(index_lines)) + "\n").encode("utf-8"),
        "pages/pages.jsonl": ("\n".join(pages) + "\n").encode("utf-8"),
        "tertib/captures.json": json.dumps(summary, indent=1, ensure_ascii=False).encode("utf-8"),
    }
    # 3. datapackage with per-file hashes, then its signed digest
    package = {
        "profile": "data-package",
        "resources": [
            {"name": Path(path).name.lower(), "path": path, "hash": _sha(data), "bytes": len(data)}
            for path, data in files.items()
        ],
        "wacz_version": WACZ_VERSION,
        "title": title,
        "created": created,
        "software": SOFTWARE,
    }
    package_bytes = json.dumps(package, indent=2, ensure_ascii=False).encode("utf-8")
    package_hash = _sha(package_bytes)
    signed = {
        "hash": package_hash,
        "created": created,
        "software": SOFTWARE,
        "algorithm": "ed25519",
        "signature": signing.sign(settings.keys_dir, package_hash.encode("utf-8")),
        "publicKey": signing.public_key_pem(settings.keys_dir),
    }
    digest = {"path": "datapackage.json", "hash": package_hash, "signedData": signed}
    # 4. the ZIP: WARC stored (random access for replay), text deflated; temp + rename
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for path, data in files.items():
            kind = zipfile.ZIP_STORED if path.startswith("archive/") else zipfile.ZIP_DEFLATED
            archive.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=kind)
        archive.writestr("datapackage.json", package_bytes, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr(
            "datapackage-digest.json",
            json.dumps(digest, indent=2).encode("utf-8"),
            compress_type=zipfile.ZIP_DEFLATED,
        )
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
        handle.seek(0)
        bundle_sha = hashlib.sha256(handle.read()).hexdigest()
    # 5. read back what was signed (structure, digests, every WARC record) before it gets its name
    problems = check_wacz(tmp, signing.public_key_pem(settings.keys_dir).encode("ascii"))
    if problems:
        tmp.unlink(missing_ok=True)
        raise EvidenceDamaged(f"the bundle written for {out.name} does not verify: {problems[0]}")
    os.replace(tmp, out)
    with db.session() as session:
        custody.append(
            session,
            actor=actor,
            action="bundle",
            object_type="bundle",
            object_id=str(out.resolve()),
            object_digest=bundle_sha,
            details={
                "captures": list(dict.fromkeys(capture_ids)),
                "title": title,
                "datapackage": package_hash,
            },
        )
    logger.info("wrote %s (%d captures, %d bytes)", out, len(captures), out.stat().st_size)
    return out
