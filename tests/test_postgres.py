"""PostgreSQL-only behaviour: bad database settings give one clear line, concurrent starts migrate once.

The rest of the storage suite runs on both backends (``both_backends`` modules, tests/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import TEMPLATE_DB
from servers import PostgresServer, free_port
from test_evidence_support import run_cli

from storage.db import Database, DatabaseUnavailable

pytestmark = pytest.mark.postgres


def _bad_urls(server: PostgresServer) -> dict[str, tuple[str, str]]:
    closed = free_port()
    return {
        "unreachable": (
            f"postgresql+psycopg://tertib:pw@127.0.0.1:{closed}/tertib",
            "Connection refused",
        ),
        "wrong password": (
            server.url("postgres", password="not-the-password"),
            'password authentication failed for user "tertib"',
        ),
        "missing database": (server.url("no_such_db"), 'database "no_such_db" does not exist'),
        "no driver": ("postgresql+nosuchdriver://u:p@127.0.0.1/x", "no driver for the database URL"),
        "not a URL": ("definitely not a url", "not a valid SQLAlchemy URL"),
    }


@pytest.mark.parametrize(
    "case", ["unreachable", "wrong password", "missing database", "no driver", "not a URL"]
)
def test_bad_database_settings_give_one_line_and_write_nothing(
    case: str, pg_server: PostgresServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, reason = _bad_urls(pg_server)[case]
    monkeypatch.setenv("TERTIB_DATABASE_URL", url)
    assert run_cli(["status"]) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and reason in lines[0], lines[0]
    assert "Traceback" not in captured.err + captured.out
    if "pw@" in url or pg_server.password in url:
        assert pg_server.password not in lines[0] and ":pw@" not in lines[0]  # the password is never shown
    # nothing was written anywhere: the server has no new database, no tables appeared
    assert "no_such_db" not in _databases(pg_server)


def _databases(server: PostgresServer) -> set[str]:
    import psycopg

    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def test_database_unavailable_is_raised_by_migrate(pg_server: PostgresServer) -> None:
    db = Database(pg_server.url("postgres", password="wrong"))
    with pytest.raises(DatabaseUnavailable, match="password authentication failed"):
        db.migrate()
    db.dispose()


@pytest.fixture
def pg_db(pg_server: PostgresServer) -> Iterator[Database]:
    name = pg_server.create_database(template=TEMPLATE_DB)
    database = Database(pg_server.url(name))
    yield database
    database.dispose()
    pg_server.drop_database(name)


def test_index_helper_builds_concurrently_and_replaces_a_half_built_index(pg_db: Database) -> None:
    """storage.schema_ops.create_index on PostgreSQL: CREATE INDEX CONCURRENTLY outside the revision's
    transaction; an INVALID index left by a failed concurrent build is dropped and built again."""
    import psycopg
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from sqlalchemy import text

    from storage import schema_ops

    db = pg_db
    with db.engine.begin() as conn:
        for n in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO listings (listing_key, platform, platform_listing_id, url, title,"
                    " description, contact_handles, extra_ids, relist_evidence, first_seen, last_seen)"
                    " VALUES (:k, 'tokopedia', :k, 'u', 't', '', '[]', '{}', '{}', now(), now())"
                ),
                {"k": f"tokopedia:{n}"},
            )
    raw = db.engine.raw_connection()
    try:
        raw.driver_connection.autocommit = True  # type: ignore[union-attr]
        with pytest.raises(psycopg.errors.UniqueViolation):  # two rows share the platform: build fails
            raw.driver_connection.execute("CREATE UNIQUE INDEX CONCURRENTLY ix_probe ON listings (platform)")  # type: ignore[union-attr]
    finally:
        raw.close()
    valid = text(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname = 'ix_probe'"
    )
    with db.engine.connect() as conn:
        assert conn.execute(valid).scalar() is False  # the half-built index is there, INVALID
        conn.commit()
        # as storage/migrations/env.py runs a revision: its own transaction, which the helper steps out of
        ctx = MigrationContext.configure(conn, opts={"transaction_per_migration": True})
        with Operations.context(ctx), ctx.begin_transaction(_per_migration=True):
            schema_ops.create_index("ix_probe", "listings", ["platform"])
        conn.commit()
        assert conn.execute(valid).scalar() is True
        conn.commit()
        ctx = MigrationContext.configure(conn, opts={"transaction_per_migration": True})
        with Operations.context(ctx), ctx.begin_transaction(_per_migration=True):
            schema_ops.drop_index("ix_probe", "listings")
        conn.commit()
        assert conn.execute(valid).scalar() is None
