"""Signed batch manifest: every file's SHA-256, the custody-log anchor, and the evidence bundle's status.

``manifest.json`` (canonical JSON: sorted keys, UTF-8, trailing newline) lists each file of the batch
directory (path relative to it, bytes, SHA-256), the batch facts, and ``custody_anchor`` = the custody log
head (:func:`storage.custody.head`) when the batch was made, so a truncated or rewritten log is detectable
later (``storage.custody.verify(anchor=…)``). ``manifest.sig`` is the hex Ed25519 signature
(:mod:`crawler.evidence.signing`, key in ``Settings.keys_dir``) over the exact bytes of ``manifest.json``.
The public key is copied beside them as ``tertib-signing.pub`` so a recipient can check the packet alone;
:func:`verify_batch_dir` does that check (signature, then each file's size and digest).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from crawler.errors import NotFound
from crawler.evidence.bundle_check import check_wacz
from crawler.evidence.signing import PUBLIC_NAME, KeyError_, load_public_key, signature_hex, verify_signature
from crawler.exports.common import sha256_file

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
MANIFEST_VERSION = 1


def file_entries(root: Path, paths: Iterable[Path]) -> list[dict[str, Any]]:
    entries = [
        {"path": path.relative_to(root).as_posix(), "bytes": path.stat().st_size, "sha256": sha256_file(path)}
        for path in paths
    ]
    return sorted(entries, key=lambda e: e["path"])


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode("utf-8")


def read_anchor(data: bytes) -> tuple[int, str] | None:
    """The ``custody_anchor`` (seq, entry hash) of manifest bytes, or None when it has none."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    anchor = manifest.get("custody_anchor") if isinstance(manifest, dict) else None
    if not isinstance(anchor, dict):
        return None
    seq, digest = anchor.get("seq"), anchor.get("entry_hash")
    if not isinstance(seq, int) or not isinstance(digest, str):
        return None
    return seq, digest


def _key(path: Path) -> Ed25519PublicKey | None:
    try:
        return load_public_key(path)
    except KeyError_:
        return None


def verify_batch_dir(
    directory: Path, public_key: Path | None = None, *, installation_key: Path | None = None
) -> list[str]:
    """Problems found in a batch directory (empty list = intact and signed by a trusted key).

    Trusted keys: ``public_key`` (the publisher's key, given by the user) or else ``installation_key``
    (this installation's ``tertib-signing.pub``). The copy of a key inside the directory proves nothing
    about who signed — anyone can re-sign a changed batch and drop their own key beside it — so a
    signature that only that copy verifies is reported as made by an *untrusted key*. Also checks every
    listed file's size and SHA-256, unlisted files, and the evidence bundle inside (its structure, file
    digests, WARC records and signature, with the same trusted key).
    """
    manifest_path, sig_path = directory / MANIFEST_NAME, directory / SIGNATURE_NAME
    if not directory.is_dir():
        raise NotFound(f"{directory} is not a batch directory")
    if not manifest_path.is_file():
        raise NotFound(f"no {MANIFEST_NAME} in {directory}")
    problems: list[str] = []
    data = manifest_path.read_bytes()
    trusted_path = public_key or installation_key
    trusted = load_public_key(trusted_path) if trusted_path is not None else None  # one line if unusable
    beside = _key(directory / PUBLIC_NAME)
    signature = signature_hex(sig_path.read_bytes()) if sig_path.is_file() else ""
    if not signature:
        problems.append(f"{SIGNATURE_NAME} is missing")
    elif trusted is not None and verify_signature(trusted, data, signature):
        pass
    elif beside is not None and verify_signature(beside, data, signature):
        problems.append(
            f"{SIGNATURE_NAME} verifies only with the {PUBLIC_NAME} found beside the files: untrusted key "
            + (
                f"(not {trusted_path}; re-signed by someone else?)"
                if trusted is not None
                else "(pass --public-key with the publisher's key to prove who signed)"
            )
        )
    elif trusted is not None:
        problems.append(f"{SIGNATURE_NAME} does not match {MANIFEST_NAME} (tampered or another key)")
    else:
        problems.append(f"{SIGNATURE_NAME} does not match {MANIFEST_NAME} and no trusted key was given")
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return [*problems, f"{MANIFEST_NAME} is not valid JSON"]
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files", []), list):
        return [*problems, f"{MANIFEST_NAME} is not a batch manifest (no files list)"]
    listed: set[str] = {MANIFEST_NAME, SIGNATURE_NAME}
    root = directory.resolve()
    for entry in manifest.get("files", []):
        rel = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(rel, str) or not rel:
            problems.append(f"{MANIFEST_NAME}: a files entry has no path")
            continue
        listed.add(rel)
        path = directory / rel
        if Path(rel).is_absolute() or not path.resolve().is_relative_to(root):
            problems.append(f"{rel}: path leaves the batch directory")
        elif not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != entry.get("bytes") or sha256_file(path) != entry.get("sha256"):
            problems.append(f"{rel}: content differs from the manifest")
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel not in listed:
            problems.append(f"{rel}: not in the manifest")
    bundle = manifest.get("evidence_bundle")
    if isinstance(bundle, dict) and bundle.get("status") == "ok" and isinstance(bundle.get("path"), str):
        wacz = directory / bundle["path"]
        if wacz.is_file() and wacz.resolve().is_relative_to(root):
            pem = trusted_path.read_bytes() if trusted_path is not None and trusted is not None else None
            if pem is None and beside is not None:
                pem = (directory / PUBLIC_NAME).read_bytes()
            problems += [f"{bundle['path']}: {p}" for p in check_wacz(wacz, pem)]
    return problems
