"""Ed25519 signing for batch manifests, bundles and verification reports.

``tertib init`` creates the installation's key pair in ``{data_dir}/keys/`` (private key PEM, mode 0600;
public key PEM beside it). Verification needs only the public key, so a ministry or a court can check a
bundle with ``tertib-signing.pub`` and nothing else. Signatures are hex strings over the exact bytes signed.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crawler.errors import TertibError

PRIVATE_NAME = "tertib-signing.key"
PUBLIC_NAME = "tertib-signing.pub"


class KeyError_(TertibError):
    """The signing key is missing or unreadable."""


def ensure_keypair(keys_dir: Path) -> tuple[Path, bool]:
    """Create the key pair if missing; returns (private key path, created)."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    private_path, public_path = keys_dir / PRIVATE_NAME, keys_dir / PUBLIC_NAME
    if private_path.exists():
        if not public_path.exists():
            public_path.write_bytes(_public_pem(load_private_key(keys_dir).public_key()))
        return private_path, False
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = private_path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, private_path)
    os.chmod(private_path, 0o600)
    public_path.write_bytes(_public_pem(key.public_key()))
    return private_path, True


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(keys_dir: Path) -> Ed25519PrivateKey:
    path = keys_dir / PRIVATE_NAME
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise KeyError_(f"no signing key at {path}; run `tertib init`") from None
    except ValueError as exc:
        raise KeyError_(f"signing key {path} is unreadable: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"{path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise KeyError_(f"no public key at {path}") from None
    except IsADirectoryError:
        raise KeyError_(f"public key {path} is a directory, not a PEM file") from None
    except OSError as exc:
        raise KeyError_(f"public key {path} cannot be read: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise KeyError_(f"public key {path} is not a PEM public key ({str(exc)[:80]})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyError_(f"{path} is not an Ed25519 public key")
    return key


def public_key_pem(keys_dir: Path) -> str:
    return _public_pem(load_private_key(keys_dir).public_key()).decode("ascii")


def sign(keys_dir: Path, data: bytes) -> str:
    return load_private_key(keys_dir).sign(data).hex()


def verify_signature(public_key: Ed25519PublicKey, data: bytes, signature_hex: str) -> bool:
    try:
        public_key.verify(bytes.fromhex(signature_hex), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def signature_hex(raw: bytes) -> str:
    """A stored signature as hex: ``manifest.sig`` may hold hex (our convention), base64, or the raw 64
    signature bytes; anything else comes back as hex of the bytes (and will not verify)."""
    import base64

    text = raw.strip()
    if len(raw) == 64 and not all(32 <= b < 127 for b in raw):
        return raw.hex()
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        return raw.hex()
    if len(decoded) == 128 and all(c in "0123456789abcdefABCDEF" for c in decoded):
        return decoded.lower()
    try:
        return base64.b64decode(decoded, validate=True).hex()
    except ValueError:
        return decoded.encode("ascii").hex()
