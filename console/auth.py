"""Console accounts, roles, passwords, API tokens, server-side sessions and CSRF.

- Passwords are argon2id hashes (argon2-cffi, its default memory-hard parameters); a hash made with older
  parameters is upgraded on the next successful login.
- API tokens (``tertib users token NAME``) are 32 random bytes shown once; only their SHA-256 is stored
  (``User.api_token_hash``) — a high-entropy token needs no slow hash, and lookup stays one equality match.
- Sessions live in the database (:class:`storage.models.ConsoleSession`): the cookie carries 32 random
  bytes, the row their SHA-256, the user, the CSRF token (session-bound: every form and HTMX request must
  echo it), the time of the last request and an absolute end. A session ends when it is idle longer than
  ``console_idle_minutes``, at ``console_session_hours`` after sign-in whatever the activity, and at once on
  logout, a password change or disabling the user (:func:`revoke_sessions`) — a copied cookie dies with it.
- Roles: :data:`PERMISSIONS` says what each role may do; ``auditor`` may only verify evidence (verifying is
  audit work; it changes nothing but the custody log's record of the check).

Account changes append ``user_add``/``user_disable``/``user_password``/``user_token``/``user_logout``
custody entries. To add a role, add it to :data:`ROLES` and :data:`PERMISSIONS`; to add a guarded action,
add its name to the roles that may take it and guard the route with ``console.deps.allowed(ACTION)``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from crawler.errors import NotFound, TertibError, UsageError
from storage import custody
from storage.models import ConsoleSession, User

ROLES: tuple[str, ...] = ("analyst", "staff", "auditor", "admin")
# what each role may do; pages show only the buttons of actions the user may take
ACTIONS: tuple[str, ...] = ("review", "terms", "schedules", "batches", "send", "verify")
PERMISSIONS: dict[str, frozenset[str]] = {
    "analyst": frozenset(ACTIONS),
    "staff": frozenset(ACTIONS),
    "admin": frozenset(ACTIONS),
    "auditor": frozenset({"verify"}),
}
WRITE_ROLES: frozenset[str] = frozenset(
    role for role, may in PERMISSIONS.items() if may == frozenset(ACTIONS)
)
SESSION_COOKIE = "tertib_session"
SECRET_NAME = "console-secret"
MIN_PASSWORD = 8
LAST_SEEN_GRANULARITY = timedelta(seconds=60)  # write last_seen_at at most once a minute per session

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

    def may(self, action: str) -> bool:
        return action in PERMISSIONS.get(self.role, frozenset())


def can_write(role: str) -> bool:
    return role in WRITE_ROLES


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- passwords and accounts ----------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"password too short (at least {MIN_PASSWORD} characters)")


def _validate(name: str, role: str, password: str) -> str:
    name = name.strip()
    if not name or len(name) > 120 or any(c in name for c in "\r\n\t"):
        raise UsageError("a user name must be 1-120 characters on one line")
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
    _check_password_rules(password)
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


def _end_sessions_and_log(session: Session, user: User, *, action: str, reason: str, actor: str) -> int:
    """End every session of ``user`` and append the account change to the custody log; returns how many
    sessions ended."""
    ended = revoke_sessions(session, user.id, reason=reason)
    custody.append(
        session,
        actor=actor,
        action=action,
        object_type="user",
        object_id=user.name,
        details={"sessions_ended": ended},
    )
    return ended


def disable_user(session: Session, name: str, *, actor: str) -> User:
    """Disable an account: its sessions end and its API token is revoked, at once."""
    user = get_user(session, name)
    user.disabled = True
    user.api_token_hash = None
    _end_sessions_and_log(session, user, action="user_disable", reason="disabled", actor=actor)
    return user


def set_password(session: Session, name: str, password: str, *, actor: str) -> User:
    """A new password; every session of the account ends (sign in again everywhere)."""
    _check_password_rules(password)
    user = get_user(session, name)
    user.password_hash = hash_password(password)
    _end_sessions_and_log(session, user, action="user_password", reason="password_changed", actor=actor)
    return user


def logout_everywhere(session: Session, name: str, *, actor: str) -> int:
    """End every session of the account (a lost laptop); returns how many were open."""
    user = get_user(session, name)
    return _end_sessions_and_log(session, user, action="user_logout", reason="revoked", actor=actor)


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


def user_id_for(session: Session, name: str) -> int | None:
    return session.scalar(select(User.id).where(User.name == name.strip()))


def principal_for_token(session: Session, token: str) -> Principal | None:
    if not token:
        return None
    user = session.scalars(select(User).where(User.api_token_hash == token_digest(token))).first()
    if user is None or user.disabled:
        return None
    return Principal(user.id, user.name, user.role)


# -- sessions and CSRF -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session: who, its CSRF token, and its id (the SHA-256 of the cookie token)."""

    id: str
    user: Principal
    csrf: str


