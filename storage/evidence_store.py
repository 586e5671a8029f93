"""Where evidence bytes live: local disk (the default) or an S3 bucket, optionally under Object Lock.

Two kinds of evidence bytes leave the recorder:

- **blobs** (screenshots), content-addressed by SHA-256: ``put``/``get``/``exists``/``check``, the same
  four methods as :class:`storage.blobs.BlobStore`;
- **WARC segments**: the recorder appends to a local segment (``{data_dir}/warc/…warc.gz``, crash-safe,
  see ``crawler.evidence.warc``); once a segment is closed (rotation, end of a run, recovery after a
  crash) :meth:`archive_segment` stores it for good. Readers ask for a capture's byte range with
  :meth:`read_range` and never need to know where the segment is.

:class:`LocalEvidenceStore` keeps everything under the data dir (archiving is a no-op).
:class:`S3EvidenceStore` (``TERTIB_EVIDENCE_URL=s3://bucket/prefix``) writes blobs to
``{prefix}/blobs/ab/cd/{sha256}`` and closed segments (with their CDXJ index) to ``{prefix}/warc/{name}``;
uploads carry ``Content-MD5``, a segment's upload is checked against its ETag before the local copy is
removed, and reads of archived segments are HTTP range requests. Endpoint, region and credentials come
the usual AWS way (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
profiles); with a custom endpoint (radosgw, a NAS) requests use path-style addressing.

Object Lock (``Settings.evidence_object_lock``): ``auto`` (default) puts every object under COMPLIANCE
retention for ``evidence_retention_days`` when the bucket has Object Lock enabled, ``required`` refuses to
start on a bucket without it, ``off`` never sets retention. In COMPLIANCE mode nobody, the bucket owner
included, can delete or overwrite a locked version until its retention ends: a later PUT only adds a
newer version, which :meth:`S3EvidenceStore.check` reports and :meth:`S3EvidenceStore.get` reads past.

:func:`open_store` checks the configuration when a command starts (bucket reachable, credentials
accepted, Object Lock as requested) and raises :class:`EvidenceStoreUnavailable` with one line otherwise.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from crawler.errors import NotFound, TertibError
from crawler.evidence import warc
from storage.blobs import BlobStore, sha256_hex

logger = logging.getLogger(__name__)

LOCK_MODES = ("auto", "required", "off")


class EvidenceStoreUnavailable(TertibError):
    """The evidence store is misconfigured, unreachable or refuses us; the message says which."""


class Blobs(Protocol):
    def put(self, data: bytes) -> tuple[str, bool]: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def check(self, key: str) -> str | None: ...


class EvidenceStore(Protocol):
    blobs: Blobs
    description: str

    def read_range(self, rel: str, offset: int, length: int) -> bytes: ...
    def segment_exists(self, rel: str) -> bool: ...
    def archive_segment(self, path: Path) -> str | None: ...
    def archive_pending(self, warc_dir: Path) -> list[str]: ...


def _local_path(data_dir: Path, rel: str) -> Path:
    path = Path(rel)
    return path if path.is_absolute() else data_dir / path


def _read_local(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(length)


class LocalEvidenceStore:
    """Everything on local disk under the data dir (the default)."""

    def __init__(self, data_dir: Path, blob_dir: Path) -> None:
        self.data_dir = data_dir
        self.blobs: Blobs = BlobStore(blob_dir)
        self.description = f"local disk ({data_dir})"

    def read_range(self, rel: str, offset: int, length: int) -> bytes:
        path = _local_path(self.data_dir, rel)
        if not path.is_file():
            raise NotFound(f"WARC file {rel} is missing")
        return _read_local(path, offset, length)

    def segment_exists(self, rel: str) -> bool:
        return _local_path(self.data_dir, rel).is_file()

    def archive_segment(self, path: Path) -> str | None:
        return None

    def archive_pending(self, warc_dir: Path) -> list[str]:
        return []


# -- S3 ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise EvidenceStoreUnavailable(
                f"TERTIB_EVIDENCE_URL must look like s3://bucket/prefix (got {url!r})"
            )
        return cls(parts.netloc, parts.path.strip("/"))

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)


def _md5_b64(handle: IO[bytes]) -> tuple[str, str]:
    """(base64 MD5 for Content-MD5, hex MD5 to compare with a single-PUT ETag) of a file, streamed."""
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
    handle.seek(0)
    return base64.b64encode(digest.digest()).decode("ascii"), digest.hexdigest()


def explain_s3_error(exc: BaseException, location: S3Location, endpoint: str | None) -> str:
    """One line for what went wrong talking to S3 (no request ids, no XML)."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    where = f"s3://{location.bucket}" + (f" at {endpoint}" if endpoint else "")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            f"no S3 credentials for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile)"
        )
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach the S3 endpoint for {where}: {exc.kwargs.get('endpoint_url', endpoint)}"
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket", "404") or status == 404:
            return f"the evidence bucket {location.bucket!r} does not exist ({where})"
        if code in ("403", "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId") or status == 403:
            return f"S3 refused the credentials or access for {where} ({code or status})"
        return f"S3 error for {where}: {code or status} {error.get('Message') or ''}".strip()
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"S3 error for {where}: {first}"


