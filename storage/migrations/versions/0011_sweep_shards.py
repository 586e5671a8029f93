"""distributed sweeps: shards (jobs of one run, with a fencing token), capture claims, per-platform rate slots

``sweep_shards`` holds each job of a ``tertib sweep --distributed`` run: its work, status, attempts and the
fencing token every commit of an attempt checks. ``capture_claims`` gives each listing one capture per run
across jobs. ``custody_chain_entries`` holds each job attempt's own custody chain, anchored into the
global one when the attempt ends. ``rate_slots`` holds each platform's next free request time,
shared by every worker so politeness does not multiply with machines. The queue itself is Procrastinate's
own schema (``crawler.distributed``), applied by ``tertib worker`` and ``tertib sweep --distributed``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# JSON text on SQLite, jsonb on PostgreSQL (as storage.models.JSONColumn; 0007)
JSONColumn = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sweep_shards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sweep_run_id", sa.Integer(), nullable=False),
        sa.Column("shard_no", sa.Integer(), nullable=False),
        sa.Column("work", JSONColumn, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fence", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", JSONColumn, nullable=False),
        sa.ForeignKeyConstraint(["sweep_run_id"], ["sweep_runs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sweep_run_id", "shard_no", name="uq_sweep_shards_run_no"),
    )
    op.create_index("ix_sweep_shards_sweep_run_id", "sweep_shards", ["sweep_run_id"], unique=False)
    op.create_table(
        "capture_claims",
        sa.Column("sweep_run_id", sa.Integer(), nullable=False),
        sa.Column("listing_key", sa.String(length=200), nullable=False),
        sa.Column("shard_id", sa.Integer(), nullable=False),
        sa.Column("fence", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["sweep_run_id"], ["sweep_runs.id"]),
        sa.PrimaryKeyConstraint("sweep_run_id", "listing_key"),
    )
    op.create_table(
        "custody_chain_entries",
        sa.Column("chain", sa.String(length=120), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("object_type", sa.String(length=40), nullable=False),
        sa.Column("object_id", sa.String(length=200), nullable=False),
        sa.Column("object_digest", sa.String(length=64), nullable=False),
        sa.Column("details", JSONColumn, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain", "seq"),
        sa.UniqueConstraint("entry_hash"),
    )
    op.create_table(
        "rate_slots",
        sa.Column("platform", sa.String(length=40), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform"),
    )


def downgrade() -> None:
    op.drop_table("rate_slots")
    op.drop_table("capture_claims")
    op.drop_table("custody_chain_entries")
    op.drop_index("ix_sweep_shards_sweep_run_id", table_name="sweep_shards")
    op.drop_table("sweep_shards")
