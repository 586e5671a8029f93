"""Every tamper class a hostile examination tried: each makes ``tertib evidence verify --all`` exit non-zero
naming the record or file, and nothing damaged or forged is ever signed by ``export`` or ``evidence bundle``.

The store is real: captures written by the evidence recorder, approvals by ``crawler.review``, a batch by
``create_batch`` with its signed manifest and WACZ. Each case changes one thing the way an attacker (or a
failing disk) would — bytes in a file, a row in the database, an entry in the custody log — then verifies.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from test_evidence_support import captured_store, listing, make_settings

from crawler import review
from crawler.cli import main
from crawler.config import Settings
from crawler.evidence import signing, warc
from crawler.evidence.bundle import EvidenceDamaged, write_wacz
from crawler.evidence.verify import verify
from crawler.exports.service import NothingToExport, create_batch
from storage.blobs import BlobStore
from storage.db import Database
from storage.models import Capture, CustodyEntry, ReviewDecision, TakedownBatch, TakedownItem
from storage.models import Listing as ListingRow

NOW = datetime(2026, 3, 4, 3, tzinfo=UTC)


@dataclass
class Store:
    settings: Settings
    db: Database
    captures: list[int]
    batch_id: int
    batch_dir: Path
    tmp: Path

    def capture(self, index: int) -> Capture:
        with self.db.session() as s:
            return s.get(Capture, self.captures[index])

    def warc_path(self) -> Path:
        return self.settings.data_dir / self.capture(0).warc_file

    def sql(self, statement: str, **params: Any) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(text(statement), params)


def build_store(tmp_path: Path, n: int = 4, batch_of: int = 3) -> Store:
    settings, db, ids = captured_store(tmp_path, n)
    with db.session() as s:
        review.approve(s, [listing(i)["listing_key"] for i in range(batch_of)], by="Siti (PKTN)")
    result = create_batch(db, settings, name="uji", out=tmp_path / "exports", now=NOW, actor="exporter")
    return Store(settings, db, ids, result.batch_id, result.out_dir, tmp_path)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """One real store per module (captures, approvals, a signed batch with letters and WACZ)."""
    built = build_store(tmp_path_factory.mktemp("tamper-template"))
    built.db.dispose()  # checkpointed: the files can be copied
    return built


@pytest.fixture
def store(template: Store, tmp_path: Path) -> Store:
    """A private copy of the template store in this test's directory (what the CLI's data dir is)."""
    shutil.copytree(template.tmp, tmp_path, dirs_exist_ok=True)
    settings = make_settings(tmp_path)
    db = Database(settings.db_url)
    batch_dir = tmp_path / template.batch_dir.relative_to(template.tmp)
    with db.engine.begin() as conn:  # the batch row names its directory by absolute path
        conn.execute(text("UPDATE takedown_batches SET out_dir = :d"), {"d": str(batch_dir.resolve())})
    return Store(settings, db, template.captures, template.batch_id, batch_dir, tmp_path)


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def problems_of(store: Store, **scope: Any) -> list[str]:
    scope = scope or {"all": True}
    return [str(p) for p in verify(store.db, store.settings, record=False, **scope).problems]


# -- the tamper classes --------------------------------------------------------------------------


def t_record_byte(st: Store) -> str:
    cap = st.capture(1)
    page = next(r for r in cap.records if r["type"] == "response")
    flip(st.settings.data_dir / cap.warc_file, page["offset"] + page["length"] // 2)
    return f"capture {cap.id} record {page['record_id']}"


def t_warcinfo_byte(st: Store) -> str:
    flip(st.warc_path(), 30)
    return "warcinfo record"


def t_warc_truncated(st: Store) -> str:
    path = st.warc_path()
    path.write_bytes(path.read_bytes()[:-200])
    return f"capture {st.captures[-1]}"


def t_bytes_appended(st: Store) -> str:
    with st.warc_path().open("ab") as handle:
        handle.write(gzip.compress(b"WARC/1.1\r\nWARC-Type: resource\r\n\r\nforged"))
    return "not part of any committed capture"


def t_cdxj_line_edited(st: Store) -> str:
    index = warc.index_path(st.warc_path())
    lines = index.read_text("utf-8").splitlines()
    lines[1] = lines[1].replace('"status": "200"', '"status": "404"')
    index.write_text("\n".join(lines) + "\n", "utf-8")
    return "CDXJ index"


def t_cdxj_deleted(st: Store) -> str:
    warc.index_path(st.warc_path()).unlink()
    return "CDXJ index"


def t_sidecar_edited(st: Store) -> str:
    sidecar = warc.sidecar_path(st.warc_path())
    state = json.loads(sidecar.read_text("utf-8"))
    sidecar.write_text(json.dumps({**state, "warcinfo_length": state["warcinfo_length"] + 7}), "utf-8")
    return "sidecar"


def t_sidecar_garbage(st: Store) -> str:
    warc.sidecar_path(st.warc_path()).write_bytes(b"\x00\xff not json")
    return "sidecar"


def t_blob_flipped(st: Store) -> str:
    key = st.capture(2).screenshot_sha256
    flip(BlobStore(st.settings.blob_dir).path(key), 50)
    return key


def t_blob_deleted(st: Store) -> str:
    key = st.capture(0).screenshot_sha256
    BlobStore(st.settings.blob_dir).path(key).unlink()
    return key


def t_custody_entry_modified(st: Store) -> str:
    st.sql("UPDATE custody_entries SET actor = 'mallory' WHERE seq = 3")
    return "custody entry 3"


def t_custody_tail_deleted(st: Store) -> str:
    """The newest entries go: the export, the approvals and the batch's own anchor."""
    with st.db.session() as s:
        head = s.scalar(select(func.max(CustodyEntry.seq)))
    st.sql("DELETE FROM custody_entries WHERE seq > :keep", keep=len(st.captures) - 1)
    assert head and head > len(st.captures)
    return "log truncated"


