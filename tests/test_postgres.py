"""PostgreSQL-only behaviour: bad database settings give one clear line, concurrent starts migrate once.

The rest of the storage suite runs on both backends (``both_backends`` modules, tests/conftest.py).
"""

from __future__ import annotations

import pytest
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
