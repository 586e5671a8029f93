"""WARC/1.1 records and the append-only, crash-safe WARC file writer.

Record format (read and checked by warcio and pywb):

- one gzip member per record (``zlib`` deflate, gzip header with mtime 0, so fixed inputs give fixed bytes);
- ``WARC-Block-Digest`` and ``WARC-Payload-Digest`` on every record, ``sha256:`` + RFC 4648 base32
  (upper case, padded) — the form warcio itself writes and pywb copies into its CDXJ ``digest`` field;
  revisit records carry the payload digest of the record they refer to (no payload of their own);
- ``request``/``response`` pairs linked by ``WARC-Concurrent-To`` (the request points at its response).

Files: ``{warc_dir}/tertib-{UTC timestamp}-{id}.warc.gz``, each opened by exactly one writer, which holds an
``fcntl`` lock on ``{name}.lock`` while the file is open. Each file starts with a ``warcinfo`` record and is
created as a temporary file that is renamed into place once that record is fsynced. A sidecar
``{name}.json`` records ``{"warcinfo_length", "closed"}``; ``{name}.cdxj`` is the file's CDXJ index
(one line per record, appended after each committed capture, rebuilt on recovery).

Commit protocol (see :mod:`crawler.evidence.capture`): a batch of captures' records is appended with one
write and one fsync, then the database rows that name the byte ranges are committed in one transaction —
the database is the commit point. A crash in
between leaves bytes after the last committed range; :func:`recover` (run when a recorder opens) truncates
any unlocked, unclosed file back to ``max(warcinfo_length, end of the last committed range)`` and rebuilds
its index. Bytes beyond that end were never evidence: no row names them, verify ignores them.

Rotation: a new file is started when appending would take the current one past ``Settings.warc_max_bytes``.

To add a record type, build it with :func:`build_record` (choose its payload offset) and list it in the
capture's ``records``; readers find records through ``Capture.records`` (offset/length per member).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

WARC_VERSION = "WARC/1.1"
REVISIT_PROFILE = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"


def warc_digest(data: bytes | memoryview | Iterable[bytes]) -> str:
    """``sha256:`` + base32 of the SHA-256 (warcio's own format)."""
    digest = hashlib.sha256()
    if isinstance(data, bytes | bytearray | memoryview):
        digest.update(data)
    else:
        for chunk in data:
            digest.update(chunk)
    return "sha256:" + base64.b32encode(digest.digest()).decode("ascii")


def digest_to_hex(value: str) -> str:
    """``sha256:BASE32`` → lowercase hex (for comparisons with blob keys)."""
    _, _, b32 = value.partition(":")
    return base64.b32decode(b32).hex()


def warc_date(at: datetime) -> str:
    """WARC-Date with microseconds (WARC/1.1 allows fractions; warcio and pywb parse them)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cdx_timestamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def gzip_member(raw: bytes, level: int = 6) -> bytes:
    """One gzip member (header mtime 0, so deterministic for the same input and zlib).

    The deflate window is the smallest power of two covering the record (512 B to 32 kB): setting up
    zlib's default 32 kB window costs ~50 µs, three times the compression of a 2 kB metadata record, and a
    window larger than the input cannot find longer matches. Any inflater reads any window size.
    """
    wbits = min(zlib.MAX_WBITS, max(9, (len(raw) - 1).bit_length()))
    compressor = zlib.compressobj(level, zlib.DEFLATED, wbits | 16)
    return compressor.compress(raw) + compressor.flush()


@dataclass(frozen=True)
class BuiltRecord:
    """One serialised record (uncompressed) and what readers and the database need to know about it."""

    rec_type: str
    uri: str
    record_id: str
    date: str
    content_type: str
    block_digest: str
    payload_digest: str
    raw: bytes
    http_status: int | None = None
    mime: str | None = None
    refers_to: str | None = None

    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.rec_type,
            "uri": self.uri,
            "record_id": self.record_id,
            "date": self.date,
            "content_type": self.content_type,
            "block_digest": self.block_digest,
            "payload_digest": self.payload_digest,
        }
        if self.http_status is not None:
            data["status"] = self.http_status
        if self.mime:
            data["mime"] = self.mime
        if self.refers_to:
            data["refers_to"] = self.refers_to
        return data


def _header_value(value: str) -> str:
    # Header values must not carry CR/LF (a header injection would break the record framing).
    return value.replace("\r", " ").replace("\n", " ")


def build_record(
    *,
    rec_type: str,
    uri: str,
    record_id: str,
    date: str,
    content_type: str,
    block: bytes,
    payload_offset: int = 0,
    payload_digest: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    http_status: int | None = None,
    mime: str | None = None,
    refers_to: str | None = None,
) -> BuiltRecord:
    """Serialise one WARC record; the payload is ``block[payload_offset:]`` unless a digest is given."""
    block_digest = warc_digest(block)
    if payload_digest is None:
        payload = memoryview(block)[payload_offset:]
        payload_digest = block_digest if payload_offset == 0 else warc_digest(payload)
    lines = [
        WARC_VERSION,
        f"WARC-Type: {rec_type}",
        f"WARC-Record-ID: {record_id}",
        f"WARC-Date: {date}",
    ]
    if uri:
        lines.append(f"WARC-Target-URI: {_header_value(uri)}")
    lines.extend(f"{name}: {_header_value(value)}" for name, value in headers)
    lines += [
        f"Content-Type: {content_type}",
        f"WARC-Block-Digest: {block_digest}",
        f"WARC-Payload-Digest: {payload_digest}",
        f"Content-Length: {len(block)}",
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return BuiltRecord(
        rec_type=rec_type,
        uri=uri,
        record_id=record_id,
        date=date,
        content_type=content_type,
        block_digest=block_digest,
        payload_digest=payload_digest,
        raw=head + block + b"\r\n\r\n",
        http_status=http_status,
        mime=mime,
        refers_to=refers_to,
    )


# -- CDXJ ---------------------------------------------------------------------------------------


def surt_key(url: str) -> str:
    """SURT form used as the CDXJ key (``com,example)/path?query``), as pywb canonicalises it."""
    if url.startswith("urn:"):
        return url
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    labels = host.split(".")
    key = ",".join(reversed(labels))
    if parts.port and not (
        (parts.scheme == "http" and parts.port == 80) or (parts.scheme == "https" and parts.port == 443)
    ):
        key += f":{parts.port}"
    path = parts.path or "/"
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    return f"{key}){path.lower()}" + (f"?{query.lower()}" if query else "")


def cdxj_line(
    record: dict[str, Any], *, filename: str, offset: int, length: int, at: datetime | None = None
) -> str:
    """One CDXJ line for a record (offset/length of its gzip member in ``filename``)."""
    stamp = cdx_timestamp(at) if at is not None else _warc_date_stamp(record["date"])
    data: dict[str, Any] = {
        "url": record["uri"],
        "digest": record["payload_digest"],
        "length": str(length),
        "offset": str(offset),
        "filename": filename,
    }
    if record["type"] in ("response", "revisit"):
        data["mime"] = record.get("mime") or "unk"
        data["status"] = str(record.get("status", 200))
        if record["type"] == "revisit":
            data["mime"] = "warc/revisit"
    else:
        data["mime"] = record.get("content_type", "unk").split(";")[0]
    return f"{surt_key(record['uri'])} {stamp} {json.dumps(data, sort_keys=True)}"


def _warc_date_stamp(date: str) -> str:
    """``2026-05-01T10:20:30.123456Z`` (a :func:`warc_date`) → ``20260501102030``, without parsing."""
    stamp = date[:19].replace("-", "").replace("T", "").replace(":", "")
    if len(stamp) != 14 or not stamp.isdigit():
        raise ValueError(f"not a WARC-Date: {date!r}")
    return stamp


def lookup(warc_dir: Path, url: str, at: datetime | None = None) -> list[dict[str, Any]]:
    """Every indexed record for ``url`` in ``warc_dir``, nearest to ``at`` first (else newest first)."""
    key = surt_key(url)
    found: list[tuple[str, dict[str, Any]]] = []
    for index in sorted(warc_dir.glob("*.cdxj")):
        with index.open(encoding="utf-8") as handle:
            for line in handle:
                surt, _, rest = line.partition(" ")
                if surt != key:
                    continue
                stamp, _, data = rest.partition(" ")
                found.append((stamp, json.loads(data)))
    if at is None:
        found.sort(key=lambda item: item[0], reverse=True)
    else:
        target = int(cdx_timestamp(at))
        found.sort(key=lambda item: abs(int(item[0]) - target))
    return [{"timestamp": stamp, **data} for stamp, data in found]


# -- files --------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def sidecar_path(warc_path: Path) -> Path:
    return warc_path.with_name(warc_path.name + ".json")


def index_path(warc_path: Path) -> Path:
    return warc_path.with_name(warc_path.name + ".cdxj")


def lock_path(warc_path: Path) -> Path:
    return warc_path.with_name(warc_path.name + ".lock")


@dataclass
class Appended:
    """Where a capture's members landed: file (relative to the data dir), offset, length, sha256 hex."""

    rel_path: str
    path: Path
    offset: int
    length: int
    sha256: str
    member_offsets: list[tuple[int, int]]  # absolute (offset, length) per member