def start_session(
    session: Session, user: Principal, policy: SessionPolicy, *, client: str = "", user_agent: str = ""
) -> tuple[str, SignedIn]:
    """A new session for ``user``; returns (the cookie token, the session). Old expired rows are removed."""
    now = utcnow()
    token = secrets.token_urlsafe(32)
    row = ConsoleSession(
        id=token_digest(token),
        user_id=user.id,
        csrf=secrets.token_urlsafe(24),
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.absolute,
        client=client[:64],
        user_agent=user_agent[:300],
    )
    session.add(row)
    # a day after their end nobody asks about them any more
    session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at < now - timedelta(days=1)))
    session.flush()
    return token, SignedIn(row.id, user, row.csrf)


def resume_session(session: Session, token: str | None, policy: SessionPolicy) -> SignedIn | None:
    """The live session for a cookie token, or None (unknown, revoked, idle too long, past its end, user
    disabled). Touches ``last_seen_at`` at most once a minute."""
    if not token or len(token) > 100:
        return None
    now = utcnow()
    found = session.execute(
        select(ConsoleSession, User)
        .join(User, User.id == ConsoleSession.user_id)
        .where(ConsoleSession.id == token_digest(token))
    ).first()
    if found is None:
        return None
    row, user = found
    if (
        row.revoked_at is not None
        or user.disabled
        or now >= row.expires_at
        or now - row.last_seen_at >= policy.idle
    ):
        return None
    if now - row.last_seen_at >= LAST_SEEN_GRANULARITY:
        row.last_seen_at = now
    return SignedIn(row.id, Principal(user.id, user.name, user.role), row.csrf)


def end_session(session: Session, session_id: str, reason: str = "logout") -> None:
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == session_id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


def revoke_sessions(session: Session, user_id: int, *, reason: str) -> int:
    """End every open session of a user at once; returns how many."""
    result = session.execute(
        update(ConsoleSession)
        .where(
            ConsoleSession.user_id == user_id,
            ConsoleSession.revoked_at.is_(None),
            ConsoleSession.expires_at > utcnow(),
        )
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def open_sessions(session: Session, name: str | None = None) -> list[tuple[ConsoleSession, str]]:
    """Sessions not revoked and not past their end (idle ones included), newest first, with user names."""
    query = (
        select(ConsoleSession, User.name)
        .join(User, User.id == ConsoleSession.user_id)
        .where(ConsoleSession.revoked_at.is_(None), ConsoleSession.expires_at > utcnow())
        .order_by(ConsoleSession.created_at.desc())
    )
    if name is not None:
        query = query.where(User.name == name.strip())
    return [(row, user_name) for row, user_name in session.execute(query).all()]


def csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def secret_key(keys_dir: Path) -> str:
    """The console's signing secret (device cookies): ``TERTIB_CONSOLE_SECRET`` or
    ``<keys_dir>/console-secret`` (made once, 0600). Several console processes behind one proxy share it."""
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
