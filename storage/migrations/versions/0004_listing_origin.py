"""where a listing ships from

``listings.ships_from_abroad``: what the platform says about the item's origin (true: a cross-border seller,
a "Luar Negeri" shop location, a LazGlobal mark; false: the platform says it is domestic; null: not said);
``listings.origin_facts``: the platform's own words behind it, quoted in exports as evidence of import origin.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("listings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ships_from_abroad", sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column("origin_facts", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("listings", schema=None) as batch_op:
        batch_op.drop_column("origin_facts")
        batch_op.drop_column("ships_from_abroad")
