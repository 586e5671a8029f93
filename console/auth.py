"""Console accounts, passwords, API tokens, sessions, CSRF and login throttling.

- Passwords are argon2id hashes (argon2-cffi, its default memory-hard parameters); a hash made with older
  parameters is upgraded on the next successful login.
- API tokens (``tertib users token NAME``) are 32 random bytes shown once; only their SHA-256 is stored
  (``User.api_token_hash``) — a high-entropy token needs no slow hash, and lookup stays one equality match.
- The session is a signed cookie (itsdangerous, key from :func:`secret_key`) holding the user id, the
  password-hash fingerprint (so a password change or disable ends old sessions) and the CSRF token
  (session-bound: every form and HTMX request must echo it).
- :class:`LoginThrottle` limits failed logins per (user, client IP) in a sliding window.

Settings: ``keys_dir`` (the console secret ``console-secret`` lives there, created 0600 on first use);
``TERTIB_CONSOLE_SECRET`` overrides it (several console processes behind one proxy must share it).
Roles: :data:`ROLES`; :data:`WRITE_ROLES` may change things, ``auditor`` is read-only. To add a role, add it
to :data:`ROLES` and decide in :func:`can_write` (and any page-specific check) what it may do.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.errors import NotFound, TertibError, UsageError
from storage import custody
from storage.models import User

ROLES: tuple[str, ...] = ("analyst", "staff", "auditor", "admin")
WRITE_ROLES: frozenset[str] = frozenset({"analyst", "staff", "admin"})
SESSION_COOKIE = "tertib_session"
SESSION_MAX_AGE = 12 * 3600  # a working day; then log in again
SECRET_NAME = "console-secret"
MIN_PASSWORD = 8

_hasher = PasswordHasher()


class UserExists(TertibError):
    """A console account with that name exists already."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The logged-in user as pages and API handlers see it (detached from any session)."""

    id: int
    name: str
    role: str

    @property
    def can_write(self) -> bool:
        return can_write(self.role)


def can_write(role: str) -> bool:
    return role in WRITE_ROLES


# -- passwords and accounts ----------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _validate(name: str, role: str, password: str) -> str:
    name = name.strip()
    if not name or len(name) > 120 or any(c in name for c in "\r\n\t"):
        raise UsageError("a user name must be 1-120 characters on one line")
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"password too short (at least {MIN_PASSWORD} characters)")
    return name


def add_user(session: Session, name: str, role: str, password: str, *, actor: str) -> User:
    name = _validate(name, role, password)
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise UserExists(f"user {name!r} exists already")
    user = User(name=name, role=role, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    custody.append(
        session, actor=actor, action="user_add", object_type="user", object_id=name, details={"role": role}
    )
    return user


def get_user(session: Session, name: str) -> User:
    user = session.scalars(select(User).where(User.name == name.strip())).first()
    if user is None:
        raise NotFound(f"no such user: {name}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def disable_user(session: Session, name: str, *, actor: str) -> User:
    user = get_user(session, name)
    user.disabled = True
    user.api_token_hash = None
    custody.append(session, actor=actor, action="user_disable", object_type="user", object_id=user.name)
    return user


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(session: Session, name: str, *, actor: str) -> str:
    """A new API token for ``name`` (replaces the old one); returned once, stored as its SHA-256."""
    user = get_user(session, name)
    if user.disabled:
        raise UsageError(f"user {user.name!r} is disabled")
    token = "tt_" + secrets.token_urlsafe(32)
    user.api_token_hash = token_digest(token)
    custody.append(session, actor=actor, action="user_token", object_type="user", object_id=user.name)
    return token


def authenticate(session: Session, name: str, password: str) -> Principal | None:
    """The principal for a correct name and password of an enabled account, else None."""
    user = session.scalars(select(User).where(User.name == name.strip())).first()
    if user is None:
        _hasher.hash(password)  # same cost for unknown names: no user enumeration by timing
        return None
    if user.disabled or not check_password(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return Principal(user.id, user.name, user.role)


def principal_for_token(session: Session, token: str) -> Principal | None:
    if not token:
        return None
    user = session.scalars(select(User).where(User.api_token_hash == token_digest(token))).first()
    if user is None or user.disabled:
        return None
    return Principal(user.id, user.name, user.role)


# -- sessions and CSRF -------------------------------------------------------------------------


def secret_key(keys_dir: Path) -> str:
    """The cookie-signing secret: ``TERTIB_CONSOLE_SECRET`` or ``<keys_dir>/console-secret`` (made once)."""
    env = os.environ.get("TERTIB_CONSOLE_SECRET")
    if env:
        return env
    path = keys_dir / SECRET_NAME
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        os.replace(tmp, path)
    return path.read_text(encoding="ascii").strip()


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


class SessionCodec:
    """Signs and reads the session cookie payload ``{uid, fp, csrf}``."""

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="tertib-console-session")

    def dump(self, user: User) -> str:
        return self._serializer.dumps(
            {"uid": user.id, "fp": _fingerprint(user.password_hash), "csrf": secrets.token_urlsafe(24)}
        )

    def load(self, cookie: str | None) -> dict[str, Any] | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        return data if isinstance(data, dict) and {"uid", "fp", "csrf"} <= data.keys() else None


def principal_for_session(session: Session, data: dict[str, Any] | None) -> Principal | None:
    if not data:
        return None
    user = session.get(User, data.get("uid"))
    if user is None or user.disabled or _fingerprint(user.password_hash) != data.get("fp"):
        return None
    return Principal(user.id, user.name, user.role)


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


# -- login throttling --------------------------------------------------------------------------


class LoginThrottle:
    """At most ``limit`` failed logins per (user, IP) in ``window`` seconds; then refused until one ages out.

    In memory, per console process: it slows password guessing against one account from one address; a
    successful login clears the counter.
    """

    def __init__(self, limit: int = 5, window: float = 300.0, clock: Any = time.monotonic) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._fails: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = self._clock()
        q = self._fails.setdefault(key, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def blocked(self, name: str, ip: str) -> bool:
        with self._lock:
            return len(self._recent((name.strip().lower(), ip))) >= self.limit

    def failed(self, name: str, ip: str) -> None:
        with self._lock:
            self._recent((name.strip().lower(), ip)).append(self._clock())

    def succeeded(self, name: str, ip: str) -> None:
        with self._lock:
            self._fails.pop((name.strip().lower(), ip), None)