def t_custody_middle_deleted(st: Store) -> str:
    st.sql("DELETE FROM custody_entries WHERE seq = 2")
    return "custody entry 2"


def t_decision_inserted(st: Store) -> str:
    with st.db.session() as s:
        lid = s.scalar(select(ListingRow.id).where(ListingRow.listing_key == listing(3)["listing_key"]))
        row = ReviewDecision(listing_id=lid, decision="approve", reviewer="Siti (PKTN)", decided_at=NOW)
        s.add(row)
        s.flush()
        return f"decision {row.id}"


def t_decision_edited(st: Store) -> str:
    with st.db.session() as s:
        decision_id = s.scalar(select(func.min(ReviewDecision.id)))
    st.sql("UPDATE review_decisions SET reviewer = 'Mallory' WHERE id = :i", i=decision_id)
    return f"decision {decision_id}"


def t_capture_row_edited(st: Store) -> str:
    st.sql("UPDATE captures SET warc_sha256 = :d WHERE id = :i", d="ab" * 32, i=st.captures[0])
    return f"capture {st.captures[0]}"


def t_capture_row_moved(st: Store) -> str:
    st.sql("UPDATE captures SET url = 'https://elsewhere.example/' WHERE id = :i", i=st.captures[1])
    return f"capture {st.captures[1]}"


def t_item_inserted(st: Store) -> str:
    with st.db.session() as s:
        lid = s.scalar(select(ListingRow.id).where(ListingRow.listing_key == listing(3)["listing_key"]))
        s.add(TakedownItem(batch_id=st.batch_id, listing_id=lid, platform="tokopedia", row_no=99, url="x"))
    return "batch TTB-2026-0001"


def t_batch_csv_edited(st: Store) -> str:
    csv_path = next(st.batch_dir.glob("*.csv"))
    csv_path.write_text(csv_path.read_text("utf-8").replace("tokopedia", "tokopedla"), "utf-8")
    return csv_path.name


def t_batch_xlsx_deleted(st: Store) -> str:
    xlsx = next(st.batch_dir.glob("*.xlsx"))
    xlsx.unlink()
    return xlsx.name


