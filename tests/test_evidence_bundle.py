"""WACZ bundles: structure, hashes, signature (ours and py-wacz's validator), replay in pywb."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from test_evidence_support import SEARCH_BODY, SEARCH_URL, listing, make_db, make_settings, record_sample

from crawler.evidence import signing
from crawler.evidence.bundle import check_wacz, write_wacz
from crawler.evidence.capture import EvidenceRecorder
from storage.models import CustodyEntry

pytestmark = pytest.mark.both_backends


def _bundle(tmp_path: Path, pick: list[int] | None = None) -> tuple[Path, object, list[int]]:
    settings = make_settings(tmp_path)
    db = make_db(settings)
    signing.ensure_keypair(settings.keys_dir)
    with EvidenceRecorder(settings, db) as recorder:
        ids = [record_sample(recorder, i) for i in range(4)]
    out = tmp_path / "out" / "batch.wacz"
    chosen = pick if pick is not None else list(range(len(ids)))
    write_wacz(db, settings, capture_ids=[ids[i] for i in chosen], out=out, title="Batch TTB-2026-0001")
    return out, settings, ids


def test_wacz_structure_hashes_and_signature(tmp_path: Path) -> None:
    out, settings, _ = _bundle(tmp_path)
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        assert {
            "archive/data.warc.gz",
            "indexes/index.cdxj",
            "pages/pages.jsonl",
            "datapackage.json",
            "datapackage-digest.json",
        } <= names
        assert z.getinfo("archive/data.warc.gz").compress_type == zipfile.ZIP_STORED
        package = json.loads(z.read("datapackage.json"))
        assert package["wacz_version"] == "1.1.1"
        assert all(r["hash"].startswith("sha256:") for r in package["resources"])
        pages = [json.loads(line) for line in z.read("pages/pages.jsonl").decode().splitlines()]
        assert pages[0]["format"] == "json-pages-1.0"
        assert [p["url"] for p in pages[1:]] == [listing(i)["url"] for i in range(4)]
        index = z.read("indexes/index.cdxj").decode().splitlines()
        assert index == sorted(index) and any(line.startswith("com,tokopedia)/bal-shop") for line in index)
    pub = (settings.keys_dir / signing.PUBLIC_NAME).read_bytes()
    assert check_wacz(out, pub) == []


def test_wacz_tampering_and_wrong_key_are_reported(tmp_path: Path) -> None:
    out, settings, _ = _bundle(tmp_path)
    pub = (settings.keys_dir / signing.PUBLIC_NAME).read_bytes()
    # another installation's key: the signature must not verify
    other = tmp_path / "other-keys"
    signing.ensure_keypair(other)
    assert check_wacz(out, (other / signing.PUBLIC_NAME).read_bytes()) == [
        "datapackage-digest.json: signature does not verify"
    ]
    # one flipped byte inside the stored WARC
    tampered = tmp_path / "tampered.wacz"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "archive/data.warc.gz":
                data = data[:500] + bytes([data[500] ^ 1]) + data[501:]
            dst.writestr(info, data, compress_type=info.compress_type)
    problems = check_wacz(tampered, pub)
    assert any(p.startswith("archive/data.warc.gz: sha256 differs") for p in problems), problems


def test_revisit_originals_travel_with_a_partial_bundle(tmp_path: Path) -> None:
    # capture 3 revisits the search response stored in capture 1: the bundle must carry the original
    out, settings, _ = _bundle(tmp_path, pick=[3])
    from warcio.archiveiterator import ArchiveIterator

    with zipfile.ZipFile(out) as z, z.open("archive/data.warc.gz") as handle:
        records = list(ArchiveIterator(handle))
        types = [(r.rec_type, r.rec_headers.get_header("WARC-Target-URI")) for r in records]
    assert ("response", SEARCH_URL) in types and ("revisit", SEARCH_URL) in types
    assert check_wacz(out, (settings.keys_dir / signing.PUBLIC_NAME).read_bytes()) == []


def test_bundle_appends_custody_entry(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    out, _, _ = _bundle(tmp_path)
    db = make_db(settings)
    with db.session() as s:
        entry = s.query(CustodyEntry).order_by(CustodyEntry.seq.desc()).first()
        assert entry.action == "bundle" and entry.object_id == str(out.resolve())
        import hashlib

        assert entry.object_digest == hashlib.sha256(out.read_bytes()).hexdigest()


# SQLite alone: what this checks (file formats, matching quality, process signals) does not depend on the
# database, and on both backends it would add seconds to every run (tests/conftest.py).
@pytest.mark.sqlite_only
def test_py_wacz_validator_accepts_the_bundle(tmp_path: Path) -> None:
    pytest.importorskip("wacz")
    out, _, _ = _bundle(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "wacz", "validate", "-f", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation succeeded" in result.stdout


REPLAY = textwrap.dedent(
    """
    import json, sys
    from werkzeug.test import Client
    from pywb.apps.frontendapp import FrontEndApp
    client = Client(FrontEndApp())
    out = {}
    for name, url in json.loads(sys.argv[1]).items():
        resp = client.get(url)
        out[name] = [resp.status_code, resp.get_data().decode("utf-8", "replace")]
    print(json.dumps(out))
    """
)


# SQLite alone: what this checks (file formats, matching quality, process signals) does not depend on the
# database, and on both backends it would add seconds to every run (tests/conftest.py).
@pytest.mark.sqlite_only
@pytest.mark.slow
def test_pywb_indexes_and_replays_the_bundle(tmp_path: Path) -> None:
    pytest.importorskip("pywb")
    out, _, _ = _bundle(tmp_path)
    work = tmp_path / "pywb"
    work.mkdir()
    with zipfile.ZipFile(out) as z:
        (work / "evidence.warc.gz").write_bytes(z.read("archive/data.warc.gz"))
    manager = str(Path(sys.executable).with_name("wb-manager"))
    for args in (["init", "ev"], ["add", "ev", "evidence.warc.gz"]):
        run = subprocess.run([manager, *args], cwd=work, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
    urls = {
        "page": f"/ev/2026id_/{listing(2)['url']}",
        "search_via_revisit": f"/ev/2030id_/{SEARCH_URL}",
        "cdx": f"/ev/cdx?url={listing(2)['url']}&output=json",
    }
    run = subprocess.run(
        [sys.executable, "-c", REPLAY, json.dumps(urls)],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["page"][0] == 200 and "Bal Korea isi 300 no 2" in result["page"][1]
    assert result["search_via_revisit"][0] == 200
    assert result["search_via_revisit"][1] == SEARCH_BODY.decode()
    assert '"status": "200"' in result["cdx"][1]
