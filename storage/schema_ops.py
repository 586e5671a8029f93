"""Migration operations that differ by backend, for revisions in ``storage/migrations/versions``.

An index on a big table (listings, sightings, scores, captures, custody_entries, rechecks …) must not
block writes while it is built: on PostgreSQL :func:`create_index` builds it ``CONCURRENTLY``, outside the
revision's transaction (Alembic's ``autocommit_block``; ``storage/migrations/env.py`` runs one transaction
per revision so the rest of the revision stays atomic). A concurrent build that failed half-way leaves an
INVALID index behind; it is dropped and built again on the next attempt. On SQLite, where any write
locks the whole database anyway, the index is created plainly.

Use in a revision::

    from storage import schema_ops

    def upgrade() -> None:
        schema_ops.create_index("ix_sightings_seen", "sightings", ["seen_at"])

    def downgrade() -> None:
        schema_ops.drop_index("ix_sightings_seen", "sightings")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

# Tables owned by libraries, not by our models (APScheduler's job store): never autogenerate drops for them.
FOREIGN_TABLES = {"apscheduler_jobs"}


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's filter for autogenerate and schema comparisons: our tables only."""
    return not (type_ == "table" and name in FOREIGN_TABLES)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def create_index(name: str, table: str, columns: Sequence[str], *, unique: bool = False, **kw: Any) -> None:
    """Create index ``name`` without blocking writes on PostgreSQL; plainly on SQLite.

    ``kw`` passes dialect options through (``sqlite_where=``, ``postgresql_where=``, ``postgresql_using=``).
    """
    if not _postgres():
        op.create_index(name, table, list(columns), unique=unique, **kw)
        return
    with op.get_context().autocommit_block():
        invalid = op.get_bind().execute(
            sa.text(
                "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = :name AND NOT i.indisvalid"
            ),
            {"name": name},
        )
        if invalid.first() is not None:
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
        op.create_index(
            name,
            table,
            list(columns),
            unique=unique,
            postgresql_concurrently=True,
            if_not_exists=True,
            **kw,
        )


def drop_index(name: str, table: str) -> None:
    """Drop index ``name`` without blocking writes on PostgreSQL; plainly on SQLite."""
    if not _postgres():
        op.drop_index(name, table_name=table)
        return
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
