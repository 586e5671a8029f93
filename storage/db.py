"""Engine, sessions and migrations for one database URL.

SQLite (the embedded default) is opened in WAL mode with foreign keys on and a busy timeout, so the
scheduler, a sweep subprocess and the console can share it. PostgreSQL (``TERTIB_DATABASE_URL=
postgresql+psycopg://user:password@host/db``, psycopg 3) is the backend for several machines; the test
suite runs the storage, review, export, audit, custody and scheduler tests on both (``tests/servers.py``).
Differences are kept inside ``storage``: JSON columns are ``jsonb`` on PostgreSQL (``models.JSONColumn``),
bulk inserts use ``RETURNING`` there (``storage.bulk``), custody appends serialise on an advisory lock
(``storage.custody``) and big-table indexes are built ``CONCURRENTLY`` (``storage.schema_ops``).

A URL that cannot be used (bad syntax, no driver, server unreachable, wrong credentials, database missing)
raises :class:`DatabaseUnavailable` with one line naming the URL without its password.

Migrations are Alembic revisions in ``storage/migrations/versions``; :meth:`Database.migrate` upgrades to
head and is called by every command on start (cheap when already at head). To change the schema: edit
``storage/models.py`` and add a revision (``alembic -c storage/alembic.ini revision --autogenerate``).
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from crawler.errors import TertibError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# pg_advisory_lock key held while migrating ("tertmigr" in ASCII, as a signed 64-bit integer)
MIGRATION_LOCK_KEY = int.from_bytes(b"tertmigr", "big", signed=True)


class DatabaseUnavailable(TertibError):
    """The database URL is unusable or its server cannot be reached or refuses us; the message says which."""


def redacted(url: str | URL) -> str:
    """The URL as it may be shown: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def explain_connect_error(exc: BaseException) -> str:
    """The driver's reason in one line: the last ``failed:`` segment, without ``FATAL:`` or hints."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    first = lines[0] if lines else type(original).__name__
    reason = first.rsplit("failed: ", 1)[-1].replace("FATAL:", "").strip()
    return reason.rstrip(".") or first


@contextmanager
def _connect_or_explain(db: Database) -> Iterator[Connection]:
    """``engine.connect()``; a refused, unreachable or unauthorised server becomes one clear error line."""
    try:
        conn = db.engine.connect()
    except DBAPIError as exc:
        raise DatabaseUnavailable(
            f"cannot connect to the database {redacted(db.url)}: {explain_connect_error(exc)}"
        ) from None
    with conn:
        yield conn


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


NUL = "\x00"
REPLACEMENT = "\ufffd"


def scrub_nul(value: Any) -> Any:
    """``value`` with every NUL character in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT) if NUL in value else value
    if isinstance(value, dict):
        return {scrub_nul(k): scrub_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub_nul(v) for v in value)
    return value


def json_dumps(value: Any) -> str:
    """The JSON columns' serializer: ``json.dumps``, with NUL characters replaced (see below)."""
    out = json.dumps(value)
    # "\u0000" also matches an escaped backslash followed by "u0000"; scrubbing then changes nothing
    return json.dumps(scrub_nul(value)) if "\\u0000" in out else out