class S3Blobs:
    """Content-addressed blobs in S3 under ``{prefix}/blobs/``."""

    def __init__(self, store: S3EvidenceStore) -> None:
        self.store = store

    def _key(self, key: str) -> str:
        BlobStore(Path("/")).path(key)  # validates the key's form
        return self.store.location.key("blobs", key[:2], key[2:4], key)

    def exists(self, key: str) -> bool:
        return self.store.head(self._key(key)) is not None

    def put(self, data: bytes) -> tuple[str, bool]:
        key = sha256_hex(data)
        object_key = self._key(key)
        if self.store.head(object_key) is not None:
            return key, False
        self.store.put_bytes(object_key, data)
        return key, True

    def get(self, key: str) -> bytes:
        object_key = self._key(key)
        data = self.store.get_bytes(object_key)
        if data is not None and sha256_hex(data) == key:
            return data
        # the current version was deleted (a delete marker) or overwritten: a retained version under
        # Object Lock still holds the original bytes
        for version in self.store.versions(object_key):
            data = self.store.get_bytes(object_key, version)
            if data is not None and sha256_hex(data) == key:
                return data
        raise NotFound(f"blob {key} is not in {self.store.description}")

    def check(self, key: str) -> str | None:
        object_key = self._key(key)
        data = self.store.get_bytes(object_key)
        where = f"s3://{self.store.location.bucket}/{object_key}"
        if data is None:
            retained = any(self.store.versions(object_key))
            suffix = " (a retained version is still under Object Lock)" if retained else ""
            return f"blob {key} is missing ({where}){suffix}"
        if sha256_hex(data) != key:
            return f"blob {key} does not match its SHA-256 (content changed: {where})"
        return None


