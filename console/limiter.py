"""Sign-in attempt limits that hold under concurrency, with back-off instead of a hard lock.

Every attempt is counted *before* the password is checked, by an atomic compare-and-set on a
:class:`storage.models.LoginLimit` row (``UPDATE … WHERE attempts = <what we read>``, retried on a lost
race), so 100 parallel guesses cannot slip past the limit between a check and a count: exactly ``free``
of them reach the password check, the rest are refused. This works the same on SQLite (one writer at a
time) and PostgreSQL (the second updater re-reads the row and matches nothing).

Keys and what they stop:

- ``client:ADDRESS`` — one address guessing across many accounts (behind a proxy the address comes from
  ``X-Forwarded-For`` only when the peer is a trusted proxy: :func:`client_address`);
- ``account:NAME`` — many addresses guessing one account, from browsers that never signed in to it;
- ``device:ID`` — a browser that signed in to the account before carries a signed device cookie (OWASP's
  "device cookies"); its attempts count on its own key only, so a stranger hammering the account cannot
  keep its owner out of her usual browser.

After ``free`` attempts each further attempt must wait ``base × 2^(n - free)`` seconds (capped at ``cap``);
attempts refused while waiting are not counted, so the wait cannot be driven up faster than it passes. A key
forgets its attempts ``window`` after the last one, and a successful sign-in clears the account/device key.
Settings: ``console_login_free``, ``console_login_backoff``, ``console_login_backoff_max``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.models import LoginLimit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_TRIES = 200  # compare-and-set rounds before an attempt is refused (fail closed)


@dataclass(frozen=True, slots=True)
class Policy:
    free: int = 5  # attempts without waiting
    base: float = 15.0  # seconds to wait after the free attempts, doubling each attempt
    cap: float = 900.0  # longest wait
    window: float = 3600.0  # attempts are forgotten this long after the last one

    def delay(self, attempts: int) -> float:
        if attempts < self.free:
            return 0.0
        return float(min(self.cap, self.base * 2 ** min(attempts - self.free, 40)))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _wait_until(now: datetime, delay: float) -> datetime | None:
    """None when the next attempt need not wait. Never ``now`` itself: a parallel attempt that read its
    clock a moment earlier would find itself "before" that time and be refused a free attempt."""
    return now + timedelta(seconds=delay) if delay > 0 else None


class LoginLimiter:
    """Counts sign-in attempts per key in the database (shared by every console process)."""

    def __init__(self, db: Database, clock: Callable[[], datetime] = _utcnow) -> None:
        self.db = db
        self.clock = clock

    def reserve(self, keys: Sequence[tuple[str, Policy]]) -> float | None:
        """Count one attempt on every key; None when the attempt may go ahead, else the seconds to wait.

        A key that makes the caller wait is not counted; keys before it in ``keys`` are (the attempt was
        made as far as they know) — put the narrowest key first.
        """
        for key, policy in keys:
            wait = self._reserve_one(key, policy)
            if wait is not None:
                return wait
        return None

    def _reserve_one(self, key: str, policy: Policy) -> float | None:
        for _ in range(MAX_TRIES):
            now = self.clock()
            with self.db.session() as s:
                row = s.get(LoginLimit, key, populate_existing=True)
                if row is None:
                    s.add(
                        LoginLimit(
                            key=key,
                            attempts=1,
                            last_attempt_at=now,
                            next_allowed_at=_wait_until(now, policy.delay(1)),
                        )
                    )
                    try:
                        s.flush()
                    except IntegrityError:  # another attempt created it first: count again on it
                        s.rollback()
                        continue
                    return None
                if row.next_allowed_at is not None and now < row.next_allowed_at:
                    return (row.next_allowed_at - now).total_seconds()
                seen, last = row.attempts, row.last_attempt_at
                attempts = 0 if (now - last).total_seconds() > policy.window else seen
                attempts += 1
                done = s.execute(
                    update(LoginLimit)
                    .where(
                        LoginLimit.key == key,
                        LoginLimit.attempts == seen,
                        LoginLimit.last_attempt_at == last,
                    )
                    .values(
                        attempts=attempts,
                        last_attempt_at=now,
                        next_allowed_at=_wait_until(now, policy.delay(attempts)),
                    )
                    .execution_options(synchronize_session=False)
                )
                if getattr(done, "rowcount", 0) == 1:
                    return None
        return policy.cap

    def clear(self, key: str) -> None:
        with self.db.session() as s:
            s.execute(delete(LoginLimit).where(LoginLimit.key == key))

    def attempts(self, key: str) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(LoginLimit.attempts).where(LoginLimit.key == key)) or 0)


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """``--trusted-proxy`` values (an address or a CIDR block) as networks; ValueError names a bad one."""
    out: list[Network] = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR block: {value!r}") from None
    return tuple(out)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy that says who it forwards.

    ``X-Forwarded-For`` is read right to left, skipping trusted proxies; the first other address is the
    client (anything left of it could have been written by the client itself). Without trusted proxies the
    header is ignored, so a client cannot choose its own address.
    """
    peer_ip = _address(peer)
    if not forwarded_for or peer_ip is None or not any(peer_ip in net for net in trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        ip = _address(hop)
        if ip is None:
            return peer  # a malformed hop: trust nothing beyond the proxy
        if not any(ip in net for net in trusted):
            return str(ip)
    return str(_address(hops[0])) if hops else peer
