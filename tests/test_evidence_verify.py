"""verify: a clean store passes; one flipped byte in a WARC, a blob, a custody entry or a manifest fails."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from test_evidence_support import captured_store, listing, run_cli

from crawler import review
from crawler.errors import UsageError
from crawler.evidence.verify import verify
from crawler.exports.service import create_batch
from storage.blobs import BlobStore
from storage.models import Capture, CustodyEntry

pytestmark = pytest.mark.both_backends


def _store(tmp_path: Path, n: int = 3):
    return captured_store(tmp_path, n)


def _batch(settings, db, ids, *, tmp_path: Path) -> int:
    """A real batch of the captured listings: approved by a reviewer, exported and signed."""
    with db.session() as s:
        keys = [
            s.get(Capture, cid).metadata_json.get("listing_key") or listing(i)["listing_key"]
            for i, cid in enumerate(ids)
        ]
        review.approve(s, keys, by="Siti (PKTN)")
    result = create_batch(
        db, settings, name="test", out=tmp_path / "exports", now=datetime(2026, 3, 4, 3, tzinfo=UTC)
    )
    assert result.number == "TTB-2026-0001"
    return result.batch_id


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_clean_store_verifies_and_appends_a_verify_entry(tmp_path: Path) -> None:
    settings, db, ids = _store(tmp_path)
    batch_id = _batch(settings, db, ids, tmp_path=tmp_path)
    report = verify(db, settings, all=True)
    assert report.ok, [str(p) for p in report.problems]
    assert report.captures == 3 and report.records >= 15 and report.screenshots == 3 and report.batches == 1
    with db.session() as s:
        last = s.scalars(select(CustodyEntry).order_by(CustodyEntry.seq.desc())).first()
        assert last.action == "verify" and last.details["ok"] is True
        assert all(s.get(Capture, i).listing_key is not None for i in ids)
    assert verify(db, settings, batch_id=batch_id).ok
    assert verify(db, settings, capture_ids=[ids[1]]).ok


def test_flipped_warc_byte_names_the_capture_and_record(tmp_path: Path) -> None:
    settings, db, ids = _store(tmp_path)
    with db.session() as s:
        cap = s.get(Capture, ids[1])
        page = next(r for r in cap.records if r["type"] == "response")
        path = settings.data_dir / cap.warc_file
    _flip(path, page["offset"] + page["length"] // 2)
    report = verify(db, settings, all=True)
    assert not report.ok
    text_ = "\n".join(map(str, report.problems))
    assert f"capture {ids[1]}" in text_ and page["record_id"] in text_
    assert all(f"capture {other}:" not in text_ for other in (ids[0], ids[2]))


def test_flipped_screenshot_blob_byte_names_the_blob(tmp_path: Path) -> None:
    settings, db, ids = _store(tmp_path)
    with db.session() as s:
        key = s.get(Capture, ids[2]).screenshot_sha256
    _flip(BlobStore(settings.blob_dir).path(key), 40)
    report = verify(db, settings, capture_ids=[ids[2]])
    assert [p.kind for p in report.problems] == ["screenshot"]
    assert key in str(report.problems[0]) and f"capture {ids[2]}" in str(report.problems[0])


def test_modified_custody_entry_is_named(tmp_path: Path) -> None:
    settings, db, ids = _store(tmp_path)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE custody_entries SET object_digest = :d WHERE seq = 2"), {"d": "0" * 64})
    report = verify(db, settings, all=True)
    problems = [str(p) for p in report.problems]
    assert any(p.startswith("custody entry 2:") and "modified" in p for p in problems), problems
    # the capture whose custody digest no longer matches is named too
    assert any(p.startswith(f"capture {ids[1]}:") and "custody" in p for p in problems), problems


def test_changed_manifest_and_bad_signature_fail(tmp_path: Path) -> None:
    settings, db, ids = _store(tmp_path)
    batch_id = _batch(settings, db, ids, tmp_path=tmp_path)
    manifest = tmp_path / "exports" / "TTB-2026-0001" / "manifest.json"
    _flip(manifest, 5)
    report = verify(db, settings, batch_id=batch_id)
    problems = [str(p) for p in report.problems]
    assert any("batch TTB-2026-0001" in p and "changed" in p for p in problems), problems
    assert any("signature" in p for p in problems), problems
    _flip(manifest, 5)  # restore, then break only the detached signature
    sig = manifest.with_name("manifest.sig")
    sig.write_text(sig.read_text()[:-2] + ("00" if not sig.read_text().endswith("00") else "11"))
    problems = [str(p) for p in verify(db, settings, batch_id=batch_id).problems]
    assert problems == [
        "batch TTB-2026-0001: manifest.sig does not match manifest.json (tampered or another key)"
    ]


def test_verify_needs_a_scope(tmp_path: Path) -> None:
    settings, db, _ = _store(tmp_path, 1)
    with pytest.raises(UsageError):
        verify(db, settings)


def test_cli_verify_show_and_exit_codes(tmp_path: Path, capsys) -> None:
    settings, db, ids = _store(tmp_path)
    db.dispose()
    assert run_cli(["evidence", "verify", "--all"]) == 0
    assert "OK" in capsys.readouterr().out
    assert run_cli(["evidence", "verify"]) == 2
    assert "--all" in capsys.readouterr().err
    shot = tmp_path / "shot.png"
    assert run_cli(["evidence", "show", str(ids[0]), "--screenshot", str(shot)]) == 0
    out = capsys.readouterr().out
    assert "warc_sha256" in out and shot.read_bytes().startswith(b"\x89PNG")
    assert run_cli(["evidence", "show", "999"]) == 1
    assert "no capture with id 999" in capsys.readouterr().err
    with db.session() as s:
        key = s.get(Capture, ids[0]).screenshot_sha256
    _flip(BlobStore(settings.blob_dir).path(key), 30)
    assert run_cli(["evidence", "verify", "--capture", str(ids[0])]) == 1
    out = capsys.readouterr().out
    assert "screenshot" in out and key[:12] in out
