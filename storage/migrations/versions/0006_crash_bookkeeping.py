"""crash bookkeeping: runs carry their process (pid, host, start token)

A sweep, recheck or scheduled job killed with -9 used to stay ``running`` for ever. Each run now records
the process that runs it (``pid``, ``host``, ``start_token`` = the process's start time, so a reused pid is
not mistaken for it); job runs also record the scheduler that started them (``holder``). Any command's
start marks this host's runs whose process is gone ``interrupted``, with one query on the partial indexes
below (only ``running`` rows are in them).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("sweep_runs", "job_runs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("pid", sa.Integer(), nullable=True))
            batch_op.add_column(sa.Column("host", sa.String(length=200), nullable=True))
            batch_op.add_column(sa.Column("start_token", sa.String(length=40), nullable=True))
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("holder", sa.String(length=200), nullable=True))
    for table in ("sweep_runs", "job_runs"):
        op.create_index(
            f"ix_{table}_running",
            table,
            ["status"],
            unique=False,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )


def downgrade() -> None:
    for table in ("sweep_runs", "job_runs"):
        op.drop_index(f"ix_{table}_running", table_name=table)
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_column("holder")
    for table in ("sweep_runs", "job_runs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("start_token")
            batch_op.drop_column("host")
            batch_op.drop_column("pid")
