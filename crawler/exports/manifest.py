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

from crawler.errors import NotFound
from crawler.evidence.signing import PUBLIC_NAME, load_public_key, verify_signature
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


def verify_batch_dir(directory: Path, public_key: Path | None = None) -> list[str]:
    """Problems found in a batch directory (empty list = intact and signed by ``public_key``).

    Without ``public_key`` the copy inside the directory is used — that proves integrity, not origin;
    pass the installation's published key to prove origin.
    """
    manifest_path, sig_path = directory / MANIFEST_NAME, directory / SIGNATURE_NAME
    if not manifest_path.is_file():
        raise NotFound(f"no {MANIFEST_NAME} in {directory}")
    problems: list[str] = []
    data = manifest_path.read_bytes()
    key = load_public_key(public_key or directory / PUBLIC_NAME)
    signature = sig_path.read_text(encoding="ascii").strip() if sig_path.is_file() else ""
    if not signature:
        problems.append(f"{SIGNATURE_NAME} is missing")
    elif not verify_signature(key, data, signature):
        problems.append(f"{SIGNATURE_NAME} does not match {MANIFEST_NAME} (tampered or another key)")
    try:
        manifest = json.loads(data)
    except ValueError:
        return [*problems, f"{MANIFEST_NAME} is not valid JSON"]
    for entry in manifest.get("files", []):
        path = directory / entry["path"]
        if not path.is_file():
            problems.append(f"{entry['path']}: missing")
        elif path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            problems.append(f"{entry['path']}: content differs from the manifest")
    listed = {e["path"] for e in manifest.get("files", [])} | {MANIFEST_NAME, SIGNATURE_NAME}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel not in listed:
            problems.append(f"{rel}: not in the manifest")
    return problems