class WarcFileWriter:
    """Appends gzip members to the current WARC file; rotates at ``max_bytes``; one writer per file."""

    def __init__(
        self,
        warc_dir: Path,
        data_dir: Path,
        *,
        max_bytes: int,
        clock: Callable[[], datetime],
        id_factory: Callable[[], str],
        software: str,
        gzip_level: int = 6,
        on_close: Callable[[Path], object] | None = None,
    ) -> None:
        self.warc_dir = warc_dir
        self.on_close = on_close  # called with each closed segment (the evidence store archives it)
        self.data_dir = data_dir
        self.max_bytes = max_bytes
        self.clock = clock
        self.id_factory = id_factory
        self.software = software
        self.gzip_level = gzip_level
        self.path: Path | None = None
        self._fh: BinaryIO | None = None
        self._lock_fd: int | None = None
        self._size = 0
        self._committed = 0
        self.generation = 0  # bumps on rotation (deduplication is per file)

    # -- lifecycle ------------------------------------------------------------------------------
    def _open_new(self) -> None:
        self.warc_dir.mkdir(parents=True, exist_ok=True)
        now = self.clock()
        name = f"tertib-{now.astimezone(UTC).strftime('%Y%m%d%H%M%S%f')}-{self.id_factory()[:8]}.warc.gz"
        path = self.warc_dir / name
        lock_fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        info = (
            "\r\n".join(
                [
                    f"software: {self.software}",
                    "format: WARC File Format 1.1",
                    "conformsTo: http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
                    "description: tertib evidence captures (HS 6309 listings)",
                ]
            ).encode("utf-8")
            + b"\r\n"
        )
        record = build_record(
            rec_type="warcinfo",
            uri="",
            record_id=f"<urn:uuid:{self.id_factory()}>",
            date=warc_date(now),
            content_type="application/warc-fields",
            block=info,
            headers=[("WARC-Filename", name)],
        )
        member = gzip_member(record.raw, self.gzip_level)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as handle:
            handle.write(member)
            handle.flush()
            os.fsync(handle.fileno())
        _write_json_atomic(sidecar_path(path), {"warcinfo_length": len(member), "closed": False})
        os.replace(tmp, path)
        _fsync_dir(self.warc_dir)
        self._fh = path.open("r+b")
        self._fh.seek(0, os.SEEK_END)
        self.path, self._lock_fd = path, lock_fd
        self._size = self._committed = len(member)
        self.generation += 1
        logger.info("opened WARC %s", path)

    def close(self) -> None:
        if self._fh is None or self.path is None:
            return
        self._fh.truncate(self._committed)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        sidecar = sidecar_path(self.path)
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        _write_json_atomic(sidecar, {**data, "closed": True})
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
        logger.info("closed WARC %s (%d bytes)", self.path, self._committed)
        closed = self.path
        self._fh, self._lock_fd, self.path = None, None, None
        if self.on_close is not None:
            self.on_close(closed)

    # -- appends --------------------------------------------------------------------------------
    def rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.data_dir.resolve()))
        except ValueError:
            return str(path.resolve())

    def will_rotate(self, nbytes: int) -> bool:
        """True when ``nbytes`` more would not fit in the current file (the caller resets its dedup map)."""
        if self._fh is None:
            return True
        return self._committed + nbytes > self.max_bytes and self._committed > self._warcinfo_len()

    def _warcinfo_len(self) -> int:
        assert self.path is not None
        return int(json.loads(sidecar_path(self.path).read_text(encoding="utf-8"))["warcinfo_length"])

    def append(self, members: Sequence[bytes]) -> Appended:
        """Append and fsync (not yet committed: the caller commits the DB row, then :meth:`commit`)."""
        total = sum(len(m) for m in members)
        if self.will_rotate(total):
            self.close()
            self._open_new()
        assert self._fh is not None and self.path is not None
        offset = self._committed
        self._fh.seek(offset)
        offsets: list[tuple[int, int]] = []
        pos = offset
        for member in members:
            offsets.append((pos, len(member)))
            pos += len(member)
        data = b"".join(members)  # one write and one hash call for a whole batch
        self._fh.write(data)
        digest = hashlib.sha256(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._size = pos
        return Appended(self.rel(self.path), self.path, offset, total, digest.hexdigest(), offsets)

    def commit(self, appended: Appended, index_lines: Sequence[str]) -> None:
        """Mark the appended range committed (its DB row is in) and index it."""
        self._committed = appended.offset + appended.length
        if index_lines:
            with index_path(appended.path).open("a", encoding="utf-8") as handle:
                handle.write("\n".join(index_lines) + "\n")

    def rollback(self) -> None:
        """Drop bytes appended after the last commit (the DB row was not written)."""
        if self._fh is None:
            return
        self._fh.truncate(self._committed)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._size = self._committed


# -- recovery -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _try_lock(path: Path) -> Iterator[bool]:
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def committed_end(path: Path, db_end: int | None) -> int:
    """Where a file's committed content ends: its warcinfo, or the end of its last committed capture."""
    sidecar = sidecar_path(path)
    info_len = (
        int(json.loads(sidecar.read_text(encoding="utf-8"))["warcinfo_length"]) if sidecar.exists() else 0
    )
    return max(info_len, db_end or 0)


def recover(warc_dir: Path, db_end: Callable[[Path], int | None]) -> list[str]:
    """Repair files left open by crashed writers; returns one message per repaired file.

    A file whose lock is held belongs to a live writer and is left alone. Otherwise: stray ``.tmp``
    files are removed, an unclosed file is truncated to its committed end and its index rebuilt.
    """
    messages: list[str] = []
    if not warc_dir.is_dir():
        return messages
    for tmp in sorted(warc_dir.glob("*.warc.gz.tmp")):
        final = tmp.with_name(tmp.name[: -len(".tmp")])
        with _try_lock(final) as locked:
            if locked and not final.exists():
                tmp.unlink(missing_ok=True)
                sidecar_path(final).unlink(missing_ok=True)
                lock_path(final).unlink(missing_ok=True)
                messages.append(f"removed unfinished new file {tmp.name}")
    for path in sorted(warc_dir.glob("*.warc.gz")):
        sidecar = sidecar_path(path)
        if not sidecar.exists():
            continue
        state = json.loads(sidecar.read_text(encoding="utf-8"))
        if state.get("closed"):
            continue
        with _try_lock(path) as locked:
            if not locked:
                continue
            end = committed_end(path, db_end(path))
            size = path.stat().st_size
            if size > end:
                with path.open("r+b") as handle:
                    handle.truncate(end)
                    handle.flush()
                    os.fsync(handle.fileno())
                messages.append(f"{path.name}: dropped {size - end} uncommitted bytes after offset {end}")
            rebuild_index(path)
            _write_json_atomic(sidecar, {**state, "closed": True})
            messages.append(f"{path.name}: closed after an interrupted writer")
    for message in messages:
        logger.warning("WARC recovery: %s", message)
    return messages


def iter_members(path: Path, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, bytes]]:
    """(offset, length, decompressed bytes) for each gzip member in ``path[start:end]``."""
    data = path.read_bytes()[start:end]
    pos = 0
    while pos < len(data):
        decomp = zlib.decompressobj(zlib.MAX_WBITS | 16)
        raw = decomp.decompress(data[pos:])
        if not decomp.eof:
            raise ValueError(f"{path.name}: truncated gzip member at offset {start + pos}")
        used = len(data) - pos - len(decomp.unused_data)
        yield start + pos, used, raw
        pos += used


