"""Evidence in S3 with Object Lock, against a real Ceph radosgw on loopback (tests/servers.py).

Blobs and closed WARC segments go to the bucket; verify and WACZ bundles read them back; COMPLIANCE
retention refuses deletes and keeps the original bytes when someone writes over them; bad S3 settings
stop a command at start with one line and nothing written.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from servers import CephS3Server, free_port
from test_evidence_support import listing, make_db, make_settings, png, record_sample, run_cli

from crawler.evidence import signing
from crawler.evidence.bundle import check_wacz, write_wacz
from crawler.evidence.capture import EvidenceRecorder
from crawler.evidence.verify import verify
from storage.evidence_store import S3EvidenceStore, open_store
from storage.models import Capture

pytestmark = [pytest.mark.s3, pytest.mark.slow, pytest.mark.integration]


def _bucket(server: CephS3Server, *, lock: bool) -> str:
    name = f"ev-{secrets.token_hex(5)}"
    server.client().create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)  # type: ignore[attr-defined]
    return name


def _record(tmp_path: Path, bucket: str, n: int = 4, **overrides: Any) -> tuple[Any, Any, list[int]]:
    # a small rotation size: several segments are closed (and archived) during the run
    settings = make_settings(
        tmp_path,
        evidence_url=f"s3://{bucket}/tertib",
        warc_max_bytes=9_000,
        evidence_retention_days=1,
        **overrides,
    )
    db = make_db(settings)
    signing.ensure_keypair(settings.keys_dir)
    with EvidenceRecorder(settings, db) as recorder:
        ids = [record_sample(recorder, i, shot=png(i)) for i in range(n)]
    return settings, db, ids


def _keys(server: CephS3Server, bucket: str) -> list[str]:
    listed = server.client().list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_blobs_and_closed_segments_live_in_s3_under_compliance_lock(s3: CephS3Server, tmp_path: Path) -> None:
    bucket = _bucket(s3, lock=True)
    settings, db, ids = _record(tmp_path, bucket)
    keys = _keys(s3, bucket)
    segments = [k for k in keys if k.endswith(".warc.gz")]
    blobs = [k for k in keys if k.startswith("tertib/blobs/")]
    assert len(segments) >= 2 and all(k.startswith("tertib/warc/tertib-") for k in segments)
    assert {k + ".cdxj" for k in segments} <= set(keys)
    assert len(blobs) == 4
    # the local disk keeps only the small sidecars: the segments' bytes are in the bucket
    assert list(settings.warc_dir.glob("*.warc.gz")) == []
    sidecars = [json.loads(p.read_text()) for p in settings.warc_dir.glob("*.warc.gz.json")]
    assert sidecars and all(s["archived"].startswith(f"s3://{bucket}/tertib/warc/") for s in sidecars)
    for key in segments + blobs:
        head = s3.client().head_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
        assert head["ObjectLockMode"] == "COMPLIANCE" and head.get("ObjectLockRetainUntilDate")
    with db.session() as s:
        rows = s.query(Capture).order_by(Capture.id).all()
        assert {r.warc_file.split("/")[-1] for r in rows} <= {k.split("/")[-1] for k in segments}
    # verify reads every range and blob back from S3
    report = verify(db, settings, all=True, record=False)
    assert report.ok, [str(p) for p in report.problems]
    assert report.captures == len(ids)
    # a WACZ bundle built from S3 is complete and its signature checks
    out = tmp_path / "bundle.wacz"
    write_wacz(db, settings, capture_ids=ids, out=out, title="S3 bundle")
    assert check_wacz(out, (settings.keys_dir / signing.PUBLIC_NAME).read_bytes()) == []
    db.dispose()


def test_object_lock_refuses_deletes_and_keeps_the_original_under_an_overwrite(
    s3: CephS3Server, tmp_path: Path
) -> None:
    bucket = _bucket(s3, lock=True)
    settings, db, _ = _record(tmp_path, bucket, n=2)
    client: Any = s3.client()
    blob_key = next(k for k in _keys(s3, bucket) if k.startswith("tertib/blobs/"))
    segment_key = next(k for k in _keys(s3, bucket) if k.endswith(".warc.gz"))
    original = client.get_object(Bucket=bucket, Key=blob_key)["Body"].read()
    for key in (blob_key, segment_key):
        version = client.head_object(Bucket=bucket, Key=key)["VersionId"]
        with pytest.raises(ClientError) as refused:
            client.delete_object(Bucket=bucket, Key=key, VersionId=version)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        # shortening the retention of a COMPLIANCE object is refused too
        with pytest.raises(ClientError):
            client.put_object_retention(
                Bucket=bucket, Key=key, VersionId=version,
                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": "2000-01-01T00:00:00Z"},
            )  # fmt: skip
    # someone with write access puts other bytes under the blob's key and the segment's key
    client.put_object(Bucket=bucket, Key=blob_key, Body=b"not the screenshot")
    client.put_object(Bucket=bucket, Key=segment_key, Body=b"not the evidence")
    problems = [str(p) for p in verify(db, settings, all=True, record=False).problems]
    assert problems and all("shorter than the recorded range" in p for p in problems), problems
    store = open_store(settings)
    sha = blob_key.rsplit("/", 1)[-1]
    assert "does not match its SHA-256" in str(store.blobs.check(sha))
    # the locked original is still there and is what tertib reads for the blob
    assert store.blobs.get(sha) == original
    # a plain delete only adds a delete marker: the original stays readable through its locked version
    client.delete_object(Bucket=bucket, Key=blob_key)
    assert store.blobs.get(sha) == original
    assert "retained version" in str(store.blobs.check(sha))
    db.dispose()


def test_bucket_without_object_lock_stores_without_retention(s3: CephS3Server, tmp_path: Path) -> None:
    bucket = _bucket(s3, lock=False)
    settings, db, _ = _record(tmp_path, bucket, n=1)
    assert verify(db, settings, all=True, record=False).ok
    key = next(k for k in _keys(s3, bucket) if k.startswith("tertib/blobs/"))
    head = s3.client().head_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
    assert "ObjectLockMode" not in head
    db.dispose()


def test_a_failed_upload_keeps_the_segment_local_until_the_next_recorder(
    s3: CephS3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = _bucket(s3, lock=True)

    def refuse(self: S3EvidenceStore, path: Path) -> str | None:
        raise ConnectionError("network down")

    with monkeypatch.context() as patch:
        patch.setattr(S3EvidenceStore, "archive_segment", refuse)
        settings, db, _ = _record(tmp_path, bucket, n=2)
    local = list(settings.warc_dir.glob("*.warc.gz"))
    assert local  # nothing lost: the closed segments wait on disk
    assert verify(db, settings, all=True, record=False).ok
    with EvidenceRecorder(settings, db):
        pass  # the next recorder archives what is pending
    assert list(settings.warc_dir.glob("*.warc.gz")) == []
    assert {p.name for p in local} <= {k.rsplit("/", 1)[-1] for k in _keys(s3, bucket)}
    assert verify(db, settings, all=True, record=False).ok
    db.dispose()


@pytest.mark.parametrize(
    "case", ["missing bucket", "wrong secret", "lock required, bucket without", "unreachable", "not s3"]
)
def test_bad_s3_settings_stop_at_start_with_one_line_and_nothing_written(
    case: str,
    s3: CephS3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plain = _bucket(s3, lock=False)
    url, expected = {
        "missing bucket": ("s3://no-such-bucket/x", "the evidence bucket 'no-such-bucket' does not exist"),
        "wrong secret": (f"s3://{plain}/x", "S3 refused the credentials"),
        "lock required, bucket without": (f"s3://{plain}/x", "Object Lock is required"),
        "unreachable": (f"s3://{plain}/x", "cannot reach the S3 endpoint"),
        "not s3": ("https://example.test/bucket", "must look like s3://bucket/prefix"),
    }[case]
    monkeypatch.setenv("TERTIB_EVIDENCE_URL", url)
    if case == "wrong secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-" + s3.secret_key)
    if case == "lock required, bucket without":
        monkeypatch.setenv("TERTIB_EVIDENCE_OBJECT_LOCK", "required")
    if case == "unreachable":
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    assert run_cli(["status"]) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], captured.err
    assert "Traceback" not in captured.err + captured.out
    assert s3.secret_key not in captured.err
    # nothing was written: no database, no evidence, no keys
    data = Path(tmp_path / "data")
    assert not (data / "tertib.sqlite3").exists() and not (data / "keys").exists()
    assert listing(0)  # the shared builders stay importable for the crash child


def test_the_console_shows_screenshots_from_the_bucket(s3: CephS3Server, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from crawler.web import auth
    from crawler.web.app import create_app

    bucket = _bucket(s3, lock=True)
    settings, db, ids = _record(tmp_path, bucket, n=1)
    assert not settings.blob_dir.exists() or not any(settings.blob_dir.rglob("*"))  # nothing local
    with db.session() as s:
        auth.add_user(s, "siti", "analyst", "siti-password", actor="test")
        sha = s.get(Capture, ids[0]).screenshot_sha256
    with TestClient(create_app(settings, db)) as client:
        r = client.post(
            "/login", data={"username": "siti", "password": "siti-password"}, follow_redirects=False
        )
        assert r.status_code == 303
        shot = client.get(f"/blob/{sha}")
        assert shot.status_code == 200 and shot.content == png(0)
        assert client.get("/blob/" + "0" * 64).status_code == 404
    db.dispose()
