"""Content-addressed blob store on local disk (screenshots and other evidence attachments).

A blob's key is the lowercase hex SHA-256 of its bytes; it lives at ``{root}/{key[:2]}/{key[2:4]}/{key}``.
Identical content is stored once (``put`` of an existing key is a no-op that still checks the key), so
the same screenshot captured for many listings costs its bytes once.

Writes are atomic: the bytes go to a temporary file in the same directory, are fsynced, then renamed onto
the final name, and the directory is fsynced — a crash leaves either the complete blob or nothing under
its key (stray ``*.tmp`` files are ignored and may be deleted).

Settings: ``Settings.blob_dir`` (``{TERTIB_DATA_DIR}/blobs``) is the root the evidence recorder uses.
To add another backend (S3-compatible later), implement the same four methods (``put``, ``get``,
``exists``, ``check``) and choose it where the recorder builds its store.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from crawler.errors import NotFound

_HEX = set("0123456789abcdef")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(final: Path, data: bytes) -> None:
    """Write ``data`` to ``final`` so that a reader sees the old file or the whole new one: a temporary
    file in the same directory, fsynced, renamed over ``final``, and the directory fsynced. A failure
    leaves the old file untouched and no temporary file behind."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, final)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)


class BlobStore:
    """Local content-addressed store; safe for several writers (rename is atomic, content is the key)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if len(key) != 64 or not set(key) <= _HEX:
            raise ValueError(f"not a sha256 blob key: {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, data: bytes) -> tuple[str, bool]:
        """Store ``data``; returns (key, created). An existing blob is not rewritten."""
        key = sha256_hex(data)
        final = self.path(key)
        if final.is_file():
            return key, False
        write_atomic(final, data)
        return key, True

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {key} is not in the store at {self.root}") from None

    def check(self, key: str) -> str | None:
        """None when the blob exists and its bytes hash to its key; else what is wrong."""
        path = self.path(key)
        if not path.is_file():
            return f"blob {key} is missing ({path})"
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != key:
            return f"blob {key} does not match its SHA-256 (content changed: {path})"
        return None