def parse_record_head(raw: bytes) -> dict[str, str]:
    head, _, _ = raw.partition(b"\r\n\r\n")
    fields: dict[str, str] = {}
    for line in head.decode("utf-8").split("\r\n")[1:]:
        name, _, value = line.partition(": ")
        fields[name] = value
    return fields


def record_info_from_raw(raw: bytes) -> dict[str, Any]:
    """Enough of a stored record to index it (used when rebuilding indexes and building bundles)."""
    fields = parse_record_head(raw)
    info: dict[str, Any] = {
        "type": fields.get("WARC-Type", ""),
        "uri": fields.get("WARC-Target-URI", ""),
        "record_id": fields.get("WARC-Record-ID", ""),
        "date": fields.get("WARC-Date", ""),
        "content_type": fields.get("Content-Type", ""),
        "payload_digest": fields.get("WARC-Payload-Digest", ""),
    }
    if info["type"] in ("response", "revisit"):
        _, _, rest = raw.partition(b"\r\n\r\n")
        status_line, _, http_rest = rest.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        if len(parts) >= 2 and parts[1].isdigit():
            info["status"] = int(parts[1])
        http_head = http_rest.partition(b"\r\n\r\n")[0].decode("iso-8859-1")
        for line in http_head.split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                info["mime"] = value.strip().split(";")[0]
    return info