class S3EvidenceStore:
    """Blobs and closed WARC segments in one S3 bucket under one prefix."""

    def __init__(
        self,
        url: str,
        data_dir: Path,
        *,
        object_lock: str = "auto",
        retention_days: int = 1825,
        client: Any = None,
    ) -> None:
        if object_lock not in LOCK_MODES:
            raise EvidenceStoreUnavailable(
                f"evidence_object_lock must be one of {', '.join(LOCK_MODES)} (got {object_lock!r})"
            )
        if object_lock != "off" and retention_days <= 0:
            raise EvidenceStoreUnavailable("evidence_retention_days must be a positive number of days")
        self.location = S3Location.parse(url)
        self.data_dir = data_dir
        self.object_lock = object_lock
        self.retention_days = retention_days
        self.endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
        self.client = client or self._client()
        self.locking = False
        self.blobs: Blobs = S3Blobs(self)
        self.description = f"s3://{self.location.bucket}/{self.location.prefix}".rstrip("/")

    def _client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            # S3-compatible servers (radosgw, NAS appliances) predate the newer flexible checksums;
            # uploads carry Content-MD5 instead
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path" if self.endpoint else "auto"},
        )
        return boto3.session.Session().client("s3", config=config)

    # -- start-up check -----------------------------------------------------------------------------
    def check_ready(self) -> S3EvidenceStore:
        """Bucket reachable with our credentials, Object Lock as requested; else one clear error."""
        from botocore.exceptions import BotoCoreError, ClientError

        def unavailable(exc: BaseException) -> EvidenceStoreUnavailable:
            return EvidenceStoreUnavailable(explain_s3_error(exc, self.location, self.endpoint))

        try:
            self.client.head_bucket(Bucket=self.location.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise unavailable(exc) from None
        enabled = False
        if self.object_lock != "off":
            try:
                conf = self.client.get_object_lock_configuration(Bucket=self.location.bucket)
                enabled = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code not in ("ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"):
                    raise unavailable(exc) from None
            except BotoCoreError as exc:
                raise unavailable(exc) from None
        if self.object_lock == "required" and not enabled:
            raise EvidenceStoreUnavailable(
                f"Object Lock is required (evidence_object_lock=required) but bucket "
                f"{self.location.bucket!r} does not have it enabled; create the bucket with Object Lock"
            )
        self.locking = enabled
        return self

    # -- primitives ---------------------------------------------------------------------------------
    def _lock_args(self) -> dict[str, Any]:
        if not self.locking:
            return {}
        until = datetime.now(UTC) + timedelta(days=self.retention_days)
        return {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}

    def head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return dict(self.client.head_object(Bucket=self.location.bucket, Key=key))
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")
        response = self.client.put_object(
            Bucket=self.location.bucket,
            Key=key,
            Body=data,
            ContentMD5=md5,
            ContentType=content_type,
            **self._lock_args(),
        )
        return str(response.get("VersionId") or "")

    def get_bytes(self, key: str, version: str | None = None, byte_range: str | None = None) -> bytes | None:
        from botocore.exceptions import ClientError

        args: dict[str, Any] = {"Bucket": self.location.bucket, "Key": key}
        if version:
            args["VersionId"] = version
        if byte_range:
            args["Range"] = byte_range
        try:
            body = self.client.get_object(**args)["Body"]
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchKey", "NoSuchVersion", "InvalidRange") or status in (404, 416):
                return None
            raise
        with body:
            return bytes(body.read())

    def versions(self, key: str) -> Iterator[str]:
        """Version ids of ``key`` (newest first; none on an unversioned bucket)."""
        from botocore.exceptions import ClientError

        try:
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.location.bucket, Prefix=key
            )
            for page in pages:
                for version in page.get("Versions", []):
                    if version.get("Key") == key and version.get("VersionId") not in (None, "null"):
                        yield str(version["VersionId"])
        except ClientError:
            return

    # -- segments -----------------------------------------------------------------------------------
    def segment_key(self, rel: str) -> str:
        return self.location.key("warc", Path(rel).name)

    def read_range(self, rel: str, offset: int, length: int) -> bytes:
        local = _local_path(self.data_dir, rel)
        if local.is_file():  # still open here, or not archived yet
            return _read_local(local, offset, length)
        if length <= 0:
            return b""
        data = self.get_bytes(self.segment_key(rel), byte_range=f"bytes={offset}-{offset + length - 1}")
        if data is None:
            if self.head(self.segment_key(rel)) is None:
                raise NotFound(f"WARC file {rel} is missing (not on this machine nor in {self.description})")
            return b""  # the range lies beyond the end of the object: truncated
        return data

    def segment_exists(self, rel: str) -> bool:
        return _local_path(self.data_dir, rel).is_file() or self.head(self.segment_key(rel)) is not None

    def archive_segment(self, path: Path) -> str | None:
        """Upload a closed segment and its index; on a verified upload, remove the local bytes.

        Returns the object URL. The sidecar (``{name}.json``) records it, so a segment is uploaded once;
        a failed upload leaves the segment local for :meth:`archive_pending` to retry.
        """
        sidecar = warc.sidecar_path(path)
        state = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}
        if state.get("archived") and not path.exists():
            return str(state["archived"])
        key = self.segment_key(path.name)
        with path.open("rb") as handle:
            md5_b64, md5_hex = _md5_b64(handle)
            response = self.client.put_object(
                Bucket=self.location.bucket,
                Key=key,
                Body=handle,
                ContentMD5=md5_b64,
                ContentType="application/warc",
                **self._lock_args(),
            )
        etag = str(response.get("ETag", "")).strip('"')
        if etag != md5_hex:
            raise EvidenceStoreUnavailable(f"upload of {path.name} to {self.description} came back altered")
        index = warc.index_path(path)
        if index.exists():
            self.put_bytes(key + ".cdxj", index.read_bytes(), "text/plain")
        url = f"s3://{self.location.bucket}/{key}"
        warc._write_json_atomic(
            sidecar, {**state, "closed": True, "archived": url, "version": response.get("VersionId") or ""}
        )
        path.unlink()
        logger.info("archived WARC %s to %s", path.name, url)
        return url

    def archive_pending(self, warc_dir: Path) -> list[str]:
        """Archive each closed segment still in ``warc_dir`` (after a failed upload or a crash)."""
        done: list[str] = []
        if not warc_dir.is_dir():
            return done
        for path in sorted(warc_dir.glob("*.warc.gz")):
            sidecar = warc.sidecar_path(path)
            if not sidecar.exists() or not json.loads(sidecar.read_text(encoding="utf-8")).get("closed"):
                continue
            with warc._try_lock(path) as free:  # another process may be archiving it right now
                if not free or not path.exists():
                    continue
                url = self.archive_segment(path)
            if url:
                done.append(url)
        return done


def open_store(settings: Any, *, check: bool = True) -> EvidenceStore:
    """The installation's evidence store from ``Settings`` (``evidence_url`` empty: local disk)."""
    url = str(getattr(settings, "evidence_url", "") or "")
    if not url:
        return LocalEvidenceStore(settings.data_dir, settings.blob_dir)
    aws = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    store = _s3_store(
        url, settings.data_dir, settings.evidence_object_lock, settings.evidence_retention_days, aws
    )
    return store.check_ready() if check else store


@functools.lru_cache(maxsize=8)
def _s3_store(
    url: str, data_dir: Path, object_lock: str, retention_days: int, aws: tuple[tuple[str, str], ...]
) -> S3EvidenceStore:
    """One store (one boto3 client, thread-safe, with its connection pool) per configuration, ``AWS_*``
    variables included: readers such as WACZ bundles ask for it once per record."""
    return S3EvidenceStore(url, data_dir, object_lock=object_lock, retention_days=retention_days)
