"""JSON columns as jsonb on PostgreSQL

jsonb is stored parsed (no re-parsing on every read), compares by value and can be indexed (GIN); the
models declare ``JSON().with_variant(JSONB(), "postgresql")`` (``storage.models.JSONColumn``). SQLite keeps
its JSON text: nothing to do there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "custody_entries": ("details",),
    "lexicon_versions": ("snapshot",),
    "sellers": ("contact_handles",),
    "sweeps": ("platforms",),
    "takedown_batches": ("details",),
    "terms": ("variants", "discovery"),
    "listings": ("contact_handles", "extra_ids", "relist_evidence", "origin_facts"),
    "sweep_runs": ("platforms", "stats", "needs_attention", "queries"),
    "captures": ("records", "metadata_json"),
    "findings": ("detail",),
    "sightings": ("raw",),
    "scores": ("explanation",),
    "takedown_items": ("snapshot",),
}


# columns with a server default: it is dropped for the type change and set again in the new type
SERVER_DEFAULTS: dict[tuple[str, str], str] = {("listings", "origin_facts"): "'[]'"}


def _alter(to: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in JSON_COLUMNS.items():
        clauses: list[str] = []
        for c in columns:
            default = SERVER_DEFAULTS.get((table, c))
            if default:
                clauses.append(f"ALTER COLUMN {c} DROP DEFAULT")
            clauses.append(f"ALTER COLUMN {c} TYPE {to} USING {c}::{to}")
            if default:
                clauses.append(f"ALTER COLUMN {c} SET DEFAULT {default}::{to}")
        op.execute(f"ALTER TABLE {table} {', '.join(clauses)}")


def upgrade() -> None:
    _alter("jsonb")


def downgrade() -> None:
    _alter("json")