def _scrub_parameters(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> Any:
    """Platform text is written by sellers and may hold NUL characters, which PostgreSQL refuses in text
    and jsonb (the whole batch would fail). Both backends store U+FFFD instead, so they hold the same
    values. Checking each string parameter costs ~1 % of a sweep's persistence."""
    if _has_nul(parameters):
        parameters = scrub_nul(parameters)
    return statement, parameters


def _has_nul(parameters: Any) -> bool:
    """Any NUL in a string of ``parameters`` (a row as a dict or sequence, or a sequence of rows)."""
    if isinstance(parameters, str):
        return NUL in parameters
    if isinstance(parameters, dict):
        parameters = parameters.values()
    elif not isinstance(parameters, list | tuple):
        return False
    return any(
        _has_nul(v) if isinstance(v, dict | list | tuple) else isinstance(v, str) and NUL in v
        for v in parameters
    )


def _integer_out_of_range(context: Any) -> None:
    """PostgreSQL refuses an integer beyond its column's range (an id typed by a user, ``/batches/9…9``)
    with a DataError; SQLite's driver raises OverflowError before sending it. Raise the same on both, so
    callers handle one exception (the console answers 400 "number out of range")."""
    original = context.original_exception
    if type(original).__name__ == "NumericValueOutOfRange":
        raise OverflowError(f"number out of range: {str(original).splitlines()[0]}") from original


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
    """An engine for ``url``; a malformed URL or a missing driver is a :class:`DatabaseUnavailable`."""
    try:
        if url.startswith("sqlite"):
            if read_only:
                engine = create_engine(read_only_sqlite_url(url), connect_args={"timeout": 30})
                event.listen(engine, "connect", _sqlite_read_only_pragmas)
                return engine
            engine = create_engine(url, connect_args={"timeout": 30}, json_serializer=json_dumps)
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "before_cursor_execute", _scrub_parameters, retval=True)
            return engine
        postgres = make_url(url).get_backend_name() == "postgresql"
        # connect_timeout: an unreachable host fails the command in seconds instead of hanging
        engine = create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 10} if postgres else {},
            json_serializer=json_dumps,
        )
        event.listen(engine, "before_cursor_execute", _scrub_parameters, retval=True)
        if postgres:
            event.listen(engine, "handle_error", _integer_out_of_range)
        return engine
    except NoSuchModuleError:
        raise DatabaseUnavailable(
            f"no driver for the database URL {redacted(url)} (PostgreSQL URLs start with postgresql+psycopg://)"
        ) from None
    except ArgumentError:
        raise DatabaseUnavailable(
            f"the database URL is not a valid SQLAlchemy URL: {redacted(url)}"
        ) from None


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
        # a Database dropped without dispose() closes its pooled connections when it is collected, rather
        # than leaving them open on the server until the garbage collector frees the driver's objects
        weakref.finalize(self, self.engine.dispose).atexit = False

    def migrate(self, revision: str = "head") -> None:
        """Upgrade to ``revision`` (the newest by default; no-op when already there).

        Each revision runs in its own transaction (``transaction_per_migration``), so a revision may leave
        its transaction for an index built ``CONCURRENTLY`` on PostgreSQL (``storage.schema_ops``). On
        PostgreSQL, processes starting together (workers, the console, the scheduler) take turns through
        a session advisory lock, so only the first one upgrades. On SQLite, foreign keys are off while
        revisions run and checked afterwards: a batch revision rebuilds a table by copying it and dropping
        the original, and dropping ``listings`` with enforcement on fails as soon as any sighting, score or
        capture refers to it (every real database being upgraded).
        """
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = alembic_config(self.url)
        scripts = ScriptDirectory.from_config(cfg)
        target = scripts.get_current_head() if revision == "head" else revision
        with _connect_or_explain(self) as conn:  # the common case, at head: no lock needed
            if MigrationContext.configure(conn).get_current_revision() == target:
                return
        if self.read_only:  # no lock file can be made on a read-only data dir; say what is wrong
            with _connect_or_explain(self) as conn:
                current = MigrationContext.configure(conn).get_current_revision()
            raise TertibError(
                f"the database is at revision {current}, this tertib needs {target}, and the data dir is "
                "read-only: run any command once with write access to migrate it"
            )
        with self._migration_lock(), _connect_or_explain(self) as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            conn.commit()  # Alembic must find the connection outside a transaction to run its own
            if current == target:
                return
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:  # PRAGMA foreign_keys is ignored inside a transaction: set it between them
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                conn.commit()
            try:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                conn.commit()
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all() if sqlite else []
            finally:
                if sqlite:
                    conn.rollback()
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    conn.commit()
            if broken:
                tables = ", ".join(sorted({str(row[0]) for row in broken}))
                raise TertibError(
                    f"the database was migrated to {target} but {len(broken)} rows of {tables} refer to rows "
                    "that do not exist (PRAGMA foreign_key_check lists them)"
                )

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.engine.dialect.name == "postgresql":
            with self._postgres_migration_lock():
                yield
        else:
            with self._sqlite_migration_lock():
                yield

    @contextmanager
    def _postgres_migration_lock(self, timeout: float = 1800.0) -> Iterator[None]:
        """A session advisory lock, taken by polling ``pg_try_advisory_lock`` on an autocommit connection.

        A waiter must not sit in a blocking ``pg_advisory_lock`` call: that statement holds a snapshot,
        and ``CREATE INDEX CONCURRENTLY`` in the holder's migration waits for every older snapshot in the
        database, so holder and waiter would deadlock.
        """
        with _connect_or_explain(self) as lock_conn:
            lock_conn = lock_conn.execution_options(isolation_level="AUTOCOMMIT")
            deadline = time.monotonic() + timeout
            try_lock = text("SELECT pg_try_advisory_lock(:key)")
            while not lock_conn.execute(try_lock, {"key": MIGRATION_LOCK_KEY}).scalar():
                if time.monotonic() > deadline:
                    raise DatabaseUnavailable(
                        f"another process has been migrating {redacted(self.url)} for {timeout:.0f} s; "
                        "see pg_stat_activity"
                    )
                time.sleep(0.2)
            try:
                yield
            finally:
                lock_conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})

    @contextmanager
    def _sqlite_migration_lock(self) -> Iterator[None]:
        """SQLite's counterpart of the advisory lock: an exclusive ``flock`` on ``<database>.migrate-lock``
        (processes sharing a data dir, e.g. the scheduler and the console starting together)."""
        path = self.engine.url.database if self.engine.dialect.name == "sqlite" else None
        if not path or path == ":memory:":
            yield
            return
        import fcntl

        lock_path = Path(path).with_name(Path(path).name + ".migrate-lock")
        try:
            handle = lock_path.open("a")
        except OSError as exc:
            raise DatabaseUnavailable(
                f"cannot open the database {redacted(self.url)}: {exc.strerror}"
            ) from None
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

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