def t_batch_wacz_flipped(st: Store) -> str:
    wacz = st.batch_dir / "evidence" / "evidence.wacz"
    flip(wacz, wacz.stat().st_size // 2)
    return "evidence/evidence.wacz"


def t_resigned_with_new_key(st: Store) -> str:
    """A changed manifest re-signed with another key, and that key dropped beside the files."""
    other = st.tmp / "other-keys"
    signing.ensure_keypair(other)
    manifest = st.batch_dir / "manifest.json"
    data = manifest.read_bytes().replace(b'"uji"', b'"uji-2"')
    manifest.write_bytes(data)
    (st.batch_dir / "manifest.sig").write_text(signing.sign(other, data) + "\n")
    shutil.copy(other / signing.PUBLIC_NAME, st.batch_dir / signing.PUBLIC_NAME)
    return "untrusted key"


def t_manifest_edited(st: Store) -> str:
    manifest = st.batch_dir / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"uji"', b'"uji-3"'))
    return "manifest"


def t_batch_digest_edited(st: Store) -> str:
    st.sql("UPDATE takedown_batches SET manifest_sha256 = :d", d="cd" * 32)
    return "batch TTB-2026-0001"


TAMPERS: dict[str, Callable[[Store], str]] = {
    name.removeprefix("t_"): fn for name, fn in globals().items() if name.startswith("t_") and callable(fn)
}
BATCH_FILE_TAMPERS = {"batch_csv_edited", "batch_xlsx_deleted", "batch_wacz_flipped", "resigned_with_new_key"}


def test_untouched_store_verifies(store: Store) -> None:
    assert problems_of(store) == []
    assert problems_of(store, batch_id=store.batch_id) == []


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_each_tamper_class_fails_verify_naming_the_object(
    name: str, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    named = TAMPERS[name](store)
    found = problems_of(store)
    assert found, f"{name}: verify --all passed"
    assert any(named in p for p in found), (name, named, found)
    if name in BATCH_FILE_TAMPERS:  # verify --batch checks the batch's files as export verify does
        assert any(named in p for p in problems_of(store, batch_id=store.batch_id)), name
    # the command itself: non-zero, the object named in its report, one error line
    store.db.dispose()
    with pytest.raises(SystemExit) as exit_info:
        main(["evidence", "verify", "--all"])
    assert exit_info.value.code == 1
    out, err = capsys.readouterr()
    assert named.split()[-1] in out
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1


def test_export_verify_trusts_only_the_installation_key(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    t_resigned_with_new_key(store)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "verify", str(store.batch_dir)])
    assert exit_info.value.code == 1
    out, _ = capsys.readouterr()
    assert "untrusted key" in out


# -- nothing is signed unverified ---------------------------------------------------------------------


def test_export_excludes_a_forged_approval_and_damaged_evidence(tmp_path: Path) -> None:
    st = build_store(tmp_path, n=6, batch_of=1)
    forged = t_decision_inserted(st)  # listing 3: approved straight in the database
    with st.db.session() as s:
        review.approve(s, [listing(4)["listing_key"], listing(5)["listing_key"]], by="Siti (PKTN)")
    cap5 = st.capture(5)
    page = next(r for r in cap5.records if r["type"] == "response")
    flip(st.settings.data_dir / cap5.warc_file, page["offset"] + 40)
    result = create_batch(st.db, st.settings, name="dua", out=tmp_path / "exports", now=NOW, actor="exporter")
    assert result.counts == {"tokopedia": 1}  # only listing 4 is real and intact
    reasons = {e["listing_key"]: e["reason"] for e in result.excluded}
    assert "inserted outside tertib" in reasons[listing(3)["listing_key"]], forged
    assert "damaged" in reasons[listing(5)["listing_key"]]
    manifest = json.loads((result.out_dir / "manifest.json").read_text("utf-8"))
    assert {e["listing_key"] for e in manifest["excluded"]} == set(reasons)


def test_an_approved_listing_without_evidence_needs_the_flag(tmp_path: Path) -> None:
    st = build_store(tmp_path, n=3, batch_of=1)
    with st.db.session() as s:
        s.add(ListingRow(listing_key="tokopedia:9", platform="tokopedia", platform_listing_id="9",
                         url="https://www.tokopedia.com/x/9", title="bal korea"))  # fmt: skip
        s.flush()
        review.approve(s, ["tokopedia:9"], by="Siti (PKTN)")
    with pytest.raises(NothingToExport, match="allow-missing-evidence"):
        create_batch(st.db, st.settings, name="tanpa", out=tmp_path / "exports", now=NOW)
    result = create_batch(
        st.db, st.settings, name="tanpa", out=tmp_path / "exports", now=NOW, allow_missing_evidence=True
    )
    assert result.missing_evidence == 1
    rows = (result.out_dir / f"{result.number}-tokopedia.csv").read_text("utf-8").splitlines()
    header = rows[0].split(",")
    assert rows[1].split(",")[header.index("evidence_status")] == "missing"


def test_bundle_refuses_a_damaged_capture(store: Store) -> None:
    named = t_record_byte(store)
    out = store.tmp / "b.wacz"
    with pytest.raises(EvidenceDamaged, match=f"capture {store.captures[1]}"):
        write_wacz(store.db, store.settings, capture_ids=store.captures, out=out, title="x")
    assert not out.exists() and not out.with_name("b.wacz.tmp").exists(), named
    with store.db.session() as s:  # the failed attempt left no bundle entry in the custody log
        assert s.scalar(select(func.count()).select_from(TakedownBatch)) == 1
