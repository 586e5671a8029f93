"""The offline check of a signed WACZ bundle (:func:`check_wacz`), apart from the writer in
:mod:`crawler.evidence.bundle`: checking reads only the file and a public key, so the batch-directory check
(:mod:`crawler.exports.manifest`) uses it without the database and capture verification the writer needs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
import zlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from warcio.archiveiterator import ArchiveIterator

from crawler.evidence import signing


def sha(data: bytes) -> str:
    """``sha256:<hex>``, as datapackage.json lists each file."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_wacz(path: Path, public_key_pem: bytes | None = None) -> list[str]:
    """Problems with a bundle (empty list = valid): structure, file hashes, signature, WARC digests.

    With ``public_key_pem`` (the installation's ``tertib-signing.pub``) the signature must verify with that
    key; without it, with the key embedded in the bundle (integrity only, not origin). A damaged file is a
    finding, never an exception.
    """
    try:
        return _check_wacz(path, public_key_pem)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, KeyError) as exc:
        return [f"{path.name}: unreadable ZIP member or structure ({type(exc).__name__}: {str(exc)[:100]})"]
    except (ValueError, UnicodeDecodeError, RecursionError, TypeError, AttributeError) as exc:
        return [f"{path.name}: malformed bundle metadata ({type(exc).__name__})"]


def _check_wacz(path: Path, public_key_pem: bytes | None) -> list[str]:
    problems: list[str] = []
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return [f"{path}: not a readable ZIP ({exc})"]
    with archive:
        names = set(archive.namelist())
        for required in (
            "datapackage.json",
            "datapackage-digest.json",
            "indexes/index.cdxj",
            "pages/pages.jsonl",
        ):
            if required not in names:
                problems.append(f"missing {required}")
        if not any(n.startswith("archive/") and n.endswith(".warc.gz") for n in names):
            problems.append("no archive/*.warc.gz")
        if problems:
            return problems
        package_bytes = archive.read("datapackage.json")
        package = json.loads(package_bytes)
        if not isinstance(package, dict) or not isinstance(package.get("resources", []), list):
            return ["datapackage.json is not a data package"]
        listed = {r["path"]: r for r in package.get("resources", []) if isinstance(r, dict) and "path" in r}
        for name in sorted(names - {"datapackage.json", "datapackage-digest.json"}):
            if name.endswith("/"):
                continue
            resource = listed.get(name)
            try:
                data = archive.read(name)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                problems.append(f"{name}: unreadable in the ZIP ({str(exc)[:80]})")
                continue
            if resource is None:
                problems.append(f"{name} is not listed in datapackage.json")
            elif resource.get("hash") != sha(data):
                problems.append(f"{name}: sha256 differs from datapackage.json")
            if name.startswith("archive/") and archive.getinfo(name).compress_type != zipfile.ZIP_STORED:
                problems.append(f"{name} must be stored uncompressed in the ZIP")
            if name.startswith("archive/") and name.endswith(".warc.gz"):
                problems += [f"{name}: {p}" for p in _check_warc_bytes(data)]
        for name in listed:
            if name not in names:
                problems.append(f"{name} is listed in datapackage.json but missing")
        digest = json.loads(archive.read("datapackage-digest.json"))
        if not isinstance(digest, dict):
            return [*problems, "datapackage-digest.json is not an object"]
        if digest.get("hash") != sha(package_bytes):
            problems.append("datapackage.json: sha256 differs from datapackage-digest.json")
        signed = digest.get("signedData") or {}
        if not isinstance(signed, dict):
            return [*problems, "datapackage-digest.json: signedData is not an object"]
        if signed.get("hash") != digest.get("hash"):
            problems.append("datapackage-digest.json: signedData.hash differs from hash")
        if package.get("created") != signed.get("created"):
            problems.append("datapackage-digest.json: signed timestamp differs from created")
        pem = public_key_pem or str(signed.get("publicKey", "")).encode("utf-8")
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError):
            problems.append("no usable public key to check the signature")
            return problems
        if not isinstance(key, Ed25519PublicKey):
            problems.append("public key is not Ed25519")
        elif not signing.verify_signature(
            key, str(signed.get("hash", "")).encode("utf-8"), str(signed.get("signature", ""))
        ):
            problems.append("datapackage-digest.json: signature does not verify")
    return problems


def _check_warc_bytes(data: bytes) -> list[str]:
    problems: list[str] = []
    try:
        gzip.decompress(data)
        for record in ArchiveIterator(io.BytesIO(data), check_digests=True):
            record.content_stream().read()
            if record.digest_checker.passed is False:
                rid = record.rec_headers.get_header("WARC-Record-ID")
                problems += [f"record {rid}: {p}" for p in record.digest_checker.problems]
    except Exception as exc:  # any failure to read is a finding about the bundle, reported, not raised
        problems.append(f"unreadable WARC ({type(exc).__name__})")
    return problems
