"""Named, transaction-scoped locks for read-then-write sections (persisting a batch, appending custody).

Two sweeps (or, later, two queue workers) that both look up listing ``<platform>:123``, find nothing and
insert it collide on the unique key and lose their whole batch; two custody appenders read the same head.
:func:`xact_locks` is called before such a read, so a second writer waits until the first commits and
then reads what it wrote:

- PostgreSQL: ``pg_advisory_xact_lock`` on each name. Writers of different names do not wait for each
  other; the locks are taken in one statement in a fixed order (sorted lock ids), so two batches sharing
  several names cannot deadlock; they are released when the transaction ends.
- SQLite: one lock for the whole database anyway, but Python's driver begins a transaction only at the
  first write, so the reads before it ran outside any transaction and could be stale by the insert. A
  no-op write takes the database's write lock now (as ``BEGIN IMMEDIATE`` would) and holds it until the
  transaction ends (other writers wait up to the busy timeout).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

_LOCK_MANY = text("SELECT pg_advisory_xact_lock(unnest(CAST(:ids AS bigint[])))")
# changes no row, but starts the write transaction: SQLite's write lock is held from here on
_SQLITE_WRITE_LOCK = text("UPDATE alembic_version SET version_num = version_num WHERE 0")


def lock_id(name: str) -> int:
    """A stable signed 64-bit advisory-lock id for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


def xact_locks(session: Session, names: Iterable[str]) -> None:
    """Wait for the transaction-scoped lock of every name (PostgreSQL), or the write lock (SQLite)."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        session.execute(_SQLITE_WRITE_LOCK)
        return
    if dialect != "postgresql":
        return
    ids = sorted({lock_id(name) for name in names})
    if ids:
        session.execute(_LOCK_MANY, {"ids": ids})
