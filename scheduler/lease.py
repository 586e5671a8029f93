"""Database leases: named locks with an expiry, so a crashed holder never blocks for ever.

One row of ``leases`` per name (``scheduler:service`` for the service, ``job:<name>`` per job). A lease is
acquired by inserting the row, or by taking it over with a conditional UPDATE when it has expired (or is
already ours); both are single statements, so two processes racing for it cannot both win, on SQLite and
on PostgreSQL alike. Holders renew their leases while they work; :meth:`Leases.renew` returning False
means someone took the lease over (we were too slow) and the holder must stop.

Settings: ``TERTIB_SCHEDULER_LEASE_SECONDS`` (how long a lease lasts without renewal, see
``scheduler.config``). The clock is injected, so tests can expire a lease without waiting.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.models import Lease, utcnow
from storage.processes import holder_alive, start_token

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SERVICE_LEASE = "scheduler:service"


def job_lease(name: str) -> str:
    return f"job:{name}"


def new_holder() -> str:
    """``host:pid:start_token:random`` — names the process in messages, never collides across restarts or
    between two holders in one process, and tells whether the holder still lives
    (:func:`storage.processes.holder_alive`: the start token guards against a reused pid)."""
    token = start_token(os.getpid()) or "0.0"
    return f"{socket.gethostname()}:{os.getpid()}:{token}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


class Leases:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        """Take ``name`` for ``ttl`` seconds if it is free, expired or already ours."""
        now = self.clock()
        expires = now + timedelta(seconds=ttl)
        previous = self.get(name)
        with self.db.session() as session:
            result = session.execute(
                update(Lease)
                .where(Lease.name == name, or_(Lease.expires_at <= now, Lease.holder == holder))
                .values(holder=holder, acquired_at=now, expires_at=expires)
                .execution_options(synchronize_session=False)
            )
            taken = bool(getattr(result, "rowcount", 0))
        if taken:
            if previous is not None and previous.holder != holder:
                log.warning(
                    "lease=%s took over stale lease holder=%s expired_at=%s",
                    name,
                    previous.holder,
                    previous.expires_at.isoformat(),
                )
            return True
        try:
            with self.db.session() as session:
                session.add(Lease(name=name, holder=holder, acquired_at=now, expires_at=expires))
        except IntegrityError:
            # held by someone else and not expired (or they inserted it just now); a holder on this host
            # whose process is gone (killed with -9) cannot renew it: take it over now, not at expiry
            if previous is not None and holder_alive(previous.holder) is False:
                with self.db.session() as session:
                    result = session.execute(
                        update(Lease)
                        .where(Lease.name == name, Lease.holder == previous.holder)
                        .values(holder=holder, acquired_at=now, expires_at=expires)
                        .execution_options(synchronize_session=False)
                    )
                    if getattr(result, "rowcount", 0):
                        log.warning("lease=%s took over from dead holder=%s", name, previous.holder)
                        return True
            return False
        return True

    def renew(self, name: str, holder: str, ttl: float) -> bool:
        """Extend our lease; False if it is no longer ours."""
        expires = self.clock() + timedelta(seconds=ttl)
        with self.db.session() as session:
            result = session.execute(
                update(Lease)
                .where(Lease.name == name, Lease.holder == holder)
                .values(expires_at=expires)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    def release(self, name: str, holder: str) -> None:
        with self.db.session() as session:
            session.execute(
                delete(Lease)
                .where(Lease.name == name, Lease.holder == holder)
                .execution_options(synchronize_session=False)
            )

    def get(self, name: str) -> LeaseInfo | None:
        with self.db.session() as session:
            row = session.get(Lease, name)
            if row is None:
                return None
            return LeaseInfo(row.name, row.holder, row.acquired_at, row.expires_at)

    def held_by_other(self, name: str, holder: str) -> LeaseInfo | None:
        """The current holder if it is someone else and the lease has not expired."""
        info = self.get(name)
        if info is None or info.holder == holder or info.expires_at <= self.clock():
            return None
        return info
