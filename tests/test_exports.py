"""Takedown batches: golden CSV/JSON, XLSX, PDF letter, no duplicates, signed manifest, CLI errors."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import func, select

from crawler import review
from crawler.cli import main
from crawler.config import Settings, load_settings
from crawler.errors import TertibError, UsageError
from crawler.evidence.signing import ensure_keypair
from crawler.exports import service
from crawler.exports.common import sha256_file
from crawler.exports.manifest import verify_batch_dir
from crawler.exports.rows import COLUMNS
from storage import custody
from storage import repositories as repo
from storage.db import Database
from storage.models import BatchSend, Capture, CustodyEntry, TakedownBatch, TakedownItem

pytestmark = pytest.mark.both_backends

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 08:00 WIB
EXPORT_AT = datetime(2026, 3, 5, 3, 30, tzinfo=UTC)  # 10:30 WIB

# title, description, platform, listing id, seller key, price, score, verdict, signals
LISTINGS: list[dict[str, Any]] = [
    {
        "key": "tokopedia:1001",
        "title": "Bal Korea isi 300 pcs campur",
        "price": 4_500_000,
        "seller": "tok-7001",
        "score": 0.95,
        "signals": [("bal", [0, 3], 0.5, "Bal"), ("ex korea", [4, 9], 0.3, "Korea")],
    },
    {
        "key": "tokopedia:1002",
        "title": "Karungan baju bekas import Jepang 100 kg",
        "price": 3_750_000,
        "seller": "tok-7001",
        "score": 0.91,
        "signals": [("karungan", [0, 8], 0.5, "Karungan"), ("import", [20, 26], 0.2, "import")],
    },
    {
        "key": "shopee:12345.678",
        "title": "Balpres celana jeans ex Korea — grade A",
        "price": 5_200_000,
        "seller": "sho-12345",
        "score": 0.88,
        "signals": [("balpres", [0, 7], 0.6, "Balpres"), ("ex korea", [21, 29], 0.3, "ex Korea")],
    },
    {
        "key": "shopee:12345.679",
        "title": "Bal kaos branded ex Japan",
        "price": 2_900_000,
        "seller": "sho-12345",
        "score": 0.72,
        "signals": [("bal", [0, 3], 0.5, "Bal"), ("branded", [9, 16], 0.05, "branded")],
    },
    {
        "key": "lazada:555",
        "title": "Kemeja preloved koleksi pribadi",
        "price": 85_000,
        "seller": "laz-900",
        "score": 0.65,
        "signals": [("preloved", [7, 15], 0.1, "preloved"), ("koleksi pribadi", [16, 31], -0.4, "")],
    },
    {
        "key": "tokopedia:1003",
        "title": "Bal jaket import winter",
        "price": 6_000_000,
        "seller": "tok-7001",
        "score": 0.9,
        "signals": [("bal", [0, 3], 0.5, "Bal"), ("import", [10, 16], 0.2, "import")],
    },
    {
        "key": "blibli:TOB-60001-00001",
        "title": "Bal hoodie ex Korea isi 50",
        "price": 1_500_000,
        "seller": None,
        "score": 0.8,
        "signals": [("bal", [0, 3], 0.5, "Bal")],
    },
]
SELLERS = {
    "tok-7001": ("tokopedia", "7001", "Gudang Bal Import", "Bandung", ["wa:6281200000001"]),
    "sho-12345": ("shopee", "12345", "balpres_korea", "Jakarta Utara", ["wa:6281200000001", "ig:@balkorea"]),
    "laz-900": ("lazada", "900", "Toko Preloved", "Surabaya", []),
}


def build_dataset(db: Database) -> dict[str, int]:
    """The known set: 7 listings; 4 approved, 1 rejected, 1 approved-then-rejected, 1 undecided."""
    ids: dict[str, int] = {}
    with db.session() as s:
        for n, item in enumerate(LISTINGS):
            platform, listing_id = item["key"].split(":", 1)
            seen = T0 + timedelta(hours=n)
            data: dict[str, Any] = {
                "listing_key": item["key"],
                "platform": platform,
                "listing_id": listing_id,
                "url": f"https://{platform}.example/p/{listing_id}",
                "title": item["title"],
                "price": item["price"],
            }
            if item["seller"]:
                sp, sid, name, city, handles = SELLERS[item["seller"]]
                data.update(
                    seller_id=sid,
                    seller_name=name,
                    seller_city=city,
                    shop_url=f"https://{sp}.example/shop/{sid}",
                    contact_handles=handles,
                )
            lid, _ = repo.upsert_listing(s, data, seen_at=seen)
            signals = [
                {"term": t, "span": span, "weight": w, "kind": "exact", "role": "x", "matched": m}
                for t, span, w, m in item["signals"]
            ]
            score_id = repo.add_score(
                s,
                listing_id=lid,
                value=item["score"],
                verdict="strong" if item["score"] >= 0.85 else "candidate",
                explanation={"signals": signals, "scorer_version": "t1"},
                scorer_version="t1",
            )
            assert score_id
            s.add(
                Capture(
                    listing_key=item["key"],
                    url=data["url"],
                    warc_file="warc/x.warc.gz",
                    warc_sha256=f"{n + 1:064x}",
                    screenshot_sha256=f"{n + 0xA0:064x}",
                    captured_at=seen + timedelta(minutes=5),
                )
            )
            ids[item["key"]] = lid
        s.flush()
        decided = T0 + timedelta(days=1)
        review.approve(
            s,
            ["tokopedia:1001", "tokopedia:1002", "shopee:12345.678", "shopee:12345.679", "tokopedia:1003"],
            by="Siti (PKTN)",
            note="bal, ex Korea",
            at=decided,
        )
        review.reject(s, ["lazada:555"], by="Siti (PKTN)", reason="legit_preloved", at=decided)
        review.reject(
            s, ["tokopedia:1003"], by="Budi", reason="insufficient_evidence", at=decided + timedelta(hours=1)
        )
    return ids


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = load_settings(data_dir=tmp_path / "data")
    ensure_keypair(s.keys_dir)
    return s


@pytest.fixture
def no_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "bundle_writer", lambda: None)


def export(db: Database, settings: Settings, out: Path, **kw: Any) -> service.BatchResult:
    # the dataset's capture rows are synthetic (no WARC bytes): the evidence gate has its own tests
    # (tests/test_export_gates.py) on real captures
    kw.setdefault("check_evidence", False)
    kw.setdefault("now", EXPORT_AT)
    kw.setdefault("actor", "exporter")
    return service.create_batch(db, settings, name=kw.pop("name", "Patroli Maret"), out=out, **kw)


def _golden(path: Path, name: str) -> None:
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(path.read_bytes())
    assert path.read_bytes() == golden.read_bytes(), f"{name} differs from the golden file"


@pytest.mark.usefixtures("no_bundle")
def test_export_matches_golden_csv_and_json(db: Database, settings: Settings, tmp_path: Path) -> None:
    build_dataset(db)
    result = export(db, settings, tmp_path / "out")
    assert result.number == "TTB-2026-0001"
    assert result.counts == {"shopee": 2, "tokopedia": 2}
    d = result.out_dir
    assert not (d / "TTB-2026-0001-blibli.csv").exists()  # its only listing is undecided
    for platform in ("tokopedia", "shopee"):
        _golden(d / f"TTB-2026-0001-{platform}.csv", f"TTB-2026-0001-{platform}.csv")
        _golden(d / f"TTB-2026-0001-{platform}.json", f"TTB-2026-0001-{platform}.json")
    _golden(d / "TTB-2026-0001-repeat-offenders.json", "TTB-2026-0001-repeat-offenders.json")
    # the JSON is valid and carries the headline facts
    data = json.loads((d / "TTB-2026-0001-shopee.json").read_text("utf-8"))
    assert data["item_count"] == 2 and data["columns"] == [c.key for c in COLUMNS]
    assert [i["listing_id"] for i in data["items"]] == ["12345.678", "12345.679"]
    assert data["items"][0]["captured_at"] == "2026-03-02T10:05:00+07:00"
    assert data["repeat_offenders"][0]["confirmed_items"] == 4  # linked across platforms by wa: handle


@pytest.mark.usefixtures("no_bundle")
def test_rejected_after_approval_and_undecided_are_excluded(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    ids = build_dataset(db)
    export(db, settings, tmp_path / "out")
    with db.session() as s:
        exported = set(s.scalars(select(TakedownItem.listing_id)))
    assert ids["tokopedia:1003"] not in exported  # approved, then rejected
    assert ids["lazada:555"] not in exported  # rejected
    assert ids["blibli:TOB-60001-00001"] not in exported  # undecided
    assert exported == {ids[k] for k in ("tokopedia:1001", "tokopedia:1002", "shopee:12345.678",
                                         "shopee:12345.679")}  # fmt: skip


@pytest.mark.usefixtures("no_bundle")
def test_rerunning_never_duplicates_and_rerequest_is_explicit(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    ids = build_dataset(db)
    first = export(db, settings, tmp_path / "out")
    with pytest.raises(service.NothingToExport):
        export(db, settings, tmp_path / "out", now=EXPORT_AT + timedelta(hours=1))
    # a new approval goes into the next batch only
    with db.session() as s:
        review.approve(s, ["tokopedia:1003"], by="Siti (PKTN)", at=EXPORT_AT)
    second = export(db, settings, tmp_path / "out", now=EXPORT_AT + timedelta(hours=2))
    assert second.number == "TTB-2026-0002" and second.counts == {"tokopedia": 1}
    # the seller now has 3 confirmed items: the row says so and the section recommends account action
    rows = (second.out_dir / "TTB-2026-0002-tokopedia.csv").read_text("utf-8").splitlines()
    assert rows[1].split(",")[-2] == "3"  # repeat_offender_count, before evidence_status
    assert second.offenders and second.offenders[0].total == 5
    # re-request of still-live items (the audit's path) reuses listings deliberately
    third = export(
        db, settings, tmp_path / "out", now=EXPORT_AT + timedelta(days=2), listing_ids=[ids["tokopedia:1001"]]
    )
    assert third.counts == {"tokopedia": 1}
    with db.session() as s:
        per_batch = dict(
            s.execute(select(TakedownItem.batch_id, func.count()).group_by(TakedownItem.batch_id)).all()
        )
        batch_ids = s.scalars(select(TakedownBatch.id).order_by(TakedownBatch.id)).all()
        assert [per_batch[b] for b in batch_ids] == [4, 1, 1]
        assert s.scalar(select(func.count()).select_from(TakedownItem)) == 6
        actions = s.scalars(select(CustodyEntry.action).where(CustodyEntry.action == "export")).all()
        assert len(actions) == 3
    assert first.number == "TTB-2026-0001"
    with pytest.raises(UsageError):  # a rejected listing cannot be re-requested
        export(db, settings, tmp_path / "out", listing_ids=[ids["lazada:555"]])


@pytest.mark.usefixtures("no_bundle")
def test_xlsx_has_columns_types_links_frozen_header_and_filter(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    build_dataset(db)
    result = export(db, settings, tmp_path / "out")
    wb = load_workbook(result.out_dir / "TTB-2026-0001-tokopedia.xlsx")
    ws = wb["Tautan"]
    header = [c.value for c in ws[1]]
    assert header == [c.label for c in COLUMNS]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{ws.cell(1, len(COLUMNS)).column_letter}3"
    col = {c.key: i for i, c in enumerate(COLUMNS, start=1)}
    url = ws.cell(2, col["listing_url"])
    assert url.value == "https://tokopedia.example/p/1001"
    assert url.hyperlink is not None and url.hyperlink.target == "https://tokopedia.example/p/1001"
    price = ws.cell(2, col["price"])
    assert price.value == 4_500_000 and price.number_format == "#,##0"
    captured = ws.cell(2, col["captured_at"])
    assert captured.value == datetime(2026, 3, 2, 8, 5)  # WIB wall clock
    assert captured.is_date and captured.number_format.startswith("yyyy-mm-dd")
    assert isinstance(ws.cell(2, col["score"]).value, float)
    assert ws.cell(2, col["repeat_offender_count"]).value == 2
    assert {"Pelanggar berulang", "Info"} <= set(wb.sheetnames)


@pytest.mark.usefixtures("no_bundle")
def test_letters_cite_legal_basis_count_and_deadline(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    build_dataset(db)
    result = export(db, settings, tmp_path / "out", contact="Hubungi: patroli@kemendag.example, 021-555")
    pdf = result.out_dir / "TTB-2026-0001-shopee-surat.pdf"
    text = " ".join((page.extract_text() or "") for page in PdfReader(pdf).pages)
    flat = " ".join(text.split())
    for needle in (
        "Nomor 7 Tahun 2014",
        "Pasal 47 ayat (1)",
        "Pasal 111",
        "Nomor 18 Tahun 2021",
        "Nomor 40 Tahun 2022",
        "6309.00.00",
        "Nomor 80 Tahun 2019",
        "Pasal 9 ayat (2)",
        "Pasal 35 jo. Pasal 80",
        "Nomor 5 Tahun 2020",
        "Pasal 14",
        "1×24 jam",
        "Daftar tautan (2 tautan)",
        "patroli@kemendag.example",
        "pelanggar berulang",
        "TTB-2026-0001/SHOPEE",
    ):
        assert needle in flat, needle
    html = (result.out_dir / "TTB-2026-0001-shopee-surat.html").read_text("utf-8")
    assert "Pasal 47 ayat (1)" in html and "Daftar tautan (2 tautan)" in html
    assert 'href="https://shopee.example/p/12345.678"' in html
    assert "Gudang Bal Import" in html  # linked account on another platform shown together


@pytest.mark.usefixtures("no_bundle")
def test_manifest_signature_verifies_and_fails_after_tampering(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    build_dataset(db)
    result = export(db, settings, tmp_path / "out")
    d = result.out_dir
    manifest = json.loads((d / "manifest.json").read_text("utf-8"))
    listed = {f["path"] for f in manifest["files"]}
    assert "TTB-2026-0001-tokopedia.xlsx" in listed and "tertib-signing.pub" in listed
    assert manifest["evidence_bundle"]["status"] == "missing"
    with db.session() as s:
        export_entry = s.scalars(select(CustodyEntry).where(CustodyEntry.action == "export")).one()
        assert manifest["custody_anchor"]["seq"] == export_entry.seq - 1
        assert export_entry.object_digest == result.manifest_sha256
        assert custody.verify(s, anchor=(export_entry.seq, export_entry.entry_hash)) == []
    public = settings.keys_dir / "tertib-signing.pub"
    assert verify_batch_dir(d, public) == []
    # a changed data file breaks its digest
    csv_path = d / "TTB-2026-0001-shopee.csv"
    original = csv_path.read_bytes()
    csv_path.write_bytes(original.replace(b"12345.679", b"12345.670"))
    assert verify_batch_dir(d, public) == ["TTB-2026-0001-shopee.csv: content differs from the manifest"]
    csv_path.write_bytes(original)
    # an edited manifest (hiding the change) breaks the signature
    raw = (d / "manifest.json").read_bytes()
    (d / "manifest.json").write_bytes(raw.replace(b'"item_count": 4', b'"item_count": 3'))
    problems = verify_batch_dir(d, public)
    assert any("manifest.sig does not match" in p for p in problems)
    # another key does not verify the original either
    (d / "manifest.json").write_bytes(raw)
    other = tmp_path / "other-keys"
    ensure_keypair(other)
    assert any("untrusted key" in p for p in verify_batch_dir(d, other / "tertib-signing.pub"))


def test_bundle_is_listed_in_the_manifest_when_the_writer_succeeds(
    db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_dataset(db)
    calls: list[dict[str, Any]] = []

    def fake_write_wacz(db_: Database, settings_: Settings, **kw: Any) -> Path:
        calls.append(kw)
        kw["out"].write_bytes(b"PK-wacz-bytes")
        return Path(kw["out"])

    monkeypatch.setattr(service, "bundle_writer", lambda: fake_write_wacz)
    result = export(db, settings, tmp_path / "out")
    assert (
        calls
        and calls[0]["capture_ids"] == sorted(calls[0]["capture_ids"])
        and len(calls[0]["capture_ids"]) == 4
    )
    entry = json.loads((result.out_dir / "manifest.json").read_text("utf-8"))["evidence_bundle"]
    assert entry["status"] == "ok" and entry["path"] == "evidence/evidence.wacz"
    # the fake bundle's digest matches the manifest, but verify reads the bundle itself: not a WACZ
    problems = verify_batch_dir(result.out_dir, settings.keys_dir / "tertib-signing.pub")
    assert len(problems) == 1 and problems[0].startswith("evidence/evidence.wacz:") and "ZIP" in problems[0]
    # without a trusted key, the copy beside the files proves integrity only, and says so
    assert any("untrusted key" in p for p in verify_batch_dir(result.out_dir))


def test_real_evidence_bundle_goes_into_the_batch(db: Database, settings: Settings, tmp_path: Path) -> None:
    """With the evidence module present the batch carries its signed WACZ; without it, says 'missing'."""
    build_dataset(db)
    result = export(db, settings, tmp_path / "out")
    if service.bundle_writer() is None:
        assert result.bundle["status"] == "missing" and not (result.out_dir / "evidence").exists()
        return
    assert result.bundle["status"] == "ok" and result.bundle["captures"] == 4
    wacz = result.out_dir / "evidence" / "evidence.wacz"
    assert wacz.is_file() and result.bundle["sha256"] == sha256_file(wacz)
    assert verify_batch_dir(result.out_dir, settings.keys_dir / "tertib-signing.pub") == []


@pytest.mark.usefixtures("no_bundle")
def test_platform_and_since_filters(db: Database, settings: Settings, tmp_path: Path) -> None:
    build_dataset(db)
    with pytest.raises(service.NothingToExport):
        export(db, settings, tmp_path / "out", since=EXPORT_AT)
    result = export(db, settings, tmp_path / "out", platforms=["shopee"])
    assert result.counts == {"shopee": 2}
    with pytest.raises(UsageError):
        export(db, settings, tmp_path / "out", platforms=["myspace"])


@pytest.mark.usefixtures("no_bundle")
def test_mark_sent_records_the_audit_clock(db: Database, settings: Settings, tmp_path: Path) -> None:
    build_dataset(db)
    export(db, settings, tmp_path / "out")
    sent = datetime(2026, 3, 5, 2, 30, tzinfo=UTC) + timedelta(hours=2)
    with db.session() as s:
        service.mark_sent(s, "TTB-2026-0001", platform="shopee", channel="idea", sent_at=sent, by="Siti")
    with db.session() as s:
        send = s.scalars(select(BatchSend)).one()
        assert (send.platform, send.channel, send.sent_at) == ("shopee", "idea", sent)
        with pytest.raises(UsageError, match="already marked"):
            service.mark_sent(s, "TTB-2026-0001", platform="shopee", channel="portal", sent_at=sent, by="x")
        with pytest.raises(UsageError, match="no items"):
            service.mark_sent(s, "TTB-2026-0001", platform="lazada", channel="portal", sent_at=sent, by="x")
        with pytest.raises(UsageError, match="unknown channel"):
            service.mark_sent(s, "TTB-2026-0001", platform="tokopedia", channel="fax", sent_at=sent, by="x")
        with pytest.raises(TertibError, match="no such batch"):
            service.mark_sent(s, "TTB-2026-0099", platform="tokopedia", channel="idea", sent_at=sent, by="x")


# -- CLI -----------------------------------------------------------------------------------------


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_export_flow_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from crawler import cli_common

    code, _, _ = run(["init"], capsys)
    assert code == 0
    build_dataset(cli_common.database())
    out = tmp_path / "send"
    code, stdout, err = run(["export", "--batch-name", "Patroli CLI", "--out", str(out)], capsys)
    assert code == 0, err
    number = f"TTB-{datetime.now(UTC).year}-0001"
    assert number in stdout and (out / number / "manifest.json").is_file()
    code, stdout, err = run(["export", "--batch-name", "again", "--out", str(out)], capsys)
    assert code == 1 and err.strip().startswith("error:") and len(err.strip().splitlines()) == 1
    code, stdout, _ = run(["export", "list"], capsys)
    assert code == 0 and number in stdout
    at = (datetime.now(UTC) + timedelta(minutes=5)).astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")
    code, stdout, err = run(
        ["export", "mark-sent", number, "--platform", "shopee", "--channel", "idea", "--at", at], capsys
    )
    assert code == 0, err
    code, stdout, _ = run(["export", "show", number], capsys)
    assert code == 0 and "idea" in stdout and "not sent" in stdout
    code, stdout, err = run(["export", "verify", str(out / number)], capsys)
    assert code == 0 and "signed by the trusted key" in stdout
    code, _, err = run(["export", "show", "TTB-1999-0042"], capsys)
    assert code == 1 and err.strip() == "error: no such batch: TTB-1999-0042"
    code, _, err = run(
        ["export", "mark-sent", number, "--platform", "shopee", "--channel", "idea", "--at", "yesterday"],
        capsys,
    )
    assert code == 2 and "not an ISO date/time" in err and "Traceback" not in err


@pytest.mark.usefixtures("no_bundle")
def test_a_failed_export_leaves_no_batch_and_no_directory(
    db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_dataset(db)

    def broken(*args: Any, **kwargs: Any) -> Path:
        raise OSError("disk full")

    original = service.letters.write_pdf
    monkeypatch.setattr(service.letters, "write_pdf", broken)
    with pytest.raises(OSError, match="disk full"):
        export(db, settings, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(TakedownBatch)) == 0
        assert s.scalar(select(func.count()).select_from(TakedownItem)) == 0
    monkeypatch.setattr(service.letters, "write_pdf", original)
    assert export(db, settings, tmp_path / "out").number == "TTB-2026-0001"