def rebuild_index(path: Path) -> int:
    """Rewrite ``{name}.cdxj`` from the WARC file itself; returns the number of indexed records."""
    lines = []
    for offset, length, raw in iter_members(path):
        info = record_info_from_raw(raw)
        if info["type"] in ("warcinfo", "request", ""):
            continue
        lines.append(cdxj_line(info, filename=path.name, offset=offset, length=length))
    tmp = index_path(path).with_suffix(".cdxj.tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, index_path(path))
    return len(lines)


# -- reading whole files (verification) ---------------------------------------------------------

_SCAN_CHUNK = 1 << 20


@dataclass
class ScannedMember:
    """One gzip member of a WARC file as :func:`scan_members` read it: raw record bytes, or the error."""

    offset: int
    length: int
    raw: bytes
    error: str | None = None


def scan_members(path: Path, end: int | None = None) -> Iterator[ScannedMember]:
    """Every gzip member of ``path[:end]`` in order, streamed (a 1 GB file is never read whole).

    Stops after the first member that cannot be inflated (corrupt or truncated): what follows it cannot
    be located any more, so that member carries the error and nothing after it is yielded.
    """
    size = path.stat().st_size if end is None else end
    with path.open("rb") as handle:
        pos = 0
        pending = b""
        while pos < size:
            decomp = zlib.decompressobj(zlib.MAX_WBITS | 16)
            parts: list[bytes] = []
            used = 0
            data = pending
            try:
                while True:
                    if not data:
                        want = min(_SCAN_CHUNK, size - pos - used)
                        data = handle.read(want) if want > 0 else b""
                        if not data:
                            break
                    parts.append(decomp.decompress(data))
                    if decomp.eof:
                        used += len(data) - len(decomp.unused_data)
                        pending = decomp.unused_data
                        break
                    used += len(data)
                    data = b""
            except zlib.error as exc:
                yield ScannedMember(pos, size - pos, b"", f"gzip member does not inflate ({exc})")
                return
            if not decomp.eof:
                yield ScannedMember(pos, size - pos, b"", "truncated gzip member (the file ends inside it)")
                return
            yield ScannedMember(pos, used, b"".join(parts))
            pos += used
