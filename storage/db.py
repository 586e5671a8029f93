"""Engine, sessions and migrations for one database URL.

SQLite (the embedded default) is opened in WAL mode with foreign keys on and a busy timeout, so the
scheduler, a sweep subprocess and the console can share it. PostgreSQL works through the same code by
``TERTIB_DATABASE_URL`` (``postgresql+psycopg://…``).

Migrations are Alembic revisions in ``storage/migrations/versions``; :meth:`Database.migrate` upgrades to
head and is called by every command on start (cheap when already at head). To change the schema: edit
``storage/models.py`` and add a revision (``alembic -c storage/alembic.ini revision --autogenerate``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def read_only_sqlite_url(url: str) -> str:
    """The same SQLite file opened read-only (a read-only data dir or mount).

    With its ``-wal``/``-shm`` files present SQLite reads them without writing (``mode=ro``); without them
    the file is opened ``immutable`` (nothing to miss, and nothing to create beside it)."""
    path = url.split("///", 1)[1]
    wal = Path(path + "-wal").exists() and Path(path + "-shm").exists()
    return f"sqlite:///file:{path}?{'mode=ro' if wal else 'mode=ro&immutable=1'}&uri=true"


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    if url.startswith("sqlite"):
        if read_only:
            engine = create_engine(read_only_sqlite_url(url), connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_read_only_pragmas)
            return engine
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class Database:
    """One database: ``with db.session() as s: ...`` commits on success and rolls back on error."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only  # SQLite on a read-only data dir: reads only, no migrations
        self.engine = make_engine(url, read_only=read_only)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Upgrade to the newest revision (no-op at head)."""
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = alembic_config(self.url)
        head = ScriptDirectory.from_config(cfg).get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return
        if self.read_only:
            from crawler.errors import TertibError

            raise TertibError(
                f"the database is at revision {current}, this tertib needs {head}, and the data dir is "
                "read-only: run any command once with write access to migrate it"
            )
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def analyze(self) -> None:
        """Refresh the query planner's statistics (SQLite ``ANALYZE``; PostgreSQL's autovacuum does it).

        Without statistics SQLite picks poor plans at scale: the review queue at 1M listings takes ~450 ms
        without and ~13 ms with. Sampled statistics (``analysis_limit``) were not enough for the same plans;
        a full ``ANALYZE`` took 0.5 s at 1M listings. Run when the console starts and after each sweep.
        """
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def table_names(self) -> list[str]:
        return inspect(self.engine).get_table_names()

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
