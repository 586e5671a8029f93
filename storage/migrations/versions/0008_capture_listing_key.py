"""captures carry their listing's identity

A capture and its listing row commit on different threads in either order, so a capture now records its
listing's key (``platform:listing_id``) itself and readers join ``captures.listing_key`` to
``listings.listing_key``: nothing links them after the fact. The backfill takes the key from the linked listing,
else from the capture's metadata record (captures that were still waiting to be linked). The metadata is JSON
text on SQLite and jsonb on PostgreSQL (0007), read back as a string or a dict; the new index is built without
blocking writes on PostgreSQL (``storage.schema_ops``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from storage import schema_ops

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _metadata_key(value: Any) -> str | None:
    data = json.loads(value) if isinstance(value, str) else value
    key = data.get("listing_key") if isinstance(data, dict) else None
    return str(key) if key else None


def upgrade() -> None:
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("listing_key", sa.String(length=200), nullable=True))
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE captures SET listing_key = "
            "(SELECT listings.listing_key FROM listings WHERE listings.id = captures.listing_id) "
            "WHERE listing_id IS NOT NULL"
        )
    )
    rows = bind.execute(
        sa.text("SELECT id, metadata_json FROM captures WHERE listing_key IS NULL AND observable")
    ).all()
    updates = [{"k": key, "i": row[0]} for row in rows if (key := _metadata_key(row[1]))]
    if updates:
        bind.execute(sa.text("UPDATE captures SET listing_key = :k WHERE id = :i"), updates)
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.drop_index("ix_captures_listing_id")
        batch_op.drop_column("listing_id")
    schema_ops.create_index("ix_captures_listing_key", "captures", ["listing_key", "captured_at", "id"])


def downgrade() -> None:
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("listing_id", sa.Integer(), nullable=True))
    op.get_bind().execute(
        sa.text(
            "UPDATE captures SET listing_id = "
            "(SELECT listings.id FROM listings WHERE listings.listing_key = captures.listing_key)"
        )
    )
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.drop_index("ix_captures_listing_key")
        batch_op.drop_column("listing_key")
        batch_op.create_foreign_key("fk_captures_listing_id", "listings", ["listing_id"], ["id"])
    schema_ops.create_index("ix_captures_listing_id", "captures", ["listing_id"])
