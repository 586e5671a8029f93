"""background corpus for emerging-term discovery

Ordinary clothing listings from a small background crawl of generic queries (``SweepRun.kind
"background"``): the contrast side that emerging-term discovery compares candidates with. Text only.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "background_docs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sweep_run_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=24), nullable=False),
        sa.Column("listing_key", sa.String(length=200), nullable=False),
        sa.Column("query", sa.String(length=300), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("seller_key", sa.String(length=200), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["sweep_run_id"], ["sweep_runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_background_docs_sweep_run_id", "background_docs", ["sweep_run_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_background_docs_sweep_run_id", table_name="background_docs")
    op.drop_table("background_docs")
