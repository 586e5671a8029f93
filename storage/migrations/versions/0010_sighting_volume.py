"""volume facts on every sighting

What a sighting showed about volume (``crawler.intel.volume``): the price, the sold count as an interval
with its precision (``sold_low`` ≤ true count ≤ ``sold_high``; ``sold_high`` null when the platform shows a
floor such as "100+ terjual"; all null when the platform shows no sold count), the stock, and what one unit
holds from the seller's text (``unit_kind`` bale/kg/piece, ``unit_pieces``, ``unit_kg``). Kept per sighting,
so the change between sightings (sales, restocks) stays visible. Old sightings have none of it (null).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = (
    ("price", sa.BigInteger()),
    ("sold_low", sa.BigInteger()),
    ("sold_high", sa.BigInteger()),
    ("sold_precision", sa.String(length=12)),
    ("stock", sa.BigInteger()),
    ("unit_kind", sa.String(length=8)),
    ("unit_pieces", sa.Integer()),
    ("unit_kg", sa.Float()),
)


def upgrade() -> None:
    # plain ADD COLUMN on both backends (nullable, no default): no table rebuild on SQLite
    for name, type_ in COLUMNS:
        op.add_column("sightings", sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sightings", schema=None) as batch_op:
        for name, _type in reversed(COLUMNS):
            batch_op.drop_column(name)
