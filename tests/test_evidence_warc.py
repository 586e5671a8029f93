"""WARC writing: warcio-checked digests, dedup, determinism, rotation, index, block pages."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from sqlalchemy import select
from test_evidence_support import (
    SEARCH_URL,
    exchange,
    fixed_clock,
    fixed_ids,
    listing,
    make_db,
    make_settings,
    png,
    record_sample,
)
from warcio.archiveiterator import ArchiveIterator
from warcio.checker import Checker

from crawler.evidence import warc
from crawler.evidence.capture import EvidenceRecorder
from crawler.evidence.exchange import detect_block
from crawler.items import Listing
from storage import custody
from storage.blobs import BlobStore
from storage.models import Capture, CustodyEntry

pytestmark = pytest.mark.both_backends


def _warcs(settings) -> list[Path]:
    return sorted(settings.warc_dir.glob("*.warc.gz"))


def _records(path: Path) -> list:
    out = []
    with path.open("rb") as handle:
        for record in ArchiveIterator(handle, check_digests=True):
            record.content_stream().read()
            out.append(record)
    return out


class _Cmd:
    def __init__(self, inputs: list[str]) -> None:
        self.inputs, self.verbose = inputs, True


def test_records_pass_warcio_check_with_sha256_digests(tmp_path: Path, capsys) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    with EvidenceRecorder(settings, db) as recorder:
        for i in range(3):
            record_sample(recorder, i)
    files = _warcs(settings)
    assert len(files) == 1
    assert Checker(_Cmd([str(f) for f in files])).process_all() == 0
    out = capsys.readouterr().out
    assert "digest pass" in out and "failed" not in out
    records = _records(files[0])
    types = [r.rec_type for r in records]
    # warcinfo, then capture 0 in full; captures 1 and 2 revisit the shared search response
    assert types[:7] == ["warcinfo", "response", "request", "response", "request", "resource", "metadata"]
    assert types.count("revisit") == 2 and types.count("resource") == 3 and types.count("metadata") == 3
    for record in records:
        if record.rec_type in ("warcinfo",):
            continue
        assert record.rec_headers.get_header("WARC-Block-Digest").startswith("sha256:")
        assert record.rec_headers.get_header("WARC-Payload-Digest").startswith("sha256:")
        if record.rec_type != "revisit":
            assert record.digest_checker.passed is True
    responses = {r.rec_headers.get_header("WARC-Record-ID") for r in records if r.rec_type == "response"}
    for request in (r for r in records if r.rec_type == "request"):
        assert request.rec_headers.get_header("WARC-Concurrent-To") in responses
    shot = next(r for r in records if r.rec_type == "resource")
    assert shot.rec_headers.get_header("Content-Type") == "image/png"
    with db.session() as s:
        caps = s.scalars(select(Capture).order_by(Capture.id)).all()
        assert [c.observable for c in caps] == [True, True, True]
        assert caps[1].records[0]["type"] == "revisit"
        assert caps[1].records[0]["refers_to_capture"] == caps[0].id
        # custody: one capture entry per capture, digest = sha256 of the byte range
        entries = s.scalars(select(CustodyEntry).order_by(CustodyEntry.seq)).all()
        assert [e.object_id for e in entries] == [str(c.id) for c in caps]
        data = files[0].read_bytes()
        for cap, entry in zip(caps, entries, strict=True):
            chunk = data[cap.warc_offset : cap.warc_offset + cap.warc_length]
            assert hashlib.sha256(chunk).hexdigest() == cap.warc_sha256 == entry.object_digest
        assert custody.verify(s) == []


def test_metadata_record_carries_score_query_rank_run_tool_and_time(tmp_path: Path) -> None:
    import json

    settings = make_settings(tmp_path)
    db = make_db(settings)
    with EvidenceRecorder(settings, db, clock=fixed_clock(), id_factory=fixed_ids()) as recorder:
        record_sample(recorder, 7, sweep_run_id=None)
    meta = next(r for r in _records(_warcs(settings)[0]) if r.rec_type == "metadata")
    assert meta.rec_headers.get_header("Content-Type") == "application/json"
    body = None
    with _warcs(settings)[0].open("rb") as handle:
        for record in ArchiveIterator(handle):
            if record.rec_type == "metadata":
                body = json.loads(record.content_stream().read())
    assert body is not None
    assert body["query"] == "bal korea" and body["rank"] == 7
    assert body["score"]["explanation"] == ["bal (S)", "korea (M)"]
    assert body["listing"]["title"] == "Bal Korea isi 300 no 7"
    assert body["tool"].startswith("tertib/")
    assert body["captured_at"].startswith("2026-03-01T02:30")
    assert "sweep_run_id" in body and body["observable"] is True


def test_fixed_clock_and_ids_give_byte_identical_files(tmp_path: Path) -> None:
    outputs = []
    for run in ("a", "b"):
        settings = make_settings(tmp_path / run)
        db = make_db(settings)
        with EvidenceRecorder(settings, db, clock=fixed_clock(), id_factory=fixed_ids()) as recorder:
            for i in range(3):
                record_sample(recorder, i)
        files = _warcs(settings)
        outputs.append([(f.name, f.read_bytes()) for f in files])
        db.dispose()
    assert outputs[0] == outputs[1]
    assert outputs[0][0][1]  # not empty


def test_identical_screenshots_are_stored_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    same = png(42, (200, 150))
    with EvidenceRecorder(settings, db) as recorder:
        ids = [record_sample(recorder, i, shot=same) for i in range(3)]
    blobs = list(settings.blob_dir.rglob("*"))
    assert len([b for b in blobs if b.is_file()]) == 1
    key = hashlib.sha256(same).hexdigest()
    assert BlobStore(settings.blob_dir).get(key) == same
    records = _records(_warcs(settings)[0])
    assert [r.rec_type for r in records].count("resource") == 1
    with db.session() as s:
        assert {s.get(Capture, i).screenshot_sha256 for i in ids} == {key}


def test_rotation_at_max_bytes_restarts_dedup(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, warc_max_bytes=4000)
    db = make_db(settings)
    with EvidenceRecorder(settings, db) as recorder:
        for i in range(6):
            record_sample(recorder, i, shot=png(i, (120, 90)))
    files = _warcs(settings)
    assert len(files) >= 3
    for path in files:
        assert Checker(_Cmd([str(path)])).process_all() == 0
        records = _records(path)
        assert records[0].rec_type == "warcinfo"
        ids = {r.rec_headers.get_header("WARC-Record-ID") for r in records}
        for revisit in (r for r in records if r.rec_type == "revisit"):
            assert revisit.rec_headers.get_header("WARC-Refers-To") in ids  # original is in the same file


def test_cdxj_index_finds_records_by_url_and_time(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    with EvidenceRecorder(settings, db) as recorder:
        record_sample(recorder, 0)
        record_sample(recorder, 1)
    found = warc.lookup(settings.warc_dir, listing(1)["url"])
    assert len(found) == 1 and found[0]["status"] == "200" and found[0]["mime"] == "text/html"
    path = settings.warc_dir / found[0]["filename"]
    with path.open("rb") as handle:
        handle.seek(int(found[0]["offset"]))
        record = next(iter(ArchiveIterator(io.BytesIO(handle.read(int(found[0]["length"]))))))
        assert record.rec_headers.get_header("WARC-Target-URI") == listing(1)["url"]
    search_hits = warc.lookup(settings.warc_dir, SEARCH_URL)
    assert {h["mime"] for h in search_hits} == {"application/json", "warc/revisit"}
    # the index rebuilt from the file is the same as the one written incrementally
    index = warc.index_path(path)
    written = index.read_text()
    warc.rebuild_index(path)
    assert sorted(index.read_text().splitlines()) == sorted(written.splitlines())


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (200, b"<html><title>Access Denied</title></html>", "akamai"),
        (200, b'{"error":90309999}', "signature"),
        (429, b"slow down", "rate_limited"),
        (200, b"<div id='captcha_container'></div><title>Security Check</title>", "captcha"),
    ],
)
def test_block_pages_are_stored_as_unobservable(
    tmp_path: Path, status: int, body: bytes, reason: str
) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    item = listing(1)
    with EvidenceRecorder(settings, db) as recorder:
        cid = recorder.record_capture(
            listing=Listing.from_dict(item),
            exchanges=[exchange(item["url"], body, status=status)],
            screenshot_png=png(1),
            metadata={"query": "bal"},
        )
    with db.session() as s:
        cap = s.get(Capture, cid)
        assert cap.observable is False and cap.unobservable_reason == reason
        assert cap.screenshot_sha256 is None  # a block page screenshot is never listing evidence
        assert [r["type"] for r in cap.records] == ["response", "request", "metadata"]
        entry = s.scalars(select(CustodyEntry)).one()
        assert entry.details["observable"] is False


def test_detect_block_passes_normal_pages() -> None:
    assert detect_block(exchange("https://www.tokopedia.com/a/b", b"<html>Bal Korea</html>")) is None
    redirect = exchange(
        "https://shopee.co.id/x-i.1.2", b"", status=302, headers=[("Location", "/verify/traffic?x=1")]
    )
    assert detect_block(redirect) == "captcha"


def test_decoded_bodies_keep_original_encoding_headers_renamed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    item = listing(2)
    page = exchange(
        item["url"],
        b"<html>decoded</html>",
        headers=[("Content-Type", "text/html"), ("Content-Encoding", "br"), ("Content-Length", "9")],
        decoded=True,
    )
    with EvidenceRecorder(settings, db) as recorder:
        recorder.record_capture(
            listing=Listing.from_dict(item), exchanges=[page], screenshot_png=None, metadata={}
        )
    response = next(r for r in _records(_warcs(settings)[0]) if r.rec_type == "response")
    headers = dict(response.http_headers.headers)
    assert headers["X-Archive-Orig-Content-Encoding"] == "br"
    assert headers["Content-Length"] == str(len(b"<html>decoded</html>"))
    assert "Content-Encoding" not in headers


def test_failed_db_commit_leaves_no_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    with EvidenceRecorder(settings, db) as recorder:
        record_sample(recorder, 0)
        size = _warcs(settings)[0].stat().st_size

        def boom(*args, **kwargs):
            raise RuntimeError("db down")

        monkeypatch.setattr(custody, "append", boom)
        with pytest.raises(RuntimeError):
            record_sample(recorder, 1)
        assert _warcs(settings)[0].stat().st_size == size
        monkeypatch.undo()
        record_sample(recorder, 2)
    assert Checker(_Cmd([str(_warcs(settings)[0])])).process_all() == 0


def test_async_path_runs_off_the_event_loop(tmp_path: Path) -> None:
    import asyncio

    asyncio.run(_async_path(tmp_path))


async def _async_path(tmp_path: Path) -> None:
    import asyncio
    import threading

    settings = make_settings(tmp_path)
    db = make_db(settings)
    main = threading.get_ident()
    seen: list[int] = []
    with EvidenceRecorder(settings, db) as recorder:
        original = recorder._record

        def spy(**kwargs):
            seen.append(threading.get_ident())
            return original(**kwargs)

        recorder._record = spy  # type: ignore[method-assign]
        item = listing(5)
        ids = await asyncio.gather(
            *[
                recorder.arecord_capture(
                    listing=Listing.from_dict({**item, "url": f"{item['url']}-{n}"}),
                    exchanges=[exchange(f"{item['url']}-{n}", b"<html>x</html>")],
                    screenshot_png=png(n),
                    metadata={},
                )
                for n in range(4)
            ]
        )
    assert sorted(ids) == [1, 2, 3, 4]
    assert seen and all(t != main for t in seen)
